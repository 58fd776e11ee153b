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

impl Type {
    /// Parses a Rust type as written in a contract (`u128`, `Vec<AgentId>`, `Option<String>`,
    /// `(u64, bool)`, `Hash32`); whitespace is ignored.
    ///
    /// # Errors
    /// `None` for a type the interface cannot describe.
    pub fn parse(text: &str) -> Option<Type> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let t = compact.as_str();
        let generic = |prefix: &str| -> Option<&str> {
            t.strip_prefix(prefix)?.strip_prefix('<')?.strip_suffix('>')
        };
        if let Some(inner) = generic("Option") {
            return Some(Type::Option(Box::new(Type::parse(inner)?)));
        }
        if let Some(inner) = generic("Vec") {
            return Some(match Type::parse(inner)? {
                Type::U8 => Type::Bytes,
                other => Type::Vec(Box::new(other)),
            });
        }
        if let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            if inner.is_empty() {
                return Some(Type::Tuple(Vec::new()));
            }
            let mut items = Vec::new();
            let mut depth = 0i32;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '<' | '(' => depth += 1,
                    '>' | ')' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(Type::parse(&inner[start..i])?);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if start < inner.len() {
                items.push(Type::parse(&inner[start..])?);
            }
            return Some(Type::Tuple(items));
        }
        let last = t.rsplit("::").next().unwrap_or(t);
        Some(match last {
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
        Type::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(alloc::format!("unsupported type `{text}`")))
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
}

/// A contract error code.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ErrorDef {
    /// The variant name.
    pub name: String,
    /// Its stable code (contract level).
    pub code: u32,
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
mod tests {
    use super::*;

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
            assert_eq!(Type::parse(&t.to_string()), Some(t));
        }
        assert_eq!(Type::parse("Vec < u8 >"), Some(Type::Bytes));
        assert_eq!(Type::parse("wisp_sdk::AgentId"), Some(Type::AgentId));
        assert_eq!(Type::parse("f64"), None);
        assert_eq!(Type::parse("HashMap<u8,u8>"), None);
    }
}
