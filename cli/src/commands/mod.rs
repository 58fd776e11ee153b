//! The `wisp` commands, one module per group; `main.rs` holds the command-line grammar and
//! dispatches here. Shared here: output (`--json` or human), the keystore, argument parsing.

pub(crate) mod account;
pub(crate) mod committee;
pub(crate) mod contract;
pub(crate) mod devnet;
pub(crate) mod doctor;
pub(crate) mod inspect;
pub(crate) mod new;
pub(crate) mod operate;
pub(crate) mod peg;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use wisp_cli::keystore::Keystore;

/// What every command gets from the global flags.
pub(crate) struct Ctx {
    /// `--rpc`: the node's JSON-RPC URL.
    pub(crate) rpc: String,
    /// `--json`: machine-readable output.
    pub(crate) json: bool,
}

/// A duration like `500ms` or `1s` (a bare number is milliseconds); `None` for zero.
pub(crate) fn parse_duration(text: &str) -> Result<Option<Duration>> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "ms"),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration like 1s or 500ms"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        other => bail!("unknown duration unit `{other}`; use ms or s"),
    };
    Ok((!d.is_zero()).then_some(d))
}

/// JSON from the command line, with a hint about shell quoting when it does not parse.
pub(crate) fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| {
        format!("`{text}` is not JSON (quote strings: '[\"kaspasim:…\", \"100\"]')")
    })
}

/// Prints `value` as JSON with `--json`, else through `human`.
pub(crate) fn print(json_mode: bool, value: &Value, human: impl FnOnce(&Value)) {
    if json_mode {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        human(value);
    }
}

/// A receipt for people: status, gas and fee, error, return value, events.
pub(crate) fn print_receipt(r: &Value) {
    let ok = r["status"] == "success";
    println!(
        "{} request {}",
        if ok { "✓ success" } else { "✗ failed " },
        r["requestId"].as_str().unwrap_or("?")
    );
    println!(
        "  block {}  gas used {}  fee {} sompi",
        r["blockIndex"],
        r["gasUsed"].as_str().unwrap_or("?"),
        r["feeSompi"].as_str().unwrap_or("?")
    );
    let sompi = |field: &str| r[field].as_str().filter(|s| *s != "0").map(str::to_string);
    match (sompi("storageLockedSompi"), sompi("storageRefundedSompi")) {
        (None, None) => {}
        (locked, refunded) => println!(
            "  storage deposit: locked {} sompi, refunded {} sompi",
            locked.as_deref().unwrap_or("0"),
            refunded.as_deref().unwrap_or("0")
        ),
    }
    if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
        let name = e["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!(
            "  error: {} error {}{name}: {}",
            e["level"].as_str().unwrap_or("?"),
            e["code"],
            e["message"].as_str().unwrap_or("")
        );
    }
    if let Some(v) = r.get("returnValue").filter(|v| !v.is_null()) {
        println!("  returned: {v}");
    }
    if let Some(events) = r["events"].as_array() {
        for e in events {
            println!(
                "  event {} {}: {}",
                e["contract"].as_str().unwrap_or("?"),
                e["topic"].as_str().unwrap_or("?"),
                if e["fields"].is_null() {
                    e["data"].clone()
                } else {
                    e["fields"].clone()
                }
            );
        }
    }
}

/// The keystore at `$WISP_HOME/accounts.json`.
pub(crate) fn keystore() -> Result<Keystore> {
    Keystore::default_store()
}

/// The key pair of a keystore account.
pub(crate) fn signer(name: &str) -> Result<secp256k1::Keypair> {
    keystore()?.get(name)?.keypair()
}

/// An account name becomes its address; anything else is passed through.
pub(crate) fn agent_text(who: &str) -> String {
    if let Ok(store) = keystore() {
        if let Ok(a) = store.get(who) {
            if let Ok(k) = a.x_only_key() {
                return wisp_l1::address_of(&k, wisp_l1::Prefix::Simnet).to_string();
            }
        }
    }
    who.to_string()
}

/// A module's bytes: a `.wasm` file, or a contract crate directory built first.
pub(crate) fn load_code(path: &Path) -> Result<Vec<u8>> {
    let wasm = if path.is_dir() {
        eprintln!("building {}…", path.display());
        wisp_build::build_contract(path, &wisp_build::BuildOptions::default())?
    } else {
        path.to_path_buf()
    };
    std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))
}

/// Replaces account names (`dev1`) in argument strings by their addresses.
pub(crate) fn resolve_names(v: Value) -> Value {
    match v {
        Value::String(s) => {
            let resolved = agent_text(&s);
            Value::String(resolved)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(resolve_names).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, resolve_names(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Exits with status 2 (the README's "the request ran and failed") unless `receipt` is a
/// success; call it after printing the receipt.
pub(crate) fn exit_if_failed(receipt: &Value) {
    if receipt["status"] != "success" {
        std::process::exit(2);
    }
}

impl crate::TxArgs {
    /// The call options these flags give, with `default_gas` when `--gas` is not set.
    pub(crate) fn options(&self, default_gas: u64) -> wisp_cli::client::CallOptions {
        wisp_cli::client::CallOptions {
            transfer_sompi: self.transfer,
            gas_budget: self.gas.unwrap_or(default_gas),
            on_ledger: self.on_ledger,
            deposit_sompi: self.deposit,
            declare_access: !self.no_access_list,
            not_before: self.not_before,
            expires_at: self.expires_at,
        }
    }
}
