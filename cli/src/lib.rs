//! The `wisp` command's library: the keystore, `wisp chain create` / `wisp node` settings, and
//! the client operations the commands (and the end-to-end tests) use over JSON-RPC. The devnet
//! itself is `wisp_node::devnet` (feature `devnet`).

pub mod bindings;
pub mod client;
pub mod keystore;
pub mod operator;
