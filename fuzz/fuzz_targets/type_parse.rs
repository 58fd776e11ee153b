//! Guards `Type::parse` (interface type strings, read from the `wisp:interface` section of every
//! deployed module and from tools) and the JSON decoding of a whole `ContractInterface`.
//! Parsing must never panic, hang or overflow the stack, and every parsed type must print to a
//! string that parses back to the same type.
//!
//! Known: before the iterative parser (defect 2 of the hardening review), a type nested a few
//! thousand levels deep overflowed the stack here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_core::interface::{ContractInterface, Type};

fn check_type(t: &Type) {
    let printed = t.to_string();
    assert_eq!(
        Type::parse(&printed).ok().as_ref(),
        Some(t),
        "`{printed}` does not parse back to the type it was printed from"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = Type::parse(text) {
            check_type(&t);
        }
    }
    if let Ok(interface) = serde_json::from_slice::<ContractInterface>(data) {
        for f in &interface.functions {
            f.params.iter().for_each(|p| check_type(&p.ty));
            if let Some(t) = &f.returns {
                check_type(t);
            }
        }
        for e in &interface.events {
            e.fields.iter().for_each(|p| check_type(&p.ty));
        }
        // Serialising and reading back gives the same interface.
        let json = serde_json::to_vec(&interface).expect("an interface always serialises");
        let again: ContractInterface =
            serde_json::from_slice(&json).expect("a serialised interface must parse");
        assert_eq!(again, interface);
    }
});
