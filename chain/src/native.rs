//! The core contracts (IOTA Wasp's root, accounts, blob, blocklog, governance), native Rust
//! with the same call convention as WASM contracts: borsh arguments, borsh return data, entry
//! points and views by hname, receipts with stable codes. Their interfaces are published like
//! any contract's so tools encode arguments from JSON the same way.

use crate::exec::{request_error, ContractRecord, Exec};
use crate::keys::{self, hnames};
use crate::ChainParams;
use borsh::{BorshDeserialize, BorshSerialize};
use wisp_core::interface::{ContractInterface, Field, Function, Type};
use wisp_core::{AgentId, CallKind, Hash32, Hname, ReceiptError, RequestErrorCode};
use wisp_vm::gas::DEPLOY_GAS_PER_BYTE;
use wisp_vm::{validate, Invocation};

/// Gas of one core-contract call, before per-byte costs.
pub const NATIVE_CALL_GAS: u64 = 20_000;
/// Gas per byte of arguments to a core contract.
pub const NATIVE_GAS_PER_BYTE: u64 = 2;

/// Bounds governance may set, so that it cannot brick the chain (defect 19 of the hardening
/// review): a price of 0 would make every request free, a request limit below what a deploy or
/// a governance call needs would leave no way back.
pub const MIN_GAS_PRICE_SOMPI: u64 = 1;
/// Highest gas price governance may set, sompi per gas.
pub const MAX_GAS_PRICE_SOMPI: u64 = 1_000_000;
/// Lowest per-request gas limit governance may set.
pub const MIN_REQUEST_GAS_LIMIT: u64 = 10_000_000;
/// Highest per-request gas limit governance may set.
pub const MAX_REQUEST_GAS_LIMIT: u64 = 1_000_000_000;
/// Highest per-block gas limit governance may set.
pub const MAX_BLOCK_GAS_LIMIT: u64 = 100_000_000_000;

/// Names of the core contracts, in registry order.
pub const CORE_CONTRACTS: [&str; 5] = ["root", "accounts", "blob", "blocklog", "governance"];

/// Whether `contract` is a core contract.
pub fn is_core(contract: Hname) -> bool {
    CORE_CONTRACTS.iter().any(|n| Hname::of(n) == contract)
}

/// A core-contract function of the interface. Type strings are constants of this file; a
/// unit test parses every one, so none can silently become another type.
fn f(
    name: &str,
    kind: CallKind,
    params: &[(&str, &str)],
    returns: Option<&str>,
    docs: &str,
) -> Function {
    #[allow(clippy::expect_used)]
    let ty = |t: &str| Type::parse(t).expect("core interface types parse (unit test)");
    Function {
        name: name.into(),
        kind,
        params: params
            .iter()
            .map(|(n, t)| Field {
                name: (*n).into(),
                ty: ty(t),
            })
            .collect(),
        returns: returns.map(ty),
        docs: docs.into(),
    }
}

