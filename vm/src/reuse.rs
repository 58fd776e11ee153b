//! Instance reuse: running a module's calls on an instance left by an earlier call, reset to
//! exactly the state a fresh instantiation gives, instead of instantiating again.
//!
//! Instantiating the example token costs ~9 µs on this project's machines, almost all of it
//! wasmi building the instance (a store entity per function, import resolution, exports, a
//! zeroed memory); its call costs well under 1 µs. A reset costs what the fresh memory's
//! zeroing costs, so reuse removes the rest (measured by `cargo bench -p wisp-bench`).
//!
//! Determinism: a reused instance must be indistinguishable from a fresh one, or nodes whose
//! pools differ (threads, cache history, restarts) would compute different results. A wasm
//! instance's mutable state is its memory (contents and size), its mutable globals, its
//! tables and which passive segments it dropped. So a module is reusable only if
//! ([`analyse`]):
//! - no function may change a table or a segment (`table.set`, `table.grow`, `table.fill`,
//!   `table.copy`, `table.init`, `elem.drop`, `memory.init`, `data.drop`): tables keep
//!   their instantiation contents;
//! - every mutable global is an `i32` or `i64`: its initial value is a plain number;
//! - no export name starts with [`GLOBAL_EXPORT_PREFIX`], under which the compiled module
//!   exports its mutable globals so that they can be reset (the module is rewritten for
//!   compilation only; its bytes and code hash are the deployed ones).
//!
//! After every call, the instance is reset ([`Image::reset`]): if its memory grew it is
//! dropped; otherwise the memory is zeroed and the data segments' bytes written back, and
//! every mutable global gets its initial value. Gas never depends on reuse: a call pays
//! [`crate::gas::instantiate_gas`] either way.

use crate::VmError;
use wasmi::{AsContextMut, Global, Memory, Val};
use wasmparser::{ExternalKind, Operator, Parser, Payload, ValType};

/// Prefix of the export names under which a reusable module's compiled form exports its
/// mutable globals (`<prefix><global index>`); a module exporting any name with it is not
/// reused.
pub(crate) const GLOBAL_EXPORT_PREFIX: &str = "\u{0}wisp-reuse-global-";

/// How a module can be reused: the rewritten bytes to compile and the export names of its
/// mutable globals.
pub(crate) struct Reusable {
    /// The module with its mutable globals exported (the input when it has none).
    pub bytes: Vec<u8>,
    /// Export name of each mutable global, in index order.
    pub globals: Vec<String>,
}

