//! Wisp's Kaspa base layer: a wRPC client with mining and the lane follower, a wallet that builds
//! and signs version-1 lane transactions, and (feature `simnet`, for the devnet and tests) an
//! in-process simnet node: kaspad 2.1.0 as a library, with RocksDB. Verified facts this code
//! relies on are in `docs/kaspa.md`.

mod client;
mod params;
#[cfg(feature = "simnet")]
mod simnet;
mod wallet;

pub use client::{ChainBlock, L1Client, LaneOutput, LaneScript, LaneTx, VirtualChainUpdate};
pub use params::{simnet_params, write_simnet_overrides};
#[cfg(feature = "simnet")]
pub use simnet::{SimnetConfig, SimnetNode};
pub use wallet::{address_of, p2pk_key_of_script, PreparedTx, Wallet};

pub use kaspa_addresses::{Address, Prefix};

/// Errors talking to or running Kaspa.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L1Error {
    /// The wRPC client failed (connection refused, closed, timeout).
    #[error("Kaspa RPC at {url}: {message}")]
    Rpc {
        /// The node's wRPC URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The node refused a transaction or block.
    #[error("Kaspa rejected {what}: {reason}")]
    Rejected {
        /// What was submitted.
        what: String,
        /// kaspad's reason.
        reason: String,
    },
    /// The wallet has too few mature coins.
    #[error("{address} has {available_sompi} spendable sompi, {needed_sompi} are needed (fund it, or wait for coinbase maturity)")]
    InsufficientFunds {
        /// The paying address.
        address: String,
        /// What it can spend now.
        available_sompi: u64,
        /// What the transaction needs (outputs + fee).
        needed_sompi: u64,
    },
    /// The simnet node could not be set up.
    #[error("simnet node: {0}")]
    Simnet(String),
}

/// Result alias of this crate.
pub type Result<T, E = L1Error> = std::result::Result<T, E>;
