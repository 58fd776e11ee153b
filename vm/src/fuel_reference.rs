//! The reference fuel counter: Wisp's instruction-gas rule (docs/gas.md) implemented
//! independently of wasmi, by instrumenting a module so that it counts its own fuel.
//!
//! [`instrument`] returns the module with one extra mutable `i64` global, exported as
//! [`COUNTER_EXPORT`], that the inserted code increases exactly as the rule charges:
//! - at each fuel block's entry (function entry, `loop` header on every iteration, the then-arm of
//!   an `if` whose condition is not an `i32.const`, each `else`) by `1 + Σ cost(op)` of the
//!   operators read while that block is innermost (dead code included; `nop`, `drop`, `block`,
//!   `loop`, `unreachable`, `return`, `else`, `end` cost 0, `call` and `call_indirect`
//!   `gas::CALL_GAS`, every other operator 1);
//!   inside statically unreachable code, nested control operators open no block;
//! - before `memory.copy`/`fill`/`init` by `floor(len / gas::BYTES_COPIED_PER_GAS)` (32);
//! - after a successful `memory.grow` by `65536 / gas::BYTES_COPIED_PER_GAS` (2048) per page.
//!
//! Running the instrumented module without metering must leave in the counter exactly what
//! wasmi's fuel meter charges the original: the tests check this on every example contract and
//! on generated modules, so a wasmi upgrade that changes the rule is caught. The counter is the
//! specification a later engine (or the dispute interpreter) reproduces.
//!
//! A constant `if` condition (a directly preceding `i32.const`) opens no block, as wasmi folds
//! it: a true condition makes the else arm dead but its charge still follows the then-arm; a
//! false one makes the then-arm dead code. Not covered (rejected with an error): table
//! operations with dynamic costs, and an `if` with results but no `else` (wasmi charges its
//! implicit else arm separately). Other constant conditions wasmi can fold (computed from
//! constants) are assumed absent; the tests against wasmi would show them.

use crate::VmError;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode, RoundtripReencoder};
use wasm_encoder::{ConstExpr, ExportKind, GlobalType, Instruction, ValType as EncValType};
use wasmparser::{BlockType, CompositeInnerType, Operator, Parser, Payload, TypeRef};

/// Export name of the fuel counter global.
pub const COUNTER_EXPORT: &str = "wisp:fuel";

fn invalid(msg: impl Into<String>) -> VmError {
    VmError::InvalidModule(msg.into())
}

