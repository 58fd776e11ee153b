//! Guards the interface-driven JSON ⇄ borsh codec (`wisp_core::json`), which the RPC server and
//! the CLI run on JSON arguments from strangers and on return values and events of any contract.
//!
//! Each input builds an arbitrary interface type (nesting depth ≤ 8, no zero-sized `()`, which
//! `Type::parse` refuses) and then either
//! - a JSON value (shaped like the type, with random deviations) for `encode_value`: it must never
//!   panic, and when it succeeds `decode_value` must consume exactly the bytes and give back JSON
//!   that re-encodes to the same bytes; or
//! - raw bytes for `decode_value`: it must never panic or hang, and what it decodes must re-encode
//!   to exactly the bytes it consumed.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use wisp_core::hash::to_hex;
use wisp_core::interface::Type;
use wisp_core::json::{decode_value, encode_value, AgentFormat, RawAgentFormat};
use wisp_core::{AgentId, ChainId, ContractId, Hname};

const MAX_DEPTH: u32 = 8;
/// Most JSON nodes one input may generate (keeps each execution fast).
const MAX_NODES: u32 = 512;

fn arb_type(u: &mut Unstructured, depth: u32) -> Result<Type> {
    let max = if depth == 0 { 12 } else { 15 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Type::Bool,
        1 => Type::U8,
        2 => Type::U16,
        3 => Type::U32,
        4 => Type::U64,
        5 => Type::U128,
        6 => Type::I64,
        7 => Type::I128,
        8 => Type::String,
        9 => Type::Bytes,
        10 => Type::AgentId,
        11 => Type::Hname,
        12 => Type::Hash,
        13 => Type::Option(Box::new(arb_type(u, depth - 1)?)),
        14 => Type::Vec(Box::new(arb_type(u, depth - 1)?)),
        _ => {
            // 1..=4 fields: `()` is zero-sized, which interfaces cannot declare.
            let n = u.int_in_range(1..=4)?;
            Type::Tuple(
                (0..n)
                    .map(|_| arb_type(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
    })
}

fn arb_agent(u: &mut Unstructured) -> Result<AgentId> {
    Ok(if u.arbitrary()? {
        AgentId::Address(u.arbitrary()?)
    } else {
        AgentId::Contract(ContractId {
            chain: ChainId(u.arbitrary()?),
            hname: Hname(u.arbitrary()?),
        })
    })
}

/// A string that is often one of the forms the codec parses.
fn arb_text(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=5)? {
        0 => format!("0x{}", to_hex(u.arbitrary::<&[u8]>()?)),
        1 => RawAgentFormat.format(&arb_agent(u)?),
        2 => u.arbitrary::<u128>()?.to_string(),
        3 => u.arbitrary::<i128>()?.to_string(),
        4 => format!("0x{:08x}", u.arbitrary::<u32>()?),
        _ => u.arbitrary::<String>()?,
    })
}

fn arb_number(u: &mut Unstructured) -> Result<Number> {
    Ok(match u.int_in_range(0..=2)? {
        0 => Number::from(u.arbitrary::<u64>()?),
        1 => Number::from(u.arbitrary::<i64>()?),
        _ => Number::from_f64(u.arbitrary()?).unwrap_or_else(|| Number::from(0)),
    })
}

/// Any JSON value.
fn arb_json(u: &mut Unstructured, depth: u32, budget: &mut u32) -> Result<Value> {
    *budget = budget.saturating_sub(1);
    let max = if depth == 0 || *budget == 0 { 3 } else { 5 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(arb_number(u)?),
        3 => Value::String(arb_text(u)?),
        4 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| arb_json(u, depth - 1, budget))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=3)? {
                map.insert(u.arbitrary()?, arb_json(u, depth - 1, budget)?);
            }
            Value::Object(map)
        }
    })
}

