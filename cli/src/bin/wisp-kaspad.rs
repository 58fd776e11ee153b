//! `wisp-kaspad`: the Kaspa node of the pinned `kaspad` crate (2.1.0), as a program of its own.
//!
//! The same daemon as upstream's `kaspad` binary, with the same flags (`wisp-kaspad --help`);
//! it exists so that a Kaspa node of exactly the version Wisp is tested against comes with the
//! workspace, without a second build of RocksDB. Run a simnet for `wisp node` with, e.g.:
//!
//! ```text
//! wisp-kaspad --simnet --utxoindex --rpclisten-borsh=127.0.0.1:17610 --appdir ./kaspad
//! ```
//!
//! Differences from upstream's binary: the system allocator instead of mimalloc, and no heap
//! profiler feature.

use kaspa_core::signals::Signals;
use kaspa_utils::fd_budget;
use kaspad_lib::args::parse_args;
use kaspad_lib::daemon::{create_core, DESIRED_DAEMON_SOFT_FD_LIMIT, MINIMUM_DAEMON_SOFT_FD_LIMIT};
use std::sync::Arc;

fn main() {
    let args = parse_args();
    match fd_budget::try_set_fd_limit(DESIRED_DAEMON_SOFT_FD_LIMIT) {
        Ok(limit) if limit < MINIMUM_DAEMON_SOFT_FD_LIMIT => eprintln!(
            "wisp-kaspad: the soft file descriptor limit is {limit}; kaspad needs at least \
             {MINIMUM_DAEMON_SOFT_FD_LIMIT} (raise it with `ulimit -n {DESIRED_DAEMON_SOFT_FD_LIMIT}`)"
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "wisp-kaspad: cannot raise the soft file descriptor limit to \
             {DESIRED_DAEMON_SOFT_FD_LIMIT}: {e}"
        ),
    }
    let reserved = [
        args.rpc_max_clients,
        args.inbound_limit,
        args.outbound_target,
    ]
    .iter()
    .map(|&n| i32::try_from(n).unwrap_or(i32::MAX))
    .fold(0i32, i32::saturating_add);
    let fd_total_budget = fd_budget::limit().saturating_sub(reserved);
    if fd_total_budget <= 0 {
        eprintln!(
            "wisp-kaspad: no file descriptors left for the database after the RPC and peer \
             limits; lower --rpcmaxclients, --maxinpeers or --outpeers, or raise `ulimit -n`"
        );
        std::process::exit(1);
    }
    let (core, _) = create_core(args, fd_total_budget);
    // Ctrl-C (SIGINT) shuts the node down cleanly.
    Arc::new(Signals::new(&core)).init();
    core.run();
}
