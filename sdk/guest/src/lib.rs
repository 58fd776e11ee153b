//! The Wisp SDK for contract authors: declare entry points and views as ordinary Rust functions
//! inside a `#[contract]` module, keep typed state in [`storage::Item`] and [`storage::Map`], read
//! who called and what was attached with [`env`], emit events, call other contracts, and fail
//! with stable error codes.
//!
//! A contract crate is a `cdylib` built for `wasm32-unknown-unknown` (`wisp build`), starting
//! with `#![cfg_attr(target_arch = "wasm32", no_std)]`. Each call runs in a fresh instance, so the
//! SDK's allocator never frees (a bump allocator over linear memory).
//!
//! ```ignore
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//! #[wisp_sdk::contract]
//! mod counter {
//!     use wisp_sdk::prelude::*;
//!     const COUNT: Item<u64> = Item::new("count");
//!
//!     #[init]
//!     fn init() {}
//!     /// Adds `by` to the counter.
//!     #[entry]
//!     fn bump(by: u64) -> u64 { let n = COUNT.get().unwrap_or(0) + by; COUNT.set(&n); n }
//!     #[view]
//!     fn count() -> u64 { COUNT.get().unwrap_or(0) }
//! }
//! ```
#![no_std]

extern crate alloc;

pub mod client;
pub mod env;
pub mod storage;
#[doc(hidden)]
pub mod sys;
#[cfg(target_arch = "wasm32")]
mod wasm_runtime;

pub use borsh;
pub use wisp_core::{
    AgentId, ChainId, ContractId, Hash32, Hname, ReceiptError, MIN_WITHDRAWAL_SOMPI,
    WITHDRAWAL_FEE_SOMPI,
};
pub use wisp_sdk_macros::contract;

/// The usual imports of a contract module.
pub mod prelude {
    pub use crate::env::{self, CallError};
    pub use crate::storage::{Item, Map};
    pub use crate::{require, AgentId, ContractError, Hash32, Hname};
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use borsh::{BorshDeserialize, BorshSerialize};
}

/// A contract's own error: a stable code (≥ 1; 0 is a panic) and a message. `#[errors]` enums in
/// a `#[contract]` module implement it, numbering variants by their discriminants.
pub trait ContractError {
    /// The stable contract-level code.
    fn code(&self) -> u32;
    /// A human message.
    fn message(&self) -> &str;
    /// The error with stable code `code`, if this type has one: how a generated client turns a
    /// callee's failure back into its typed error. `#[errors]` enums implement it; the default
    /// knows no codes.
    fn from_code(code: u32) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = code;
        None
    }
}

/// An event type; `#[event]` structs in a `#[contract]` module implement it.
pub trait Event: borsh::BorshSerialize {
    /// The topic: the struct's name.
    const TOPIC: &'static str;
}

/// Fails the call with `$err` (a [`ContractError`]) unless `$cond` holds.
#[macro_export]
macro_rules! require {
    ($cond:expr, $err:expr) => {
        if !$cond {
            return ::core::result::Result::Err($err);
        }
    };
}

pub use wisp_core::CONTRACT_BAD_ARGUMENTS_CODE as BAD_ARGUMENTS_CODE;

/// What an entry point may return: `()`, a borsh value, or `Result` of either with a
/// [`ContractError`].
#[doc(hidden)]
pub trait IntoReturn {
    fn into_return(self);
}

impl IntoReturn for () {
    fn into_return(self) {}
}

impl<T: borsh::BorshSerialize, E: ContractError> IntoReturn for Result<T, E> {
    fn into_return(self) {
        match self {
            Ok(v) => env::set_return(&v),
            Err(e) => env::abort(e.code(), e.message()),
        }
    }
}

macro_rules! plain_returns {
    ($($t:ty),*) => {$(
        impl IntoReturn for $t {
            fn into_return(self) { env::set_return(&self) }
        }
    )*};
}
plain_returns!(
    bool,
    u8,
    u16,
    u32,
    u64,
    u128,
    i64,
    i128,
    alloc::string::String,
    AgentId,
    Hname,
    Hash32
);
impl<T: borsh::BorshSerialize> IntoReturn for alloc::vec::Vec<T> {
    fn into_return(self) {
        env::set_return(&self)
    }
}
impl<T: borsh::BorshSerialize> IntoReturn for Option<T> {
    fn into_return(self) {
        env::set_return(&self)
    }
}
impl<A: borsh::BorshSerialize, B: borsh::BorshSerialize> IntoReturn for (A, B) {
    fn into_return(self) {
        env::set_return(&self)
    }
}
impl<A: borsh::BorshSerialize, B: borsh::BorshSerialize, C: borsh::BorshSerialize> IntoReturn
    for (A, B, C)
{
    fn into_return(self) {
        env::set_return(&self)
    }
}

/// Decodes the call's arguments as `T`, aborting with [`BAD_ARGUMENTS_CODE`] if they do not fit.
#[doc(hidden)]
pub fn decode_args<T: borsh::BorshDeserialize>() -> T {
    let input = env::input();
    match borsh::from_slice(&input) {
        Ok(v) => v,
        Err(_) => env::abort(
            BAD_ARGUMENTS_CODE,
            "arguments do not match the parameter types",
        ),
    }
}
