//! Wisp's gas schedule, part of the protocol.
//!
//! **Instruction gas** is wasmi =2.0.0 fuel with the cost table [`instruction_costs`] and
//! `CompilationMode::Eager`. The charging rule, as Wisp specifies it (from wasmi 2.0.0's
//! translator; see `docs/gas.md`):
//! - A *fuel block* opens at function entry, at each `loop` header (charged on every iteration),
//!   at the then-arm of an `if` whose condition is not a translation-time constant, at each
//!   `else` arm, and (cost 1) at the implicit else of an `if` with results and no `else`.
//! - Each operator is charged to the fuel block innermost when it is read, including dead code
//!   and code after a nested block's `end`; a block costs `1 + Σ cost(op)` charged on entry.
//! - `memory.copy/fill/init` add `floor(len / 64)`; `memory.grow` adds 1024 per page granted.
//! - Out of gas: the request's whole budget is used.
//!
//! [`crate::fuel_reference`] implements the same rule independently of wasmi.
//!
//! **Host gas**: each host function charges `base + per_byte × bytes` from the ABI table
//! (`wisp_core::abi`) before doing its work.
//!
//! **Request gas**: [`REQUEST_BASE_GAS`] per request, plus [`instantiate_gas`] per contract
//! instance created (by the module's size, functions, globals, data and initial memory).

use wasmi::OperatorCost;

/// Gas every request pays before any code runs (decoding, signature or L1 bookkeeping).
pub const REQUEST_BASE_GAS: u64 = 10_000;

/// Gas per contract instance created (top-level call or cross-contract call), covering the
/// instance's fixed set-up and data-segment initialisation.
pub const INSTANTIATE_GAS: u64 = 5_000;

/// Gas per 64 KiB page of a module's initial memory, charged on every instantiation (the
/// engine allocates and zeroes it); the same rate `memory.grow` charges per page granted.
pub const INITIAL_PAGE_GAS: u64 = 1_024;

/// Gas per byte of module, charged on every instantiation: what compiling it again costs when
/// it is not (or no longer) in the node's cache, so gas never depends on the cache (NEAR
/// charges contract loading per byte on every call for the same reason).
pub const CODE_LOAD_GAS_PER_BYTE: u64 = 1;

/// Gas per function defined, charged on every instantiation (wasmi makes a handle for each).
pub const INSTANTIATE_FUNCTION_GAS: u64 = 4;

/// Gas per global defined, charged on every instantiation.
pub const INSTANTIATE_GLOBAL_GAS: u64 = 4;

/// Gas of instantiating a module of shape `m`, charged before the instance is created, the same
/// whether or not the module is cached:
///
/// `f(m) = INSTANTIATE_GAS + INITIAL_PAGE_GAS·pages + CODE_LOAD_GAS_PER_BYTE·code_bytes
///        + INSTANTIATE_FUNCTION_GAS·functions + INSTANTIATE_GLOBAL_GAS·globals
///        + ⌊data_bytes / 64⌋ + table_elements` (saturating).
pub fn instantiate_gas(m: &crate::ModuleShape) -> u64 {
    INSTANTIATE_GAS
        .saturating_add(INITIAL_PAGE_GAS.saturating_mul(m.initial_pages))
        .saturating_add(CODE_LOAD_GAS_PER_BYTE.saturating_mul(m.code_bytes))
        .saturating_add(INSTANTIATE_FUNCTION_GAS.saturating_mul(m.functions))
        .saturating_add(INSTANTIATE_GLOBAL_GAS.saturating_mul(m.globals))
        .saturating_add(m.data_bytes / 64)
        .saturating_add(m.table_elements)
}

/// Gas charged for deploying code, per byte of module (validation and compilation).
pub const DEPLOY_GAS_PER_BYTE: u64 = 20;

/// Wisp's instruction cost table: 0 for `nop`, `drop`, `block`, `loop`, `unreachable`,
/// `return`, `else`, `end`; 1 for every other operator (wasmi 2.0.0's defaults, fixed here as
/// protocol).
pub fn instruction_costs() -> OperatorCost {
    OperatorCost::default()
}
