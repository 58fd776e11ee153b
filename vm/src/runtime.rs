//! The engine: compiles validated modules with wasmi and runs calls with gas, frames for
//! cross-contract calls, and the host ABI dispatch generated from `wisp_core::with_host_functions!`.

use crate::gas;
use crate::host::Host;
use crate::validate::{validate, ModuleShape, ValidatedModule, ValidationLimits};
use crate::VmError;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmi::{
    Caller, CompilationMode, Config, Engine, Error, Linker, Memory, Module, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, TrapCode,
};
use wisp_core::abi::IMPORT_MODULE;
use wisp_core::interface::ContractInterface;
use wisp_core::{
    AgentId, CallKind, ContractId, ErrorLevel, Event, Hash32, Hname, ReceiptError,
    RequestErrorCode, VmErrorCode,
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
}

/// What a call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Return data, or why the call failed.
    pub result: Result<Vec<u8>, ReceiptError>,
    /// Gas used, ≤ the limit; the whole limit when out of gas.
    pub gas_used: u64,
}

struct Frame {
    contract: Hname,
    caller: AgentId,
    kind: CallKind,
    args: Vec<u8>,
    transferred_sompi: u64,
    ret: Vec<u8>,
    memory: Option<Memory>,
}

/// How a frame was entered: `init` may only be entered from deploy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Door {
    /// Deploy running the new contract's `init`.
    Deploy,
    /// A request or a cross-contract call.
    Call,
}

/// The hname of the `init` entry point.
fn init_hname() -> Hname {
    Hname::of("init")
}

/// Per-request store data.
struct Ctx<H> {
    host: H,
    frames: Vec<Frame>,
    register: Vec<u8>,
    linker: Arc<Linker<Ctx<H>>>,
    limits: RequestLimits,
    config: VmConfig,
    instances: usize,
}

/// wasmi's per-memory and per-table limits, plus a cap on the memory of all instances of one
/// request together (defect 17 of the hardening review: 64 instances × 16 MiB each).
struct RequestLimits {
    store: StoreLimits,
    memory_bytes: usize,
    max_memory_bytes: usize,
}

impl ResourceLimiter for RequestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let added = desired.saturating_sub(current);
        if self.memory_bytes.saturating_add(added) > self.max_memory_bytes {
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        let allowed = self.store.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes += added;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        self.store.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(
        &mut self,
        error: &wasmi::errors::MemoryError,
    ) -> Result<(), wasmi_core::LimiterError> {
        self.store.memory_grow_failed(error)
    }

    fn table_grow_failed(
        &mut self,
        error: &wasmi::errors::TableError,
    ) -> Result<(), wasmi_core::LimiterError> {
        self.store.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.store.instances()
    }

    fn tables(&self) -> usize {
        self.store.tables()
    }

    fn memories(&self) -> usize {
        self.store.memories()
    }
}

/// A failure raised by a host function, carried through wasmi as a host error.
#[derive(Debug)]
struct Failure(ReceiptError);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} error {}: {}",
            self.0.level, self.0.code, self.0.message
        )
    }
}
impl wasmi::errors::HostError for Failure {}

fn vm_error(code: VmErrorCode, message: impl Into<String>) -> ReceiptError {
    ReceiptError {
        level: ErrorLevel::Vm,
        code: code.code(),
        message: message.into(),
    }
}

fn request_error(code: RequestErrorCode, message: impl Into<String>) -> ReceiptError {
    ReceiptError {
        level: ErrorLevel::Request,
        code: code.code(),
        message: message.into(),
    }
}

fn fail(e: ReceiptError) -> Error {
    Error::host(Failure(e))
}

