//! What the process-level end-to-end tests share: kaspad as a separate process on simnet,
//! running the `wisp` binary, and waiting for things.
#![allow(dead_code)] // each test binary uses its own part

use jsonrpsee::rpc_params;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;
use wisp_cli::client::Client;
use wisp_l1::L1Client;

/// Simnet coinbase maturity the tests' kaspad runs with (DAA scores).
pub const MATURITY: u64 = 10;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// kaspad as a separate process on simnet, with the devnet's coinbase maturity and fresh block
/// templates (a config file sets what has no flag); killed when dropped. Its output goes to
/// `<dir>/kaspad.log`.
pub struct Kaspad {
    pub process: Child,
    pub url: String,
}

impl Kaspad {
    pub fn start(dir: &Path) -> Kaspad {
        std::fs::create_dir_all(dir).unwrap();
        let params = dir.join("simnet-params.json");
        wisp_l1::write_simnet_overrides(&params, MATURITY).unwrap();
        let config = dir.join("kaspad.toml");
        std::fs::write(&config, "block-template-cache-lifetime = 0\n").unwrap();
        let (rpc, p2p) = (free_port(), free_port());
        let log = std::fs::File::create(dir.join("kaspad.log")).unwrap();
        let process = Command::new(env!("CARGO_BIN_EXE_wisp-kaspad"))
            .args([
                "--simnet",
                "--utxoindex",
                "--unsaferpc",
                "--enable-unsynced-mining",
                "--disable-upnp",
                "--nodnsseed",
                "--nogrpc",
                "--nologfiles",
                "--yes",
                "--async-threads=2",
                "--configfile",
                config.to_str().unwrap(),
                "--appdir",
                dir.join("data").to_str().unwrap(),
                &format!("--override-params-file={}", params.display()),
                &format!("--rpclisten-borsh=127.0.0.1:{rpc}"),
                &format!("--listen=127.0.0.1:{p2p}"),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("wisp-kaspad starts");
        Kaspad {
            process,
            url: format!("ws://127.0.0.1:{rpc}"),
        }
    }

    pub async fn connect(&mut self) -> L1Client {
        for _ in 0..100 {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("wisp-kaspad exited ({status}); see kaspad.log");
            }
            if let Ok(l1) = L1Client::connect(&self.url, Duration::from_secs(2)).await {
                return l1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("wisp-kaspad did not open its wRPC port");
    }
}

/// A child process killed when dropped, so a failing test leaves no node running.
pub struct Process(pub Child);

impl std::ops::Deref for Process {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Kaspad {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs the `wisp` command to its end.
pub fn wisp_output(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .env("WISP_HOME", home)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the `wisp` command; returns its stdout, failing the test on a non-zero exit.
pub fn wisp(home: &Path, args: &[&str]) -> String {
    let out = wisp_output(home, args);
    assert!(
        out.status.success(),
        "wisp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub async fn ready(client: &Client) -> Value {
    for _ in 0..300 {
        if let Ok(info) = client.rpc("wisp_chainInfo", rpc_params![]).await {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node did not come up");
}

/// Polls until `f` returns `Some`, for up to 20 s.
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_for(what, 20, f).await
}

/// [`eventually`] for up to `seconds`.
pub async fn eventually_for<T, F, Fut>(what: &str, seconds: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Kaspa making blocks as a network does: one every `every`, paid to `to`, until stopped.
pub struct Miner {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Miner {
    /// Starts mining on kaspad at `url`.
    pub fn start(url: &str, to: kaspa_addresses::Address, every: Duration) -> Miner {
        let url = url.to_string();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let l1 = L1Client::connect(&url, Duration::from_secs(20))
                .await
                .unwrap();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(every) => {
                        let _ = l1.mine_block(&to).await;
                    }
                }
            }
            l1.disconnect().await;
        });
        Miner { stop, task }
    }

    /// Stops mining and waits for the miner to disconnect.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The wasm of example contract `contracts/<name>`, built (or taken from the build cache).
pub fn contract_wasm(name: &str) -> Vec<u8> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts")
        .join(name);
    let options = wisp_build::BuildOptions {
        quiet: true,
        ..Default::default()
    };
    std::fs::read(wisp_build::build_contract(&dir, &options).expect("contract builds"))
        .expect("wasm readable")
}
