//! The engine: compiles validated modules with wasmi and runs calls with gas, frames for
//! cross-contract calls, and the host ABI dispatch generated from `wisp_core::with_host_functions!`.

use crate::dispatch::register_host_functions;
use crate::gas;
use crate::host::Host;
use crate::limits::RequestLimits;
use crate::reuse::{self, Image};
use crate::trap::{classify, request_error, vm_error};
use crate::validate::{validate, ModuleShape, ValidatedModule, ValidationLimits};
use crate::VmError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use wasmi::{
    CompilationMode, Config, Engine, Global, Instance, Linker, Memory, Module, Store,
    StoreLimitsBuilder,
};
use wisp_core::interface::ContractInterface;
use wisp_core::{
    AgentId, CallKind, ErrorLevel, Hash32, Hname, ReceiptError, RequestErrorCode, VmErrorCode,
};

/// Execution limits; part of the chain's protocol parameters (kept in chain state and changed
/// only by a governance upgrade at a stated block, so every node runs the same limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct VmConfig {
    /// Deploy-time module limits.
    pub validation: ValidationLimits,
    /// Largest linear memory of one instance, bytes (growth beyond it traps `memory_limit`).
    pub max_memory_bytes: usize,
    /// Most linear memory all instances of one request may hold together, bytes (initial
    /// memories and growth; beyond it: `memory_limit`).
    pub max_request_memory_bytes: usize,
    /// Deepest chain of cross-contract calls (the top-level call is depth 1).
    pub max_call_depth: usize,
    /// Most contract instances one request may create.
    pub max_instances: usize,
    /// Deepest wasm call stack, in frames (beyond: `stack_overflow`).
    pub max_recursion_depth: usize,
    /// Largest arguments or return data, bytes.
    pub max_data_bytes: usize,
    /// Largest state key (contract-relative), bytes.
    pub max_key_bytes: usize,
    /// Largest state value, bytes.
    pub max_value_bytes: usize,
    /// Largest event (topic + data), bytes.
    pub max_event_bytes: usize,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            validation: ValidationLimits::default(),
            max_memory_bytes: 16 * 1024 * 1024,
            max_request_memory_bytes: 64 * 1024 * 1024,
            max_call_depth: 8,
            max_instances: 64,
            max_recursion_depth: 512,
            max_data_bytes: 64 * 1024,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            max_event_bytes: 16 * 1024,
        }
    }
}

/// Compiled code ready to instantiate; cheap to clone (shared).
#[derive(Clone)]
pub struct PreparedModule {
    inner: Arc<PreparedInner>,
}

struct PreparedInner {
    code_hash: Hash32,
    module: Module,
    exports: BTreeMap<(u8, Hname), String>,
    interface: Option<ContractInterface>,
    /// Size and shape (what instantiation is charged by).
    shape: ModuleShape,
    /// How its instances are reused (`None`: every call instantiates; see `reuse`).
    reuse: Option<ReuseInfo>,
}

/// A reusable module's mutable globals and fresh state.
struct ReuseInfo {
    /// Export names of its mutable globals in the compiled module.
    globals: Vec<String>,
    /// A fresh instance's memory and globals, taken at the first instantiation.
    image: OnceLock<Image>,
}

/// An instance left by a finished call, already reset to its fresh state.
pub(crate) struct Pooled {
    instance: Instance,
    memory: Memory,
    globals: Vec<Global>,
}

/// The host of the request a store is running: present from `Vm::run`'s start to its end,
/// the only time contract code runs in the store.
pub(crate) struct HostSlot<H>(Option<H>);

impl<H> HostSlot<H> {
    /// Takes the host back at the end of `Vm::run`.
    fn take(&mut self) -> H {
        #[allow(clippy::expect_used)]
        self.0
            .take()
            .expect("Vm::run placed the host in the store at its start")
    }
}

impl<H> std::ops::Deref for HostSlot<H> {
    type Target = H;
    fn deref(&self) -> &H {
        #[allow(clippy::expect_used)]
        self.0
            .as_ref()
            .expect("contract code runs only while Vm::run holds the host in the store")
    }
}

impl<H> std::ops::DerefMut for HostSlot<H> {
    fn deref_mut(&mut self) -> &mut H {
        #[allow(clippy::expect_used)]
        self.0
            .as_mut()
            .expect("contract code runs only while Vm::run holds the host in the store")
    }
}