/// Maps any wasmi error to a receipt error with a stable code and a message that is the same
/// on every machine and every run: receipts are hashed into the block, so no text of wasmi's
/// that may carry process-local details (store ids, addresses) ever reaches one.
fn classify(e: Error) -> ReceiptError {
    use wasmi::errors::ErrorKind;
    if let Some(Failure(inner)) = e.downcast_ref::<Failure>() {
        return inner.clone();
    }
    if let Some(code) = e.as_trap_code() {
        return match code {
            TrapCode::OutOfFuel => vm_error(VmErrorCode::OutOfGas, "out of gas"),
            TrapCode::StackOverflow => vm_error(
                VmErrorCode::StackOverflow,
                "call stack exhausted (unbounded recursion?)",
            ),
            TrapCode::MemoryOutOfBounds => {
                vm_error(VmErrorCode::MemoryOutOfBounds, code.trap_message())
            }
            TrapCode::IntegerDivisionByZero
            | TrapCode::IntegerOverflow
            | TrapCode::BadConversionToInteger => {
                vm_error(VmErrorCode::IntegerArithmetic, code.trap_message())
            }
            TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory => vm_error(
                VmErrorCode::MemoryLimit,
                "linear memory would exceed the chain's limit",
            ),
            other => vm_error(VmErrorCode::Trap, other.trap_message()),
        };
    }
    match e.kind() {
        ErrorKind::Memory(wasmi::errors::MemoryError::OutOfBoundsAccess) => vm_error(
            VmErrorCode::MemoryOutOfBounds,
            "out of bounds memory access",
        ),
        ErrorKind::Memory(_) => vm_error(
            VmErrorCode::MemoryLimit,
            "linear memory would exceed the chain's limit",
        ),
        ErrorKind::Table(_) => vm_error(
            VmErrorCode::Trap,
            "a table access or initialisation is out of bounds",
        ),
        ErrorKind::Instantiation(_) => vm_error(
            VmErrorCode::Trap,
            "the module could not be instantiated (a data or element segment does not fit)",
        ),
        ErrorKind::Global(_) => vm_error(VmErrorCode::Trap, "invalid global access"),
        ErrorKind::Func(_) => vm_error(VmErrorCode::Trap, "invalid function call"),
        _ => vm_error(VmErrorCode::Trap, "the WebAssembly engine stopped the call"),
    }
}

fn charge<H>(caller: &mut Caller<'_, Ctx<H>>, amount: u64) -> Result<(), Error> {
    let left = caller.get_fuel()?;
    if left < amount {
        caller.set_fuel(0)?;
        return Err(Error::from(TrapCode::OutOfFuel));
    }
    caller.set_fuel(left - amount)
}

fn frame<'a, H>(caller: &'a Caller<'_, Ctx<H>>) -> Result<&'a Frame, Error> {
    caller
        .data()
        .frames
        .last()
        .ok_or_else(|| Error::new("host function called outside a frame"))
}

fn memory<H>(caller: &Caller<'_, Ctx<H>>) -> Result<Memory, Error> {
    frame(caller)?.memory.ok_or_else(|| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            "the contract exports no memory",
        ))
    })
}

fn read_mem<H>(caller: &Caller<'_, Ctx<H>>, ptr: u32, len: u32) -> Result<Vec<u8>, Error> {
    let mem = memory(caller)?;
    let mut buf = vec![0u8; len as usize];
    mem.read(caller, ptr as usize, &mut buf).map_err(|_| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            format!("bytes {ptr}..{ptr}+{len} are outside linear memory"),
        ))
    })?;
    Ok(buf)
}

fn write_mem<H>(caller: &mut Caller<'_, Ctx<H>>, ptr: u32, data: &[u8]) -> Result<(), Error> {
    let mem = memory(caller)?;
    mem.write(caller, ptr as usize, data).map_err(|_| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            format!(
                "writing {} bytes at {ptr} is outside linear memory",
                data.len()
            ),
        ))
    })
}

fn check_len(len: u32, max: usize, what: &str) -> Result<(), Error> {
    if len as usize > max {
        return Err(fail(request_error(
            RequestErrorCode::TooLarge,
            format!("{what} of {len} bytes exceeds the limit of {max}"),
        )));
    }
    Ok(())
}

fn read_only<H>(caller: &Caller<'_, Ctx<H>>) -> bool {
    caller
        .data()
        .frames
        .iter()
        .any(|f| f.kind == CallKind::View)
}

fn deny_in_view<H>(caller: &Caller<'_, Ctx<H>>, what: &str) -> Result<(), Error> {
    if read_only(caller) {
        return Err(fail(vm_error(
            VmErrorCode::WriteInView,
            format!("a view cannot {what}"),
        )));
    }
    Ok(())
}

fn decode_agent<H>(caller: &Caller<'_, Ctx<H>>, ptr: u32, len: u32) -> Result<AgentId, Error> {
    let bytes = read_mem(caller, ptr, len.min(64))?;
    borsh::from_slice(&bytes).map_err(|_| {
        fail(vm_error(
            VmErrorCode::HostAbiMisuse,
            "bytes are not a borsh-encoded AgentId",
        ))
    })
}

fn self_agent<H: Host>(caller: &Caller<'_, Ctx<H>>) -> Result<AgentId, Error> {
    let contract = frame(caller)?.contract;
    Ok(AgentId::Contract(ContractId {
        chain: caller.data().host.chain_id(),
        hname: contract,
    }))
}

