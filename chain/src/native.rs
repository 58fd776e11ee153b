//! The core contracts (IOTA Wasp's root, accounts, blob, blocklog, governance), native Rust
//! with the same call convention as WASM contracts: borsh arguments, borsh return data, entry
//! points and views by hname, receipts with stable codes. Their interfaces are published like
//! any contract's so tools encode arguments from JSON the same way.

use crate::exec::{request_error, ContractRecord, Exec};
use crate::keys;
use crate::ChainParams;
use borsh::{BorshDeserialize, BorshSerialize};
use wisp_core::interface::{ContractInterface, EventDef, Field, Function, Type};
use wisp_core::{AgentId, CallKind, Event, Hash32, Hname, ReceiptError, RequestErrorCode};
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

/// The core contracts' names with their hnames, hashed once per process.
fn core_contracts() -> &'static [(&'static str, Hname); 5] {
    static TABLE: std::sync::LazyLock<[(&str, Hname); 5]> =
        std::sync::LazyLock::new(|| CORE_CONTRACTS.map(|n| (n, Hname::of(n))));
    &TABLE
}

/// The name of core contract `contract`, if it is one.
fn core_name(contract: Hname) -> Option<&'static str> {
    core_contracts()
        .iter()
        .find(|(_, h)| *h == contract)
        .map(|(n, _)| *n)
}

/// Whether `contract` is a core contract.
pub fn is_core(contract: Hname) -> bool {
    core_name(contract).is_some()
}

/// What a core-contract function gets: the execution, the caller, the argument bytes, and
/// room to add gas beyond the base (`blob.store` pays for the code it compiles).
struct NativeCall<'a> {
    exec: &'a mut Exec,
    sender: AgentId,
    bytes: &'a [u8],
    base: u64,
    gas_limit: u64,
    extra_gas: u64,
}

