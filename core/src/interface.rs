//! A contract's interface: its entry points, views, argument and return types, events and error
//! codes. The SDK's `#[contract]` macro writes it as JSON into the custom section
//! [`INTERFACE_SECTION`] of the contract's WASM module so tools can encode arguments from JSON
//! and decode return values and events.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::request::CallKind;

/// Name of the WASM custom section holding the interface JSON.
pub const INTERFACE_SECTION: &str = "wisp:interface";

/// The name of the typed client `#[contract]` generates for contract module `module`:
/// `token` → `TokenClient`, `my_pair` → `MyPairClient`.
pub fn client_type_name(module: &str) -> alloc::string::String {
    let mut name = alloc::string::String::new();
    for part in module.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name.push_str("Client");
    name
}

impl Type {
    /// The length of the borsh encoding of one value of this type at the start of `data`;
    /// `None` if `data` is too short or holds an invalid tag. Nesting is bounded by the type
    /// (at most [`MAX_TYPE_DEPTH`] levels), lengths by `data`.
    pub fn encoded_len(&self, data: &[u8]) -> Option<usize> {
        let fixed = |n: usize| (data.len() >= n).then_some(n);
        let length_prefixed = |item: usize| -> Option<usize> {
            let count = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
            let len = count.checked_mul(item)?.checked_add(4)?;
            (data.len() >= len).then_some(len)
        };
        match self {
            Type::Bool | Type::U8 => fixed(1),
            Type::U16 => fixed(2),
            Type::U32 | Type::Hname => fixed(4),
            Type::U64 | Type::I64 => fixed(8),
            Type::U128 | Type::I128 => fixed(16),
            Type::Hash => fixed(32),
            Type::String | Type::Bytes => length_prefixed(1),
            Type::AgentId => match data.first()? {
                0 => fixed(33),
                1 => fixed(37),
                _ => None,
            },
            Type::Option(inner) => match data.first()? {
                0 => Some(1),
                1 => Some(1 + inner.encoded_len(&data[1..])?),
                _ => None,
            },
            Type::Vec(inner) => {
                let count = u32::from_le_bytes(data.get(..4)?.try_into().ok()?);
                let mut at = 4usize;
                for _ in 0..count {
                    let len = inner.encoded_len(data.get(at..)?)?;
                    if len == 0 {
                        // Only empty tuples encode in no bytes: so do all the other items.
                        return Some(at);
                    }
                    at = at.checked_add(len)?;
                }
                Some(at)
            }
            Type::Tuple(items) => {
                let mut at = 0usize;
                for item in items {
                    at = at.checked_add(item.encoded_len(data.get(at..)?)?)?;
                }
                Some(at)
            }
        }
    }
}

/// The argument and return types the interface can describe, with borsh encodings.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Type {
    /// `bool`: 1 byte.
    Bool,
    /// Unsigned integers, little-endian, 1/2/4/8/16 bytes.
    U8,
    /// 2-byte unsigned.
    U16,
    /// 4-byte unsigned.
    U32,
    /// 8-byte unsigned.
    U64,
    /// 16-byte unsigned (token amounts).
    U128,
    /// 8-byte signed.
    I64,
    /// 16-byte signed.
    I128,
    /// UTF-8 text: u32 length then bytes.
    String,
    /// Bytes: u32 length then bytes (`Vec<u8>`).
    Bytes,
    /// An [`crate::AgentId`].
    AgentId,
    /// An [`crate::Hname`] (u32).
    Hname,
    /// A 32-byte hash.
    Hash,
    /// `Option<T>`: 0, or 1 then T.
    Option(Box<Type>),
    /// `Vec<T>`: u32 count then items.
    Vec(Box<Type>),
    /// `(A, B, ...)`: fields in order.
    Tuple(Vec<Type>),
}

/// Longest type text [`Type::parse`] reads, bytes (whitespace included). Real interface types
/// are a few dozen bytes; the cap bounds parse time on a stranger's interface section.
pub const MAX_TYPE_TEXT_BYTES: usize = 512;