impl std::fmt::Debug for PreparedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreparedModule({})", self.inner.code_hash)
    }
}

impl PreparedModule {
    /// The code hash it was compiled from.
    pub fn code_hash(&self) -> Hash32 {
        self.inner.code_hash
    }
    /// The embedded interface, if any.
    pub fn interface(&self) -> Option<&ContractInterface> {
        self.inner.interface.as_ref()
    }
    /// Gas of one instantiation ([`gas::instantiate_gas`] of its shape), the same whether or
    /// not the module was cached.
    pub fn instantiate_gas(&self) -> u64 {
        gas::instantiate_gas(&self.inner.shape)
    }

    /// Its size and shape.
    pub fn shape(&self) -> ModuleShape {
        self.inner.shape
    }

    /// Whether a call may run on an instance left by an earlier call (reset to its fresh
    /// state) instead of a new one; the outcome and gas are the same either way.
    pub fn reusable(&self) -> bool {
        self.inner.reuse.is_some()
    }

    /// Whether the module exports `function` as `kind`.
    pub fn has_function(&self, kind: CallKind, function: Hname) -> bool {
        self.inner.exports.contains_key(&(kind as u8, function))
    }
    fn export(&self, kind: CallKind, function: Hname) -> Option<&str> {
        self.inner
            .exports
            .get(&(kind as u8, function))
            .map(String::as_str)
    }
}

/// One call to run.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The contract called.
    pub contract: Hname,
    /// Its code.
    pub module: PreparedModule,
    /// Who calls (the request sender for a top-level call).
    pub caller: AgentId,
    /// Entry point or view.
    pub kind: CallKind,
    /// The hname of the function's name.
    pub function: Hname,
    /// borsh-encoded arguments.
    pub args: Vec<u8>,
    /// Sompi attached (already credited to the contract by the caller of `invoke`).
    pub transferred_sompi: u64,
    /// Whether this is the block's first use of the module's code: it then pays
    /// [`gas::compile_gas`] too (see [`Host::load`]).
    pub first_load: bool,
}

/// What a call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Return data, or why the call failed.
    pub result: Result<Vec<u8>, ReceiptError>,
    /// Gas used, ≤ the limit; the whole limit when out of gas.
    pub gas_used: u64,
}

pub(crate) struct Frame {
    pub(crate) contract: Hname,
    pub(crate) caller: AgentId,
    pub(crate) kind: CallKind,
    pub(crate) args: Vec<u8>,
    pub(crate) transferred_sompi: u64,
    pub(crate) ret: Vec<u8>,
    pub(crate) memory: Option<Memory>,
}

/// How a frame was entered: `init` may only be entered from deploy, `migrate` from upgrade.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Door {
    /// Deploy running the new contract's `init`.
    Deploy,
    /// An upgrade running the new code's `migrate`.
    Upgrade,
    /// A request or a cross-contract call.
    Call,
}

/// The hname of the `init` entry point.
fn init_hname() -> Hname {
    static INIT: std::sync::LazyLock<Hname> = std::sync::LazyLock::new(|| Hname::of("init"));
    *INIT
}

/// The hname of the `migrate` entry point.
fn migrate_hname() -> Hname {
    static MIGRATE: std::sync::LazyLock<Hname> = std::sync::LazyLock::new(|| Hname::of("migrate"));
    *MIGRATE
}

/// A store's data: the running request's host, frames and limits (reset by `Vm::run` for
/// each request), and the reset instances the store keeps between requests.
pub(crate) struct Ctx<H> {
    pub(crate) host: HostSlot<H>,
    pub(crate) frames: Vec<Frame>,
    pub(crate) register: Vec<u8>,
    /// The storage key of the host call being served, kept for its capacity.
    pub(crate) key: Vec<u8>,
    pub(crate) linker: Arc<Linker<Ctx<H>>>,
    pub(crate) limits: RequestLimits,
    pub(crate) config: VmConfig,
    pub(crate) instances: usize,
    /// Reset instances by code hash, ready for the next call of their module.
    pub(crate) free: BTreeMap<Hash32, Vec<Pooled>>,
    /// Instances this store has created or tried to create over its life (a failed
    /// instantiation leaves its memory and table in the store too).
    pub(crate) made: usize,
    /// Whether calls in this store reuse instances.
    pub(crate) reuse: bool,
}