/// The interface of a core contract.
pub fn interface(contract: Hname) -> Option<ContractInterface> {
    use CallKind::{Entry, View};
    let (name, functions) = if contract == hnames::root() {
        (
            "root",
            vec![
                f(
                    "deploy",
                    Entry,
                    &[
                        ("name", "String"),
                        ("code", "Vec<u8>"),
                        ("init_args", "Vec<u8>"),
                    ],
                    Some("Hname"),
                    "Deploys `code` under `name` and runs its `init` with `init_args` (borsh).",
                ),
                f(
                    "set_owner",
                    Entry,
                    &[("owner", "AgentId")],
                    None,
                    "Hands the chain to a new owner (owner only).",
                ),
                f(
                    "contract",
                    View,
                    &[("hname", "Hname")],
                    Some("Option<(String, Hash32, AgentId, u64)>"),
                    "Name, code hash, deployer and deploy block of a contract.",
                ),
                f(
                    "contracts",
                    View,
                    &[],
                    Some("Vec<(Hname, String)>"),
                    "Every deployed contract, in deploy order.",
                ),
                f("owner", View, &[], Some("AgentId"), "The chain owner."),
            ],
        )
    } else if contract == hnames::accounts() {
        (
            "accounts",
            vec![
                f(
                    "transfer",
                    Entry,
                    &[("to", "AgentId"), ("amount_sompi", "u64")],
                    None,
                    "Moves base tokens from the sender to `to`.",
                ),
                f(
                    "balance",
                    View,
                    &[("agent", "AgentId")],
                    Some("u64"),
                    "Base-token balance, sompi.",
                ),
                f(
                    "nonce",
                    View,
                    &[("agent", "AgentId")],
                    Some("u64"),
                    "Next off-ledger nonce.",
                ),
                f(
                    "total",
                    View,
                    &[],
                    Some("u64"),
                    "Sum of all balances (= coins pegged in), sompi.",
                ),
                f(
                    "unclaimed",
                    View,
                    &[("l1_tx_id", "Hash32")],
                    Some("u64"),
                    "Sompi an L1 transaction deposited with no sender identity and no beneficiary (refundable).",
                ),
            ],
        )
    } else if contract == hnames::blob() {
        (
            "blob",
            vec![
                f(
                    "store",
                    Entry,
                    &[("code", "Vec<u8>")],
                    Some("Hash32"),
                    "Stores a validated module; returns its code hash.",
                ),
                f(
                    "has",
                    View,
                    &[("code_hash", "Hash32")],
                    Some("bool"),
                    "Whether code with this hash is stored.",
                ),
            ],
        )
    } else if contract == hnames::blocklog() {
        (
            "blocklog",
            vec![
                f(
                    "request",
                    View,
                    &[("request_id", "Hash32")],
                    Some("Option<(u64, u32, Hash32)>"),
                    "Block, position and receipt hash of a processed request.",
                ),
                f(
                    "block_hash",
                    View,
                    &[("index", "u64")],
                    Some("Option<Hash32>"),
                    "Hash of an earlier block.",
                ),
            ],
        )
    } else if contract == hnames::governance() {
        (
            "governance",
            vec![
                f(
                    "params",
                    View,
                    &[],
                    Some("(u64, u64, u64)"),
                    "Gas price (sompi), per-request and per-block gas limits.",
                ),
                f(
                    "set_gas_price",
                    Entry,
                    &[("gas_price_sompi", "u64")],
                    None,
                    "Sets the gas price (owner only).",
                ),
                f(
                    "set_limits",
                    Entry,
                    &[("max_request_gas", "u64"), ("max_block_gas", "u64")],
                    None,
                    "Sets the gas limits (owner only).",
                ),
                f(
                    "protocol",
                    View,
                    &[],
                    Some("(u32, Vec<u8>)"),
                    "The protocol version in force and its VM limits (borsh VmConfig).",
                ),
                f(
                    "upgrade",
                    View,
                    &[],
                    Some("Option<(u64, u32, Vec<u8>)>"),
                    "The scheduled protocol upgrade: activation block, version, VM limits.",
                ),
                f(
                    "schedule_upgrade",
                    Entry,
                    &[
                        ("activation_block", "u64"),
                        ("version", "u32"),
                        ("vm", "Vec<u8>"),
                    ],
                    None,
                    "Schedules a protocol upgrade at a future block (owner only); replaces any scheduled one.",
                ),
            ],
        )
    } else {
        return None;
    };
    Some(ContractInterface {
        name: name.into(),
        functions,
        events: vec![],
        errors: vec![],
    })
}

fn args<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, ReceiptError> {
    borsh::from_slice(bytes).map_err(|_| {
        request_error(
            RequestErrorCode::BadArguments,
            "arguments do not match the parameter types",
        )
    })
}

fn ret<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).unwrap_or_default()
}

