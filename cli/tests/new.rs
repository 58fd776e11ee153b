//! `wisp new` from outside the repository: the crate it makes builds, and its test passes, with
//! nothing but `cargo test` in its directory.

use std::process::Command;

#[test]
fn a_new_contract_crate_passes_its_test_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("hello");
    let wisp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wisp"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = wisp(&["new", "hello-counter", "--dir", krate.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created contract crate `hello-counter`"),
        "{stdout}"
    );
    assert!(krate.join("tests/hello_counter.rs").exists());

    // Refused, with what to do: the directory exists; a name that is not a crate name.
    let out = wisp(&["new", "hello-counter", "--dir", krate.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = wisp(&["new", "Hello World"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable name"));

    // Its own target directory beside the shared one (a nested cargo must not wait for the
    // lock of the build running this test), kept between runs.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("target"))
        .join("wisp-new-crate");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = Command::new(cargo)
        .args(["test", "--offline", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "{all}");
    assert!(all.contains("1 passed"), "{all}");
}
