//! An in-process Kaspa simnet node (PoW skipped on simnet), for the devnet and end-to-end tests.

use crate::{L1Error, Result};
use kaspa_core::core::Core;
use kaspa_core::signals::Shutdown;
use kaspad_lib::args::Args;
use kaspad_lib::daemon::{create_core_with_runtime, Runtime};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How to start a simnet node.
#[derive(Clone, Debug)]
pub struct SimnetConfig {
    /// Where kaspad keeps its database (reused across restarts).
    pub app_dir: PathBuf,
    /// wRPC (Borsh) port on 127.0.0.1; 0 picks a free one.
    pub rpc_port: u16,
    /// P2P port on 127.0.0.1; 0 picks a free one.
    pub p2p_port: u16,
    /// Coinbase maturity in DAA score units (simnet default 1000; the devnet lowers it so mined
    /// coins are spendable within seconds).
    pub coinbase_maturity: u64,
}

impl SimnetConfig {
    /// A simnet in `app_dir` on free loopback ports with the given coinbase maturity (DAA
    /// score units).
    pub fn local(app_dir: PathBuf, coinbase_maturity: u64) -> SimnetConfig {
        SimnetConfig {
            app_dir,
            rpc_port: 0,
            p2p_port: 0,
            coinbase_maturity,
        }
    }
}

/// A running in-process kaspad.
pub struct SimnetNode {
    core: Arc<Core>,
    workers: Option<Vec<JoinHandle<()>>>,
    rpc_port: u16,
    p2p_port: u16,
    app_dir: PathBuf,
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| L1Error::Simnet(format!("no free port on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| L1Error::Simnet(e.to_string()))?
        .port();
    Ok(port)
}

impl SimnetNode {
    /// Starts kaspad on simnet with its wRPC Borsh server on 127.0.0.1.
    ///
    /// # Errors
    /// [`L1Error::Simnet`] if the directory or the override file cannot be written or no port is
    /// free. (kaspad itself exits the process on a few unrecoverable set-up errors; the inputs
    /// here are built to avoid all of them.)
    pub fn start(config: &SimnetConfig) -> Result<SimnetNode> {
        std::fs::create_dir_all(&config.app_dir).map_err(|e| {
            L1Error::Simnet(format!("cannot create {}: {e}", config.app_dir.display()))
        })?;
        let rpc_port = if config.rpc_port == 0 {
            free_port()?
        } else {
            config.rpc_port
        };
        let p2p_port = if config.p2p_port == 0 {
            free_port()?
        } else {
            config.p2p_port
        };
        let override_file = config.app_dir.join("wisp-simnet-params.json");
        crate::write_simnet_overrides(&override_file, config.coinbase_maturity)?;
        let args = Args {
            simnet: true,
            appdir: Some(config.app_dir.to_string_lossy().into_owned()),
            utxoindex: true,
            unsafe_rpc: true,
            enable_unsynced_mining: true,
            disable_upnp: true,
            disable_dns_seeding: true,
            disable_grpc: true,
            no_log_files: true,
            yes: true,
            rpclisten_borsh: Some(
                format!("127.0.0.1:{rpc_port}")
                    .parse()
                    .map_err(|_| L1Error::Simnet("bad wRPC address".into()))?,
            ),
            listen: Some(
                format!("127.0.0.1:{p2p_port}")
                    .parse()
                    .map_err(|_| L1Error::Simnet("bad P2P address".into()))?,
            ),
            override_params_file: Some(override_file.to_string_lossy().into_owned()),
            block_template_cache_lifetime: Some(0),
            async_threads: 2,
            ..Args::default()
        };
        let (core, rpc) = create_core_with_runtime(&Runtime::default(), &args, 512);
        drop(rpc);
        let workers = core.start();
        Ok(SimnetNode {
            core,
            workers: Some(workers),
            rpc_port,
            p2p_port,
            app_dir: config.app_dir.clone(),
        })
    }

    /// `ws://127.0.0.1:<port>` of the wRPC Borsh server.
    pub fn rpc_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    /// A wRPC client of this node (waits up to 20 s for it to answer).
    ///
    /// # Errors
    /// [`L1Error::Rpc`] if it does not answer.
    pub async fn connect(&self) -> Result<crate::L1Client> {
        crate::L1Client::connect(&self.rpc_url(), std::time::Duration::from_secs(20)).await
    }

    /// The P2P address on 127.0.0.1 (for [`crate::L1Client::add_peer`]).
    pub fn p2p_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.p2p_port))
    }

    /// The wRPC port.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// Where the node keeps its data.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// Stops every service and waits for them (blocking: call from a blocking thread).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(workers) = self.workers.take() {
            self.core.shutdown();
            self.core.join(workers);
        }
    }
}

impl Drop for SimnetNode {
    fn drop(&mut self) {
        self.stop();
    }
}
