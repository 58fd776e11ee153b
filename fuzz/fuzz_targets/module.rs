//! Guards the VM's handling of contract modules, which anyone may deploy: `wisp_vm::validate`
//! (the deploy-time policy check), compilation (`Vm::prepare`), instantiation and calls
//! (`Vm::invoke_init` for `init`, then `Vm::invoke` for every `ep:`/`view:` export) with a small
//! gas budget against an in-memory host.
//!
//! Two modes, chosen by the first input byte:
//! - even: the rest is fed to `validate` as raw bytes (malformed binaries, hostile sections);
//! - odd: the rest drives `wasm-smith` to generate a module constrained to Wisp's feature set
//!   (no floats, SIMD, threads, exceptions, GC, memory64, tail calls; imports only from the Wisp
//!   ABI with their exact signatures; exports `ep:init`, `ep:run`, `view:get` and `memory`), so
//!   most generated modules pass validation and actually run.
//!
//! Nothing may panic, and gas must be deterministic: every invocation runs twice from the same
//! host state and must give the same `Outcome` (result and gas used) and the same host state.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use wasmparser::{ExternalKind, Parser, Payload};
use wisp_core::abi::{HOST_FUNCTIONS, IMPORT_MODULE};
use wisp_core::{
    AgentId, CallKind, ChainId, ErrorLevel, Event, Hname, ReceiptError, RequestErrorCode,
    VmErrorCode,
};
use wisp_vm::{
    validate, BlockContext, Checkpoint, Host, Invocation, PreparedModule, ValidationLimits, Vm,
    VmConfig,
};

/// Gas for each invocation: small, so one execution stays fast.
const FUEL: u64 = 1_000_000;
/// Most exports called per module.
const MAX_CALLS: usize = 8;
/// The contract's hname; cross-contract calls to any hname load the same module.
const SELF: Hname = Hname(0x5e1f_0001);

/// The state a host keeps; snapshots of it are the checkpoints.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
struct State {
    storage: BTreeMap<(Hname, Vec<u8>), Vec<u8>>,
    balances: BTreeMap<AgentId, u64>,
    events: Vec<Event>,
}

/// A minimal in-memory host: storage and balances in maps, checkpoints as snapshots.
#[derive(Clone)]
struct FuzzHost {
    state: State,
    snapshots: Vec<State>,
    module: Option<PreparedModule>,
}

impl FuzzHost {
    fn held(&self, agent: &AgentId) -> u64 {
        self.state.balances.get(agent).copied().unwrap_or(0)
    }
}

impl Host for FuzzHost {
    fn chain_id(&self) -> ChainId {
        ChainId([7; 32])
    }
    fn block(&self) -> BlockContext {
        BlockContext {
            index: 42,
            timestamp_ms: 1_700_000_000_000,
            random_seed: Some([9; 32]),
        }
    }
    fn random(&mut self) -> Result<[u8; 32], ReceiptError> {
        Ok([9; 32])
    }
    fn storage_get(
        &mut self,
        contract: Hname,
        key: &[u8],
        value: &mut Vec<u8>,
    ) -> Result<bool, ReceiptError> {
        Ok(match self.state.storage.get(&(contract, key.to_vec())) {
            Some(v) => {
                value.clear();
                value.extend_from_slice(v);
                true
            }
            None => false,
        })
    }
    fn storage_set(
        &mut self,
        contract: Hname,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<(), ReceiptError> {
        let key = (contract, key.to_vec());
        match value {
            Some(v) => self.state.storage.insert(key, v),
            None => self.state.storage.remove(&key),
        };
        Ok(())
    }
    fn balance(&mut self, agent: &AgentId) -> Result<u64, ReceiptError> {
        Ok(self.held(agent))
    }
    fn withdraw(
        &mut self,
        from: &AgentId,
        _to: [u8; 32],
        amount: u64,
    ) -> Result<u64, ReceiptError> {
        let have = self.held(from);
        if have < amount {
            return Err(ReceiptError {
                level: ErrorLevel::Vm,
                code: VmErrorCode::InsufficientBalance.code(),
                message: format!("{from} holds {have}, needs {amount}"),
            });
        }
        self.state.balances.insert(*from, have - amount);
        Ok(0)
    }
    fn transfer(&mut self, from: &AgentId, to: &AgentId, amount: u64) -> Result<(), ReceiptError> {
        let have = self.held(from);
        if have < amount {
            return Err(ReceiptError {
                level: ErrorLevel::Vm,
                code: VmErrorCode::InsufficientBalance.code(),
                message: format!("{from} holds {have}, needs {amount}"),
            });
        }
        self.state.balances.insert(*from, have - amount);
        let to_have = self.held(to);
        self.state
            .balances
            .insert(*to, to_have.saturating_add(amount));
        Ok(())
    }
    fn emit(&mut self, event: Event) {
        self.state.events.push(event);
    }
    fn load(
        &mut self,
        contract: Hname,
        _gas_left: u64,
    ) -> Result<(PreparedModule, bool), ReceiptError> {
        self.module
            .clone()
            .map(|m| (m, false))
            .ok_or_else(|| ReceiptError {
                level: ErrorLevel::Request,
                code: RequestErrorCode::UnknownContract.code(),
                message: format!("no contract {contract}"),
            })
    }
    fn checkpoint(&mut self) -> Checkpoint {
        self.snapshots.push(self.state.clone());
        Checkpoint(self.snapshots.len() - 1)
    }
    fn rollback(&mut self, checkpoint: Checkpoint) {
        if let Some(state) = self.snapshots.get(checkpoint.0) {
            self.state = state.clone();
            self.snapshots.truncate(checkpoint.0);
        }
    }
    fn log(&mut self, _contract: Hname, _message: &str) {}
}

fn vm() -> &'static Vm<FuzzHost> {
    static VM: OnceLock<Vm<FuzzHost>> = OnceLock::new();
    VM.get_or_init(|| Vm::new(VmConfig::default()))
}