/// How a core-contract function runs.
#[derive(Clone, Copy)]
enum Handler {
    /// Against state through the execution.
    Plain(fn(&mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError>),
    /// `root.deploy`, whose new contract's `init` then runs in the VM ([`NativeStep::Run`]).
    Deploy,
    /// `root.upgrade`, which runs the new code's `migrate` in the VM.
    Upgrade,
    /// `root.deploy_stored`, as [`Handler::Deploy`] from stored code.
    DeployStored,
}

/// Named fields in the core interface tables: (name, type string).
type FieldTable = &'static [(&'static str, &'static str)];

/// One function of a core contract: its interface entry and its handler, declared once.
struct NativeFn {
    contract: &'static str,
    name: &'static str,
    kind: CallKind,
    params: FieldTable,
    returns: Option<&'static str>,
    docs: &'static str,
    handler: Handler,
}

use CallKind::{Entry, View};

/// Every core-contract function. The interface and the dispatch both come from here.
const NATIVE_FUNCTIONS: &[NativeFn] = &[
    NativeFn { contract: "root", name: "deploy", kind: Entry, params: &[("name", "String"), ("code", "Vec<u8>"), ("init_args", "Vec<u8>")], returns: Some("Hname"), docs: "Deploys `code` under `name` and runs its `init` with `init_args` (borsh).", handler: Handler::Deploy },
    NativeFn { contract: "root", name: "deploy_stored", kind: Entry, params: &[("code_hash", "Hash32"), ("name", "String"), ("init_args", "Vec<u8>")], returns: Some("Hname"), docs: "Deploys code already stored (blob.store) under `name` and runs its `init` with `init_args` (borsh): what a factory contract calls (SDK `env::deploy`). The caller is the deployer and the admin.", handler: Handler::DeployStored },
    NativeFn { contract: "root", name: "upgrade", kind: Entry, params: &[("contract", "Hname"), ("code", "Vec<u8>"), ("migrate_args", "Vec<u8>")], returns: Some("Hash32"), docs: "Replaces a contract's code (its admin only); the new code's `migrate` entry point, if it has one, runs with `migrate_args` (borsh) in the same request, and the storage carries over. Emits `Upgraded`; returns the new code hash.", handler: Handler::Upgrade },
    NativeFn { contract: "root", name: "set_admin", kind: Entry, params: &[("contract", "Hname"), ("admin", "Option<AgentId>")], returns: None, docs: "Hands a contract's upgrade right to another agent, or renounces it with none (then the contract is immutable for good); its admin only. Emits `AdminChanged`.", handler: Handler::Plain(root_set_admin) },
    NativeFn { contract: "root", name: "admin", kind: View, params: &[("contract", "Hname")], returns: Some("Option<AgentId>"), docs: "Who may upgrade a contract (none: immutable). The deployer, until handed over or renounced.", handler: Handler::Plain(root_admin) },
    NativeFn { contract: "root", name: "set_owner", kind: Entry, params: &[("owner", "AgentId")], returns: None, docs: "Hands the chain to a new owner (owner only).", handler: Handler::Plain(root_set_owner) },
    NativeFn { contract: "root", name: "contract", kind: View, params: &[("hname", "Hname")], returns: Some("Option<(String, Hash32, AgentId, u64)>"), docs: "Name, code hash, deployer and deploy block of a contract.", handler: Handler::Plain(root_contract) },
    NativeFn { contract: "root", name: "contracts", kind: View, params: &[], returns: Some("Vec<(Hname, String)>"), docs: "Every deployed contract, in deploy order.", handler: Handler::Plain(root_contracts) },
    NativeFn { contract: "root", name: "owner", kind: View, params: &[], returns: Some("AgentId"), docs: "The chain owner.", handler: Handler::Plain(root_owner) },
    NativeFn { contract: "accounts", name: "transfer", kind: Entry, params: &[("to", "AgentId"), ("amount_sompi", "u64")], returns: None, docs: "Moves base tokens from the sender to `to`.", handler: Handler::Plain(accounts_transfer) },
    NativeFn { contract: "accounts", name: "balance", kind: View, params: &[("agent", "AgentId")], returns: Some("u64"), docs: "Base-token balance, sompi.", handler: Handler::Plain(accounts_balance) },
    NativeFn { contract: "accounts", name: "nonce", kind: View, params: &[("agent", "AgentId")], returns: Some("u64"), docs: "Next off-ledger nonce.", handler: Handler::Plain(accounts_nonce) },
    NativeFn { contract: "accounts", name: "total", kind: View, params: &[], returns: Some("u64"), docs: "Sum of all balances and storage deposits (= coins pegged in), sompi.", handler: Handler::Plain(accounts_total) },
    NativeFn { contract: "accounts", name: "storage_deposit", kind: View, params: &[("contract", "Hname")], returns: Some("(u64, u64)"), docs: "Bytes a contract's storage counts for its deposit (keys, values, 40 per entry) and the sompi locked for them, as of the end of the last block.", handler: Handler::Plain(accounts_storage_deposit) },
    NativeFn { contract: "accounts", name: "withdraw", kind: Entry, params: &[("to", "AgentId"), ("amount_sompi", "u64")], returns: Some("u64"), docs: "Withdraws base tokens to a Kaspa address (peg out): debits amount + the withdrawal fee (1,500,000 sompi) from the sender and queues an outbox entry the next anchor transactions pay on L1. At least 1 KAS. Returns the entry's sequence number.", handler: Handler::Plain(accounts_withdraw) },
    NativeFn { contract: "accounts", name: "outbox", kind: View, params: &[("from_seq", "u64"), ("limit", "u32")], returns: Some("Vec<(u64, AgentId, AgentId, u64, u64)>"), docs: "Withdrawals from `from_seq` on (at most `limit`, up to 100): sequence number, who withdrew, the Kaspa address paid, sompi, block.", handler: Handler::Plain(accounts_outbox) },
    NativeFn { contract: "accounts", name: "anchor_fees", kind: View, params: &[], returns: Some("u64"), docs: "Sompi the chain owner has paid towards anchor transactions' L1 fees, in all.", handler: Handler::Plain(accounts_anchor_fees) },
    NativeFn { contract: "accounts", name: "unclaimed", kind: View, params: &[("l1_tx_id", "Hash32")], returns: Some("u64"), docs: "Sompi an L1 transaction deposited with no sender identity and no beneficiary (refundable).", handler: Handler::Plain(accounts_unclaimed) },
    NativeFn { contract: "blob", name: "store", kind: Entry, params: &[("code", "Vec<u8>")], returns: Some("Hash32"), docs: "Stores a validated module; returns its code hash.", handler: Handler::Plain(blob_store) },
    NativeFn { contract: "blob", name: "has", kind: View, params: &[("code_hash", "Hash32")], returns: Some("bool"), docs: "Whether code with this hash is stored.", handler: Handler::Plain(blob_has) },
    NativeFn { contract: "blocklog", name: "request", kind: View, params: &[("request_id", "Hash32")], returns: Some("Option<(u64, u32, Hash32)>"), docs: "Block, position and receipt hash of a processed request.", handler: Handler::Plain(blocklog_request) },
    NativeFn { contract: "blocklog", name: "time_locked", kind: View, params: &[("request_id", "Hash32")], returns: Some("Option<(String, u64, Option<u64>, u64, AgentId)>"), docs: "A time-locked on-ledger request still waiting: its clock (daa_score or timestamp_ms), not_before, expires_at, the block it arrived in, and its sender.", handler: Handler::Plain(blocklog_time_locked) },
    NativeFn { contract: "blocklog", name: "block_hash", kind: View, params: &[("index", "u64")], returns: Some("Option<Hash32>"), docs: "Hash of an earlier block.", handler: Handler::Plain(blocklog_block_hash) },
    NativeFn { contract: "governance", name: "params", kind: View, params: &[], returns: Some("(u64, u64, u64)"), docs: "Gas price (sompi), per-request and per-block gas limits.", handler: Handler::Plain(governance_params) },
    NativeFn { contract: "governance", name: "set_gas_price", kind: Entry, params: &[("gas_price_sompi", "u64")], returns: None, docs: "Sets the gas price (owner only).", handler: Handler::Plain(governance_set_gas_price) },
    NativeFn { contract: "governance", name: "storage_price", kind: View, params: &[], returns: Some("u64"), docs: "Storage deposit per byte of contract state, sompi.", handler: Handler::Plain(governance_storage_price) },
    NativeFn { contract: "governance", name: "set_storage_price", kind: Entry, params: &[("sompi_per_byte", "u64")], returns: None, docs: "Sets the storage deposit per byte (owner only; 0 turns deposits off). Deposits already locked are returned in proportion to the bytes freed.", handler: Handler::Plain(governance_set_storage_price) },
    NativeFn { contract: "governance", name: "set_limits", kind: Entry, params: &[("max_request_gas", "u64"), ("max_block_gas", "u64")], returns: None, docs: "Sets the gas limits (owner only).", handler: Handler::Plain(governance_set_limits) },
    NativeFn { contract: "governance", name: "protocol", kind: View, params: &[], returns: Some("(u32, Vec<u8>)"), docs: "The protocol version in force and its VM limits (borsh VmConfig).", handler: Handler::Plain(governance_protocol) },
    NativeFn { contract: "governance", name: "upgrade", kind: View, params: &[], returns: Some("Option<(u64, u32, Vec<u8>)>"), docs: "The scheduled protocol upgrade: activation block, version, VM limits.", handler: Handler::Plain(governance_upgrade) },
    NativeFn { contract: "governance", name: "rotate_committee", kind: Entry, params: &[("anchor_key", "Hash32"), ("certificate_key", "Vec<u8>"), ("namespace", "Vec<u8>")], returns: Some("(u64, u64)"), docs: "Moves a committee chain to a new committee (owner only): its anchor key (x-only secp256k1, the FROST group key), certificate key and certificate namespace (`wisp committee status` prints all three). The current committee makes blocks up to this block + 32 and stops; the new one continues from the next, and the anchor successor committing that last block names the new anchor key. One rotation at a time. Emits `CommitteeRotated`; returns the new epoch and the outgoing committee's last block.", handler: Handler::Plain(governance_rotate_committee) },
    NativeFn { contract: "governance", name: "committee", kind: View, params: &[], returns: Some("Option<(u64, u64, Hash32, Vec<u8>, Vec<u8>)>"), docs: "The newest committee rotation: epoch, the outgoing committee's last block, anchor key, certificate key, namespace (none: the chain's first committee runs it).", handler: Handler::Plain(governance_committee) },
    NativeFn { contract: "governance", name: "schedule_upgrade", kind: Entry, params: &[("activation_block", "u64"), ("version", "u32"), ("vm", "Vec<u8>")], returns: None, docs: "Schedules a protocol upgrade at a future block (owner only); replaces any scheduled one.", handler: Handler::Plain(governance_schedule_upgrade) },
];

/// Every event a core contract emits: contract, topic, fields in order (event data is borsh of
/// them).
const NATIVE_EVENTS: &[(&str, &str, FieldTable)] = &[
    (
        "accounts",
        WITHDRAWAL_EVENT,
        &[("seq", "u64"), ("to", "AgentId"), ("amount_sompi", "u64")],
    ),
    (
        "root",
        UPGRADED_EVENT,
        &[
            ("contract", "Hname"),
            ("old_code_hash", "Hash32"),
            ("new_code_hash", "Hash32"),
        ],
    ),
    (
        "governance",
        COMMITTEE_ROTATED_EVENT,
        &[
            ("epoch", "u64"),
            ("last_block", "u64"),
            ("anchor_key", "Hash32"),
        ],
    ),
    (
        "root",
        ADMIN_CHANGED_EVENT,
        &[("contract", "Hname"), ("admin", "Option<AgentId>")],
    ),
];

/// Topic of the event `root` emits when a contract's code is replaced (`root.upgrade`): fields
/// `contract`, `old_code_hash`, `new_code_hash`.
pub const UPGRADED_EVENT: &str = "Upgraded";

/// Topic of the event `root` emits when a contract's admin changes (`root.set_admin`): fields
/// `contract` and `admin` (none: renounced).
pub const ADMIN_CHANGED_EVENT: &str = "AdminChanged";

/// Topic of the event `governance` emits when the chain owner rotates the committee
/// (`governance.rotate_committee`): fields `epoch`, `last_block` (the outgoing committee's
/// last block) and `anchor_key`.
pub const COMMITTEE_ROTATED_EVENT: &str = "CommitteeRotated";

/// Topic of the event `accounts` emits for every withdrawal (`accounts.withdraw`, a contract's
/// `withdraw_to_l1`): fields `seq` (outbox position), `to` (the Kaspa address paid) and
/// `amount_sompi`.
pub const WITHDRAWAL_EVENT: &str = "Withdrawal";

/// A type of the core interface tables. Type strings are constants of the tables; a unit test
/// builds every core interface, so none can silently become another type.
fn type_of(t: &str) -> Type {
    #[allow(clippy::expect_used)]
    Type::parse(t).expect("core interface types parse (unit test)")
}

/// Named fields of the core interface tables.
fn fields_of(fields: &[(&str, &str)]) -> Vec<Field> {
    fields
        .iter()
        .map(|(name, t)| Field {
            name: (*name).into(),
            ty: type_of(t),
        })
        .collect()
}

/// A core-contract function of the interface.
fn function_of(n: &NativeFn) -> Function {
    Function {
        name: n.name.into(),
        kind: n.kind,
        params: fields_of(n.params),
        returns: n.returns.map(type_of),
        docs: n.docs.into(),
    }
}

/// The interface of a core contract, from [`NATIVE_FUNCTIONS`] and [`NATIVE_EVENTS`].
pub fn interface(contract: Hname) -> Option<ContractInterface> {
    let name = core_name(contract)?;
    Some(ContractInterface {
        name: name.into(),
        functions: NATIVE_FUNCTIONS
            .iter()
            .filter(|f| f.contract == name)
            .map(function_of)
            .collect(),
        events: NATIVE_EVENTS
            .iter()
            .filter(|(contract, _, _)| *contract == name)
            .map(|(_, topic, fields)| EventDef {
                name: (*topic).into(),
                fields: fields_of(fields),
                docs: String::new(),
                indexed: 0,
            })
            .collect(),
        errors: vec![],
    })
}

fn root_set_owner(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (owner,) = args::<(AgentId,)>(c.bytes)?;
    owner_only(c.exec, &c.sender)?;
    // The owner receives every fee: it must be able to hold them.
    c.exec.check_recipient(&owner)?;
    c.exec.write_borsh(keys::chain_owner(), &owner);
    Ok(vec![])
}

/// `contract`'s record and admin; `unknown_contract` unless it is a deployed WASM contract.
fn admin_of(
    exec: &mut Exec,
    contract: Hname,
) -> Result<(ContractRecord, Option<AgentId>), ReceiptError> {
    let record = exec
        .contract_record(contract)
        .filter(|_| !is_core(contract))
        .ok_or_else(|| {
            request_error(
                RequestErrorCode::UnknownContract,
                format!("{contract} is not a deployed contract"),
            )
        })?;
    Ok((record, exec.read_borsh(&keys::contract_admin(contract))))
}

/// `contract`'s record, if `sender` is its admin; else `unauthorized`.
fn admin_only(
    exec: &mut Exec,
    contract: Hname,
    sender: &AgentId,
) -> Result<ContractRecord, ReceiptError> {
    match admin_of(exec, contract)? {
        (record, Some(admin)) if admin == *sender => Ok(record),
        (_, Some(admin)) => Err(request_error(
            RequestErrorCode::Unauthorized,
            format!("only contract {contract}'s admin, {admin}, may do this"),
        )),
        (_, None) => Err(request_error(
            RequestErrorCode::Unauthorized,
            format!("contract {contract} has no admin: it is immutable"),
        )),
    }
}

fn root_set_admin(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (contract, admin) = args::<(Hname, Option<AgentId>)>(c.bytes)?;
    admin_only(c.exec, contract, &c.sender)?;
    match &admin {
        Some(a) => c.exec.write_borsh(keys::contract_admin(contract), a),
        None => c.exec.write(keys::contract_admin(contract), None),
    }
    c.exec.events.push(Event {
        contract: keys::hnames::root(),
        topic: ADMIN_CHANGED_EVENT.into(),
        data: ret(&(contract, admin)),
    });
    Ok(vec![])
}

fn root_admin(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (contract,) = args::<(Hname,)>(c.bytes)?;
    Ok(ret(&admin_of(c.exec, contract)?.1))
}

fn root_contract(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (h,) = args::<(Hname,)>(c.bytes)?;
    let r = c
        .exec
        .contract_record(h)
        .map(|r| (r.name, r.code_hash, r.deployer, r.deployed_at_block));
    Ok(ret(&r))
}

fn root_contracts(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let list: Vec<Hname> = c
        .exec
        .read_borsh(&keys::contract_list())
        .unwrap_or_default();
    let named: Vec<(Hname, String)> = list
        .into_iter()
        .map(|h| {
            let name = c
                .exec
                .contract_record(h)
                .map(|r| r.name)
                .unwrap_or_default();
            (h, name)
        })
        .collect();
    Ok(ret(&named))
}

fn root_owner(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let owner: Option<AgentId> = c.exec.read_borsh(&keys::chain_owner());
    owner
        .map(|o| ret(&o))
        .ok_or_else(|| request_error(RequestErrorCode::UnknownContract, "the chain has no owner"))
}

fn accounts_transfer(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (to, amount) = args::<(AgentId, u64)>(c.bytes)?;
    c.exec.move_balance(&c.sender, &to, amount)?;
    Ok(vec![])
}

fn accounts_balance(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (a,) = args::<(AgentId,)>(c.bytes)?;
    Ok(ret(&c.exec.balance_of(&a)))
}

fn accounts_nonce(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (a,) = args::<(AgentId,)>(c.bytes)?;
    Ok(ret(&c.exec.read_u64(&keys::nonce(&a))))
}

fn accounts_withdraw(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (to, amount) = args::<(AgentId, u64)>(c.bytes)?;
    let AgentId::Address(key) = to else {
        return Err(request_error(
            RequestErrorCode::BadArguments,
            "a withdrawal pays a Kaspa address (pay-to-public-key), not a contract",
        ));
    };
    let sender = c.sender;
    let seq = c.exec.withdraw(&sender, key, amount)?;
    Ok(ret(&seq))
}

/// Gas per outbox entry `accounts.outbox` reads (a state read, as `storage_get`'s base).
const OUTBOX_ENTRY_GAS: u64 = 2_000;

fn accounts_outbox(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (from, limit) = args::<(u64, u32)>(c.bytes)?;
    let next = c.exec.read_u64(&keys::outbox_next());
    let end = next.min(from.saturating_add(u64::from(limit.min(100))));
    // Each entry read is paid for before it is read.
    c.extra_gas = OUTBOX_ENTRY_GAS.saturating_mul(end.saturating_sub(from));
    if c.base.saturating_add(c.extra_gas) > c.gas_limit {
        return Err(crate::exec::vm_error(
            wisp_core::VmErrorCode::OutOfGas,
            "out of gas reading the outbox",
        ));
    }
    let mut out: Vec<(u64, AgentId, AgentId, u64, u64)> = Vec::new();
    for seq in from..end {
        if let Some(e) = c.exec.read_borsh::<crate::OutboxEntry>(&keys::outbox(seq)) {
            out.push((
                e.seq,
                e.from,
                AgentId::Address(e.to),
                e.amount_sompi,
                e.block_index,
            ));
        }
    }
    Ok(ret(&out))
}

fn accounts_anchor_fees(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    Ok(ret(&c.exec.read_u64(&keys::anchor_fees())))
}

fn accounts_total(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    Ok(ret(&c.exec.read_u64(&keys::total_balance())))
}

fn accounts_storage_deposit(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (contract,) = args::<(Hname,)>(c.bytes)?;
    let record: (u64, u64) = c
        .exec
        .read_borsh(&keys::storage_deposit(contract))
        .unwrap_or_default();
    Ok(ret(&record))
}

fn accounts_unclaimed(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (tx,) = args::<(Hash32,)>(c.bytes)?;
    Ok(ret(&c.exec.read_u64(&keys::unclaimed(&tx))))
}

fn blob_store(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (code,) = args::<(Vec<u8>,)>(c.bytes)?;
    // Validation and compilation cost what a deploy's do (defect 5: it was 2 gas/byte).
    c.extra_gas = DEPLOY_GAS_PER_BYTE.saturating_mul(code.len() as u64);
    if c.base.saturating_add(c.extra_gas) > c.gas_limit {
        return Err(crate::exec::vm_error(
            wisp_core::VmErrorCode::OutOfGas,
            "out of gas paying for the code size",
        ));
    }
    store_blob(c.exec, &code).map(|(h, _)| ret(&h))
}

fn blob_has(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (h,) = args::<(Hash32,)>(c.bytes)?;
    Ok(ret(&c.exec.read(&keys::blob(&h)).is_some()))
}

fn blocklog_request(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (id,) = args::<(Hash32,)>(c.bytes)?;
    let r: Option<(u64, u32, Hash32)> = c.exec.read_borsh(&keys::request(&id));
    Ok(ret(&r))
}

fn blocklog_time_locked(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (id,) = args::<(Hash32,)>(c.bytes)?;
    let record: Option<crate::timelock::TimeLocked> = c.exec.read_borsh(&keys::time_locked(&id));
    let waiting = record.and_then(|r| {
        let crate::OnLedgerBody::Call(body) = &r.request.body else {
            return None;
        };
        let lock = body.time_lock?;
        let due = lock.not_before?;
        Some((
            due.clock().to_string(),
            due.value(),
            lock.expires_at.map(|t| t.value()),
            r.arrived_in_block,
            r.request.sender,
        ))
    });
    Ok(ret(&waiting))
}

fn blocklog_block_hash(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (i,) = args::<(u64,)>(c.bytes)?;
    let h: Option<Hash32> = c.exec.read_borsh(&keys::block_hash(i));
    Ok(ret(&h))
}

fn chain_params(exec: &mut Exec) -> ChainParams {
    exec.read_borsh(&keys::params()).unwrap_or_default()
}

fn governance_params(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let p = chain_params(c.exec);
    Ok(ret(&(
        p.gas_price_sompi,
        p.max_request_gas,
        p.max_block_gas,
    )))
}

fn governance_set_gas_price(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (price,) = args::<(u64,)>(c.bytes)?;
    owner_only(c.exec, &c.sender)?;
    if !(MIN_GAS_PRICE_SOMPI..=MAX_GAS_PRICE_SOMPI).contains(&price) {
        return Err(request_error(
            RequestErrorCode::GasBudgetOutOfRange,
            format!(
                "the gas price must be within {MIN_GAS_PRICE_SOMPI}..={MAX_GAS_PRICE_SOMPI} sompi"
            ),
        ));
    }
    let mut params = chain_params(c.exec);
    params.gas_price_sompi = price;
    c.exec.write_borsh(keys::params(), &params);
    Ok(vec![])
}

fn governance_storage_price(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    Ok(ret(&chain_params(c.exec).storage_deposit_sompi_per_byte))
}

fn governance_set_storage_price(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (price,) = args::<(u64,)>(c.bytes)?;
    owner_only(c.exec, &c.sender)?;
    if price > crate::MAX_STORAGE_DEPOSIT_SOMPI_PER_BYTE {
        return Err(request_error(
            RequestErrorCode::Malformed,
            format!(
                "the storage deposit must be at most {} sompi per byte",
                crate::MAX_STORAGE_DEPOSIT_SOMPI_PER_BYTE
            ),
        ));
    }
    let mut params = chain_params(c.exec);
    params.storage_deposit_sompi_per_byte = price;
    c.exec.write_borsh(keys::params(), &params);
    Ok(vec![])
}

fn governance_set_limits(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (r, b) = args::<(u64, u64)>(c.bytes)?;
    owner_only(c.exec, &c.sender)?;
    if !(MIN_REQUEST_GAS_LIMIT..=MAX_REQUEST_GAS_LIMIT).contains(&r)
        || b < r
        || b > MAX_BLOCK_GAS_LIMIT
    {
        return Err(request_error(
            RequestErrorCode::GasBudgetOutOfRange,
            format!("limits must satisfy {MIN_REQUEST_GAS_LIMIT} <= max_request_gas <= {MAX_REQUEST_GAS_LIMIT} and max_request_gas <= max_block_gas <= {MAX_BLOCK_GAS_LIMIT}"),
        ));
    }
    let mut params = chain_params(c.exec);
    params.max_request_gas = r;
    params.max_block_gas = b;
    c.exec.write_borsh(keys::params(), &params);
    Ok(vec![])
}

fn governance_protocol(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let protocol: Option<crate::Protocol> = c.exec.read_borsh(&keys::protocol());
    Ok(ret(&protocol
        .map(|p| (p.version, borsh::to_vec(&p.vm).unwrap_or_default()))
        .unwrap_or_default()))
}

fn governance_upgrade(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let upgrade: Option<crate::Upgrade> = c.exec.read_borsh(&keys::protocol_upgrade());
    Ok(ret(&upgrade.map(|u| {
        (
            u.activation_block,
            u.protocol.version,
            borsh::to_vec(&u.protocol.vm).unwrap_or_default(),
        )
    })))
}

fn governance_schedule_upgrade(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let (activation_block, version, vm) = args::<(u64, u32, Vec<u8>)>(c.bytes)?;
    owner_only(c.exec, &c.sender)?;
    schedule_upgrade(c.exec, activation_block, version, &vm)
}

fn governance_rotate_committee(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    use crate::committee::{MAX_CERTIFICATE_KEY_BYTES, MAX_NAMESPACE_BYTES};
    let (anchor_key, certificate_key, namespace) = args::<(Hash32, Vec<u8>, Vec<u8>)>(c.bytes)?;
    owner_only(c.exec, &c.sender)?;
    let bad = |why: String| request_error(RequestErrorCode::BadArguments, why);
    // A key no one can sign for would lock the anchor, and the chain's coins, for good.
    if secp256k1::XOnlyPublicKey::from_slice(&anchor_key.0).is_err() {
        return Err(bad(format!(
            "anchor_key {anchor_key} is not an x-only secp256k1 public key"
        )));
    }
    if certificate_key.is_empty() || certificate_key.len() > MAX_CERTIFICATE_KEY_BYTES {
        return Err(bad(format!(
            "certificate_key must be 1 to {MAX_CERTIFICATE_KEY_BYTES} bytes (got {})",
            certificate_key.len()
        )));
    }
    if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_BYTES {
        return Err(bad(format!(
            "namespace must be 1 to {MAX_NAMESPACE_BYTES} bytes (got {})",
            namespace.len()
        )));
    }
    let current = c.exec.read_u64(&keys::committee_epoch());
    if current > 0 {
        let previous: Option<crate::CommitteeRotation> =
            c.exec.read_borsh(&keys::committee_rotation(current));
        if let Some(previous) = previous.filter(|p| p.last_block >= c.exec.block.index) {
            return Err(request_error(
                RequestErrorCode::Unauthorized,
                format!(
                    "the rotation to epoch {current} is under way until block {}; rotate again after it",
                    previous.last_block
                ),
            ));
        }
    }
    let rotation = crate::CommitteeRotation {
        epoch: current + 1,
        last_block: c.exec.block.index + crate::HANDOVER_DELAY,
        anchor_key,
        certificate_key,
        namespace,
    };
    c.exec.write_u64(keys::committee_epoch(), rotation.epoch);
    c.exec
        .write_borsh(keys::committee_rotation(rotation.epoch), &rotation);
    c.exec.events.push(Event {
        contract: keys::hnames::governance(),
        topic: COMMITTEE_ROTATED_EVENT.into(),
        data: ret(&(rotation.epoch, rotation.last_block, anchor_key)),
    });
    Ok(ret(&(rotation.epoch, rotation.last_block)))
}

fn governance_committee(c: &mut NativeCall<'_>) -> Result<Vec<u8>, ReceiptError> {
    let epoch = c.exec.read_u64(&keys::committee_epoch());
    let rotation: Option<crate::CommitteeRotation> = match epoch {
        0 => None,
        e => c.exec.read_borsh(&keys::committee_rotation(e)),
    };
    Ok(ret(&rotation.map(|r| {
        (
            r.epoch,
            r.last_block,
            r.anchor_key,
            r.certificate_key,
            r.namespace,
        )
    })))
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

/// What a core-contract call does next ([`call_step`]).
pub(crate) enum NativeStep {
    /// Finished.
    Done(NativeOutcome),
    /// The native part of a deploy or an upgrade is done (`gas_used`); `invocation` (the new
    /// code's `init` or `migrate`) runs next in the VM, and the call returns `ret` if it
    /// succeeds.
    Run {
        gas_used: u64,
        invocation: Invocation,
        entry: wisp_vm::SpecialEntry,
        ret: Vec<u8>,
    },
}

/// Calls core contract `contract` as a request's top-level call: [`call_step`], then the VM
/// part of a deploy or an upgrade.
pub(crate) fn call(
    mut exec: Exec,
    sender: AgentId,
    contract: Hname,
    kind: CallKind,
    function: Hname,
    bytes: &[u8],
    gas_limit: u64,
) -> (Exec, NativeOutcome) {
    match call_step(
        &mut exec, sender, contract, kind, function, bytes, gas_limit,
    ) {
        NativeStep::Done(outcome) => (exec, outcome),
        NativeStep::Run {
            gas_used,
            invocation,
            entry,
            ret,
        } => {
            let runtime = exec.runtime.clone();
            let left = gas_limit.saturating_sub(gas_used);
            let (exec, outcome) = match entry {
                wisp_vm::SpecialEntry::Init => runtime.vm.invoke_init(exec, invocation, left),
                wisp_vm::SpecialEntry::Migrate => runtime.vm.invoke_migrate(exec, invocation, left),
            };
            (
                exec,
                NativeOutcome {
                    result: outcome.result.map(|_| ret),
                    gas_used: gas_used + outcome.gas_used,
                },
            )
        }
    }
}

/// Runs the native part of a call of core contract `contract` by `sender` (a request's sender
/// or a calling contract) with at most `gas_limit` gas.
pub(crate) fn call_step(
    exec: &mut Exec,
    sender: AgentId,
    contract: Hname,
    kind: CallKind,
    function: Hname,
    bytes: &[u8],
    gas_limit: u64,
) -> NativeStep {
    let done = |result, gas_used| NativeStep::Done(NativeOutcome { result, gas_used });
    let base = NATIVE_CALL_GAS + NATIVE_GAS_PER_BYTE * bytes.len() as u64;
    if base > gas_limit {
        return done(
            Err(crate::exec::vm_error(
                wisp_core::VmErrorCode::OutOfGas,
                "out of gas",
            )),
            gas_limit,
        );
    }
    let Some(name) = core_name(contract) else {
        let e = request_error(
            RequestErrorCode::UnknownContract,
            format!("{contract} is not a core contract"),
        );
        return done(Err(e), base);
    };
    static FUNCTION_HNAMES: std::sync::LazyLock<Vec<Hname>> =
        std::sync::LazyLock::new(|| NATIVE_FUNCTIONS.iter().map(|f| Hname::of(f.name)).collect());
    let Some(found) = NATIVE_FUNCTIONS
        .iter()
        .zip(FUNCTION_HNAMES.iter())
        .find(|(f, h)| f.contract == name && f.kind == kind && **h == function)
        .map(|(f, _)| f)
    else {
        let e = request_error(
            RequestErrorCode::UnknownEntryPoint,
            format!("core contract {name} has no such function {function}"),
        );
        return done(Err(e), base);
    };
    // Under an access list, what the core contract reads and writes must be declared.
    exec.native = exec.access.is_some();
    exec.violation = None;
    let handler = match found.handler {
        Handler::Deploy => return deploy(exec, sender, bytes, gas_limit, base),
        Handler::Upgrade => return upgrade(exec, sender, bytes, gas_limit, base),
        Handler::DeployStored => return deploy_stored(exec, sender, bytes, gas_limit, base),
        Handler::Plain(handler) => handler,
    };
    let mut ctx = NativeCall {
        exec,
        sender,
        bytes,
        base,
        gas_limit,
        extra_gas: 0,
    };
    let result = handler(&mut ctx);
    let extra_gas = ctx.extra_gas;
    exec.native = false;
    let result = match exec.violation.take() {
        Some(violation) => Err(violation),
        None => result,
    };
    done(result, base.saturating_add(extra_gas).min(gas_limit))
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

/// Validates and compiles `code` unless this runtime holds it compiled, then stores it; returns
/// its hash and the compiled module itself (not a cache lookup, which another thread may have
/// evicted in between: defect 12).
fn store_blob(
    exec: &mut Exec,
    code: &[u8],
) -> Result<(Hash32, wisp_vm::PreparedModule), ReceiptError> {
    // A runtime serves one VM configuration, so a module in its cache passed these validation
    // limits: every node answers the same whether or not it has the module cached, and a
    // deploy of stored code whose compilation the block already paid does no unpaid work.
    let hash = wisp_core::blake2b_256(code);
    let prepared = match exec.runtime.cached(&hash) {
        Some(module) => module,
        None => {
            let validated = validate(code, &exec.runtime.vm.config().validation)
                .map_err(|e| request_error(RequestErrorCode::InvalidModule, e.to_string()))?;
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

fn deploy(exec: &mut Exec, sender: AgentId, bytes: &[u8], gas_limit: u64, base: u64) -> NativeStep {
    let done = |result, gas_used| NativeStep::Done(NativeOutcome { result, gas_used });
    let parsed: Result<(String, Vec<u8>, Vec<u8>), _> = args(bytes);
    let (name, code, init_args) = match parsed {
        Ok(v) => v,
        Err(e) => return done(Err(e), base),
    };
    let Some(gas) = code_gas(base, DEPLOY_GAS_PER_BYTE, code.len(), gas_limit) else {
        return out_of_code_gas(gas_limit);
    };
    install(exec, sender, name, &code, init_args, gas)
}

/// `root.deploy_stored`: [`deploy`] of code already stored (`blob.store`), by its hash; pays
/// the compilation (per code byte) unless the block has used that code already.
fn deploy_stored(
    exec: &mut Exec,
    sender: AgentId,
    bytes: &[u8],
    gas_limit: u64,
    base: u64,
) -> NativeStep {
    let done = |result, gas_used| NativeStep::Done(NativeOutcome { result, gas_used });
    let parsed: Result<(Hash32, String, Vec<u8>), _> = args(bytes);
    let (code_hash, name, init_args) = match parsed {
        Ok(v) => v,
        Err(e) => return done(Err(e), base),
    };
    let Some(code) = exec.read(&keys::blob(&code_hash)) else {
        let e = request_error(
            RequestErrorCode::UnknownContract,
            format!("no code with hash {code_hash} is stored; store it first with blob.store"),
        );
        return done(Err(e), base);
    };
    let per_byte = if exec.code_loaded(&code_hash) {
        0
    } else {
        wisp_vm::gas::COMPILE_GAS_PER_BYTE
    };
    let Some(gas) = code_gas(base, per_byte, code.len(), gas_limit) else {
        return out_of_code_gas(gas_limit);
    };
    install(exec, sender, name, &code, init_args, gas)
}

/// The part of [`deploy`] and [`deploy_stored`] once their `gas` is known ([`code_gas`]):
/// checks the name, stores and compiles `code`, registers the contract and hands its `init` to
/// the VM.
fn install(
    exec: &mut Exec,
    sender: AgentId,
    name: String,
    code: &[u8],
    init_args: Vec<u8>,
    gas: u64,
) -> NativeStep {
    let done = |result, gas_used| NativeStep::Done(NativeOutcome { result, gas_used });
    let hname = match check_new_name(exec, &name) {
        Ok(h) => h,
        Err(e) => return done(Err(e), gas),
    };
    match store_blob(exec, code) {
        Ok(stored) => finish_deploy(exec, sender, (hname, name), stored, init_args, gas),
        Err(e) => done(Err(e), gas),
    }
}

/// `base` plus `per_byte` × `bytes`: the gas of a deploy or an upgrade before its VM part;
/// `None` if it exceeds `gas_limit` ([`out_of_code_gas`]).
fn code_gas(base: u64, per_byte: u64, bytes: usize, gas_limit: u64) -> Option<u64> {
    Some(base.saturating_add(per_byte.saturating_mul(bytes as u64))).filter(|g| *g <= gas_limit)
}

/// The outcome of a deploy or an upgrade whose [`code_gas`] exceeds `gas_limit`.
fn out_of_code_gas(gas_limit: u64) -> NativeStep {
    NativeStep::Done(NativeOutcome {
        result: Err(crate::exec::vm_error(
            wisp_core::VmErrorCode::OutOfGas,
            "out of gas paying for the code (size and compilation)",
        )),
        gas_used: gas_limit,
    })
}

/// Fails unless `name` can name a new contract: a valid name, not hname-like, not taken.
fn check_new_name(exec: &mut Exec, name: &str) -> Result<Hname, ReceiptError> {
    let hname = Hname::try_of(name)
        .map_err(|e| request_error(RequestErrorCode::ContractExists, e.to_string()))?;
    if Hname::from_hex(name).is_some() {
        return Err(request_error(
            RequestErrorCode::ContractExists,
            format!("`{name}` looks like an hname (0x + 8 hex digits); pick a name that does not, so tools never confuse the two"),
        ));
    }
    if is_core(hname) || exec.contract_record(hname).is_some() {
        return Err(request_error(
            RequestErrorCode::ContractExists,
            format!("a contract named `{name}` ({hname}) already exists; pick another name"),
        ));
    }
    Ok(hname)
}

/// Registers contract `name` (checked free by [`check_new_name`]) with stored code
/// `(code_hash, module)`, `sender` its deployer and admin, then hands its `init` to the VM.
fn finish_deploy(
    exec: &mut Exec,
    sender: AgentId,
    (hname, name): (Hname, String),
    (code_hash, module): (Hash32, wisp_vm::PreparedModule),
    init_args: Vec<u8>,
    gas: u64,
) -> NativeStep {
    let fail = |e| {
        NativeStep::Done(NativeOutcome {
            result: Err(e),
            gas_used: gas,
        })
    };
    let record = ContractRecord {
        name,
        code_hash,
        deployer: sender,
        deployed_at_block: exec.block.index,
    };
    exec.write_borsh(keys::contract_record(hname), &record);
    // The deployer may upgrade it until it hands the right over or renounces it.
    exec.write_borsh(keys::contract_admin(hname), &sender);
    let mut list: Vec<Hname> = exec.read_borsh(&keys::contract_list()).unwrap_or_default();
    list.push(hname);
    exec.write_borsh(keys::contract_list(), &list);
    exec.native = false;
    if let Some(violation) = exec.violation.take() {
        return fail(violation);
    }
    NativeStep::Run {
        gas_used: gas,
        invocation: Invocation {
            contract: hname,
            module,
            caller: sender,
            kind: CallKind::Entry,
            function: Hname::of("init"),
            args: init_args,
            transferred_sompi: 0,
            first_load: false,
        },
        entry: wisp_vm::SpecialEntry::Init,
        ret: ret(&hname),
    }
}

/// `root.upgrade`: replaces `contract`'s code (its admin only), then runs the new code's
/// `migrate`, if it exports one, with `migrate_args`; a failing `migrate` fails the request and
/// leaves the old code in place. Gas as deploy: base, per code byte, then the migration.
fn upgrade(
    exec: &mut Exec,
    sender: AgentId,
    bytes: &[u8],
    gas_limit: u64,
    base: u64,
) -> NativeStep {
    let done = |result, gas_used| NativeStep::Done(NativeOutcome { result, gas_used });
    let parsed: Result<(Hname, Vec<u8>, Vec<u8>), _> = args(bytes);
    let (contract, code, migrate_args) = match parsed {
        Ok(v) => v,
        Err(e) => return done(Err(e), base),
    };
    let Some(gas) = code_gas(base, DEPLOY_GAS_PER_BYTE, code.len(), gas_limit) else {
        return out_of_code_gas(gas_limit);
    };
    let fail = |_: &mut Exec, e| done(Err(e), gas);
    let mut record = match admin_only(exec, contract, &sender) {
        Ok(record) => record,
        Err(e) => return fail(exec, e),
    };
    let (code_hash, module) = match store_blob(exec, &code) {
        Ok(stored) => stored,
        Err(e) => return fail(exec, e),
    };
    let migrate = Hname::of("migrate");
    let migrates = module.has_function(CallKind::Entry, migrate);
    if !migrates && !migrate_args.is_empty() {
        let e = request_error(
            RequestErrorCode::BadArguments,
            "migrate_args were given, but the new code has no `migrate` entry point",
        );
        return fail(exec, e);
    }
    let old_code_hash = record.code_hash;
    record.code_hash = code_hash;
    exec.write_borsh(keys::contract_record(contract), &record);
    exec.events.push(Event {
        contract: keys::hnames::root(),
        topic: UPGRADED_EVENT.into(),
        data: ret(&(contract, old_code_hash, code_hash)),
    });
    exec.native = false;
    if let Some(violation) = exec.violation.take() {
        return fail(exec, violation);
    }
    if !migrates {
        return done(Ok(ret(&code_hash)), gas);
    }
    NativeStep::Run {
        gas_used: gas,
        invocation: Invocation {
            contract,
            module,
            caller: sender,
            kind: CallKind::Entry,
            function: migrate,
            args: migrate_args,
            transferred_sompi: 0,
            first_load: false,
        },
        entry: wisp_vm::SpecialEntry::Migrate,
        ret: ret(&code_hash),
    }
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
            anchor: None,
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