/// Whether a validated module's instances can be reused, and if so how.
///
/// # Errors
/// [`VmError::InvalidModule`] only if the bytes do not parse, which validation rules out.
pub(crate) fn analyse(bytes: &[u8]) -> Result<Option<Reusable>, VmError> {
    let invalid = |e: wasmparser::BinaryReaderError| VmError::InvalidModule(e.to_string());
    let mut mutable = Vec::new();
    let mut export_section = None;
    // Every section but the custom ones (the engine ignores them), by id and byte range.
    let mut sections = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        if let Some(section) = payload.as_section() {
            if !matches!(payload, Payload::CustomSection(_)) {
                sections.push(section);
            }
        }
        match payload {
            Payload::GlobalSection(reader) => {
                for (index, global) in reader.into_iter().enumerate() {
                    let global = global.map_err(invalid)?;
                    if global.ty.mutable {
                        if !matches!(global.ty.content_type, ValType::I32 | ValType::I64) {
                            return Ok(None);
                        }
                        mutable.push(index as u32);
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    if export
                        .map_err(invalid)?
                        .name
                        .starts_with(GLOBAL_EXPORT_PREFIX)
                    {
                        return Ok(None);
                    }
                }
                export_section = Some(reader);
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().map_err(invalid)?;
                while !ops.eof() {
                    if changes_instance_state(&ops.read().map_err(invalid)?) {
                        return Ok(None);
                    }
                }
            }
            _ => {}
        }
    }
    if mutable.is_empty() {
        return Ok(Some(Reusable {
            bytes: bytes.to_vec(),
            globals: Vec::new(),
        }));
    }
    let globals: Vec<String> = mutable
        .iter()
        .map(|i| format!("{GLOBAL_EXPORT_PREFIX}{i}"))
        .collect();
    // The same sections, byte for byte, except the export section, which gains the globals'
    // exports. Every valid contract has an export section (its memory and `ep:init`).
    let Some(reader) = export_section else {
        return Ok(None);
    };
    let mut module = wasm_encoder::Module::new();
    let mut exports = wasm_encoder::ExportSection::new();
    for export in reader {
        let export = export.map_err(invalid)?;
        let kind = match export.kind {
            ExternalKind::Func => wasm_encoder::ExportKind::Func,
            ExternalKind::Table => wasm_encoder::ExportKind::Table,
            ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
            ExternalKind::Global => wasm_encoder::ExportKind::Global,
            ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
        };
        exports.export(export.name, kind, export.index);
    }
    for (name, index) in globals.iter().zip(&mutable) {
        exports.export(name, wasm_encoder::ExportKind::Global, *index);
    }
    for (id, range) in sections {
        if id == wasm_encoder::SectionId::Export as u8 {
            module.section(&exports);
        } else {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &bytes[range],
            });
        }
    }
    Ok(Some(Reusable {
        bytes: module.finish(),
        globals,
    }))
}