fn owner_only(exec: &mut Exec, sender: &AgentId) -> Result<(), ReceiptError> {
    let owner: Option<AgentId> = exec.read_borsh(&keys::chain_owner());
    if owner.as_ref() != Some(sender) {
        return Err(request_error(
            RequestErrorCode::Unauthorized,
            "only the chain owner may do this",
        ));
    }
    Ok(())
}

/// A native call's result: return data and gas used.
pub(crate) struct NativeOutcome {
    pub result: Result<Vec<u8>, ReceiptError>,
    pub gas_used: u64,
}

/// Calls a core contract. `exec` is taken and given back because deploy runs the VM.
#[allow(clippy::too_many_arguments)]
pub(crate) fn call(
    mut exec: Exec,
    sender: AgentId,
    contract: Hname,
    kind: CallKind,
    function: Hname,
    bytes: &[u8],
    gas_limit: u64,
) -> (Exec, NativeOutcome) {
    let base = NATIVE_CALL_GAS + NATIVE_GAS_PER_BYTE * bytes.len() as u64;
    if base > gas_limit {
        return (
            exec,
            NativeOutcome {
                result: Err(crate::exec::vm_error(
                    wisp_core::VmErrorCode::OutOfGas,
                    "out of gas",
                )),
                gas_used: gas_limit,
            },
        );
    }
    // Under an access list, what the core contract reads and writes must be declared.
    exec.native = exec.access.is_some();
    exec.violation = None;
    let is = |name: &str| function == Hname::of(name);
    let unknown = || {
        request_error(
            RequestErrorCode::UnknownEntryPoint,
            format!("core contract {contract} has no such function {function}"),
        )
    };
    let view = kind == CallKind::View;
    let mut extra_gas = 0u64;
    let result = if contract == hnames::root() {
        if !view && is("deploy") {
            return deploy(exec, sender, bytes, gas_limit, base);
        } else if !view && is("set_owner") {
            args::<(AgentId,)>(bytes).and_then(|(owner,)| {
                owner_only(&mut exec, &sender)?;
                // The owner receives every fee: it must be able to hold them.
                exec.check_recipient(&owner)?;
                exec.write_borsh(keys::chain_owner(), &owner);
                Ok(vec![])
            })
        } else if view && is("contract") {
            args::<(Hname,)>(bytes).map(|(h,)| {
                let r = exec
                    .contract_record(h)
                    .map(|r| (r.name, r.code_hash, r.deployer, r.deployed_at_block));
                ret(&r)
            })
        } else if view && is("contracts") {
            let list: Vec<Hname> = exec.read_borsh(&keys::contract_list()).unwrap_or_default();
            let named: Vec<(Hname, String)> = list
                .into_iter()
                .map(|h| {
                    let name = exec.contract_record(h).map(|r| r.name).unwrap_or_default();
                    (h, name)
                })
                .collect();
            Ok(ret(&named))
        } else if view && is("owner") {
            let owner: Option<AgentId> = exec.read_borsh(&keys::chain_owner());
            owner.map(|o| ret(&o)).ok_or_else(|| {
                request_error(RequestErrorCode::UnknownContract, "the chain has no owner")
            })
        } else {
            Err(unknown())
        }
    } else if contract == hnames::accounts() {
        if !view && is("transfer") {
            args::<(AgentId, u64)>(bytes)
                .and_then(|(to, amount)| exec.move_balance(&sender, &to, amount).map(|()| vec![]))
        } else if view && is("balance") {
            args::<(AgentId,)>(bytes).map(|(a,)| ret(&exec.balance_of(&a)))
        } else if view && is("nonce") {
            args::<(AgentId,)>(bytes).map(|(a,)| ret(&exec.read_u64(&keys::nonce(&a))))
        } else if view && is("total") {
            Ok(ret(&exec.read_u64(&keys::total_balance())))
        } else if view && is("unclaimed") {
            args::<(Hash32,)>(bytes).map(|(tx,)| ret(&exec.read_u64(&keys::unclaimed(&tx))))
        } else {
            Err(unknown())
        }
    } else if contract == hnames::blob() {
        if !view && is("store") {
            args::<(Vec<u8>,)>(bytes).and_then(|(code,)| {
                // Validation and compilation cost what a deploy's do (defect 5: it was 2 gas/byte).
                extra_gas = DEPLOY_GAS_PER_BYTE.saturating_mul(code.len() as u64);
                if base.saturating_add(extra_gas) > gas_limit {
                    return Err(crate::exec::vm_error(
                        wisp_core::VmErrorCode::OutOfGas,
                        "out of gas paying for the code size",
                    ));
                }
                store_blob(&mut exec, &code).map(|(h, _)| ret(&h))
            })
        } else if view && is("has") {
            args::<(Hash32,)>(bytes).map(|(h,)| ret(&exec.read(&keys::blob(&h)).is_some()))
        } else {
            Err(unknown())
        }
    } else if contract == hnames::blocklog() {
        if view && is("request") {
            args::<(Hash32,)>(bytes).map(|(id,)| {
                let r: Option<(u64, u32, Hash32)> = exec.read_borsh(&keys::request(&id));
                ret(&r)
            })
        } else if view && is("block_hash") {
            args::<(u64,)>(bytes).map(|(i,)| {
                let h: Option<Hash32> = exec.read_borsh(&keys::block_hash(i));
                ret(&h)
            })
        } else {
            Err(unknown())
        }
    } else if contract == hnames::governance() {
        let mut params: ChainParams = exec.read_borsh(&keys::params()).unwrap_or_default();
        if view && is("params") {
            Ok(ret(&(
                params.gas_price_sompi,
                params.max_request_gas,
                params.max_block_gas,
            )))
        } else if !view && is("set_gas_price") {
            args::<(u64,)>(bytes).and_then(|(p,)| {
                owner_only(&mut exec, &sender)?;
                if !(MIN_GAS_PRICE_SOMPI..=MAX_GAS_PRICE_SOMPI).contains(&p) {
                    return Err(request_error(
                        RequestErrorCode::GasBudgetOutOfRange,
                        format!("the gas price must be within {MIN_GAS_PRICE_SOMPI}..={MAX_GAS_PRICE_SOMPI} sompi"),
                    ));
                }
                params.gas_price_sompi = p;
                exec.write_borsh(keys::params(), &params);
                Ok(vec![])
            })
        } else if view && is("protocol") {
            let protocol: Option<crate::Protocol> = exec.read_borsh(&keys::protocol());
            Ok(ret(&protocol
                .map(|p| (p.version, borsh::to_vec(&p.vm).unwrap_or_default()))
                .unwrap_or_default()))
        } else if view && is("upgrade") {
            let upgrade: Option<crate::Upgrade> = exec.read_borsh(&keys::protocol_upgrade());
            Ok(ret(&upgrade.map(|u| {
                (
                    u.activation_block,
                    u.protocol.version,
                    borsh::to_vec(&u.protocol.vm).unwrap_or_default(),
                )
            })))
        } else if !view && is("schedule_upgrade") {
            args::<(u64, u32, Vec<u8>)>(bytes).and_then(|(activation_block, version, vm)| {
                owner_only(&mut exec, &sender)?;
                schedule_upgrade(&mut exec, activation_block, version, &vm)
            })
        } else if !view && is("set_limits") {
            args::<(u64, u64)>(bytes).and_then(|(r, b)| {
                owner_only(&mut exec, &sender)?;
                if !(MIN_REQUEST_GAS_LIMIT..=MAX_REQUEST_GAS_LIMIT).contains(&r)
                    || b < r
                    || b > MAX_BLOCK_GAS_LIMIT
                {
                    return Err(request_error(
                        RequestErrorCode::GasBudgetOutOfRange,
                        format!("limits must satisfy {MIN_REQUEST_GAS_LIMIT} <= max_request_gas <= {MAX_REQUEST_GAS_LIMIT} and max_request_gas <= max_block_gas <= {MAX_BLOCK_GAS_LIMIT}"),
                    ));
                }
                params.max_request_gas = r;
                params.max_block_gas = b;
                exec.write_borsh(keys::params(), &params);
                Ok(vec![])
            })
        } else {
            Err(unknown())
        }
    } else {
        Err(request_error(
            RequestErrorCode::UnknownContract,
            format!("{contract} is not a core contract"),
        ))
    };
    exec.native = false;
    let result = match exec.violation.take() {
        Some(violation) => Err(violation),
        None => result,
    };
    (
        exec,
        NativeOutcome {
            result,
            gas_used: base.saturating_add(extra_gas).min(gas_limit),
        },
    )
}