/// Deepest nesting of `Option`, `Vec` and tuples in one type. It bounds the recursion of the
/// JSON ⇄ borsh codec, which walks a type recursively.
pub const MAX_TYPE_DEPTH: usize = 16;

/// Most fields of one tuple type.
pub const MAX_TUPLE_FIELDS: usize = 32;

/// Why a type string is not a [`Type`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// The text is longer than [`MAX_TYPE_TEXT_BYTES`].
    #[error("type text of {0} bytes exceeds the limit of {max}", max = MAX_TYPE_TEXT_BYTES)]
    TooLong(usize),
    /// `Option`/`Vec`/tuples nest deeper than [`MAX_TYPE_DEPTH`].
    #[error("type nests deeper than {max} levels", max = MAX_TYPE_DEPTH)]
    TooDeep,
    /// A tuple has more than [`MAX_TUPLE_FIELDS`] fields.
    #[error("a tuple has more than {max} fields", max = MAX_TUPLE_FIELDS)]
    TooManyFields,
    /// `()`: a type with no bytes, which would let a short input decode to unbounded output.
    #[error("`()` has no encoding; leave the parameter out instead")]
    ZeroSized,
    /// `Option<Option<T>>`: JSON `null` cannot tell `None` from `Some(None)`.
    #[error("`Option<Option<T>>` has no JSON form (null cannot tell None from Some(None))")]
    NestedOption,
    /// A name the interface cannot describe (`f64`, `HashMap`, a user struct...).
    #[error("unsupported type `{0}`; use bool, u8..u128, i64, i128, String, Vec<T>, Option<T>, tuples, AgentId, Hname or Hash32")]
    Unsupported(String),
    /// Malformed text: unbalanced brackets, a missing name, trailing characters.
    #[error("malformed type at byte {0}")]
    Syntax(usize),
}

/// An open `Option<`, `Vec<` or `(` whose inner types are still being read.
enum Open {
    Option,
    Vec,
    Tuple(Vec<Type>),
}

impl Type {
    /// Parses a Rust type as written in a contract (`u128`, `Vec<AgentId>`, `Option<String>`,
    /// `(u64, bool)`, `(u64,)`, `Hash32`, paths such as `wisp_sdk::AgentId`); whitespace is
    /// ignored. `Vec<u8>` is [`Type::Bytes`].
    ///
    /// The parser is iterative and linear in the text: a stranger's interface section cannot
    /// exhaust the stack or the CPU of a node that validates it.
    ///
    /// # Errors
    /// [`TypeError`]: text over [`MAX_TYPE_TEXT_BYTES`], nesting over [`MAX_TYPE_DEPTH`], a
    /// tuple over [`MAX_TUPLE_FIELDS`], the zero-sized `()`, `Option<Option<T>>`, an unsupported
    /// name, or bad syntax.
    pub fn parse(text: &str) -> Result<Type, TypeError> {
        if text.len() > MAX_TYPE_TEXT_BYTES {
            return Err(TypeError::TooLong(text.len()));
        }
        let s: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let mut stack: Vec<Open> = Vec::new();
        let mut i = 0;
        loop {
            // A type starts at `i`: either it opens a bracket (push and read its first inner
            // type) or it is a complete name.
            let mut value = if s.get(i) == Some(&b'(') {
                i += 1;
                if s.get(i) == Some(&b')') {
                    return Err(TypeError::ZeroSized);
                }
                stack.push(Open::Tuple(Vec::new()));
                if stack.len() > MAX_TYPE_DEPTH {
                    return Err(TypeError::TooDeep);
                }
                continue;
            } else {
                let start = i;
                while s
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
                {
                    i += 1;
                }
                let path = core::str::from_utf8(&s[start..i]).map_err(|_| TypeError::Syntax(i))?;
                let name = path.rsplit("::").next().unwrap_or(path);
                if name.is_empty() {
                    return Err(TypeError::Syntax(i));
                }
                if s.get(i) == Some(&b'<') {
                    i += 1;
                    stack.push(match name {
                        "Option" => Open::Option,
                        "Vec" => Open::Vec,
                        _ => return Err(TypeError::Unsupported(path.to_string())),
                    });
                    if stack.len() > MAX_TYPE_DEPTH {
                        return Err(TypeError::TooDeep);
                    }
                    continue;
                }
                primitive(name).ok_or_else(|| TypeError::Unsupported(path.to_string()))?
            };
            // `value` is complete: close every bracket it completes.
            loop {
                let Some(open) = stack.last_mut() else {
                    return if i == s.len() {
                        Ok(value)
                    } else {
                        Err(TypeError::Syntax(i))
                    };
                };
                match open {
                    Open::Option | Open::Vec => {
                        if s.get(i) != Some(&b'>') {
                            return Err(TypeError::Syntax(i));
                        }
                        i += 1;
                        value = match stack.pop() {
                            Some(Open::Option) if matches!(value, Type::Option(_)) => {
                                return Err(TypeError::NestedOption)
                            }
                            Some(Open::Option) => Type::Option(Box::new(value)),
                            _ if value == Type::U8 => Type::Bytes,
                            _ => Type::Vec(Box::new(value)),
                        };
                    }
                    Open::Tuple(items) => {
                        items.push(value);
                        if items.len() > MAX_TUPLE_FIELDS {
                            return Err(TypeError::TooManyFields);
                        }
                        match s.get(i) {
                            Some(b',') if s.get(i + 1) == Some(&b')') => i += 2,
                            Some(b',') => {
                                i += 1;
                                break; // read the next field
                            }
                            Some(b')') => i += 1,
                            _ => return Err(TypeError::Syntax(i)),
                        }
                        let Some(Open::Tuple(items)) = stack.pop() else {
                            return Err(TypeError::Syntax(i));
                        };
                        value = Type::Tuple(items);
                    }
                }
            }
        }
    }
}