/// Operators that change an instance's tables or segments (not reset between calls).
fn changes_instance_state(op: &Operator) -> bool {
    matches!(
        op,
        Operator::TableSet { .. }
            | Operator::TableGrow { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::ElemDrop { .. }
            | Operator::MemoryInit { .. }
            | Operator::DataDrop { .. }
    )
}

/// A fresh instance's memory and globals, taken once per module right after its first
/// instantiation (the same for every instance: data segments and global initialisers are
/// constant expressions).
pub(crate) struct Image {
    /// Memory size, bytes.
    pub memory_bytes: usize,
    /// The non-zero stretches of the fresh memory: (offset, bytes).
    runs: Vec<(usize, Vec<u8>)>,
    /// Initial value of each mutable global, in index order.
    globals: Vec<Val>,
}

/// Zero bytes between two non-zero stretches that are still copied as one.
const RUN_GAP: usize = 64;

impl Image {
    /// Takes the image of a freshly instantiated `memory` and `globals`.
    pub fn take(ctx: impl wasmi::AsContext, memory: Memory, globals: &[Global]) -> Image {
        let data = memory.data(&ctx);
        let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if data[i] == 0 {
                i += 1;
                continue;
            }
            let start = i;
            let mut end = i + 1;
            // Extend over short gaps of zeroes.
            let mut j = end;
            while j < data.len() && j - end < RUN_GAP {
                if data[j] != 0 {
                    end = j + 1;
                }
                j += 1;
            }
            runs.push((start, data[start..end].to_vec()));
            i = end;
        }
        Image {
            memory_bytes: data.len(),
            runs,
            globals: globals.iter().map(|g| g.get(&ctx)).collect(),
        }
    }

    /// Puts a used instance back in its fresh state. Returns `false` (and changes nothing)
    /// if it cannot be: its memory grew.
    pub fn reset(&self, mut ctx: impl AsContextMut, memory: Memory, globals: &[Global]) -> bool {
        let data = memory.data_mut(&mut ctx);
        if data.len() != self.memory_bytes {
            return false;
        }
        data.fill(0);
        for (offset, bytes) in &self.runs {
            data[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
        for (global, value) in globals.iter().zip(&self.globals) {
            if global.set(&mut ctx, value.clone()).is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn mutable_globals_get_reserved_exports_and_nothing_else_changes() {
        let bytes = module(
            r#"(module
                (global $sp (mut i32) (i32.const 65536))
                (global $k i32 (i32.const 7))
                (global $n (mut i64) (i64.const 3))
                (memory (export "memory") 1)
                (func (export "view:f") (global.set $sp (i32.add (global.get $sp) (global.get $k))))
                (data (i32.const 16) "abc"))"#,
        );
        let r = analyse(&bytes).unwrap().expect("reusable");
        assert_eq!(
            r.globals,
            [
                format!("{GLOBAL_EXPORT_PREFIX}0"),
                format!("{GLOBAL_EXPORT_PREFIX}2")
            ]
        );
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(&r.bytes) {
            match payload.unwrap() {
                Payload::ExportSection(reader) => {
                    for e in reader {
                        let e = e.unwrap();
                        names.push((e.name.to_string(), e.index));
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    // Function bodies are copied, not re-encoded.
                    assert!(bytes
                        .windows(body.range().len())
                        .any(|w| w == &r.bytes[body.range()]));
                }
                _ => {}
            }
        }
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.contains(&(format!("{GLOBAL_EXPORT_PREFIX}2"), 2)));
        wasmparser::validate(&r.bytes).unwrap();
    }

    #[test]
    fn modules_that_change_tables_or_segments_or_hold_reference_globals_are_not_reused() {
        for body in [
            "(table 2 funcref) (func $g) (elem declare func $g) (func (export \"view:f\") (table.set (i32.const 0) (ref.func $g)))",
            "(table 2 funcref) (func (export \"view:f\") (drop (table.grow (ref.null func) (i32.const 1))))",
            "(data \"x\") (func (export \"view:f\") (data.drop 0))",
            "(data \"x\") (func (export \"view:f\") (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 1)))",
            "(global (mut funcref) (ref.null func)) (func (export \"view:f\"))",
            "(func (export \"\\00wisp-reuse-global-0\"))",
        ] {
            let bytes = module(&format!("(module (memory (export \"memory\") 1) {body})"));
            assert!(analyse(&bytes).unwrap().is_none(), "{body}");
        }
        // Reading tables and calling through them is fine.
        let bytes = module(
            "(module (memory (export \"memory\") 1) (type $t (func)) (table 1 funcref) (func $g) (elem (i32.const 0) $g)
               (func (export \"view:f\") (call_indirect (type $t) (i32.const 0))))",
        );
        let r = analyse(&bytes).unwrap().expect("reusable");
        assert_eq!(r.bytes, bytes, "no mutable global: the module as it is");
    }

    #[test]
    fn an_image_keeps_the_non_zero_bytes_and_a_reset_restores_them() {
        let engine = wasmi::Engine::default();
        let bytes = module(
            r#"(module (memory (export "memory") 1)
                 (global (export "g") (mut i32) (i32.const 5))
                 (data (i32.const 100) "ab\00\00c")
                 (data (i32.const 5000) "z"))"#,
        );
        let m = wasmi::Module::new(&engine, &bytes).unwrap();
        let mut store = wasmi::Store::new(&engine, ());
        let instance = wasmi::Linker::new(&engine)
            .instantiate_and_start(&mut store, &m)
            .unwrap();
        let memory = instance.get_memory(&store, "memory").unwrap();
        let g = instance.get_global(&store, "g").unwrap();
        let image = Image::take(&store, memory, &[g]);
        assert_eq!(image.runs.len(), 2, "two stretches 4,900 bytes apart");
        let fresh = memory.data(&store).to_vec();
        memory.data_mut(&mut store)[0..64 * 1024].fill(0xee);
        g.set(&mut store, Val::I32(99)).unwrap();
        assert!(image.reset(&mut store, memory, &[g]));
        assert_eq!(memory.data(&store), &fresh[..]);
        assert_eq!(g.get(&store).i32(), Some(5));
        // A grown memory cannot be reset.
        memory.grow(&mut store, 1).unwrap();
        assert!(!image.reset(&mut store, memory, &[g]));
    }
}