/// Wisp's instruction cost of one operator (see `gas::instruction_costs`).
pub fn operator_cost(op: &Operator) -> u64 {
    match op {
        Operator::Nop
        | Operator::Drop
        | Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::Unreachable
        | Operator::Return
        | Operator::Else
        | Operator::End => 0,
        Operator::Call { .. } | Operator::CallIndirect { .. } => u64::from(crate::gas::CALL_GAS),
        _ => 1,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Func,
    Block,
    Loop,
    If {
        has_else: bool,
        then_end_reachable: bool,
        constant: Option<bool>,
    },
    Unreachable,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: Kind,
    fuel: usize,
    branched: bool,
}

/// Where fuel blocks open and what each costs, for one function body (block 0 is the entry).
struct Plan {
    /// (operator index, block id, before): the block's charge sits right after that operator,
    /// or right before it when `before` is set.
    opens: Vec<(usize, usize, bool)>,
    costs: Vec<u64>,
}

fn plan(ops: &[Operator]) -> Result<Plan, VmError> {
    let mut costs = vec![1u64];
    let mut opens = Vec::new();
    let mut stack = vec![Frame {
        kind: Kind::Func,
        fuel: 0,
        branched: false,
    }];
    let mut reachable = true;
    let new_block = |costs: &mut Vec<u64>| {
        costs.push(1);
        costs.len() - 1
    };
    for (i, op) in ops.iter().enumerate() {
        let top = *stack
            .last()
            .ok_or_else(|| invalid("unbalanced control stack"))?;
        costs[top.fuel] += operator_cost(op);
        let mark = |stack: &mut Vec<Frame>, depth: u32| {
            let len = stack.len();
            if let Some(f) = stack.get_mut(len.wrapping_sub(1 + depth as usize)) {
                if f.kind != Kind::Loop {
                    f.branched = true;
                }
            }
        };
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } if !reachable => {
                stack.push(Frame {
                    kind: Kind::Unreachable,
                    fuel: top.fuel,
                    branched: false,
                });
            }
            Operator::Block { .. } => stack.push(Frame {
                kind: Kind::Block,
                fuel: top.fuel,
                branched: false,
            }),
            Operator::Loop { .. } => {
                let b = new_block(&mut costs);
                opens.push((i, b, false));
                stack.push(Frame {
                    kind: Kind::Loop,
                    fuel: b,
                    branched: false,
                });
            }
            Operator::If { .. } => {
                // wasmi folds a constant condition: no block of its own, and a `0` condition
                // makes the then-arm unreachable.
                let constant = match ops.get(i.wrapping_sub(1)) {
                    Some(Operator::I32Const { value }) if i > 0 => Some(*value != 0),
                    _ => None,
                };
                let fuel = match constant {
                    Some(_) => top.fuel,
                    None => {
                        let b = new_block(&mut costs);
                        opens.push((i, b, false));
                        b
                    }
                };
                if constant == Some(false) {
                    reachable = false;
                }
                stack.push(Frame {
                    kind: Kind::If {
                        has_else: false,
                        then_end_reachable: false,
                        constant,
                    },
                    fuel,
                    branched: false,
                });
            }
            Operator::Else => {
                let frame = stack.last_mut().ok_or_else(|| invalid("else outside if"))?;
                if let Kind::If { constant, .. } = frame.kind {
                    let b = new_block(&mut costs);
                    // For a constant-true `if`, wasmi's else-arm charge follows the then-arm
                    // (the dead else arm is not emitted, so execution falls into its charge).
                    opens.push((i, b, constant == Some(true)));
                    frame.kind = Kind::If {
                        has_else: true,
                        then_end_reachable: reachable,
                        constant,
                    };
                    frame.fuel = b;
                    reachable = constant != Some(true);
                }
            }
            Operator::End => {
                let frame = stack.pop().ok_or_else(|| invalid("unbalanced end"))?;
                reachable = match frame.kind {
                    Kind::Func => reachable,
                    Kind::Unreachable => false,
                    Kind::Block => reachable || frame.branched,
                    Kind::Loop => reachable,
                    Kind::If {
                        has_else: false,
                        constant: Some(true),
                        ..
                    } => reachable || frame.branched,
                    Kind::If {
                        has_else: false, ..
                    } => true,
                    Kind::If {
                        has_else: true,
                        then_end_reachable,
                        ..
                    } => then_end_reachable || reachable || frame.branched,
                };
            }
            Operator::Br { relative_depth } => {
                if reachable {
                    mark(&mut stack, *relative_depth);
                }
                reachable = false;
            }
            Operator::BrIf { relative_depth } if reachable => mark(&mut stack, *relative_depth),
            Operator::BrTable { targets } => {
                if reachable {
                    for t in targets.targets() {
                        mark(&mut stack, t.map_err(|e| invalid(e.to_string()))?);
                    }
                    mark(&mut stack, targets.default());
                }
                reachable = false;
            }
            Operator::Return | Operator::Unreachable => reachable = false,
            Operator::TableGrow { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. } => {
                return Err(invalid(
                    "table operations with dynamic fuel are not covered by the reference counter",
                ));
            }
            _ => {}
        }
    }
    Ok(Plan { opens, costs })
}