/// Runs one frame in `store`: take a reset instance of the module from the store's pool or
/// instantiate it (charged the same either way), call the export, collect return data, and
/// put the instance back reset (unless its memory grew or the module is not reusable).
pub(crate) fn run_frame<H: Host>(
    store: &mut impl wasmi::AsContextMut<Data = Ctx<H>>,
    module: &PreparedModule,
    frame: Frame,
    function: Hname,
    door: Door,
    first_load: bool,
) -> Result<Vec<u8>, ReceiptError> {
    if frame.kind == CallKind::Entry && function == init_hname() && door != Door::Deploy {
        return Err(request_error(
            RequestErrorCode::Unauthorized,
            format!(
                "`init` of contract {} runs once, when the contract is deployed; it cannot be called",
                frame.contract
            ),
        ));
    }
    if frame.kind == CallKind::Entry && function == migrate_hname() && door != Door::Upgrade {
        return Err(request_error(
            RequestErrorCode::Unauthorized,
            format!(
                "`migrate` of contract {} runs only when its admin upgrades it to this code (root.upgrade); it cannot be called",
                frame.contract
            ),
        ));
    }
    let Some(export) = module.export(frame.kind, function) else {
        let what = match frame.kind {
            CallKind::Entry => "entry point",
            CallKind::View => "view",
        };
        return Err(request_error(
            RequestErrorCode::UnknownEntryPoint,
            format!(
                "contract {} has no {what} with hname {function}",
                frame.contract
            ),
        ));
    };
    let export = export.to_string();
    {
        let mut ctx = store.as_context_mut();
        let fuel = ctx.get_fuel().map_err(classify)?;
        let cost = module.instantiate_gas().saturating_add(if first_load {
            gas::compile_gas(module.shape().code_bytes)
        } else {
            0
        });
        if fuel < cost {
            let _ = ctx.set_fuel(0);
            return Err(vm_error(VmErrorCode::OutOfGas, "out of gas"));
        }
        ctx.set_fuel(fuel - cost).map_err(classify)?;
        let data = ctx.data_mut();
        if data.frames.len() >= data.config.max_call_depth {
            return Err(vm_error(
                VmErrorCode::CallDepthExceeded,
                format!(
                    "cross-contract calls nested deeper than {}",
                    data.config.max_call_depth
                ),
            ));
        }
        let initial_bytes = module.inner.shape.initial_pages.saturating_mul(64 * 1024) as usize;
        if data.limits.memory_bytes.saturating_add(initial_bytes) > data.limits.max_memory_bytes {
            return Err(vm_error(
                VmErrorCode::MemoryLimit,
                format!(
                    "instantiating contract {} would take the request's memory past {} bytes",
                    frame.contract, data.limits.max_memory_bytes
                ),
            ));
        }
        data.instances += 1;
        if data.instances > data.config.max_instances {
            return Err(vm_error(
                VmErrorCode::CallDepthExceeded,
                format!(
                    "more than {} contract instances in one request",
                    data.config.max_instances
                ),
            ));
        }
    }
    let reuse = match store.as_context().data().reuse {
        true => module.inner.reuse.as_ref(),
        false => None,
    };
    let pooled = match reuse {
        Some(_) => store
            .as_context_mut()
            .data_mut()
            .free
            .get_mut(&module.code_hash())
            .and_then(Vec::pop),
        None => None,
    };
    let (instance, parts) = match pooled {
        Some(p) => {
            // What creating its memory would have counted against the request.
            let initial_bytes = module.inner.shape.initial_pages.saturating_mul(64 * 1024) as usize;
            let mut ctx = store.as_context_mut();
            let limits = &mut ctx.data_mut().limits;
            limits.memory_bytes = limits.memory_bytes.saturating_add(initial_bytes);
            (p.instance, Some((p.memory, p.globals)))
        }
        None => {
            let linker = store.as_context().data().linker.clone();
            // Counted before it is tried: an instantiation that fails (a segment that does not
            // fit) has already put its memory and table in the store, and a pooled store must
            // be retired by what it holds, or wasmi's store-wide counts would one day refuse
            // an instantiation a fresh store makes (found by the `module` fuzz target: the
            // same call failed on one store and ran on another).
            store.as_context_mut().data_mut().made += 1;
            // Its initial memory is paid by `instantiate_gas`, not as growth.
            store.as_context_mut().data_mut().limits.instantiating = true;
            let instance = linker.instantiate_and_start(&mut *store, &module.inner.module);
            store.as_context_mut().data_mut().limits.instantiating = false;
            let instance = instance.map_err(classify)?;
            let parts = reuse.and_then(|r| {
                let memory = instance.get_memory(&*store, "memory")?;
                let globals = r
                    .globals
                    .iter()
                    .map(|name| instance.get_global(&*store, name))
                    .collect::<Option<Vec<Global>>>()?;
                r.image
                    .get_or_init(|| Image::take(&*store, memory, &globals));
                Some((memory, globals))
            });
            (instance, parts)
        }
    };
    let result = call_export(store, instance, &export, frame);
    // Back to the pool, in its fresh state (unless its memory grew).
    if let (Some((memory, globals)), Some(image)) = (parts, reuse.and_then(|r| r.image.get())) {
        if image.reset(&mut *store, memory, &globals) {
            store
                .as_context_mut()
                .data_mut()
                .free
                .entry(module.code_hash())
                .or_default()
                .push(Pooled {
                    instance,
                    memory,
                    globals,
                });
        }
    }
    result
}

