//! The Wisp host ABI: the one list of host functions a contract may import (module `wisp`), with
//! each function's arguments, gas cost and docs. The guest bindings (`wisp-sdk`), the host
//! dispatch (`wisp-vm`) and `docs/host-abi.md` are all generated from [`with_host_functions!`]
//! (the model is Soroban's `env.json`).
//!
//! Conventions:
//! - Pointers and lengths are `u32` offsets/byte counts into the caller's linear memory.
//! - Variable-length results go to the per-call **register**: the function returns the length,
//!   the guest allocates that much and calls `register_read`.
//! - Cost of a call = `base` + `per_byte` × bytes moved between guest memory, the register and
//!   state, in gas; charged before the work is done. Instruction gas is separate (VM protocol).
//! - A host function that cannot do its job traps with a VM-level error code; none returns a
//!   silent failure, except `call`, which returns a status so callers may handle callee failure.

/// Calls `$callback!` with the whole host-function table.
///
/// Each entry: doc attributes, `fn name(args) -> ret;` and `base = N, per_byte = M;`.
#[macro_export]
macro_rules! with_host_functions {
    ($callback:path) => {
        $callback! {
            /// Copies the current call's borsh-encoded arguments into the register; returns their
            /// length in bytes.
            fn input() -> u32; base = 100, per_byte = 1;
            /// Length of the register in bytes.
            fn register_len() -> u32; base = 20, per_byte = 0;
            /// Copies the register to guest memory at `ptr` (`register_len()` bytes).
            fn register_read(ptr: u32); base = 50, per_byte = 1;
            /// Sets the call's return data (borsh-encoded return value).
            fn set_return(ptr: u32, len: u32); base = 100, per_byte = 1;
            /// Reads a key of this contract's state into the register; returns its length, or -1
            /// if the key is absent. Key bytes per_byte too.
            fn storage_get(key_ptr: u32, key_len: u32) -> i64; base = 2_000, per_byte = 1;
            /// Writes a key of this contract's state. Traps in a view.
            fn storage_set(key_ptr: u32, key_len: u32, value_ptr: u32, value_len: u32); base = 20_000, per_byte = 10;
            /// Deletes a key of this contract's state (absent keys are a no-op). Traps in a view.
            fn storage_remove(key_ptr: u32, key_len: u32); base = 25_000, per_byte = 1;
            /// Puts the borsh-encoded `AgentId` of the caller (request sender or calling
            /// contract) into the register; returns its length.
            fn caller() -> u32; base = 100, per_byte = 1;
            /// This contract's hname.
            fn self_hname() -> u32; base = 20, per_byte = 0;
            /// Writes the 32-byte chain id to `out_ptr`.
            fn chain_id(out_ptr: u32); base = 50, per_byte = 1;
            /// The index of the block being built.
            fn block_index() -> u64; base = 20, per_byte = 0;
            /// The block timestamp in ms since the Unix epoch (from the L1 chain block).
            fn block_timestamp_ms() -> u64; base = 20, per_byte = 0;
            /// Writes 32 bytes of the block's randomness to `out_ptr`: a new value at every call
            /// within a request, derived from the committee's threshold signature of a later view
            /// (unknown to anyone when the block's requests were fixed) and the request id.
            /// Traps with `randomness_unavailable` on a chain without a committee and in a view.
            fn random(out_ptr: u32); base = 1_000, per_byte = 1;
            /// Base tokens (sompi) the caller attached to this call; already in this contract's
            /// account.
            fn transferred_sompi() -> u64; base = 20, per_byte = 0;
            /// Base-token balance (sompi) of the borsh-encoded `AgentId` at `agent_ptr`.
            fn balance_sompi(agent_ptr: u32, agent_len: u32) -> u64; base = 1_000, per_byte = 1;
            /// Moves `amount` sompi from this contract's account to the agent's. Traps with
            /// `insufficient_balance` if this contract holds less; traps in a view.
            fn transfer_sompi(agent_ptr: u32, agent_len: u32, amount: u64); base = 5_000, per_byte = 1;
            /// Withdraws `amount` sompi from this contract's account to the Kaspa
            /// pay-to-public-key address of the 32-byte x-only key at `key_ptr` (peg out, like
            /// `accounts.withdraw`: at least 1 KAS, plus the 1,500,000-sompi withdrawal fee from
            /// this contract's account); returns the outbox sequence number. Traps with
            /// `insufficient_balance` if the contract holds less than amount + fee, with
            /// `bad_arguments` below the minimum; traps in a view.
            fn withdraw_to_l1(key_ptr: u32, amount: u64) -> u64; base = 30_000, per_byte = 0;
            /// Emits an event (`topic` is UTF-8, `data` the borsh fields). Traps in a view. The
            /// base gas pays for what the node keeps of every event: it is copied into the
            /// receipt, hashed into the events root and indexed.
            fn emit_event(topic_ptr: u32, topic_len: u32, data_ptr: u32, data_len: u32); base = 5_000, per_byte = 5;
            /// Calls another contract on this chain: `kind` 0 = entry point, 1 = view. Atomic with
            /// the caller: if the callee fails, its effects are undone. Returns 0 on success (the
            /// register holds the return data) or 1 on failure (the register holds the
            /// borsh-encoded `ReceiptError`). Gas is shared with the caller.
            fn call(kind: u32, target: u32, entry_point: u32, args_ptr: u32, args_len: u32, transfer: u64) -> u32; base = 10_000, per_byte = 1;
            /// Fails the call with a contract-level error `code` and a UTF-8 message; never returns.
            fn abort(code: u32, msg_ptr: u32, msg_len: u32); base = 0, per_byte = 0;
            /// Writes a debug line to the node log and the test harness (not part of receipts).
            fn log(msg_ptr: u32, msg_len: u32); base = 100, per_byte = 4;
            /// blake2b-256 of `len` bytes at `ptr`, written to `out_ptr` (32 bytes).
            fn blake2b_256(ptr: u32, len: u32, out_ptr: u32); base = 500, per_byte = 2;
            /// Gas left in the current request.
            fn gas_left() -> u64; base = 20, per_byte = 0;
            /// Verifies a BIP-340 Schnorr signature (Kaspa's default key type): the 64-byte
            /// signature at `sig_ptr` over the 32-byte message at `msg_ptr` by the 32-byte x-only
            /// public key at `key_ptr`. Returns 1 if valid, 0 otherwise (including a key that is
            /// not on the curve).
            fn verify_schnorr(msg_ptr: u32, sig_ptr: u32, key_ptr: u32) -> u32; base = 100_000, per_byte = 0;
            /// Verifies an ECDSA secp256k1 signature (Kaspa's ECDSA key type): the 64-byte compact
            /// signature (r ‖ s) at `sig_ptr` over the 32-byte message hash at `msg_ptr` by the
            /// 33-byte compressed public key at `key_ptr`. Returns 1 if valid, 0 otherwise; a
            /// signature with a high s is invalid, as in libsecp256k1 and Kaspa.
            fn verify_ecdsa(msg_ptr: u32, sig_ptr: u32, key_ptr: u32) -> u32; base = 100_000, per_byte = 0;
            /// Verifies an Ed25519 signature (RFC 8032, strict: non-canonical encodings and
            /// small-order keys are refused): the 64-byte signature at `sig_ptr` over the
            /// `msg_len` bytes at `msg_ptr` by the 32-byte public key at `key_ptr`. Returns 1 if
            /// valid, 0 otherwise. per_byte is per message byte.
            fn verify_ed25519(msg_ptr: u32, msg_len: u32, sig_ptr: u32, key_ptr: u32) -> u32; base = 100_000, per_byte = 6;
        }
    };
}