/// Runs one frame in `store`: instantiate, call the export, collect return data.
fn run_frame<H: Host>(
    store: &mut impl wasmi::AsContextMut<Data = Ctx<H>>,
    module: &PreparedModule,
    frame: Frame,
    function: Hname,
    door: Door,
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
        let cost = module.instantiate_gas();
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
    let linker = store.as_context().data().linker.clone();
    let instance = linker
        .instantiate_and_start(&mut *store, &module.inner.module)
        .map_err(classify)?;
    let memory = instance.get_memory(&*store, "memory");
    let func = instance
        .get_typed_func::<(), ()>(&*store, &export)
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
    match result {
        Ok(()) => Ok(finished.map(|f| f.ret).unwrap_or_default()),
        Err(e) => Err(classify(e)),
    }
}

mod imp {
    //! Host function bodies; the base gas is already charged by the generated dispatch.
    use super::*;

    type R<T> = Result<T, Error>;

    pub fn input<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64) -> R<u32> {
        let args = frame(c)?.args.clone();
        charge(c, per_byte * args.len() as u64)?;
        let len = args.len() as u32;
        c.data_mut().register = args;
        Ok(len)
    }

    pub fn register_len<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u32> {
        Ok(c.data().register.len() as u32)
    }

    pub fn register_read<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64, ptr: u32) -> R<()> {
        let data = std::mem::take(&mut c.data_mut().register);
        charge(c, per_byte * data.len() as u64)?;
        let written = write_mem(c, ptr, &data);
        c.data_mut().register = data;
        written
    }

    pub fn set_return<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        ptr: u32,
        len: u32,
    ) -> R<()> {
        let max = c.data().config.max_data_bytes;
        check_len(len, max, "return data")?;
        charge(c, per_byte * len as u64)?;
        let data = read_mem(c, ptr, len)?;
        if let Some(f) = c.data_mut().frames.last_mut() {
            f.ret = data;
        }
        Ok(())
    }

    pub fn storage_get<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        key_ptr: u32,
        key_len: u32,
    ) -> R<i64> {
        let max = c.data().config.max_key_bytes;
        check_len(key_len, max, "storage key")?;
        charge(c, per_byte * key_len as u64)?;
        let key = read_mem(c, key_ptr, key_len)?;
        let contract = frame(c)?.contract;
        let value = c
            .data_mut()
            .host
            .storage_get(contract, &key)
            .map_err(fail)?;
        match value {
            None => Ok(-1),
            Some(v) => {
                charge(c, per_byte * v.len() as u64)?;
                let len = v.len() as i64;
                c.data_mut().register = v;
                Ok(len)
            }
        }
    }

    pub fn storage_set<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        key_ptr: u32,
        key_len: u32,
        value_ptr: u32,
        value_len: u32,
    ) -> R<()> {
        deny_in_view(c, "write state")?;
        let (max_key, max_value) = (
            c.data().config.max_key_bytes,
            c.data().config.max_value_bytes,
        );
        check_len(key_len, max_key, "storage key")?;
        check_len(value_len, max_value, "storage value")?;
        charge(c, per_byte * (key_len as u64 + value_len as u64))?;
        let key = read_mem(c, key_ptr, key_len)?;
        let value = read_mem(c, value_ptr, value_len)?;
        let contract = frame(c)?.contract;
        c.data_mut()
            .host
            .storage_set(contract, &key, Some(&value))
            .map_err(fail)
    }

    pub fn storage_remove<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        key_ptr: u32,
        key_len: u32,
    ) -> R<()> {
        deny_in_view(c, "write state")?;
        let max = c.data().config.max_key_bytes;
        check_len(key_len, max, "storage key")?;
        charge(c, per_byte * key_len as u64)?;
        let key = read_mem(c, key_ptr, key_len)?;
        let contract = frame(c)?.contract;
        c.data_mut()
            .host
            .storage_set(contract, &key, None)
            .map_err(fail)
    }

    pub fn caller<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64) -> R<u32> {
        let bytes = borsh::to_vec(&frame(c)?.caller).map_err(|e| Error::new(e.to_string()))?;
        charge(c, per_byte * bytes.len() as u64)?;
        let len = bytes.len() as u32;
        c.data_mut().register = bytes;
        Ok(len)
    }

    pub fn self_hname<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u32> {
        Ok(frame(c)?.contract.0)
    }

    pub fn chain_id<H: Host>(c: &mut Caller<'_, Ctx<H>>, per_byte: u64, out_ptr: u32) -> R<()> {
        charge(c, per_byte * 32)?;
        let id = c.data().host.chain_id();
        write_mem(c, out_ptr, &id.0)
    }

    pub fn block_index<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        Ok(c.data().host.block().index)
    }

    pub fn block_timestamp_ms<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        Ok(c.data().host.block().timestamp_ms)
    }

    pub fn transferred_sompi<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        Ok(frame(c)?.transferred_sompi)
    }

    pub fn balance_sompi<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        agent_ptr: u32,
        agent_len: u32,
    ) -> R<u64> {
        charge(c, per_byte * agent_len as u64)?;
        let agent = decode_agent(c, agent_ptr, agent_len)?;
        c.data_mut().host.balance(&agent).map_err(fail)
    }

    pub fn transfer_sompi<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        agent_ptr: u32,
        agent_len: u32,
        amount: u64,
    ) -> R<()> {
        deny_in_view(c, "move tokens")?;
        charge(c, per_byte * agent_len as u64)?;
        let to = decode_agent(c, agent_ptr, agent_len)?;
        let from = self_agent(c)?;
        c.data_mut().host.transfer(&from, &to, amount).map_err(fail)
    }

    pub fn emit_event<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        topic_ptr: u32,
        topic_len: u32,
        data_ptr: u32,
        data_len: u32,
    ) -> R<()> {
        deny_in_view(c, "emit events")?;
        let max = c.data().config.max_event_bytes;
        check_len(topic_len.saturating_add(data_len), max, "event")?;
        charge(c, per_byte * (topic_len as u64 + data_len as u64))?;
        let topic = String::from_utf8(read_mem(c, topic_ptr, topic_len)?).map_err(|_| {
            fail(vm_error(
                VmErrorCode::HostAbiMisuse,
                "event topic is not UTF-8",
            ))
        })?;
        let data = read_mem(c, data_ptr, data_len)?;
        let contract = frame(c)?.contract;
        c.data_mut().host.emit(Event {
            contract,
            topic,
            data,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn call<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        kind: u32,
        target: u32,
        entry_point: u32,
        args_ptr: u32,
        args_len: u32,
        transfer: u64,
    ) -> R<u32> {
        let kind = match kind {
            0 => CallKind::Entry,
            1 => CallKind::View,
            other => {
                return Err(fail(vm_error(
                    VmErrorCode::HostAbiMisuse,
                    format!("call kind {other} is neither 0 (entry) nor 1 (view)"),
                )))
            }
        };
        if kind == CallKind::Entry {
            deny_in_view(c, "call an entry point")?;
        }
        if kind == CallKind::View && transfer > 0 {
            return Err(fail(vm_error(
                VmErrorCode::WriteInView,
                "a view call cannot carry tokens",
            )));
        }
        let max = c.data().config.max_data_bytes;
        check_len(args_len, max, "call arguments")?;
        charge(c, per_byte * args_len as u64)?;
        let args = read_mem(c, args_ptr, args_len)?;
        let target = Hname(target);
        let me = self_agent(c)?;
        let checkpoint = c.data_mut().host.checkpoint();
        let result = (|| {
            let module = c.data_mut().host.load(target)?;
            if transfer > 0 {
                let to = AgentId::Contract(ContractId {
                    chain: c.data().host.chain_id(),
                    hname: target,
                });
                c.data_mut().host.transfer(&me, &to, transfer)?;
            }
            let frame = Frame {
                contract: target,
                caller: me,
                kind,
                args,
                transferred_sompi: transfer,
                ret: Vec::new(),
                memory: None,
            };
            run_frame(c, &module, frame, Hname(entry_point), Door::Call)
        })();
        match result {
            Ok(ret) => {
                charge(c, per_byte * ret.len() as u64)?;
                c.data_mut().register = ret;
                Ok(0)
            }
            // Running out of gas ends the whole request: the caller could not go on anyway.
            Err(e) if e.level == ErrorLevel::Vm && e.code == VmErrorCode::OutOfGas.code() => {
                Err(fail(e))
            }
            Err(e) => {
                c.data_mut().host.rollback(checkpoint);
                c.data_mut().register = borsh::to_vec(&e).map_err(|e| Error::new(e.to_string()))?;
                Ok(1)
            }
        }
    }

    pub fn abort<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        _: u64,
        code: u32,
        msg_ptr: u32,
        msg_len: u32,
    ) -> R<()> {
        let bytes = read_mem(c, msg_ptr, msg_len.min(1024))?;
        let message = String::from_utf8_lossy(&bytes).into_owned();
        // Always the contract level, whatever the code: a contract cannot pose as the runtime
        // (defect 21 of the hardening review: code u32::MAX became request-level
        // `bad_arguments`). The SDK's argument-decoding failure is the contract-level
        // `CONTRACT_BAD_ARGUMENTS_CODE`.
        Err(fail(ReceiptError {
            level: ErrorLevel::Contract,
            code,
            message,
        }))
    }

    pub fn log<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        msg_ptr: u32,
        msg_len: u32,
    ) -> R<()> {
        let len = msg_len.min(4096);
        charge(c, per_byte * len as u64)?;
        let bytes = read_mem(c, msg_ptr, len)?;
        let contract = frame(c)?.contract;
        c.data_mut()
            .host
            .log(contract, &String::from_utf8_lossy(&bytes));
        Ok(())
    }

    pub fn blake2b_256<H: Host>(
        c: &mut Caller<'_, Ctx<H>>,
        per_byte: u64,
        ptr: u32,
        len: u32,
        out_ptr: u32,
    ) -> R<()> {
        let max = c.data().config.max_data_bytes;
        check_len(len, max, "hash input")?;
        charge(c, per_byte * len as u64)?;
        let data = read_mem(c, ptr, len)?;
        let hash = wisp_core::blake2b_256(&data);
        write_mem(c, out_ptr, &hash.0)
    }

    pub fn gas_left<H: Host>(c: &mut Caller<'_, Ctx<H>>, _: u64) -> R<u64> {
        c.get_fuel()
    }
}