struct Instrumenter {
    /// Parameter count of each function type.
    type_params: Vec<u32>,
    /// Type index of each defined function, in order.
    defined_types: Vec<u32>,
    /// Result count of each function type (for `if` block types).
    type_results: Vec<u32>,
    next_function: usize,
    counter: u32,
    global_emitted: bool,
}

impl Instrumenter {
    fn bump(f: &mut wasm_encoder::Function, counter: u32, amount: u64) {
        f.instruction(&Instruction::GlobalGet(counter));
        f.instruction(&Instruction::I64Const(amount as i64));
        f.instruction(&Instruction::I64Add);
        f.instruction(&Instruction::GlobalSet(counter));
    }
}

/// Appends the counter: a mutable `i64` global starting at 0.
fn add_counter(globals: &mut wasm_encoder::GlobalSection) {
    let ty = GlobalType {
        val_type: EncValType::I64,
        mutable: true,
        shared: false,
    };
    globals.global(ty, &ConstExpr::i64_const(0));
}

impl Reencode for Instrumenter {
    type Error = VmError;

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError<VmError>> {
        RoundtripReencoder
            .parse_global_section(globals, section)
            .map_err(|e| ReencodeError::UserError(invalid(e.to_string())))?;
        add_counter(globals);
        self.global_emitted = true;
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> Result<(), ReencodeError<VmError>> {
        use wasm_encoder::SectionId as S;
        let past_globals = matches!(
            before,
            None | Some(S::Export | S::Start | S::Element | S::DataCount | S::Code | S::Data)
        );
        if !self.global_emitted && past_globals {
            let mut globals = wasm_encoder::GlobalSection::new();
            add_counter(&mut globals);
            module.section(&globals);
            self.global_emitted = true;
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError<VmError>> {
        RoundtripReencoder
            .parse_export_section(exports, section)
            .map_err(|e| ReencodeError::UserError(invalid(e.to_string())))?;
        exports.export(COUNTER_EXPORT, ExportKind::Global, self.counter);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError<VmError>> {
        let type_index = *self
            .defined_types
            .get(self.next_function)
            .ok_or_else(|| ReencodeError::UserError(invalid("more bodies than functions")))?
            as usize;
        self.next_function += 1;
        let params = *self
            .type_params
            .get(type_index)
            .ok_or_else(|| ReencodeError::UserError(invalid("unknown type")))?;
        let mut locals = Vec::new();
        let mut declared = 0u32;
        for pair in func.get_locals_reader()? {
            let (count, ty) = pair?;
            declared += count;
            locals.push((count, self.val_type(ty)?));
        }
        let (t, r) = (params + declared, params + declared + 1);
        locals.push((2, EncValType::I32));
        let mut f = wasm_encoder::Function::new(locals);
        let mut ops = Vec::new();
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            ops.push(reader.read()?);
        }
        let plan = plan(&ops).map_err(ReencodeError::UserError)?;
        // An `if` with results and no `else` has an implicit else arm wasmi charges separately.
        for (i, op) in ops.iter().enumerate() {
            if let Operator::If { blockty } = op {
                let has_results = match blockty {
                    BlockType::Empty => false,
                    BlockType::Type(_) => true,
                    BlockType::FuncType(ti) => {
                        self.type_results.get(*ti as usize).copied().unwrap_or(0) > 0
                    }
                };
                if has_results && !has_else(&ops[i + 1..]) {
                    return Err(ReencodeError::UserError(invalid("an `if` with results and no `else` is not covered by the reference counter")));
                }
            }
        }
        let counter = self.counter;
        Self::bump(&mut f, counter, plan.costs[0]);
        let mut opens = plan.opens.iter().peekable();
        for (i, op) in ops.into_iter().enumerate() {
            while let Some((at, block, true)) = opens.peek() {
                if *at != i {
                    break;
                }
                Self::bump(&mut f, counter, plan.costs[*block]);
                opens.next();
            }
            let dynamic_copy = matches!(
                op,
                Operator::MemoryCopy { .. }
                    | Operator::MemoryFill { .. }
                    | Operator::MemoryInit { .. }
            );
            let grow = matches!(op, Operator::MemoryGrow { .. });
            if dynamic_copy {
                f.instruction(&Instruction::LocalTee(t));
                f.instruction(&Instruction::GlobalGet(counter));
                f.instruction(&Instruction::LocalGet(t));
                f.instruction(&Instruction::I64ExtendI32U);
                f.instruction(&Instruction::I64Const(i64::from(
                    crate::gas::BYTES_COPIED_PER_GAS,
                )));
                f.instruction(&Instruction::I64DivU);
                f.instruction(&Instruction::I64Add);
                f.instruction(&Instruction::GlobalSet(counter));
            }
            if grow {
                f.instruction(&Instruction::LocalTee(t));
            }
            let instruction = self.instruction(op)?;
            f.instruction(&instruction);
            if grow {
                f.instruction(&Instruction::LocalSet(r));
                f.instruction(&Instruction::LocalGet(r));
                f.instruction(&Instruction::I32Const(-1));
                f.instruction(&Instruction::I32Ne);
                f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
                f.instruction(&Instruction::GlobalGet(counter));
                f.instruction(&Instruction::LocalGet(t));
                f.instruction(&Instruction::I64ExtendI32U);
                f.instruction(&Instruction::I64Const(
                    65_536 / i64::from(crate::gas::BYTES_COPIED_PER_GAS),
                ));
                f.instruction(&Instruction::I64Mul);
                f.instruction(&Instruction::I64Add);
                f.instruction(&Instruction::GlobalSet(counter));
                f.instruction(&Instruction::End);
                f.instruction(&Instruction::LocalGet(r));
            }
            while let Some((at, block, false)) = opens.peek() {
                if *at != i {
                    break;
                }
                Self::bump(&mut f, counter, plan.costs[*block]);
                opens.next();
            }
        }
        code.function(&f);
        Ok(())
    }
}

/// Whether the `if` whose body starts at `rest` has an `else` at its own nesting level.
fn has_else(rest: &[Operator]) -> bool {
    let mut depth = 0i32;
    for op in rest {
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => depth += 1,
            Operator::Else if depth == 0 => return true,
            Operator::End if depth == 0 => return false,
            Operator::End => depth -= 1,
            _ => {}
        }
    }
    false
}

/// Returns `wasm` instrumented to count its own fuel in the exported global [`COUNTER_EXPORT`].
///
/// # Errors
/// [`VmError::InvalidModule`] if the module does not parse or uses a construct the reference
/// counter does not cover (see the module docs).
pub fn instrument(wasm: &[u8]) -> Result<Vec<u8>, VmError> {
    let mut type_params = Vec::new();
    let mut type_results = Vec::new();
    let mut defined_types = Vec::new();
    let mut globals = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| invalid(e.to_string()))? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(|e| invalid(e.to_string()))?.types() {
                        if let CompositeInnerType::Func(f) = &sub.composite_type.inner {
                            type_params.push(f.params().len() as u32);
                            type_results.push(f.results().len() as u32);
                        } else {
                            type_params.push(0);
                            type_results.push(0);
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    if let TypeRef::Global(_) = import.map_err(|e| invalid(e.to_string()))?.ty {
                        globals += 1;
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    defined_types.push(t.map_err(|e| invalid(e.to_string()))?);
                }
            }
            Payload::GlobalSection(reader) => globals += reader.count(),
            _ => {}
        }
    }
    let mut instrumenter = Instrumenter {
        type_params,
        defined_types,
        type_results,
        next_function: 0,
        counter: globals,
        global_emitted: false,
    };
    let mut module = wasm_encoder::Module::new();
    instrumenter
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            ReencodeError::UserError(e) => e,
            other => invalid(format!("re-encoding failed: {other}")),
        })?;
    Ok(module.finish())
}
