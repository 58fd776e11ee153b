//! Deploy-time validation of contract modules (docs/design.md §4): only Wisp ABI imports with the
//! right signatures, no floats, no SIMD, no threads, one bounded memory, at most one bounded
//! table, no start function, a size limit, entry points exported as `ep:<name>` /
//! `view:<name>`.
//!
//! wasmi validates the module again when it compiles it (with floats and SIMD disabled); this pass
//! adds Wisp's policy and gives errors a person can act on. It also closes a gap in wasmparser's
//! float gate: float conversions in dead code.

use crate::VmError;
use wasmparser::{CompositeInnerType, ExternalKind, Operator, Parser, Payload, TypeRef, ValType};
use wisp_core::abi::{host_fn, IMPORT_MODULE};
use wisp_core::interface::{ContractInterface, INTERFACE_SECTION};
use wisp_core::{blake2b_256, Hash32};

/// Limits a module must respect; part of the chain's protocol parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct ValidationLimits {
    /// Largest module, bytes.
    pub max_module_bytes: usize,
    /// Largest initial (and declared maximum, if any) memory, in 64 KiB pages.
    pub max_memory_pages: u64,
    /// Largest table, elements.
    pub max_table_elements: u64,
    /// Most functions defined.
    pub max_functions: u32,
    /// Most locals one function declares (parameters not counted). wasmi zero-fills them on
    /// every call without fuel, so the cap bounds that unpriced work; the example contracts
    /// use at most 50.
    pub max_locals_per_function: u32,
    /// Most globals defined (each costs work at every instantiation).
    pub max_globals: u32,
    /// Most data segments.
    pub max_data_segments: u32,
    /// Most element segments.
    pub max_element_segments: u32,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits {
            max_module_bytes: 512 * 1024,
            max_memory_pages: 256,
            max_table_elements: 4096,
            max_functions: 10_000,
            max_locals_per_function: 128,
            max_globals: 256,
            max_data_segments: 256,
            max_element_segments: 256,
        }
    }
}

/// The size and shape of a module: what instantiating it costs (see
/// [`crate::gas::instantiate_gas`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleShape {
    /// Module size, bytes.
    pub code_bytes: u64,
    /// Functions defined (imports not counted).
    pub functions: u64,
    /// Globals defined.
    pub globals: u64,
    /// Bytes of all data segments.
    pub data_bytes: u64,
    /// Initial pages of the memory.
    pub initial_pages: u64,
    /// Initial elements of all tables.
    pub table_elements: u64,
}

/// A module that passed [`validate`]; only `validate` can make one.
#[derive(Clone, Debug)]
pub struct ValidatedModule {
    bytes: Vec<u8>,
    code_hash: Hash32,
    interface: Option<ContractInterface>,
    shape: ModuleShape,
}

impl ValidatedModule {
    /// The module bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// blake2b-256 of the bytes: the code's id in the blob registry.
    pub fn code_hash(&self) -> Hash32 {
        self.code_hash
    }
    /// The interface from the `wisp:interface` custom section, if the module has one.
    pub fn interface(&self) -> Option<&ContractInterface> {
        self.interface.as_ref()
    }
    /// Its size and shape.
    pub fn shape(&self) -> ModuleShape {
        self.shape
    }
}

fn invalid(msg: impl Into<String>) -> VmError {
    VmError::InvalidModule(msg.into())
}

fn is_float(t: ValType) -> bool {
    matches!(t, ValType::F32 | ValType::F64 | ValType::V128)
}

macro_rules! define_op_policy {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// `Err(operator name)` if the operator is outside Wisp's instruction set: the MVP,
        /// sign-extension, bulk-memory and reference-types proposals, minus every float operator.
        fn op_policy(op: &Operator) -> Result<(), &'static str> {
            match op {
                $( Operator::$op { .. } => {
                    let (proposal, name) = (stringify!($proposal), stringify!($op));
                    let allowed = matches!(proposal, "mvp" | "sign_extension" | "bulk_memory" | "reference_types");
                    if !allowed || name.contains("F32") || name.contains("F64") { Err(name) } else { Ok(()) }
                } )*
                #[allow(unreachable_patterns)]
                _ => Err("unknown operator"),
            }
        }
    };
}
wasmparser::for_each_operator!(define_op_policy);

