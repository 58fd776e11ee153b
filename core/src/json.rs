//! JSON ⇄ borsh for contract arguments, return values and events, driven by a
//! [`ContractInterface`](crate::interface::ContractInterface). Used at the RPC and CLI edge only.
//!
//! JSON forms: integers as numbers or decimal strings (u64/u128/i128 are printed as strings),
//! bytes and hashes as `0x`-hex strings, hnames as a name (hashed) or `0x` + 8 hex digits,
//! agents as whatever the [`AgentFormat`] accepts, options as `null` or the value, vecs and tuples
//! as arrays.

use crate::hash::{from_hex, to_hex};
use crate::ids::{AgentId, Hname};
use crate::interface::{Field, Type};
use borsh::BorshDeserialize;
use serde_json::{json, Value};
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

/// How agents are written in JSON; the node uses Kaspa addresses, the default raw form
/// (`addr:<hex>` / `contract:<hname>@<chain>`).
pub trait AgentFormat {
    /// Parses an agent.
    fn parse(&self, text: &str) -> Option<AgentId>;
    /// Prints an agent.
    fn format(&self, agent: &AgentId) -> String;
}

/// [`AgentId::to_raw_string`] / [`AgentId::from_raw_string`].
pub struct RawAgentFormat;

impl AgentFormat for RawAgentFormat {
    fn parse(&self, text: &str) -> Option<AgentId> {
        AgentId::from_raw_string(text)
    }
    fn format(&self, agent: &AgentId) -> String {
        agent.to_raw_string()
    }
}

/// A JSON value that does not fit the declared type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: expected {expected}, got {got}")]
pub struct CodecError {
    /// Where in the arguments (`amount`, `path[2]`).
    pub path: String,
    /// The declared type.
    pub expected: String,
    /// What was found.
    pub got: String,
}

fn err(path: &str, ty: &Type, got: impl ToString) -> CodecError {
    CodecError {
        path: path.into(),
        expected: ty.to_string(),
        got: got.to_string(),
    }
}

/// Encodes `args` (a JSON array in parameter order, or an object keyed by parameter name) as the
/// borsh tuple of `params`.
///
/// # Errors
/// [`CodecError`] naming the parameter whose value is missing or does not fit its type.
pub fn encode_args(
    params: &[Field],
    args: &Value,
    agents: &dyn AgentFormat,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    match args {
        Value::Array(items) => {
            if items.len() != params.len() {
                return Err(CodecError {
                    path: "args".into(),
                    expected: format!("{} arguments", params.len()),
                    got: format!("{}", items.len()),
                });
            }
            for (p, v) in params.iter().zip(items) {
                encode_value(&p.ty, v, &p.name, agents, &mut out)?;
            }
        }
        Value::Object(map) => {
            for p in params {
                let v = map.get(&p.name).ok_or_else(|| CodecError {
                    path: p.name.clone(),
                    expected: p.ty.to_string(),
                    got: "nothing".into(),
                })?;
                encode_value(&p.ty, v, &p.name, agents, &mut out)?;
            }
            if let Some(extra) = map.keys().find(|k| !params.iter().any(|p| &p.name == *k)) {
                return Err(CodecError {
                    path: extra.clone(),
                    expected: "no such parameter".into(),
                    got: "a value".into(),
                });
            }
        }
        Value::Null if params.is_empty() => {}
        other => {
            return Err(CodecError {
                path: "args".into(),
                expected: "a JSON array or object".into(),
                got: other.to_string(),
            })
        }
    }
    Ok(out)
}

fn int<T: TryFrom<u128> + ToString>(v: &Value) -> Option<u128> {
    match v {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) => s.parse::<u128>().ok(),
        _ => None,
    }
    .filter(|x| T::try_from(*x).is_ok())
}

fn sint(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n.as_i64().map(i128::from),
        Value::String(s) => s.parse::<i128>().ok(),
        _ => None,
    }
}

