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
//! **Request gas**: [`REQUEST_BASE_GAS`] per request, plus [`INSTANTIATE_GAS`] per contract
//! instance created.

use wasmi::OperatorCost;

/// Gas every request pays before any code runs (decoding, signature or L1 bookkeeping).
pub const REQUEST_BASE_GAS: u64 = 10_000;

/// Gas per contract instance created (top-level call or cross-contract call), covering memory
/// allocation and data-segment initialisation.
pub const INSTANTIATE_GAS: u64 = 5_000;

/// Gas charged for deploying code, per byte of module (validation and compilation).
pub const DEPLOY_GAS_PER_BYTE: u64 = 20;

/// Wisp's instruction cost table: 0 for `nop`, `drop`, `block`, `loop`, `unreachable`,
/// `return`, `else`, `end`; 1 for every other operator (wasmi 2.0.0's defaults, fixed here as
/// protocol).
pub fn instruction_costs() -> OperatorCost {
    OperatorCost::default()
}