fn wasm_type_of(rust: &str) -> Option<ValType> {
    match rust.trim() {
        "u32" | "i32" => Some(ValType::I32),
        "u64" | "i64" => Some(ValType::I64),
        _ => None,
    }
}

/// The wasm signature the ABI table gives a host function.
fn abi_signature(name: &str) -> Option<(Vec<ValType>, Vec<ValType>)> {
    let spec = host_fn(name)?;
    let params = if spec.params.trim().is_empty() {
        Vec::new()
    } else {
        spec.params
            .split(',')
            .map(|p| p.split(':').nth(1).and_then(wasm_type_of))
            .collect::<Option<Vec<_>>>()?
    };
    let results = if spec.returns.is_empty() {
        Vec::new()
    } else {
        vec![wasm_type_of(spec.returns)?]
    };
    Some((params, results))
}

/// Checks `bytes` against Wisp's module policy and `limits`.
///
/// # Errors
/// [`VmError::InvalidModule`] naming the first rule broken: size, malformed binary, an import
/// outside the Wisp ABI or with the wrong signature, a float or SIMD type or operator, memory or
/// table limits, a start function, a missing `memory` or `ep:init` export, or an interface
/// section that is not valid JSON.
pub fn validate(bytes: &[u8], limits: &ValidationLimits) -> Result<ValidatedModule, VmError> {
    if bytes.len() > limits.max_module_bytes {
        return Err(invalid(format!(
            "module is {} bytes; the limit is {} (build with `wisp build`, which optimises for size)",
            bytes.len(),
            limits.max_module_bytes
        )));
    }
    let mut func_types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut memories = 0u32;
    let mut exports_memory = false;
    let mut has_init = false;
    let mut interface = None;
    let mut shape = ModuleShape {
        code_bytes: bytes.len() as u64,
        ..ModuleShape::default()
    };
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| invalid(format!("not a valid WebAssembly binary: {e}")))?;
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader {
                    let group = group.map_err(|e| invalid(e.to_string()))?;
                    for sub in group.types() {
                        let CompositeInnerType::Func(f) = &sub.composite_type.inner else {
                            return Err(invalid("only function types are allowed (no GC types)"));
                        };
                        if f.params().iter().chain(f.results()).any(|t| is_float(*t)) {
                            return Err(invalid("a function signature uses floating point or SIMD types; contracts must be deterministic integer code"));
                        }
                        func_types.push((f.params().to_vec(), f.results().to_vec()));
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(|e| invalid(e.to_string()))?;
                    let TypeRef::Func(type_index) = import.ty else {
                        return Err(invalid(format!("import `{}.{}` is not a function; contracts import only Wisp host functions", import.module, import.name)));
                    };
                    if import.module != IMPORT_MODULE {
                        return Err(invalid(format!("import `{}.{}` is not from the `wisp` module; contracts may import only the Wisp host ABI", import.module, import.name)));
                    }
                    let Some(expected) = abi_signature(import.name) else {
                        return Err(invalid(format!(
                            "`wisp.{}` is not a Wisp host function (see docs/host-abi.md)",
                            import.name
                        )));
                    };
                    let actual = func_types
                        .get(type_index as usize)
                        .ok_or_else(|| invalid("import refers to a missing type"))?;
                    if *actual != expected {
                        return Err(invalid(format!("`wisp.{}` is imported with signature {:?} -> {:?}; the ABI says {:?} -> {:?}", import.name, actual.0, actual.1, expected.0, expected.1)));
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                let functions = reader.count();
                shape.functions = u64::from(functions);
                if functions > limits.max_functions {
                    return Err(invalid(format!(
                        "{functions} functions; the limit is {}",
                        limits.max_functions
                    )));
                }
            }
            Payload::TableSection(reader) => {
                // One table is all rustc emits (for indirect calls); more would only add
                // per-instance work, and the instance pool counts on one per instance.
                if reader.count() > 1 {
                    return Err(invalid(format!(
                        "{} tables; a contract may define at most one table",
                        reader.count()
                    )));
                }
                for table in reader {
                    let table = table.map_err(|e| invalid(e.to_string()))?;
                    let size = table
                        .ty
                        .maximum
                        .unwrap_or(table.ty.initial)
                        .max(table.ty.initial);
                    shape.table_elements = shape.table_elements.saturating_add(table.ty.initial);
                    if table.ty.initial > limits.max_table_elements
                        || size > limits.max_table_elements
                    {
                        return Err(invalid(format!(
                            "a table of {size} elements; the limit is {}",
                            limits.max_table_elements
                        )));
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(|e| invalid(e.to_string()))?;
                    memories += 1;
                    if memory.memory64 || memory.shared {
                        return Err(invalid(
                            "64-bit and shared (threads) memories are not allowed",
                        ));
                    }
                    shape.initial_pages = memory.initial;
                    if memory.initial > limits.max_memory_pages {
                        return Err(invalid(format!(
                            "initial memory of {} pages; the limit is {} pages ({} MiB)",
                            memory.initial,
                            limits.max_memory_pages,
                            limits.max_memory_pages / 16
                        )));
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                if reader.count() > limits.max_globals {
                    return Err(invalid(format!(
                        "{} globals; the limit is {}",
                        reader.count(),
                        limits.max_globals
                    )));
                }
                shape.globals = u64::from(reader.count());
                for global in reader {
                    let global = global.map_err(|e| invalid(e.to_string()))?;
                    if is_float(global.ty.content_type) {
                        return Err(invalid("a global uses floating point or SIMD types"));
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| invalid(e.to_string()))?;
                    match export.kind {
                        ExternalKind::Memory if export.name == "memory" => exports_memory = true,
                        ExternalKind::Func if export.name == "ep:init" => has_init = true,
                        _ => {}
                    }
                }
            }
            Payload::StartSection { .. } => {
                return Err(invalid(
                    "start functions are not allowed; put set-up code in `init`",
                ));
            }
            Payload::DataSection(reader) => {
                if reader.count() > limits.max_data_segments {
                    return Err(invalid(format!(
                        "{} data segments; the limit is {}",
                        reader.count(),
                        limits.max_data_segments
                    )));
                }
                for data in reader {
                    let data = data.map_err(|e| invalid(e.to_string()))?;
                    shape.data_bytes = shape.data_bytes.saturating_add(data.data.len() as u64);
                }
            }
            Payload::ElementSection(reader) if reader.count() > limits.max_element_segments => {
                return Err(invalid(format!(
                    "{} element segments; the limit is {}",
                    reader.count(),
                    limits.max_element_segments
                )));
            }
            Payload::CodeSectionEntry(body) => {
                let mut locals = 0u32;
                for local in body
                    .get_locals_reader()
                    .map_err(|e| invalid(e.to_string()))?
                {
                    let (count, ty) = local.map_err(|e| invalid(e.to_string()))?;
                    locals = locals.saturating_add(count);
                    if locals > limits.max_locals_per_function {
                        return Err(invalid(format!(
                            "a function declares more than {} locals (the limit)",
                            limits.max_locals_per_function
                        )));
                    }
                    if is_float(ty) {
                        return Err(invalid("a function has floating point or SIMD locals; contracts must be deterministic integer code"));
                    }
                }
                let mut ops = body
                    .get_operators_reader()
                    .map_err(|e| invalid(e.to_string()))?;
                while !ops.eof() {
                    let op = ops.read().map_err(|e| invalid(e.to_string()))?;
                    if let Err(name) = op_policy(&op) {
                        let why = if name.contains("F32") || name.contains("F64") {
                            "uses floating point, which contracts may not use (results differ across machines)"
                        } else {
                            "belongs to a WebAssembly proposal Wisp does not allow (SIMD, threads, exceptions, GC...)"
                        };
                        return Err(invalid(format!("operator `{name}` {why}")));
                    }
                }
            }
            Payload::CustomSection(section) if section.name() == INTERFACE_SECTION => {
                let parsed: ContractInterface =
                    serde_json::from_slice(section.data()).map_err(|e| {
                        invalid(format!(
                            "the `{INTERFACE_SECTION}` section is not a valid interface: {e}"
                        ))
                    })?;
                interface = Some(parsed);
            }
            _ => {}
        }
    }
    if memories != 1 || !exports_memory {
        return Err(invalid(
            "a contract must define and export exactly one memory named `memory`",
        ));
    }
    if !has_init {
        return Err(invalid(
            "a contract must export `ep:init` (the SDK's #[init] function)",
        ));
    }
    Ok(ValidatedModule {
        bytes: bytes.to_vec(),
        code_hash: blake2b_256(bytes),
        interface,
        shape,
    })
}
