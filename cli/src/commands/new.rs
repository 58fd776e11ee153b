//! `wisp new`: a contract crate to start from, anywhere on disk, with a test on the in-process
//! harness that passes as generated (as `stellar contract init` does).
//!
//! The crate refers to the SDK by path: by default the Wisp sources this `wisp` was built from
//! (`--sdk` for another checkout). It gets the Wisp workspace's `Cargo.lock`, so its
//! dependencies resolve to the versions Wisp is tested with, and the same profile settings, so
//! its builds can share a target directory with Wisp's.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The Wisp workspace's lock file, as of this build.
const WORKSPACE_LOCK: &str = include_str!("../../../Cargo.lock");

/// The SDK this binary was built with: `<repository>/sdk`.
fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// Whether `name` is a usable crate and contract name: lowercase ASCII letters, digits, `_`
/// and `-`, starting with a letter, at most 64 bytes.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The files of a new contract crate named `name` using the SDK at `sdk`.
fn files(name: &str, sdk: &Path) -> Vec<(PathBuf, String)> {
    let module = name.replace('-', "_");
    let client = wisp_core::interface::client_type_name(&module);
    let sdk = sdk.display().to_string().replace('\\', "/");
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[features]
# Built as another contract's dependency, for its typed client (`{client}`): no wasm exports.
library = []

[dependencies]
wisp-sdk = {{ path = "{sdk}/guest" }}

[dev-dependencies]
wisp-test = {{ path = "{sdk}/test" }}

# A workspace of its own: the crate builds wherever it lies.
[workspace]

# As in Wisp's own workspace: dependencies lightly optimised (the VM runs at a useful speed in
# tests), and builds can share a target directory with Wisp's.
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
opt-level = 1
debug = false
"#
    );
    let lib = format!(
        r#"//! {name}: a Wisp contract. Build with `wisp build .`; test with `cargo test`.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[wisp_sdk::contract]
mod {module} {{
    use wisp_sdk::prelude::*;

    const COUNT: Item<u64> = Item::new("count");

    /// Emitted on every bump.
    #[event]
    pub struct Bumped {{
        pub by: AgentId,
        pub count: u64,
    }}

    #[errors]
    pub enum BumpError {{
        /// bumps must be positive
        Zero = 1,
    }}

    #[init]
    fn init() {{}}

    /// Adds `by` to the counter and returns the new value.
    #[entry]
    fn bump(by: u64) -> Result<u64, BumpError> {{
        require!(by > 0, BumpError::Zero);
        let count = COUNT.get_or_default() + by;
        COUNT.set(&count);
        env::emit(&Bumped {{
            by: env::caller(),
            count,
        }});
        Ok(count)
    }}

    /// The current value.
    #[view]
    fn count() -> u64 {{
        COUNT.get_or_default()
    }}
}}

pub use self::{module}::{{BumpError, Bumped, {client}, INTERFACE_JSON}};
"#
    );
    let test = format!(
        r#"//! {name} on the in-process harness: the same VM and runtime as a node, in milliseconds.

use wisp_test::{{events, TestChain}};
use {module}::{{BumpError, Bumped, {client}}};

#[test]
fn bumps_count_and_refuses_zero() {{
    let mut chain = TestChain::new();
    let alice = chain.new_account(10_000_000_000);
    // Builds this crate for wasm32 once per test run.
    let wasm = wisp_test::contract_wasm(env!("CARGO_MANIFEST_DIR"));
    let contract = chain.deploy(&alice, "{name}", &wasm, &()).unwrap();

    // The typed client `#[contract]` generates: calls as alice, decoded results, typed errors.
    let mut counter = {client}::with_backend(chain.caller(&alice), contract);
    assert_eq!(counter.bump(5).unwrap(), 5);
    let receipt = counter.backend().last_receipt().unwrap();
    let bumped: Vec<Bumped> = events(receipt, "Bumped");
    assert_eq!(bumped[0].count, 5);
    assert_eq!(counter.count().unwrap(), 5);

    let err = counter.bump(0).unwrap_err();
    assert_eq!(err.contract_error(), Some(&BumpError::Zero));
}}
"#
    );
    let readme = format!(
        "# {name}\n\nA Wisp contract.\n\n- `cargo test`: its tests on the in-process harness.\n\
         - `wisp build .`: the optimised .wasm module.\n\
         - `wisp deploy . --name {name}`, `wisp call {name} bump '[5]'`, `wisp view {name} count`: on a devnet (`wisp devnet`).\n"
    );
    vec![
        (PathBuf::from("Cargo.toml"), cargo_toml),
        (PathBuf::from("Cargo.lock"), WORKSPACE_LOCK.to_string()),
        (PathBuf::from("src/lib.rs"), lib),
        (PathBuf::from(format!("tests/{module}.rs")), test),
        (PathBuf::from("README.md"), readme),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
    ]
}

/// `wisp new <name> [--dir D] [--sdk S]`.
pub(crate) fn run(name: String, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<()> {
    if !valid_name(&name) {
        bail!("`{name}` is not a usable name: use lowercase letters, digits, `_` and `-`, starting with a letter (at most 64 bytes)");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    if dir.exists() {
        bail!(
            "{} already exists; pick another name or --dir",
            dir.display()
        );
    }
    let sdk = sdk.unwrap_or_else(default_sdk);
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the Wisp SDK is not at {} (this wisp was built from sources that have moved?); pass --sdk <wisp checkout>/sdk",
            sdk.display()
        )
    })?;
    if !sdk.join("guest/Cargo.toml").exists() || !sdk.join("test/Cargo.toml").exists() {
        bail!(
            "{} is not the Wisp SDK (no guest/ and test/ crates); pass --sdk <wisp checkout>/sdk",
            sdk.display()
        );
    }
    for (path, text) in files(&name, &sdk) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created contract crate `{name}` in {} (SDK: {})\n  cd {} && cargo test",
        dir.display(),
        sdk.display(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["counter", "my-token", "v2_pair", "a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Counter", "1st", "-x", "a b", "../x", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
