//! Failures: host errors carried through wasmi, and the mapping of every wasmi error to a
//! receipt error with a stable code and a deterministic message.

use wasmi::{Error, TrapCode};
use wisp_core::{ErrorLevel, ReceiptError, RequestErrorCode, VmErrorCode};

/// A failure raised by a host function, carried through wasmi as a host error.
#[derive(Debug)]
pub(crate) struct Failure(pub ReceiptError);

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

pub(crate) fn vm_error(code: VmErrorCode, message: impl Into<String>) -> ReceiptError {
    ReceiptError {
        level: ErrorLevel::Vm,
        code: code.code(),
        message: message.into(),
    }
}

pub(crate) fn request_error(code: RequestErrorCode, message: impl Into<String>) -> ReceiptError {
    ReceiptError {
        level: ErrorLevel::Request,
        code: code.code(),
        message: message.into(),
    }
}

pub(crate) fn fail(e: ReceiptError) -> Error {
    Error::host(Failure(e))
}

/// Maps any wasmi error to a receipt error with a stable code and a message that is the same
/// on every machine and every run: receipts are hashed into the block, so no text of wasmi's
/// that may carry process-local details (store ids, addresses) ever reaches one.
pub(crate) fn classify(e: Error) -> ReceiptError {
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
