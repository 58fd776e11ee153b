//! What the typed clients `#[contract]` generates stand on.
//!
//! For a contract module `token`, the macro writes `TokenClient<B = Env>`: one method per
//! `#[entry]` and `#[view]` function, with the function's own parameter and return types, so a
//! caller names no function as a string and encodes nothing by hand (as Soroban's generated
//! clients do). A client sends through a [`Backend`]:
//! - [`Env`], the default, inside a contract: `TokenClient::new(token).transfer(&to, amount)` is
//!   a cross-contract call (`env::call`), atomic with the caller;
//! - `wisp_test::Caller` in tests on the in-process harness:
//!   `TokenClient::with_backend(chain.caller(&alice), token)`.
//!
//! Entry methods return `Result<R, ClientError<E, B::Failure>>` with `E` the callee's
//! `#[errors]` enum ([`NoErrors`] if it has none). `init` and `migrate` get no methods: only
//! `root` runs them.
//!
//! To use another contract's client, depend on its crate with `features = ["library"]`: a
//! contract crate declares `[features] library = []`, and with it compiles without its own wasm
//! exports and interface section, which would otherwise clash with the caller's.

use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use wisp_core::{ErrorLevel, Hname};

use crate::env::{self, CallError};
use crate::ContractError;

/// Where a generated client's calls go: a contract's host ([`Env`]) or a test harness.
pub trait Backend {
    /// What a failed call reports: [`CallError`] inside a contract; the harness's failure (typed
    /// error and receipt) in tests.
    type Failure;

    /// Calls entry point `function` of `contract` with borsh `args` (a tuple of its
    /// parameters), attaching `transfer_sompi` base tokens; returns the callee's return bytes.
    ///
    /// # Errors
    /// `Self::Failure` if the call failed (its effects are undone).
    fn call(
        &mut self,
        contract: Hname,
        function: &str,
        args: &[u8],
        transfer_sompi: u64,
    ) -> Result<Vec<u8>, Self::Failure>;

    /// Calls view `function` of `contract` with borsh `args`; returns its return bytes.
    ///
    /// # Errors
    /// `Self::Failure` if the view failed.
    fn view(&self, contract: Hname, function: &str, args: &[u8]) -> Result<Vec<u8>, Self::Failure>;

    /// The contract-level error code of `failure`, if the callee failed with one (rather than
    /// running out of gas, trapping or being refused).
    fn contract_code(failure: &Self::Failure) -> Option<u32>;
}

/// The backend of clients used inside a contract: calls go through the host, as [`env::call`]
/// and [`env::view`] do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Env;

impl Backend for Env {
    type Failure = CallError;

    fn call(
        &mut self,
        contract: Hname,
        function: &str,
        args: &[u8],
        transfer_sompi: u64,
    ) -> Result<Vec<u8>, CallError> {
        env::call_bytes(contract, function, args, transfer_sompi)
    }

    fn view(&self, contract: Hname, function: &str, args: &[u8]) -> Result<Vec<u8>, CallError> {
        env::view_bytes(contract, function, args)
    }

    fn contract_code(failure: &CallError) -> Option<u32> {
        match failure {
            CallError::Failed(e) if e.level == ErrorLevel::Contract => Some(e.code),
            _ => None,
        }
    }
}

/// Why a generated client's call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError<E, F> {
    /// The callee failed with one of its declared errors; `failure` is what the backend reported
    /// (in tests, with the receipt).
    Contract {
        /// The callee's typed error.
        error: E,
        /// The backend's report.
        failure: F,
    },
    /// The call failed otherwise (gas, a trap, a refused request, an undeclared error code).
    Failed(F),
    /// The callee returned bytes that do not decode as the function's return type: the
    /// contract at that hname is not the one this client was generated for.
    BadReturn,
}

impl<E, F> ClientError<E, F> {
    /// The callee's typed error, if it failed with one.
    pub fn contract_error(&self) -> Option<&E> {
        match self {
            ClientError::Contract { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The backend's report of the failure (`None` for [`ClientError::BadReturn`]).
    pub fn failure(&self) -> Option<&F> {
        match self {
            ClientError::Contract { failure, .. } | ClientError::Failed(failure) => Some(failure),
            ClientError::BadReturn => None,
        }
    }
}

/// The error type of a contract without an `#[errors]` enum: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoErrors {}

impl ContractError for NoErrors {
    fn code(&self) -> u32 {
        match *self {}
    }
    fn message(&self) -> &str {
        match *self {}
    }
}

/// Borsh-encodes a client's argument tuple.
#[doc(hidden)]
pub fn encode_args<A: BorshSerialize>(args: &A) -> Vec<u8> {
    borsh::to_vec(args).unwrap_or_default()
}

/// Turns a backend's answer into a client's: decodes the return value, maps a declared error
/// code to `E`.
#[doc(hidden)]
pub fn finish<R: BorshDeserialize, E: ContractError, B: Backend>(
    answer: Result<Vec<u8>, B::Failure>,
) -> Result<R, ClientError<E, B::Failure>> {
    match answer {
        Ok(bytes) => borsh::from_slice(&bytes).map_err(|_| ClientError::BadReturn),
        Err(failure) => match B::contract_code(&failure).and_then(E::from_code) {
            Some(error) => Err(ClientError::Contract { error, failure }),
            None => Err(ClientError::Failed(failure)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use wisp_core::ReceiptError;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Demo {
        Low = 1,
        High = 2,
    }

    impl ContractError for Demo {
        fn code(&self) -> u32 {
            *self as u32
        }
        fn message(&self) -> &str {
            "demo"
        }
        fn from_code(code: u32) -> Option<Self> {
            match code {
                1 => Some(Demo::Low),
                2 => Some(Demo::High),
                _ => None,
            }
        }
    }

    fn failed(level: ErrorLevel, code: u32) -> Result<Vec<u8>, CallError> {
        Err(CallError::Failed(ReceiptError {
            level,
            code,
            message: "m".to_string(),
        }))
    }

    #[test]
    fn answers_map_to_values_typed_errors_and_failures() {
        let ok: Result<u64, ClientError<Demo, CallError>> =
            finish::<u64, Demo, Env>(Ok(borsh::to_vec(&7u64).unwrap()));
        assert_eq!(ok, Ok(7));
        // Bytes of the wrong shape: the contract is not the one the client was made for.
        let bad: Result<u64, ClientError<Demo, CallError>> =
            finish::<u64, Demo, Env>(Ok(alloc::vec![1, 2, 3]));
        assert_eq!(bad, Err(ClientError::BadReturn));
        let typed = finish::<u64, Demo, Env>(failed(ErrorLevel::Contract, 2)).unwrap_err();
        assert_eq!(typed.contract_error(), Some(&Demo::High));
        assert!(typed.failure().is_some());
        // A code the enum does not declare, and the same code at another level, stay failures.
        let undeclared = finish::<u64, Demo, Env>(failed(ErrorLevel::Contract, 9)).unwrap_err();
        assert!(matches!(undeclared, ClientError::Failed(_)));
        let vm = finish::<u64, Demo, Env>(failed(ErrorLevel::Vm, 1)).unwrap_err();
        assert!(matches!(vm, ClientError::Failed(_)));
        let none = finish::<u64, NoErrors, Env>(failed(ErrorLevel::Contract, 1)).unwrap_err();
        assert!(matches!(none, ClientError::Failed(_)));
    }
}