/// Encodes one JSON value of type `ty` (see the module doc for the JSON forms).
///
/// # Errors
/// [`CodecError`] at `path` if the value does not fit.
pub fn encode_value(
    ty: &Type,
    v: &Value,
    path: &str,
    agents: &dyn AgentFormat,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let bad = || err(path, ty, v);
    match ty {
        Type::Bool => out.push(v.as_bool().ok_or_else(bad)? as u8),
        Type::U8 => out.push(int::<u8>(v).ok_or_else(bad)? as u8),
        Type::U16 => out.extend((int::<u16>(v).ok_or_else(bad)? as u16).to_le_bytes()),
        Type::U32 => out.extend((int::<u32>(v).ok_or_else(bad)? as u32).to_le_bytes()),
        Type::U64 => out.extend((int::<u64>(v).ok_or_else(bad)? as u64).to_le_bytes()),
        Type::U128 => out.extend(int::<u128>(v).ok_or_else(bad)?.to_le_bytes()),
        Type::I64 => {
            let x = i64::try_from(sint(v).ok_or_else(bad)?).map_err(|_| bad())?;
            out.extend(x.to_le_bytes())
        }
        Type::I128 => out.extend(sint(v).ok_or_else(bad)?.to_le_bytes()),
        Type::String => {
            let s = v.as_str().ok_or_else(bad)?;
            out.extend((s.len() as u32).to_le_bytes());
            out.extend(s.as_bytes());
        }
        Type::Bytes => {
            let bytes = match v {
                Value::String(s) => from_hex(s).ok_or_else(bad)?,
                Value::Array(items) => items
                    .iter()
                    .map(|i| int::<u8>(i).map(|x| x as u8))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            out.extend((bytes.len() as u32).to_le_bytes());
            out.extend(bytes);
        }
        Type::Hash => {
            let bytes = v
                .as_str()
                .and_then(from_hex)
                .filter(|b| b.len() == 32)
                .ok_or_else(bad)?;
            out.extend(bytes);
        }
        Type::AgentId => {
            let agent = v.as_str().and_then(|s| agents.parse(s)).ok_or_else(bad)?;
            out.extend(borsh::to_vec(&agent).map_err(|_| bad())?);
        }
        Type::Hname => {
            let s = v.as_str().ok_or_else(bad)?;
            let h = match s.strip_prefix("0x") {
                Some(_) => Hname::from_hex(s).ok_or_else(bad)?,
                None => Hname::of(s),
            };
            out.extend(h.to_bytes());
        }
        Type::Option(inner) => {
            if v.is_null() {
                out.push(0);
            } else {
                out.push(1);
                encode_value(inner, v, path, agents, out)?;
            }
        }
        Type::Vec(inner) => {
            let items = v.as_array().ok_or_else(bad)?;
            out.extend((items.len() as u32).to_le_bytes());
            for (i, item) in items.iter().enumerate() {
                encode_value(inner, item, &format!("{path}[{i}]"), agents, out)?;
            }
        }
        Type::Tuple(types) => {
            let items = v
                .as_array()
                .filter(|a| a.len() == types.len())
                .ok_or_else(bad)?;
            for (i, (t, item)) in types.iter().zip(items).enumerate() {
                encode_value(t, item, &format!("{path}.{i}"), agents, out)?;
            }
        }
    }
    Ok(())
}

/// Decodes borsh bytes of type `ty` to JSON, consuming exactly the value from `input`.
///
/// # Errors
/// [`CodecError`] if the bytes end early or are not valid for the type.
pub fn decode_value(
    ty: &Type,
    input: &mut &[u8],
    path: &str,
    agents: &dyn AgentFormat,
) -> Result<Value, CodecError> {
    let bad = |what: &str| err(path, ty, what);
    macro_rules! read {
        ($t:ty) => {
            <$t>::deserialize(input).map_err(|e| bad(&e.to_string()))?
        };
    }
    Ok(match ty {
        Type::Bool => json!(read!(bool)),
        Type::U8 => json!(read!(u8)),
        Type::U16 => json!(read!(u16)),
        Type::U32 => json!(read!(u32)),
        Type::U64 => json!(read!(u64).to_string()),
        Type::U128 => json!(read!(u128).to_string()),
        Type::I64 => json!(read!(i64).to_string()),
        Type::I128 => json!(read!(i128).to_string()),
        Type::String => json!(read!(String)),
        Type::Bytes => json!(format!("0x{}", to_hex(&read!(Vec<u8>)))),
        Type::Hash => json!(format!("0x{}", to_hex(&read!([u8; 32])))),
        Type::AgentId => json!(agents.format(&read!(AgentId))),
        Type::Hname => json!(format!("0x{}", Hname(read!(u32)))),
        Type::Option(inner) => match read!(u8) {
            0 => Value::Null,
            1 => decode_value(inner, input, path, agents)?,
            _ => return Err(bad("an option tag other than 0 or 1")),
        },
        Type::Vec(inner) => {
            let n = read!(u32) as usize;
            // Interfaces have no zero-sized types (`Type::parse` refuses `()`), so every
            // element consumes at least one byte: a longer count is corrupt, and the JSON built
            // is bounded by the input's length (defect 6 of the hardening review).
            if n > input.len() {
                return Err(bad("a length longer than the data"));
            }
            let mut items = Vec::with_capacity(n);
            for i in 0..n {
                items.push(decode_value(inner, input, &format!("{path}[{i}]"), agents)?);
            }
            Value::Array(items)
        }
        Type::Tuple(types) => Value::Array(
            types
                .iter()
                .enumerate()
                .map(|(i, t)| decode_value(t, input, &format!("{path}.{i}"), agents))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Decodes an event's borsh data to a JSON object keyed by field name.
///
/// # Errors
/// [`CodecError`] if the data does not match the fields exactly.
pub fn decode_fields(
    fields: &[Field],
    mut data: &[u8],
    agents: &dyn AgentFormat,
) -> Result<Value, CodecError> {
    let mut map = serde_json::Map::new();
    for f in fields {
        map.insert(
            f.name.clone(),
            decode_value(&f.ty, &mut data, &f.name, agents)?,
        );
    }
    if !data.is_empty() {
        return Err(CodecError {
            path: "data".into(),
            expected: "end of data".into(),
            got: format!("{} trailing bytes", data.len()),
        });
    }
    Ok(Value::Object(map))
}

/// Decodes a whole return value (`None` type means unit: the data must be empty).
///
/// # Errors
/// [`CodecError`] if the data does not match the type exactly.
pub fn decode_return(
    ty: Option<&Type>,
    mut data: &[u8],
    agents: &dyn AgentFormat,
) -> Result<Value, CodecError> {
    let value = match ty {
        Some(t) => decode_value(t, &mut data, "return", agents)?,
        None => Value::Null,
    };
    if !data.is_empty() {
        return Err(CodecError {
            path: "return".into(),
            expected: "end of data".into(),
            got: format!("{} trailing bytes", data.len()),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ChainId, ContractId};
    use borsh::BorshSerialize;

    fn fields(spec: &[(&str, &str)]) -> Vec<Field> {
        spec.iter()
            .map(|(n, t)| Field {
                name: (*n).into(),
                ty: Type::parse(t).unwrap(),
            })
            .collect()
    }

    #[test]
    fn encodes_exactly_like_borsh() {
        let to = AgentId::Contract(ContractId {
            chain: ChainId([3; 32]),
            hname: Hname(9),
        });
        let params = fields(&[
            ("to", "AgentId"),
            ("amount", "u128"),
            ("memo", "Option<String>"),
        ]);
        let args = json!({"to": to.to_raw_string(), "amount": "340282366920938463463374607431768211455", "memo": "hi"});
        let bytes = encode_args(&params, &args, &RawAgentFormat).unwrap();
        let mut expected = Vec::new();
        (to, u128::MAX, Some(String::from("hi")))
            .serialize(&mut expected)
            .unwrap();
        assert_eq!(bytes, expected);
        // Positional form gives the same bytes.
        let positional = json!([
            to.to_raw_string(),
            "340282366920938463463374607431768211455",
            "hi"
        ]);
        assert_eq!(
            encode_args(&params, &positional, &RawAgentFormat).unwrap(),
            expected
        );
        // And decoding gives the values back.
        let decoded = decode_fields(&params, &expected, &RawAgentFormat).unwrap();
        assert_eq!(
            decoded["amount"],
            json!("340282366920938463463374607431768211455")
        );
        assert_eq!(decoded["memo"], json!("hi"));
    }

    #[test]
    fn errors_name_the_parameter() {
        let params = fields(&[("amount", "u8")]);
        let e = encode_args(&params, &json!({"amount": 256}), &RawAgentFormat).unwrap_err();
        assert_eq!(e.path, "amount");
        let e = encode_args(&params, &json!({}), &RawAgentFormat).unwrap_err();
        assert_eq!(e.got, "nothing");
        let e = encode_args(&params, &json!({"amount": 1, "x": 2}), &RawAgentFormat).unwrap_err();
        assert_eq!(e.path, "x");
        assert!(decode_return(Some(&Type::U64), &[1, 2], &RawAgentFormat).is_err());
        assert!(decode_return(None, &[1], &RawAgentFormat).is_err());
    }
}
