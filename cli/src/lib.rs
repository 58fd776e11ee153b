//! The `wisp` command's library: the devnet (feature `devnet`, on by default), the keystore, and the client operations the
//! commands (and the end-to-end tests) use over JSON-RPC.

pub mod client;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod keystore;
pub mod operator;