fn val_type(rust: &str) -> wasm_encoder::ValType {
    match rust.trim() {
        "u64" | "i64" => wasm_encoder::ValType::I64,
        _ => wasm_encoder::ValType::I32,
    }
}

/// A module importing every Wisp host function with its ABI signature: wasm-smith's
/// `available_imports`.
fn abi_imports() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut types = wasm_encoder::TypeSection::new();
        let mut imports = wasm_encoder::ImportSection::new();
        for (i, f) in HOST_FUNCTIONS.iter().enumerate() {
            let params: Vec<_> = f
                .params
                .split(',')
                .filter_map(|p| p.split(':').nth(1))
                .map(val_type)
                .collect();
            let results: Vec<_> = (!f.returns.is_empty())
                .then(|| val_type(f.returns))
                .into_iter()
                .collect();
            types.ty().function(params, results);
            imports.import(
                IMPORT_MODULE,
                f.name,
                wasm_encoder::EntityType::Function(i as u32),
            );
        }
        let mut module = wasm_encoder::Module::new();
        module.section(&types).section(&imports);
        module.finish()
    })
}

/// The exports Wisp calls: wasm-smith's `exports` (memory is added afterwards; wasm-smith can
/// only require function and global exports).
const EXPORTS: [&str; 3] = ["ep:init", "ep:run", "view:get"];

fn required_exports() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([], []);
        let mut funcs = wasm_encoder::FunctionSection::new();
        let mut exports = wasm_encoder::ExportSection::new();
        let mut code = wasm_encoder::CodeSection::new();
        for (i, name) in EXPORTS.iter().enumerate() {
            funcs.function(0);
            exports.export(name, wasm_encoder::ExportKind::Func, i as u32);
            let mut body = wasm_encoder::Function::new([]);
            body.instructions().end();
            code.function(&body);
        }
        let mut module = wasm_encoder::Module::new();
        module
            .section(&types)
            .section(&funcs)
            .section(&exports)
            .section(&code);
        module.finish()
    })
}

fn smith_config(u: &mut Unstructured) -> arbitrary::Result<wasm_smith::Config> {
    let mut c = wasm_smith::Config {
        available_imports: Some(abi_imports().to_vec()),
        exports: Some(required_exports().to_vec()),
        ..wasm_smith::Config::default()
    };
    // Wisp's feature set (vm/src/validate.rs, Vm::new).
    c.allow_start_export = false;
    c.allow_floats = false;
    c.simd_enabled = false;
    c.relaxed_simd_enabled = false;
    c.threads_enabled = false;
    c.shared_everything_threads_enabled = false;
    c.exceptions_enabled = false;
    c.gc_enabled = false;
    c.memory64_enabled = false;
    c.tail_call_enabled = false;
    c.saturating_float_to_int_enabled = false;
    c.extended_const_enabled = false;
    c.wide_arithmetic_enabled = false;
    c.custom_page_sizes_enabled = false;
    c.bulk_memory_enabled = true;
    c.sign_extension_ops_enabled = true;
    c.multi_value_enabled = true;
    c.reference_types_enabled = u.arbitrary()?;
    c.canonicalize_nans = false;
    c.generate_custom_sections = false;
    // Exactly one small memory (it gets exported as `memory`), small everything else.
    c.min_memories = 1;
    c.max_memories = 1;
    c.max_memory32_bytes = u.int_in_range(1..=4)? * 65536;
    c.max_tables = 1;
    c.max_table_elements = 256;
    c.max_types = 32;
    c.max_imports = 32;
    c.max_funcs = 16;
    c.max_globals = 8;
    c.max_data_segments = 4;
    c.max_element_segments = 4;
    c.max_elements = 32;
    c.max_instructions = 256;
    c.max_nesting_depth = 8;
    c.max_tags = 0;
    c.disallow_traps = u.arbitrary()?;
    Ok(c)
}