/// The wasm import module name of every host function.
pub const IMPORT_MODULE: &str = "wisp";

/// One host function, as data (for docs, validation and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFnSpec {
    /// Import name.
    pub name: &'static str,
    /// Parameters as written in the table, e.g. `key_ptr: u32, key_len: u32`.
    pub params: &'static str,
    /// Return type (`""` for none).
    pub returns: &'static str,
    /// Gas charged per call.
    pub base_gas: u64,
    /// Gas charged per byte moved.
    pub per_byte_gas: u64,
    /// The doc comment.
    pub docs: &'static [&'static str],
}

macro_rules! spec_table {
    ($( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; base = $base:expr, per_byte = $per:expr; )*) => {
        /// Every host function, in table order.
        pub const HOST_FUNCTIONS: &[HostFnSpec] = &[$(HostFnSpec {
            name: stringify!($name),
            params: stringify!($($arg: $ty),*),
            returns: concat!($(stringify!($ret))?),
            base_gas: $base,
            per_byte_gas: $per,
            docs: &[$($doc),*],
        },)*];
    };
}
with_host_functions!(spec_table);

/// The spec of the host function named `name`.
pub fn host_fn(name: &str) -> Option<&'static HostFnSpec> {
    HOST_FUNCTIONS.iter().find(|f| f.name == name)
}

/// Markdown reference of the ABI, as checked in at `docs/host-abi.md`.
#[cfg(feature = "std")]
pub fn markdown() -> std::string::String {
    use core::fmt::Write;
    let mut out = std::string::String::from(
        "# Wisp host ABI\n\nGenerated from `core/src/abi.rs` (`with_host_functions!`); do not edit.\n\
         Import module: `wisp`. Cost of a call = base + per_byte × bytes moved, in gas.\n\n\
         | function | returns | base gas | gas per byte | what it does |\n|---|---|---|---|---|\n",
    );
    for f in HOST_FUNCTIONS {
        let docs: std::vec::Vec<&str> = f.docs.iter().map(|d| d.trim()).collect();
        let _ = writeln!(
            out,
            "| `{}({})` | {} | {} | {} | {} |",
            f.name,
            f.params,
            if f.returns.is_empty() {
                "—"
            } else {
                f.returns
            },
            f.base_gas,
            f.per_byte_gas,
            docs.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique() {
        for (i, a) in HOST_FUNCTIONS.iter().enumerate() {
            assert!(
                HOST_FUNCTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
            assert!(!a.docs.is_empty(), "{} has no docs", a.name);
        }
        assert_eq!(host_fn("storage_set").map(|f| f.base_gas), Some(20_000));
    }

    #[cfg(feature = "std")]
    #[test]
    fn checked_in_docs_match_the_table() {
        // The runtime variable, not `env!`: a shared target directory may hold a build from
        // another checkout of the same sources.
        let path = std::format!(
            "{}/../docs/host-abi.md",
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| std::string::String::from(env!("CARGO_MANIFEST_DIR")))
        );
        let generated = markdown();
        if std::env::var_os("WISP_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            on_disk, generated,
            "docs/host-abi.md is stale: rerun with WISP_BLESS=1"
        );
    }
}