fn primitive(name: &str) -> Option<Type> {
    Some(match name {
        "bool" => Type::Bool,
        "u8" => Type::U8,
        "u16" => Type::U16,
        "u32" => Type::U32,
        "u64" => Type::U64,
        "u128" => Type::U128,
        "i64" => Type::I64,
        "i128" => Type::I128,
        "String" => Type::String,
        "AgentId" => Type::AgentId,
        "Hname" => Type::Hname,
        "Hash32" => Type::Hash,
        _ => return None,
    })
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::U8 => f.write_str("u8"),
            Type::U16 => f.write_str("u16"),
            Type::U32 => f.write_str("u32"),
            Type::U64 => f.write_str("u64"),
            Type::U128 => f.write_str("u128"),
            Type::I64 => f.write_str("i64"),
            Type::I128 => f.write_str("i128"),
            Type::String => f.write_str("String"),
            Type::Bytes => f.write_str("Vec<u8>"),
            Type::AgentId => f.write_str("AgentId"),
            Type::Hname => f.write_str("Hname"),
            Type::Hash => f.write_str("Hash32"),
            Type::Option(t) => write!(f, "Option<{t}>"),
            Type::Vec(t) => write!(f, "Vec<{t}>"),
            Type::Tuple(items) => {
                f.write_str("(")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl Serialize for Type {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Type {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Type, D::Error> {
        let text = String::deserialize(d)?;
        Type::parse(&text).map_err(|e| {
            serde::de::Error::custom(alloc::format!(
                "type `{}`: {e}",
                text.chars().take(64).collect::<String>()
            ))
        })
    }
}

/// A named, typed parameter or event field.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Field {
    /// The parameter name in the contract source.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Type,
}

/// An entry point or view.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Function {
    /// Its name; the hname of this name addresses it.
    pub name: String,
    /// Entry point or view.
    pub kind: CallKind,
    /// Parameters, in order (args are borsh of this tuple).
    pub params: Vec<Field>,
    /// Return type (`None` for `()`).
    pub returns: Option<Type>,
    /// The doc comment from the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docs: String,
}

/// An event type.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EventDef {
    /// The topic (struct name).
    pub name: String,
    /// Fields, in order (event data is borsh of them).
    pub fields: Vec<Field>,
    /// What it records: the struct's doc comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docs: String,
    /// How many leading fields are indexed (`#[indexed]`, at most [`MAX_INDEXED_FIELDS`]):
    /// nodes index the event by each one's value, so `wisp_getEvents` can ask for, say, the
    /// `Transfer`s to one account without reading the others.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub indexed: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Most indexed fields an event may have (Ethereum's three topics after the signature).
pub const MAX_INDEXED_FIELDS: u8 = 3;

impl EventDef {
    /// The borsh bytes of each indexed field of an event whose data is `data`, in field order;
    /// `None` if the data does not decode as the fields.
    pub fn indexed_values<'d>(&self, data: &'d [u8]) -> Option<Vec<&'d [u8]>> {
        let mut rest = data;
        let mut values = Vec::new();
        for field in self.fields.iter().take(usize::from(self.indexed)) {
            let len = field.ty.encoded_len(rest)?;
            let (value, tail) = rest.split_at(len);
            values.push(value);
            rest = tail;
        }
        Some(values)
    }
}

