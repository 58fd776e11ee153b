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
//! - `memory.copy/fill/init` add `floor(len / 32)`; `memory.grow` adds 2048 per page granted
//!   ([`BYTES_COPIED_PER_GAS`]), and Wisp charges [`GROWN_PAGE_GAS`] more per page granted at
//!   the request's next host call, cross-contract call or return.
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

/// Gas per 64 KiB page of a module's initial memory (1 gas per byte), charged on every
/// instantiation: the engine allocates and zeroes it, and memory that stays live for the whole
/// request is fresh memory the host must fault in, measured at up to ~37 µs per page on the
/// reference machine (`docs/gas-calibration.md`; 16,384 before that measurement).
pub const INITIAL_PAGE_GAS: u64 = 65_536;

/// Gas per 64 KiB page that `memory.grow` grants, charged by Wisp on top of the
/// `65536 / BYTES_COPIED_PER_GAS` (2,048) wasmi charges with the instruction, so that a grown
/// page costs [`INITIAL_PAGE_GAS`] like a page of initial memory: both are fresh memory the
/// node allocates, zeroes and faults in (and growing may copy the memory to a larger
/// allocation). Measured at 26.9 µs a grown page, 46× the median time per gas, when a grown
/// page cost only 2,049 gas (`docs/gas-calibration.md` at 1e0d572).
///
/// Charged when the request next calls a host function, starts a cross-contract call or
/// returns from a call: a grow is refused, and the request ends out of gas, if the gas owed
/// for the pages grown since then would pass the gas left at that last point, so the node
/// never grows memory that the request cannot pay for.
pub const GROWN_PAGE_GAS: u64 = INITIAL_PAGE_GAS - 65_536 / BYTES_COPIED_PER_GAS as u64;

/// Bytes that `memory.grow`, `memory.copy`, `memory.fill` and `memory.init` (and wasmi's
/// internal value copies) move per unit of gas; wasmi's default is 64, which leaves
/// `memory.grow` underpriced ~4× on the reference machine (`docs/gas-calibration.md`). A
/// `memory.grow` of one page costs 2,048 gas plus its instruction cost.
pub const BYTES_COPIED_PER_GAS: u32 = 32;

/// wasmi's dynamic fuel costs under Wisp's schedule: [`BYTES_COPIED_PER_GAS`]; the translation
/// and validation costs are wasmi's defaults and unused (Wisp compiles eagerly and charges
/// compilation itself, [`compile_gas`]).
pub fn dynamic_costs() -> wasmi::CustomFuelCosts {
    wasmi::CustomFuelCosts {
        bytes_copied_per_fuel: BYTES_COPIED_PER_GAS,
        fuel_per_bytes_translated: 7,
        fuel_per_bytes_validated: 2,
    }
}

/// Gas per function defined, charged on every instantiation (wasmi makes a handle for each).
pub const INSTANTIATE_FUNCTION_GAS: u64 = 30;

/// Gas per global defined, charged on every instantiation.
pub const INSTANTIATE_GLOBAL_GAS: u64 = 4;

/// Gas of instantiating a module of shape `m`, charged before the instance is created, the same
/// whether or not the module is cached:
///
/// `f(m) = INSTANTIATE_GAS + INITIAL_PAGE_GAS·pages + INSTANTIATE_FUNCTION_GAS·functions
///        + INSTANTIATE_GLOBAL_GAS·globals + ⌊data_bytes / 64⌋ + table_elements` (saturating);
/// the block's first instantiation of a code adds [`compile_gas`] of its size.
pub fn instantiate_gas(m: &crate::ModuleShape) -> u64 {
    INSTANTIATE_GAS
        .saturating_add(INITIAL_PAGE_GAS.saturating_mul(m.initial_pages))
        .saturating_add(INSTANTIATE_FUNCTION_GAS.saturating_mul(m.functions))
        .saturating_add(INSTANTIATE_GLOBAL_GAS.saturating_mul(m.globals))
        .saturating_add(m.data_bytes / 64)
        .saturating_add(m.table_elements)
}

/// Gas charged for deploying or storing code, per byte of module (validation and
/// compilation; measured at ~53 ns per byte, `docs/gas-calibration.md`).
pub const DEPLOY_GAS_PER_BYTE: u64 = 40;

/// Gas per byte of module charged the first time a block instantiates that code: what compiling
/// it costs when the node does not have it compiled. Charged by the block's own history (first
/// use in the block), never by the node's cache, so every node charges the same.
pub const COMPILE_GAS_PER_BYTE: u64 = 40;

/// Gas of an operator `call` or `call_indirect`: a call and its return cost wasmi about as much
/// as 15 to 30 simple instructions, zero-filling locals included (`docs/gas-calibration.md`).
pub const CALL_GAS: u8 = 16;

/// [`COMPILE_GAS_PER_BYTE`] × `code_bytes`, saturating.
pub fn compile_gas(code_bytes: u64) -> u64 {
    COMPILE_GAS_PER_BYTE.saturating_mul(code_bytes)
}

/// Wisp's instruction cost table: 0 for `nop`, `drop`, `block`, `loop`, `unreachable`,
/// `return`, `else`, `end`; [`CALL_GAS`] for `call` and `call_indirect`; 1 for every other
/// operator (wasmi 2.0.0's defaults but for calls, fixed here as protocol).
pub fn instruction_costs() -> OperatorCost {
    OperatorCost {
        call: CALL_GAS,
        call_indirect: CALL_GAS,
        ..OperatorCost::default()
    }
}
