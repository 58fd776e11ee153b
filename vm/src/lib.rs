//! The Wisp VM: validates contract modules, compiles them with wasmi (pinned, eager), and runs
//! entry points and views with deterministic gas, dispatching the host ABI of
//! `wisp_core::abi` to a [`Host`] that the chain runtime implements.
//!
//! Invariants:
//! - A [`PreparedModule`] can only be made from a [`ValidatedModule`], which only
//!   [`validate`] makes: the engine never sees unchecked bytes.
//! - Gas = wasmi fuel: instruction costs follow [`gas::instruction_costs`], host calls charge
//!   their ABI table cost in one place before doing any work. The same invocation with the same
//!   host answers uses the same gas, on every machine.
//! - Any failure of a call (trap, limit, abort, host refusal) becomes a [`ReceiptError`] with a
//!   level and a stable code; nothing panics on contract input.

pub mod crypto;
mod dispatch;
pub mod fuel_reference;
pub mod gas;
mod host;
mod limits;
mod reuse;
mod runtime;
mod trap;
mod validate;

pub use host::{BlockContext, Checkpoint, CoreCall, Host, SpecialEntry};
pub use runtime::{
    Invocation, Outcome, PoolStats, PreparedModule, Vm, VmConfig, POOL_STORES, POOL_STORE_BYTES,
    POOL_STORE_INSTANCES,
};
pub use validate::{validate, ModuleShape, ValidatedModule, ValidationLimits};
pub use wisp_core::ReceiptError;

/// Errors of this crate that are not execution outcomes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VmError {
    /// The module failed validation; the message says which rule it broke.
    #[error("invalid module: {0}")]
    InvalidModule(String),
}

/// Result alias of this crate.
pub type Result<T, E = VmError> = std::result::Result<T, E>;