fn export_kind(kind: ExternalKind) -> wasm_encoder::ExportKind {
    match kind {
        ExternalKind::Func => wasm_encoder::ExportKind::Func,
        ExternalKind::Table => wasm_encoder::ExportKind::Table,
        ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
        ExternalKind::Global => wasm_encoder::ExportKind::Global,
        ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
    }
}

/// `wasm` with memory 0 also exported as `memory`; `None` if it has no export section to add it
/// to or does not parse.
fn export_memory(wasm: &[u8]) -> Option<Vec<u8>> {
    let mut module = wasm_encoder::Module::new();
    let mut added = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        if let Payload::ExportSection(reader) = &payload {
            let mut section = wasm_encoder::ExportSection::new();
            for export in reader.clone() {
                let export = export.ok()?;
                section.export(export.name, export_kind(export.kind), export.index);
            }
            section.export("memory", wasm_encoder::ExportKind::Memory, 0);
            module.section(&section);
            added = true;
        } else if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection {
                id,
                data: wasm.get(range)?,
            });
        }
    }
    added.then(|| module.finish())
}

/// `ep:`/`view:` exports of a module, in order.
fn entry_points(wasm: &[u8]) -> Vec<(CallKind, Hname)> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::ExportSection(reader)) = payload else {
            continue;
        };
        for export in reader.into_iter().flatten() {
            let (kind, name) = if let Some(n) = export.name.strip_prefix("ep:") {
                (CallKind::Entry, n)
            } else if let Some(n) = export.name.strip_prefix("view:") {
                (CallKind::View, n)
            } else {
                continue;
            };
            out.push((kind, Hname::of(name)));
        }
    }
    out.truncate(MAX_CALLS);
    out
}

fn run_module(wasm: &[u8], args: &[u8], transferred: u64) {
    let Ok(validated) = validate(wasm, &ValidationLimits::default()) else {
        return;
    };
    let vm = vm();
    let Ok(module) = vm.prepare(&validated) else {
        return;
    };
    let caller = AgentId::Address([3; 32]);
    let mut host = FuzzHost {
        state: State::default(),
        snapshots: Vec::new(),
        module: Some(module.clone()),
    };
    host.state.balances.insert(caller, 1_000_000);
    let init = Hname::of("init");
    let mut calls = entry_points(validated.bytes());
    // Deploy first: `init` through the deploy door (`invoke_init`), then every export through the
    // request door (`invoke`), where `init` must be refused.
    if calls.contains(&(CallKind::Entry, init)) {
        calls.insert(0, (CallKind::Entry, init));
    }
    for (i, (kind, function)) in calls.into_iter().enumerate() {
        assert!(module.has_function(kind, function));
        let deploy = i == 0 && kind == CallKind::Entry && function == init;
        let invocation = Invocation {
            contract: SELF,
            module: module.clone(),
            caller,
            kind,
            function,
            args: args.to_vec(),
            transferred_sompi: if kind == CallKind::Entry {
                transferred
            } else {
                0
            },
            first_load: false,
        };
        let run = |host: FuzzHost, invocation: Invocation| {
            if deploy {
                vm.invoke_init(host, invocation, FUEL)
            } else {
                vm.invoke(host, invocation, FUEL)
            }
        };
        let (first_host, first) = run(host.clone(), invocation.clone());
        let (second_host, second) = run(host.clone(), invocation);
        assert_eq!(first, second, "the same call gave different outcomes");
        assert_eq!(
            first_host.state, second_host.state,
            "the same call left different state"
        );
        assert!(first.gas_used <= FUEL, "gas used exceeds the limit");
        if !deploy && kind == CallKind::Entry && function == init {
            assert!(
                matches!(&first.result, Err(e) if e.code == RequestErrorCode::Unauthorized.code()),
                "`init` ran outside deploy: {:?}",
                first.result
            );
        }
        if first.result.is_ok() {
            host = first_host;
            host.snapshots.clear();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        run_module(rest, &[], 0);
        return;
    }
    let mut u = Unstructured::new(rest);
    let Ok(config) = smith_config(&mut u) else {
        return;
    };
    let Ok(args) = u.arbitrary::<Vec<u8>>() else {
        return;
    };
    let Ok(transferred) = u.int_in_range(0..=2_000_000u64) else {
        return;
    };
    let Ok(generated) = wasm_smith::Module::new(config, &mut u) else {
        return;
    };
    let Some(wasm) = export_memory(&generated.to_bytes()) else {
        return;
    };
    run_module(&wasm, &args, transferred);
});
