//! Builds a contract crate to an optimised WebAssembly module: `cargo build` for
//! `wasm32-unknown-unknown` in release mode with opt-level 3, LTO, one codegen unit,
//! `panic = "abort"`, stripped symbols and a 32 KiB shadow stack unless asked for another
//! ([`BuildOptions::stack_bytes`], docs/vm.md). Opt-level 3
//! rather than `z`: on the example contracts it inlines more, so modules have half the
//! functions (token: 97 instead of 214), are smaller (34 KB instead of 38 KB) and instantiate
//! faster, since wasmi's instantiation cost grows with the number of functions. The wasm build uses its own target directory, so it never
//! invalidates host builds and never waits on their lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The crate directory has no Cargo.toml.
    #[error("{0} has no Cargo.toml: pass the directory of a contract crate")]
    NotACrate(PathBuf),
    /// cargo could not be started.
    #[error("could not run cargo ({0}); is the Rust toolchain installed?")]
    Cargo(std::io::Error),
    /// A shadow stack size the linker cannot take.
    #[error("a shadow stack of {0} bytes is not allowed: give a multiple of 16 from {min} to {max} bytes", min = MIN_STACK_BYTES, max = MAX_STACK_BYTES)]
    BadStackSize(u32),
    /// The wasm32 target is not installed.
    #[error("the wasm32-unknown-unknown target is missing: run `rustup target add wasm32-unknown-unknown`")]
    MissingTarget,
    /// The compiler reported errors (printed above).
    #[error("cargo build failed for {crate_dir}:\n{stderr}")]
    Compile {
        /// The crate.
        crate_dir: PathBuf,
        /// What cargo said.
        stderr: String,
    },
    /// cargo succeeded but produced no `.wasm` (the crate is not a `cdylib`).
    #[error("{0} produced no .wasm file: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml")]
    NoArtifact(PathBuf),
}

/// Options of [`build_contract`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Target directory for the wasm build; default: `$WISP_WASM_TARGET_DIR`, else
    /// `<the crate's workspace target directory>/wisp-wasm`.
    pub target_dir: Option<PathBuf>,
    /// Do not print cargo's progress (tests).
    pub quiet: bool,
    /// Bytes of the module's shadow stack (the linker's `-z stack-size`, a multiple of 16 from
    /// [`MIN_STACK_BYTES`] to [`MAX_STACK_BYTES`]); default [`DEFAULT_STACK_BYTES`]. A
    /// contract whose calls go deeper traps with an out-of-bounds memory access.
    pub stack_bytes: Option<u32>,
}

/// The shadow stack a contract gets unless it asks for another: 32 KiB, so that a contract
/// with a few KB of data fits one 64 KiB page of memory, which every call pays for
/// (`INITIAL_PAGE_GAS` per page) and the VM zeroes after it. The example contracts' calls in
/// their tests used at most 1,936 bytes of stack.
pub const DEFAULT_STACK_BYTES: u32 = 32 * 1024;
/// Smallest shadow stack [`build_contract`] links.
pub const MIN_STACK_BYTES: u32 = 4 * 1024;
/// Largest shadow stack [`build_contract`] links (rustc's own default for wasm).
pub const MAX_STACK_BYTES: u32 = 1024 * 1024;

/// The stack size to link, checked.
fn stack_bytes(options: &BuildOptions) -> Result<u32, BuildError> {
    let bytes = options.stack_bytes.unwrap_or(DEFAULT_STACK_BYTES);
    if !(MIN_STACK_BYTES..=MAX_STACK_BYTES).contains(&bytes) || !bytes.is_multiple_of(16) {
        return Err(BuildError::BadStackSize(bytes));
    }
    Ok(bytes)
}

fn default_target_dir(crate_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("WISP_WASM_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // The workspace's own target directory (honours CARGO_TARGET_DIR and cargo config), so
    // every contract of a workspace shares one wasm build of the SDK.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let metadata = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(crate_dir.join("Cargo.toml"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["target_directory"].as_str().map(PathBuf::from));
    metadata
        .unwrap_or_else(|| crate_dir.join("target"))
        .join("wisp-wasm")
}

/// Compiles the contract crate in `crate_dir`; returns the path of the `.wasm` module.
///
/// # Errors
/// [`BuildError`] saying what to fix: not a crate, no toolchain, missing wasm target, compile
/// errors (with cargo's output), or no cdylib artifact.
pub fn build_contract(crate_dir: &Path, options: &BuildOptions) -> Result<PathBuf, BuildError> {
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(crate_dir.to_path_buf()));
    }
    let stack = stack_bytes(options)?;
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| default_target_dir(crate_dir));
    // Another stack size is other linker flags, which would make cargo rebuild every crate of
    // the wasm build: each size gets a directory of its own.
    let target_dir = match stack {
        DEFAULT_STACK_BYTES => target_dir,
        other => target_dir.join(format!("stack-{other}")),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--config", "profile.release.opt-level=3"])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic=\"abort\""])
        .args(["--config", "profile.release.strip=true"])
        .args(["--config", "profile.release.overflow-checks=true"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            format!("-C link-arg=-zstack-size={stack}"),
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if options.quiet {
        cmd.arg("--quiet");
    }
    let output = cmd.output().map_err(BuildError::Cargo)?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !options.quiet {
        eprint!("{stderr}");
    }
    if !output.status.success() {
        if stderr.contains("wasm32-unknown-unknown")
            && (stderr.contains("may not be installed")
                || stderr.contains("can't find crate for `core`"))
        {
            return Err(BuildError::MissingTarget);
        }
        let rendered: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-message")
            .filter_map(|v| v["message"]["rendered"].as_str().map(str::to_string))
            .collect();
        return Err(BuildError::Compile {
            crate_dir: crate_dir.to_path_buf(),
            stderr: format!("{}{stderr}", rendered.join("")),
        });
    }
    let mut artifact = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" || !same_file(&v["manifest_path"], &manifest) {
            continue;
        }
        if let Some(files) = v["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with(".wasm") {
                    artifact = Some(PathBuf::from(f));
                }
            }
        }
    }
    artifact.ok_or_else(|| BuildError::NoArtifact(crate_dir.to_path_buf()))
}

fn same_file(reported: &serde_json::Value, manifest: &Path) -> bool {
    match (
        reported
            .as_str()
            .map(Path::new)
            .and_then(|p| p.canonicalize().ok()),
        manifest.canonicalize().ok(),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_size_is_checked_before_anything_is_built() {
        let with = |bytes| BuildOptions {
            stack_bytes: bytes,
            ..BuildOptions::default()
        };
        assert_eq!(stack_bytes(&with(None)).unwrap(), DEFAULT_STACK_BYTES);
        assert_eq!(stack_bytes(&with(Some(65_536))).unwrap(), 65_536);
        for bad in [0, MIN_STACK_BYTES - 16, MAX_STACK_BYTES + 16, 40_000 + 8] {
            let e = stack_bytes(&with(Some(bad))).unwrap_err();
            assert!(
                matches!(e, BuildError::BadStackSize(b) if b == bad),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("multiple of 16"), "{e}");
        }
        // A missing crate is reported first, whatever the size.
        let e = build_contract(Path::new("/nonexistent"), &with(Some(3))).unwrap_err();
        assert!(matches!(e, BuildError::NotACrate(_)), "{e}");
    }
}