/// Records a protocol upgrade: a later block, the same or a higher version, VM limits within
/// [`crate::protocol::check_vm_bounds`].
fn schedule_upgrade(
    exec: &mut Exec,
    activation_block: u64,
    version: u32,
    vm: &[u8],
) -> Result<Vec<u8>, ReceiptError> {
    let bad = |why: String| request_error(RequestErrorCode::BadArguments, why);
    if activation_block <= exec.block.index {
        return Err(bad(format!(
            "the activation block {activation_block} must be after the current block {}",
            exec.block.index
        )));
    }
    let current: crate::Protocol = exec.read_borsh(&keys::protocol()).unwrap_or_default();
    // The same version changes only limits; a higher one also needs node software that
    // implements it (older nodes stop at the activation block instead of diverging).
    if version < current.version {
        return Err(bad(format!(
            "version {version} is below the current version {}",
            current.version
        )));
    }
    let vm: wisp_vm::VmConfig =
        borsh::from_slice(vm).map_err(|e| bad(format!("vm is not a borsh VmConfig: {e}")))?;
    crate::protocol::check_vm_bounds(&vm).map_err(bad)?;
    exec.write_borsh(
        keys::protocol_upgrade(),
        &crate::Upgrade {
            activation_block,
            protocol: crate::Protocol { version, vm },
        },
    );
    Ok(vec![])
}

