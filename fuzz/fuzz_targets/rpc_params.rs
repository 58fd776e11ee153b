//! Guards what the JSON-RPC server (node/src/rpc.rs) decodes from strangers before any
//! authentication: `0x`-hex (`wisp_core::hash::from_hex`) then borsh `OffLedgerRequest` /
//! `RequestBody`, `Hash32` / `ChainId` / `Hname` hex, raw `AgentId` strings, and JSON arguments
//! encoded against a contract interface (`wisp_core::json::encode_args`).
//! None may panic; everything that parses must print back to text that parses to the same value,
//! and encoded arguments must decode (`decode_fields`) to JSON that encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wisp_core::hash::{from_hex, to_hex};
use wisp_core::interface::{Field, Type};
use wisp_core::json::{decode_fields, encode_args, RawAgentFormat};
use wisp_core::{AgentId, ChainId, Hash32, Hname, OffLedgerRequest, RequestBody};

/// A fixed interface, like a token's `transfer`: one parameter of each kind of JSON form.
fn params() -> Vec<Field> {
    let field = |name: &str, ty: Type| Field {
        name: name.into(),
        ty,
    };
    vec![
        field("to", Type::AgentId),
        field("amount", Type::U128),
        field("memo", Type::Option(Box::new(Type::String))),
        field(
            "pairs",
            Type::Vec(Box::new(Type::Tuple(vec![Type::U64, Type::Bool]))),
        ),
        field("contract", Type::Hname),
        field("data", Type::Bytes),
        field("hash", Type::Hash),
        field("delta", Type::I64),
    ]
}

fn text_params(text: &str) {
    if let Some(bytes) = from_hex(text) {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        assert_eq!(to_hex(&bytes), digits.to_ascii_lowercase());
        if let Ok(request) = borsh::from_slice::<OffLedgerRequest>(&bytes) {
            let encoded = borsh::to_vec(&request).expect("encoding into a Vec cannot fail");
            assert_eq!(encoded, bytes, "non-canonical OffLedgerRequest");
            let _ = request.id();
        }
        if let Ok(body) = borsh::from_slice::<RequestBody>(&bytes) {
            let encoded = borsh::to_vec(&body).expect("encoding into a Vec cannot fail");
            assert_eq!(encoded, bytes, "non-canonical RequestBody");
        }
    }
    if let Some(h) = Hash32::from_hex(text) {
        assert_eq!(Hash32::from_hex(&h.to_hex()), Some(h));
    }
    if let Some(c) = ChainId::from_hex(text) {
        assert_eq!(ChainId::from_hex(&c.to_hex()), Some(c));
    }
    if let Some(h) = Hname::from_hex(text) {
        assert_eq!(Hname::from_hex(&h.to_string()), Some(h));
    }
    if let Some(a) = AgentId::from_raw_string(text) {
        assert_eq!(AgentId::from_raw_string(&a.to_raw_string()), Some(a));
    }
}

fn json_params(data: &[u8]) {
    let Ok(args) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let params = params();
    let Ok(bytes) = encode_args(&params, &args, &RawAgentFormat) else {
        return;
    };
    let decoded = decode_fields(&params, &bytes, &RawAgentFormat)
        .unwrap_or_else(|e| panic!("{args} encoded but does not decode: {e}"));
    let again = encode_args(&params, &decoded, &RawAgentFormat)
        .unwrap_or_else(|e| panic!("{args} decodes to {decoded}, which does not encode: {e}"));
    assert_eq!(
        again, bytes,
        "{args} decodes to {decoded}, which encodes differently"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        text_params(text);
        // RPC parameters arrive as JSON strings: the same decoders on the unquoted string.
        if let Ok(Value::String(s)) = serde_json::from_str::<Value>(text) {
            text_params(&s);
        }
    }
    json_params(data);
});