macro_rules! ret_ty {
    () => {
        ()
    };
    ($t:ty) => {
        $t
    };
}

macro_rules! register_host_functions {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; base = $base:expr, per_byte = $per:expr; )*) => {
        /// Defines every ABI function in `linker`; the base gas of each is charged here, in one
        /// place, before its body runs.
        fn register_host_functions<H: Host>(linker: &mut Linker<Ctx<H>>) -> Result<(), wasmi::errors::LinkerError> {
            $(
                linker.func_wrap(
                    IMPORT_MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, Ctx<H>>, $($arg: $ty),*| -> Result<ret_ty!($($ret)?), Error> {
                        charge(&mut caller, $base)?;
                        imp::$name(&mut caller, $per, $($arg),*)
                    },
                )?;
            )*
            Ok(())
        }
    };
}
wisp_core::with_host_functions!(register_host_functions);

/// The VM for host type `H`: one wasmi engine, one linker, shared by every call.
pub struct Vm<H: Host> {
    engine: Engine,
    linker: Arc<Linker<Ctx<H>>>,
    config: VmConfig,
}

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
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &VmConfig {
        &self.config
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
        let compiled = Module::new(&self.engine, module.bytes())
            .map_err(|e| VmError::InvalidModule(format!("compilation failed: {e}")))?;
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
            }),
        })
    }

    /// Runs `invocation` with at most `gas_limit` gas, returning the host and the outcome. The
    /// host's journal holds the call's effects; on failure the caller rolls them back.
    ///
    /// A contract's `init` entry point is refused here (request-level `unauthorized`), as it is
    /// in cross-contract calls: only [`Vm::invoke_init`], which deploy uses, runs it.
    pub fn invoke(&self, host: H, invocation: Invocation, gas_limit: u64) -> (H, Outcome) {
        self.run(host, invocation, gas_limit, Door::Call)
    }

    /// Runs a freshly deployed contract's `init` entry point (`invocation.function` must be the
    /// hname of `init`); the chain's deploy is the only caller. Otherwise as [`Vm::invoke`].
    pub fn invoke_init(&self, host: H, invocation: Invocation, gas_limit: u64) -> (H, Outcome) {
        self.run(host, invocation, gas_limit, Door::Deploy)
    }

    fn run(&self, host: H, invocation: Invocation, gas_limit: u64, door: Door) -> (H, Outcome) {
        let limits = RequestLimits {
            store: StoreLimitsBuilder::new()
                .memory_size(self.config.max_memory_bytes)
                .table_elements(self.config.validation.max_table_elements as usize)
                .instances(self.config.max_instances + 1)
                .memories(self.config.max_instances + 1)
                .tables(self.config.max_instances + 1)
                .trap_on_grow_failure(true)
                .build(),
            memory_bytes: 0,
            max_memory_bytes: self.config.max_request_memory_bytes,
        };
        let ctx = Ctx {
            host,
            frames: Vec::new(),
            register: Vec::new(),
            linker: self.linker.clone(),
            limits,
            config: self.config,
            instances: 0,
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|ctx| &mut ctx.limits);
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
        let ctx = store.into_data();
        (ctx.host, Outcome { result, gas_used })
    }
}