/// A JSON value shaped like `ty`, sometimes (1 in 16 nodes) replaced by any value.
fn json_for(ty: &Type, u: &mut Unstructured, budget: &mut u32) -> Result<Value> {
    *budget = budget.saturating_sub(1);
    if u.ratio(1, 16)? {
        return arb_json(u, 2, budget);
    }
    let int = |u: &mut Unstructured, x: u128| -> Result<Value> {
        Ok(match u64::try_from(x) {
            Ok(small) if u.arbitrary()? => Value::from(small),
            _ => Value::String(x.to_string()),
        })
    };
    Ok(match ty {
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::U8 => {
            let x: u8 = u.arbitrary()?;
            int(u, x.into())?
        }
        Type::U16 => {
            let x: u16 = u.arbitrary()?;
            int(u, x.into())?
        }
        Type::U32 => {
            let x: u32 = u.arbitrary()?;
            int(u, x.into())?
        }
        Type::U64 => {
            let x: u64 = u.arbitrary()?;
            int(u, x.into())?
        }
        Type::U128 => {
            let x: u128 = u.arbitrary()?;
            int(u, x)?
        }
        Type::I64 | Type::I128 => {
            let x: i128 = if *ty == Type::I64 {
                u.arbitrary::<i64>()?.into()
            } else {
                u.arbitrary()?
            };
            match i64::try_from(x) {
                Ok(small) if u.arbitrary()? => Value::from(small),
                _ => Value::String(x.to_string()),
            }
        }
        Type::String => Value::String(u.arbitrary()?),
        Type::Bytes => {
            let bytes: &[u8] = u.arbitrary()?;
            if u.arbitrary()? {
                Value::String(format!("0x{}", to_hex(bytes)))
            } else {
                Value::Array(bytes.iter().map(|b| Value::from(*b)).collect())
            }
        }
        Type::Hash => Value::String(format!("0x{}", to_hex(&u.arbitrary::<[u8; 32]>()?))),
        Type::AgentId => Value::String(RawAgentFormat.format(&arb_agent(u)?)),
        Type::Hname => Value::String(if u.arbitrary()? {
            format!("0x{:08x}", u.arbitrary::<u32>()?)
        } else {
            u.arbitrary()?
        }),
        Type::Option(inner) => {
            if *budget == 0 || u.arbitrary()? {
                Value::Null
            } else {
                json_for(inner, u, budget)?
            }
        }
        Type::Vec(inner) => {
            let n = if *budget == 0 {
                0
            } else {
                u.int_in_range(0..=6)?
            };
            Value::Array(
                (0..n)
                    .map(|_| json_for(inner, u, budget))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Tuple(items) => Value::Array(
            items
                .iter()
                .map(|t| json_for(t, u, budget))
                .collect::<Result<_>>()?,
        ),
    })
}

fn encode(ty: &Type, v: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    encode_value(ty, v, "arg", &RawAgentFormat, &mut out).ok()?;
    Some(out)
}

fn run(mut u: Unstructured) -> Result<()> {
    let u = &mut u;
    let ty = arb_type(u, MAX_DEPTH)?;
    // Only types an interface can declare (`Type::parse` refuses e.g. `Option<Option<T>>`,
    // whose `null` is ambiguous: the bug this target found first).
    if wisp_core::interface::Type::parse(&ty.to_string()).as_ref() != Ok(&ty) {
        return Ok(());
    }
    let mut budget = MAX_NODES;
    if u.arbitrary()? {
        // JSON → borsh → JSON → borsh.
        let value = json_for(&ty, u, &mut budget)?;
        let Some(bytes) = encode(&ty, &value) else {
            return Ok(());
        };
        let mut rest = bytes.as_slice();
        let decoded = decode_value(&ty, &mut rest, "arg", &RawAgentFormat)
            .unwrap_or_else(|e| panic!("`{ty}`: {value} encoded but does not decode: {e}"));
        assert!(
            rest.is_empty(),
            "`{ty}`: decoding {value} left {} bytes",
            rest.len()
        );
        let again = encode(&ty, &decoded);
        assert_eq!(
            again.as_ref(),
            Some(&bytes),
            "`{ty}`: {value} decodes to {decoded}, which encodes differently"
        );
    } else {
        // Arbitrary borsh → JSON → borsh.
        let data = u.bytes(u.len())?;
        let mut rest = data;
        if let Ok(decoded) = decode_value(&ty, &mut rest, "arg", &RawAgentFormat) {
            let consumed = &data[..data.len() - rest.len()];
            let again = encode(&ty, &decoded);
            assert_eq!(
                again.as_deref(),
                Some(consumed),
                "`{ty}`: bytes decode to {decoded}, which does not encode back to them"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});
