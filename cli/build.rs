//! Nothing to build. It exists so that `[build-dependencies]` in Cargo.toml can align the
//! features of host-side crates (build scripts, proc macros) with what `cargo test --workspace`
//! enables, so `cargo run -p wisp-cli` reuses the test build (see the comment in Cargo.toml).
fn main() {}