/// Calls `export` of `instance` as `frame`, collecting its return data.
fn call_export<H: Host>(
    store: &mut impl wasmi::AsContextMut<Data = Ctx<H>>,
    instance: Instance,
    export: &str,
    frame: Frame,
) -> Result<Vec<u8>, ReceiptError> {
    let memory = instance.get_memory(&*store, "memory");
    let func = instance
        .get_typed_func::<(), ()>(&*store, export)
        .map_err(|e| {
            request_error(
                RequestErrorCode::UnknownEntryPoint,
                format!("export `{export}` is not a function without parameters: {e}"),
            )
        })?;
    store
        .as_context_mut()
        .data_mut()
        .frames
        .push(Frame { memory, ..frame });
    let result = func.call(&mut *store, ());
    let finished = store.as_context_mut().data_mut().frames.pop();
    // Memory grown since the last host call is paid for before the call's result counts:
    // unpaid, the request is out of gas whatever the call returned.
    settle_growth(&mut *store).map_err(classify)?;
    match result {
        Ok(()) => Ok(finished.map(|f| f.ret).unwrap_or_default()),
        Err(e) => Err(classify(e)),
    }
}

/// Takes the gas owed for the pages `memory.grow` granted since the last settlement
/// ([`gas::GROWN_PAGE_GAS`] each) from the request's gas, and makes the gas left the most
/// that pages grown from now on may owe. Called before every host function's own charge (a
/// cross-contract call's included, so a callee starts with its caller's growth paid) and
/// when a call returns: points every node reaches at the same instruction, so the gas
/// charged is the same everywhere.
///
/// # Errors
/// `TrapCode::OutOfFuel` (the request's gas set to 0) if it holds less than it owes, as after
/// a grow refused for gas.
pub(crate) fn settle_growth<H>(
    mut store: impl wasmi::AsContextMut<Data = Ctx<H>>,
) -> Result<(), wasmi::Error> {
    let mut ctx = store.as_context_mut();
    let fuel = ctx.get_fuel()?;
    let owed = ctx.data().limits.grow_owed_gas;
    let left = fuel.checked_sub(owed);
    let limits = &mut ctx.data_mut().limits;
    limits.grow_owed_gas = 0;
    limits.grow_credit_gas = left.unwrap_or(0);
    if owed == 0 {
        return Ok(());
    }
    match left {
        Some(left) => ctx.set_fuel(left),
        None => {
            ctx.set_fuel(0)?;
            Err(wasmi::Error::from(wasmi::TrapCode::OutOfFuel))
        }
    }
}

/// The calling thread's id, without the reference count traffic of
/// `std::thread::current()`.
fn this_thread() -> std::thread::ThreadId {
    thread_local!(static HERE: std::thread::ThreadId = std::thread::current().id());
    HERE.with(|id| *id)
}