/// A contract error code.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ErrorDef {
    /// The variant name.
    pub name: String,
    /// Its stable code (contract level).
    pub code: u32,
    /// What it means: the variant's doc comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docs: String,
}

/// Everything tools need to talk to a contract.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
pub struct ContractInterface {
    /// The contract module's name.
    pub name: String,
    /// Entry points (including `init`) and views.
    pub functions: Vec<Function>,
    /// Events it may emit.
    pub events: Vec<EventDef>,
    /// Its error codes.
    pub errors: Vec<ErrorDef>,
}

impl ContractInterface {
    /// The function with this name and kind.
    pub fn function(&self, name: &str, kind: CallKind) -> Option<&Function> {
        self.functions
            .iter()
            .find(|f| f.name == name && f.kind == kind)
    }

    /// The function with this name, of either kind.
    pub fn function_named(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The event with this topic.
    pub fn event(&self, topic: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.name == topic)
    }

    /// The name of a contract error code.
    pub fn error_name(&self, code: u32) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.code == code)
            .map(|e| e.name.as_str())
    }
}

#[cfg(test)]
mod indexed_tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn encoded_lengths_walk_borsh_by_type() {
        let agent = crate::AgentId::Address([3; 32]);
        let contract = crate::AgentId::Contract(crate::ContractId {
            chain: crate::ChainId([4; 32]),
            hname: crate::Hname(5),
        });
        let value = (
            agent,
            contract,
            alloc::string::String::from("hey"),
            Some(7u64),
            vec![1u128, 2],
            (true, crate::Hname(9)),
        );
        let bytes = borsh::to_vec(&value).unwrap();
        let types = [
            "AgentId",
            "AgentId",
            "String",
            "Option<u64>",
            "Vec<u128>",
            "(bool, Hname)",
        ];
        let mut at = 0;
        for text in types {
            let ty = Type::parse(text).unwrap();
            let len = ty.encoded_len(&bytes[at..]).unwrap();
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(Type::AgentId.encoded_len(&bytes[..33]), Some(33));
        // Short data, bad tags and impossible counts are refused, not read past.
        assert_eq!(Type::AgentId.encoded_len(&bytes[..20]), None);
        assert_eq!(Type::AgentId.encoded_len(&[2; 40]), None);
        assert_eq!(Type::String.encoded_len(&[255, 255, 255, 255, 1]), None);
        // 2^32 - 1 empty tuples: four bytes, found without walking the count.
        let many_units = Type::Vec(alloc::boxed::Box::new(Type::Tuple(vec![])));
        assert_eq!(many_units.encoded_len(&[255, 255, 255, 255]), Some(4));

        let def = EventDef {
            name: "Transfer".into(),
            fields: vec![
                Field {
                    name: "from".into(),
                    ty: Type::AgentId,
                },
                Field {
                    name: "to".into(),
                    ty: Type::AgentId,
                },
                Field {
                    name: "amount".into(),
                    ty: Type::U128,
                },
            ],
            docs: String::new(),
            indexed: 2,
        };
        let data = borsh::to_vec(&(agent, contract, 5u128)).unwrap();
        let values = def.indexed_values(&data).unwrap();
        assert_eq!(values, vec![&data[..33], &data[33..70]]);
        assert_eq!(def.indexed_values(&data[..40]), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, vec};

    #[test]
    fn types_parse_and_print() {
        for text in [
            "u128",
            "Vec<AgentId>",
            "Option<String>",
            "(u64, bool)",
            "Vec<u8>",
            "Hash32",
        ] {
            let t = Type::parse(text).unwrap();
            assert_eq!(Type::parse(&t.to_string()), Ok(t));
        }
        assert_eq!(Type::parse("Vec < u8 >"), Ok(Type::Bytes));
        assert_eq!(Type::parse("wisp_sdk::AgentId"), Ok(Type::AgentId));
        assert_eq!(
            Type::parse("alloc::vec::Vec<(u64,)>"),
            Ok(Type::Vec(Box::new(Type::Tuple(vec![Type::U64]))))
        );
        assert_eq!(
            Type::parse("Option<(u64, Vec<(bool, Hash32)>)>").map(|t| t.to_string()),
            Ok("Option<(u64, Vec<(bool, Hash32)>)>".into())
        );
        assert!(matches!(Type::parse("f64"), Err(TypeError::Unsupported(_))));
        assert!(matches!(
            Type::parse("HashMap<u8,u8>"),
            Err(TypeError::Unsupported(_))
        ));
        for bad in [
            "", "Vec<", "Vec<u8", "Vec<u8>>", "(u8", "(u8,,u8)", "u8u8>", "(,)", "<u8>", "Vec<>",
        ] {
            assert!(Type::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    /// Guards defect 2 of the hardening review: `Type::parse` recursed once per nesting level,
    /// so an interface type nested 15,000 deep overflowed the stack and aborted the process
    /// (and every node replaying the deploy). Now it is iterative and capped.
    #[test]
    fn deep_or_long_types_are_rejected_without_recursion() {
        let deep = format!("{}u8{}", "Vec<".repeat(15_000), ">".repeat(15_000));
        assert_eq!(Type::parse(&deep), Err(TypeError::TooLong(deep.len())));
        // Within the length cap, nesting is still bounded.
        let nested = format!("{}u8{}", "Option<".repeat(40), ">".repeat(40));
        assert!(nested.len() <= MAX_TYPE_TEXT_BYTES);
        assert_eq!(Type::parse(&nested), Err(TypeError::TooDeep));
        let tuples = format!("{}u8{}", "(".repeat(40), ",)".repeat(40));
        assert_eq!(Type::parse(&tuples), Err(TypeError::TooDeep));
        let ok = format!(
            "{}u16{}",
            "Vec<".repeat(MAX_TYPE_DEPTH),
            ">".repeat(MAX_TYPE_DEPTH)
        );
        assert!(Type::parse(&ok).is_ok());
        let wide = format!("({})", vec!["u8"; MAX_TUPLE_FIELDS + 1].join(","));
        assert_eq!(Type::parse(&wide), Err(TypeError::TooManyFields));
        // Through the interface JSON, as a node validating a module reads it.
        let json = format!(
            r#"{{"name":"x","functions":[{{"name":"f","kind":"entry","params":[{{"name":"a","type":"{deep}"}}],"returns":null}}],"events":[],"errors":[]}}"#
        );
        assert!(serde_json::from_str::<ContractInterface>(&json).is_err());
    }

    /// Guards defect 6: zero-sized types let a few bytes of a receipt decode into billions of
    /// JSON nodes (`Vec<Vec<()>>`); the interface may not describe them at all.
    #[test]
    fn zero_sized_types_are_rejected() {
        for zst in [
            "()",
            "Vec<()>",
            "Vec<Vec<()>>",
            "(u8, ())",
            "Option<()>",
            "((),)",
        ] {
            assert_eq!(Type::parse(zst), Err(TypeError::ZeroSized), "{zst}");
        }
        // Found by the json_codec fuzz target: `null` is both None and Some(None).
        assert_eq!(
            Type::parse("Option<Option<u8>>"),
            Err(TypeError::NestedOption)
        );
        assert!(Type::parse("Option<Vec<Option<u8>>>").is_ok());
    }
}