/// Validates, compiles and stores `code`; returns its hash and the compiled module itself (not
/// a cache lookup, which another thread may have evicted in between: defect 12).
fn store_blob(
    exec: &mut Exec,
    code: &[u8],
) -> Result<(Hash32, wisp_vm::PreparedModule), ReceiptError> {
    let validated = validate(code, &exec.runtime.vm.config().validation)
        .map_err(|e| request_error(RequestErrorCode::InvalidModule, e.to_string()))?;
    let hash = validated.code_hash();
    let prepared = match exec.runtime.cached(&hash) {
        Some(module) => module,
        None => {
            let module = exec
                .runtime
                .compile(&validated)
                .map_err(|e| request_error(RequestErrorCode::InvalidModule, e.to_string()))?;
            if !exec.simulation {
                exec.runtime.insert(module.clone());
            }
            module
        }
    };
    if exec.read(&keys::blob(&hash)).is_none() {
        exec.write(keys::blob(&hash), Some(code.to_vec()));
    }
    // Storing paid for the compilation: the block's next use of this code does not again.
    exec.mark_loaded(hash);
    Ok((hash, prepared))
}

fn deploy(
    mut exec: Exec,
    sender: AgentId,
    bytes: &[u8],
    gas_limit: u64,
    base: u64,
) -> (Exec, NativeOutcome) {
    let parsed: Result<(String, Vec<u8>, Vec<u8>), _> = args(bytes);
    let (name, code, init_args) = match parsed {
        Ok(v) => v,
        Err(e) => {
            return (
                exec,
                NativeOutcome {
                    result: Err(e),
                    gas_used: base,
                },
            )
        }
    };
    let gas = base + DEPLOY_GAS_PER_BYTE * code.len() as u64;
    if gas > gas_limit {
        return (
            exec,
            NativeOutcome {
                result: Err(crate::exec::vm_error(
                    wisp_core::VmErrorCode::OutOfGas,
                    "out of gas paying for the code size",
                )),
                gas_used: gas_limit,
            },
        );
    }
    let fail = |exec, e| {
        (
            exec,
            NativeOutcome {
                result: Err(e),
                gas_used: gas,
            },
        )
    };
    let hname = match Hname::try_of(&name) {
        Ok(h) => h,
        Err(e) => {
            return fail(
                exec,
                request_error(RequestErrorCode::ContractExists, e.to_string()),
            )
        }
    };
    if Hname::from_hex(&name).is_some() {
        return fail(
            exec,
            request_error(
                RequestErrorCode::ContractExists,
                format!("`{name}` looks like an hname (0x + 8 hex digits); pick a name that does not, so tools never confuse the two"),
            ),
        );
    }
    if is_core(hname) || exec.contract_record(hname).is_some() {
        return fail(
            exec,
            request_error(
                RequestErrorCode::ContractExists,
                format!("a contract named `{name}` ({hname}) already exists; pick another name"),
            ),
        );
    }
    let (code_hash, module) = match store_blob(&mut exec, &code) {
        Ok(stored) => stored,
        Err(e) => return fail(exec, e),
    };
    let record = ContractRecord {
        name,
        code_hash,
        deployer: sender,
        deployed_at_block: exec.block.index,
    };
    exec.write_borsh(keys::contract_record(hname), &record);
    let mut list: Vec<Hname> = exec.read_borsh(&keys::contract_list()).unwrap_or_default();
    list.push(hname);
    exec.write_borsh(keys::contract_list(), &list);
    exec.native = false;
    if let Some(violation) = exec.violation.take() {
        return fail(exec, violation);
    }
    let runtime = exec.runtime.clone();
    let invocation = Invocation {
        contract: hname,
        module,
        caller: sender,
        kind: CallKind::Entry,
        function: Hname::of("init"),
        args: init_args,
        transferred_sompi: 0,
        first_load: false,
    };
    let (exec, outcome) = runtime.vm.invoke_init(exec, invocation, gas_limit - gas);
    let result = outcome.result.map(|_| ret(&hname));
    (
        exec,
        NativeOutcome {
            result,
            gas_used: gas + outcome.gas_used,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every core contract has an interface whose types parse, and every function it declares
    /// is dispatched: called with bytes that are not its arguments, it answers
    /// `bad_arguments` (or runs, for a function without parameters), never
    /// `unknown_entry_point`.
    #[test]
    fn every_declared_core_function_is_dispatched() {
        let genesis = crate::Genesis {
            name: "t".into(),
            owner: AgentId::Address([1; 32]),
            params: ChainParams::default(),
            timestamp_ms: 0,
            protocol: crate::Protocol::default(),
        };
        let chain = crate::Chain::in_memory(&genesis).unwrap();
        for name in CORE_CONTRACTS {
            let contract = Hname::of(name);
            let interface = interface(contract).unwrap();
            assert_eq!(interface.name, name);
            for function in &interface.functions {
                let exec = chain.exec(wisp_vm::BlockContext::default()).unwrap();
                let (_, out) = call(
                    exec,
                    AgentId::Address([2; 32]),
                    contract,
                    function.kind,
                    Hname::of(&function.name),
                    &[0xff; 3],
                    10_000_000,
                );
                if let Err(e) = out.result {
                    assert!(
                        !(e.level == wisp_core::ErrorLevel::Request
                            && e.code == RequestErrorCode::UnknownEntryPoint.code()),
                        "{name}.{} is declared but not dispatched",
                        function.name
                    );
                }
            }
        }
    }
}