/// Takes an idle store from `pool` for a call on thread `here`: the one it gave back last,
/// if any, else the one given back last by any thread. A store's instance memories and
/// wasmi's structures are then still in this core's cache, and its reset after the call
/// (zeroing 64 KiB a memory) writes lines this core holds instead of taking each from the
/// other core's: with any store, the members of a parallel batch ran 3-5% slower on two
/// threads (`profile_block -- 2 400 independent no-index`, the two ways alternating block by
/// block in one process, three runs: median execution phase 416/575/458 µs against
/// 436/591/480; one thread the same either way).
fn take_for<T>(
    pool: &mut Vec<(std::thread::ThreadId, T)>,
    here: std::thread::ThreadId,
) -> Option<T> {
    match pool.iter().rposition(|(thread, _)| *thread == here) {
        Some(i) => Some(pool.remove(i).1),
        None => pool.pop().map(|(_, store)| store),
    }
}

/// The VM for host type `H`: one wasmi engine, one linker and a pool of idle stores with
/// reset instances ([`PoolStats`]), shared by every call.
pub struct Vm<H: Host> {
    engine: Engine,
    linker: Arc<Linker<Ctx<H>>>,
    config: VmConfig,
    /// Idle stores with their reset instances, at most [`POOL_STORES`], each with the thread
    /// that gave it back ([`take_for`]).
    pool: Mutex<Vec<(std::thread::ThreadId, Store<Ctx<H>>)>>,
    /// Whether calls reuse instances (on unless turned off for a comparison).
    reuse: std::sync::atomic::AtomicBool,
}

/// What the idle stores of a [`Vm`]'s instance pool hold ([`Vm::pool_stats`]): bounded by
/// [`POOL_STORES`], [`POOL_STORE_INSTANCES`] and [`POOL_STORE_BYTES`] whatever the calls do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Idle stores.
    pub stores: usize,
    /// Instances they have created over their lives (reset, dropped or in use).
    pub made: usize,
    /// Reset instances ready for a call.
    pub free: usize,
    /// Linear memory they have allocated over their lives, bytes.
    pub allocated_bytes: usize,
}

/// Most idle stores a [`Vm`] keeps (one per thread running calls is enough).
pub const POOL_STORES: usize = 4;

/// A store that has created more instances than this is retired after its request (wasmi
/// frees a store's instances only with the store).
pub const POOL_STORE_INSTANCES: usize = 256;

/// A store that has allocated more linear memory than this, bytes, over its life is retired
/// after its request: instances whose memory grew are dropped from the pool but their memory
/// stays with the store. With [`POOL_STORES`] idle stores, idle pools hold at most
/// `POOL_STORES × (POOL_STORE_BYTES + max_request_memory_bytes)`.
pub const POOL_STORE_BYTES: usize = 32 * 1024 * 1024;

impl<H: Host> Vm<H> {
    /// Builds the engine with Wisp's wasmi configuration (fuel on, eager compilation, no floats,
    /// no multi-memory, no tail calls, no start functions).
    ///
    /// # Panics
    /// Never on input; only if the ABI table defined a function twice (a build-time bug caught
    /// by every test).
    pub fn new(config: VmConfig) -> Self {
        let mut c = Config::default();
        c.consume_fuel(true)
            .compilation_mode(CompilationMode::Eager)
            .operator_cost(gas::instruction_costs())
            .fuel_cost(gas::dynamic_costs())
            .floats(false)
            .wasm_multi_memory(false)
            .wasm_tail_call(false)
            .wasm_extended_const(false)
            .allow_start_fn(false)
            .ignore_custom_sections(true)
            .set_max_recursion_depth(config.max_recursion_depth);
        let engine = Engine::new(&c);
        let mut linker = Linker::new(&engine);
        #[allow(clippy::expect_used)]
        register_host_functions(&mut linker)
            .expect("the host ABI table defines each function once");
        Vm {
            engine,
            linker: Arc::new(linker),
            config,
            pool: Mutex::new(Vec::new()),
            reuse: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// What the idle stores of the instance pool hold now (see [`PoolStats`]).
    pub fn pool_stats(&self) -> PoolStats {
        let mut stats = PoolStats::default();
        if let Ok(pool) = self.pool.lock() {
            for (_, store) in pool.iter() {
                let ctx = store.data();
                stats.stores += 1;
                stats.made += ctx.made;
                stats.free += ctx.free.values().map(Vec::len).sum::<usize>();
                stats.allocated_bytes += ctx.limits.allocated_bytes;
            }
        }
        stats
    }

    /// Turns instance reuse on (the default) or off: with it off, every call instantiates its
    /// module afresh. Outcomes and gas are the same either way; benchmarks and tests compare.
    pub fn set_instance_reuse(&self, on: bool) {
        self.reuse.store(on, std::sync::atomic::Ordering::Relaxed);
        if !on {
            self.pool.lock().map(|mut p| p.clear()).unwrap_or_default();
        }
    }

    /// Validates and compiles `bytes`.
    ///
    /// # Errors
    /// [`VmError::InvalidModule`] if validation or compilation fails.
    pub fn prepare_bytes(&self, bytes: &[u8]) -> Result<PreparedModule, VmError> {
        self.prepare(&validate(bytes, &self.config.validation)?)
    }

    /// Compiles a validated module (eagerly: no gas depends on compile state later).
    ///
    /// # Errors
    /// [`VmError::InvalidModule`] if wasmi rejects it (e.g. a float operator).
    pub fn prepare(&self, module: &ValidatedModule) -> Result<PreparedModule, VmError> {
        let reusable = reuse::analyse(module.bytes())?;
        let compiled = reusable
            .as_ref()
            .and_then(|r| Module::new(&self.engine, &r.bytes).ok());
        let (compiled, reuse) = match (compiled, reusable) {
            (Some(compiled), Some(r)) => (
                compiled,
                Some(ReuseInfo {
                    globals: r.globals,
                    image: OnceLock::new(),
                }),
            ),
            _ => (
                Module::new(&self.engine, module.bytes())
                    .map_err(|e| VmError::InvalidModule(format!("compilation failed: {e}")))?,
                None,
            ),
        };
        let mut exports = BTreeMap::new();
        for export in compiled.exports() {
            let name = export.name();
            let (kind, function) = if let Some(f) = name.strip_prefix("ep:") {
                (CallKind::Entry, f)
            } else if let Some(f) = name.strip_prefix("view:") {
                (CallKind::View, f)
            } else {
                continue;
            };
            let hname =
                Hname::try_of(function).map_err(|e| VmError::InvalidModule(e.to_string()))?;
            if exports
                .insert((kind as u8, hname), name.to_string())
                .is_some()
            {
                return Err(VmError::InvalidModule(format!(
                    "two exports share the hname of `{function}`"
                )));
            }
        }
        Ok(PreparedModule {
            inner: Arc::new(PreparedInner {
                code_hash: module.code_hash(),
                module: compiled,
                exports,
                interface: module.interface().cloned(),
                shape: module.shape(),
                reuse,
            }),
        })
    }

    /// Runs `invocation` with at most `gas_limit` gas, returning the host and the outcome. The
    /// host's journal holds the call's effects; on failure the caller rolls them back.
    ///
    /// A contract's `init` and `migrate` entry points are refused here (request-level
    /// `unauthorized`), as they are in cross-contract calls: only [`Vm::invoke_init`] (deploy)
    /// and [`Vm::invoke_migrate`] (upgrade) run them.
    pub fn invoke(&self, host: H, invocation: Invocation, gas_limit: u64) -> (H, Outcome) {
        self.run(host, invocation, gas_limit, Door::Call)
    }

    /// Runs a freshly deployed contract's `init` entry point (`invocation.function` must be the
    /// hname of `init`); the chain's deploy is the only caller. Otherwise as [`Vm::invoke`].
    pub fn invoke_init(&self, host: H, invocation: Invocation, gas_limit: u64) -> (H, Outcome) {
        self.run(host, invocation, gas_limit, Door::Deploy)
    }

    /// Runs an upgraded contract's `migrate` entry point with its new code
    /// (`invocation.function` must be the hname of `migrate`); the chain's upgrade is the only
    /// caller, and a `migrate` is refused anywhere else (request-level `unauthorized`).
    /// Otherwise as [`Vm::invoke`].
    pub fn invoke_migrate(&self, host: H, invocation: Invocation, gas_limit: u64) -> (H, Outcome) {
        self.run(host, invocation, gas_limit, Door::Upgrade)
    }

    /// A store for one request: an idle one from the pool, with the instances it holds, or a
    /// new one.
    fn store(&self, reuse: bool) -> Store<Ctx<H>> {
        if reuse {
            let here = this_thread();
            if let Some(store) = self
                .pool
                .lock()
                .ok()
                .and_then(|mut pool| take_for(&mut pool, here))
            {
                return store;
            }
        }
        // A pooled store starts a request with at most `POOL_STORE_INSTANCES` instances made
        // (`give_back` retires it past that), each with one memory and at most one table
        // (validation), and a request makes at most `max_instances` (`run_frame`): wasmi's
        // store-wide counts below can never be what stops a request, so whether a store was
        // pooled never changes an outcome.
        let kept = if reuse { POOL_STORE_INSTANCES } else { 0 };
        let limits = RequestLimits {
            store: StoreLimitsBuilder::new()
                .memory_size(self.config.max_memory_bytes)
                .table_elements(self.config.validation.max_table_elements as usize)
                .instances(self.config.max_instances + 1 + kept)
                .memories(self.config.max_instances + 1 + kept)
                .tables(self.config.max_instances + 1 + kept)
                .trap_on_grow_failure(true)
                .build(),
            memory_bytes: 0,
            max_memory_bytes: self.config.max_request_memory_bytes,
            allocated_bytes: 0,
            grow_owed_gas: 0,
            grow_credit_gas: 0,
            instantiating: false,
        };
        let ctx = Ctx {
            host: HostSlot(None),
            frames: Vec::new(),
            register: Vec::new(),
            key: Vec::new(),
            linker: self.linker.clone(),
            limits,
            config: self.config,
            instances: 0,
            free: BTreeMap::new(),
            made: 0,
            reuse,
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|ctx| &mut ctx.limits);
        store
    }

    /// Puts a store back in the pool, unless it holds too much or the pool is full.
    fn give_back(&self, store: Store<Ctx<H>>) {
        let ctx = store.data();
        if !ctx.reuse
            || ctx.made > POOL_STORE_INSTANCES
            || ctx.limits.allocated_bytes > POOL_STORE_BYTES
        {
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < POOL_STORES {
                pool.push((this_thread(), store));
            }
        }
    }

    fn run(&self, host: H, invocation: Invocation, gas_limit: u64, door: Door) -> (H, Outcome) {
        let mut store = self.store(self.reuse.load(std::sync::atomic::Ordering::Relaxed));
        {
            let ctx = store.data_mut();
            ctx.host = HostSlot(Some(host));
            ctx.frames.clear();
            ctx.register.clear();
            ctx.limits.start_request(gas_limit);
            ctx.instances = 0;
        }
        let result = match store.set_fuel(gas_limit) {
            Ok(()) => {
                if invocation.args.len() > self.config.max_data_bytes {
                    Err(request_error(
                        RequestErrorCode::TooLarge,
                        format!(
                            "arguments of {} bytes exceed the limit of {}",
                            invocation.args.len(),
                            self.config.max_data_bytes
                        ),
                    ))
                } else {
                    let frame = Frame {
                        contract: invocation.contract,
                        caller: invocation.caller,
                        kind: invocation.kind,
                        args: invocation.args,
                        transferred_sompi: invocation.transferred_sompi,
                        ret: Vec::new(),
                        memory: None,
                    };
                    run_frame(
                        &mut store,
                        &invocation.module,
                        frame,
                        invocation.function,
                        door,
                        invocation.first_load,
                    )
                }
            }
            Err(e) => Err(classify(e)),
        };
        let out_of_gas = matches!(&result, Err(e) if e.level == ErrorLevel::Vm && e.code == VmErrorCode::OutOfGas.code());
        let gas_used = if out_of_gas {
            gas_limit
        } else {
            gas_limit - store.get_fuel().unwrap_or(0).min(gas_limit)
        };
        let host = store.data_mut().host.take();
        self.give_back(store);
        (host, Outcome { result, gas_used })
    }
}

#[cfg(test)]
mod tests {
    use super::take_for;

    #[test]
    fn a_thread_gets_back_the_store_it_gave_back_last() {
        let mine = std::thread::current().id();
        let other = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        let mut pool = vec![(mine, 1), (other, 2), (mine, 3), (other, 4)];
        assert_eq!(take_for(&mut pool, mine), Some(3));
        assert_eq!(take_for(&mut pool, mine), Some(1));
        // None of its own left: the one given back last.
        assert_eq!(take_for(&mut pool, mine), Some(4));
        assert_eq!(take_for(&mut pool, other), Some(2));
        assert_eq!(take_for(&mut pool, other), None);
    }
}
