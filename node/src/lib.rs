//! The Wisp node: follows Kaspa's accepted order on the Wisp lane, orders off-ledger requests,
//! produces blocks (a committee of one on the devnet), and serves JSON-RPC on loopback.
//!
//! Invariants:
//! - One block producer at a time (`produce_lock`); a block is committed before it is announced.
//! - A Wisp block refers to one L1 chain block and takes every lane request accepted after the
//!   previous Wisp block's L1 reference up to it, in L1 order; off-ledger requests follow.
//! - On restart the node resumes from the last committed block's L1 reference.

mod agents;
pub mod allocator;
mod anchoring;
mod answer;
pub mod committee;
pub mod datadir;
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod explorer;
mod guard;
mod lane;
mod mempool;
mod metrics;
pub mod rpc;
pub mod signing_log;

pub use agents::KaspaAgents;
pub use anchoring::{AnchorProgress, AnchorStatus};
pub use lane::{confirmed, lane_requests, MAX_L1_BLOCKS_PER_PASS};
pub use mempool::{MEMPOOL_LIMIT, MEMPOOL_MAX_AGE, MEMPOOL_MAX_BYTES};

use kaspa_addresses::Prefix;
use kaspa_consensus_core::config::params::Params;
use kaspa_consensus_core::subnets::SubnetworkId;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use wisp_chain::{BlockInputs, BlockOutput, Chain, L1Ref, OnLedgerRequest, VerifiedRequest};
use wisp_core::{AgentId, Hash32, OffLedgerRequest, ReceiptError, RequestErrorCode, LANE_ID};
use wisp_l1::{L1Client, LaneTx, Wallet};

/// Errors of the node (RPC errors carry their own codes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The chain runtime failed.
    #[error(transparent)]
    Chain(#[from] wisp_chain::ChainError),
    /// Kaspa failed.
    #[error(transparent)]
    L1(#[from] wisp_l1::L1Error),
    /// A settlement script or transaction could not be built.
    #[error(transparent)]
    Settlement(#[from] wisp_settlement::SettlementError),
    /// A data directory or chain set-up problem (missing or damaged `node.json`, a kaspad on
    /// another network, an anchor Kaspa did not accept); the message says what to do.
    #[error("{0}")]
    DataDir(String),
    /// Re-executing the node's history gave another state root: the software or the archive
    /// differs from what produced the block.
    #[error("replaying block {block} gave state root {got}, not the original {expected}")]
    ReplayMismatch {
        /// The block.
        block: u64,
        /// Its original state root.
        expected: Hash32,
        /// The replayed one.
        got: Hash32,
    },
}

/// Result alias of this crate.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// The chain's anchor on Kaspa as the node knows it: the rules of its covenant script and the
/// genesis anchor UTXO (whose covenant id identifies the chain on L1). Deposits are paid to
/// the chain's deposit script, which only a transaction spending this anchor can spend
/// (`docs/anchor.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainAnchor {
    /// The anchor script's rules: its fee cap.
    pub rules: wisp_settlement::AnchorRules,
    /// The x-only key the chain's anchors name in their state: the only key that moves them
    /// (one node's key, or a committee's FROST group key). Today it is the key the chain was
    /// created with; moving a chain to a new committee will change it.
    pub committee_key: [u8; 32],
    /// The anchor created by the chain's genesis on Kaspa.
    pub genesis: wisp_settlement::tx::AnchorUtxo,
}

impl ChainAnchor {
    /// The chain's covenant id (its identity on L1).
    pub fn covenant_id(&self) -> kaspa_hashes::Hash {
        self.genesis.covenant_id
    }

    /// The script deposits are paid to.
    ///
    /// # Errors
    /// [`wisp_settlement::SettlementError::Script`] only if Kaspa's builder refuses it (it
    /// does not).
    pub fn deposit_script(
        &self,
    ) -> std::result::Result<
        kaspa_consensus_core::tx::ScriptPublicKey,
        wisp_settlement::SettlementError,
    > {
        wisp_settlement::deposit::script_public_key(&self.genesis.covenant_id)
    }
}

/// A request-level error with `code` and `message`.
pub(crate) fn request_error(code: RequestErrorCode, message: String) -> ReceiptError {
    ReceiptError {
        level: wisp_core::ErrorLevel::Request,
        code: code.code(),
        message,
    }
}

/// What kind of node this is.
pub enum NodeMode {
    /// A local development chain: the node also mines the simnet with `miner` and serves the
    /// `dev_*` RPC methods (mine, snapshot, revert).
    Devnet {
        /// The wallet that receives mined coins.
        miner: Wallet,
    },
    /// A node following a Kaspa network it does not mine; `dev_*` methods are refused.
    Follower,
}

/// A running node's shared state.
pub struct Node {
    chain: Arc<Chain>,
    chain_name: String,
    l1: L1Client,
    l1_params: Params,
    prefix: Prefix,
    lane: SubnetworkId,
    /// The chain's committee key when this node holds it whole (a committee of one); `None`
    /// for a committee chain, whose members sign the anchor together.
    committee: Option<Wallet>,
    anchor: ChainAnchor,
    deposit_script: wisp_l1::LaneScript,
    deposit_address: kaspa_addresses::Address,
    miner: Option<Wallet>,
    mempool: Mutex<mempool::Mempool>,
    /// The newest confirmed L1 chain block already scanned for lane requests, and its DAA
    /// score (`None`: start from the head's L1 reference).
    cursor: Mutex<Option<([u8; 32], u64)>>,
    produce_lock: tokio::sync::Mutex<()>,
    /// One anchoring step at a time (never two successors built at once).
    anchor_lock: tokio::sync::Mutex<()>,
    /// Set by anchoring when committed withdrawals wait for a newer block to be paid in.
    block_wanted: std::sync::atomic::AtomicBool,
    metrics: metrics::Metrics,
    blocks: broadcast::Sender<Arc<BlockOutput>>,
    snapshots: Mutex<Vec<u64>>,
    /// Set when the node runs as a member of a committee ([`committee::start_member`]): its
    /// off-ledger requests go to the committee's mempool, and only the committee makes blocks.
    committee_member: std::sync::OnceLock<wisp_consensus::Mailbox>,
    /// An access node's upstream: the member (or access node) it follows and passes requests
    /// on to.
    upstream: std::sync::OnceLock<jsonrpsee::http_client::HttpClient>,
}

/// What [`Node::undo_l1_reorg`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reorged {
    /// The chain head before the rollback (block index).
    pub from: u64,
    /// The chain head after it: the newest block whose L1 reference survived.
    pub to: u64,
    /// Off-ledger requests of the undone blocks put back in the mempool.
    pub requeued: usize,
}

impl Node {
    /// A node for `chain` following Kaspa through `l1`. `committee` holds the chain's committee
    /// key when this node holds it whole (a committee of one; `None` for a committee chain,
    /// whose members sign together), the only key the `anchor`'s script accepts; deposits are paid
    /// to the anchor's deposit script; `mode` says whether it is a devnet (mines L1 blocks,
    /// serves `dev_*`).
    ///
    /// # Errors
    /// [`NodeError::Settlement`] if the deposit script cannot be built (it always can).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Chain,
        chain_name: String,
        l1: L1Client,
        l1_params: Params,
        prefix: Prefix,
        committee: Option<Wallet>,
        anchor: ChainAnchor,
        mode: NodeMode,
    ) -> Result<Arc<Node>> {
        let (blocks, _) = broadcast::channel(256);
        let pool = Self::restore_mempool(&chain);
        let deposit_script = wisp_l1::LaneScript::from(&anchor.deposit_script()?);
        let deposit_address = wisp_settlement::deposit::address(&anchor.covenant_id(), prefix)?;
        Ok(Arc::new(Node {
            chain: Arc::new(chain),
            chain_name,
            l1,
            l1_params,
            prefix,
            lane: SubnetworkId::from(LANE_ID),
            committee,
            anchor,
            deposit_script,
            deposit_address,
            miner: match mode {
                NodeMode::Devnet { miner } => Some(miner),
                NodeMode::Follower => None,
            },
            mempool: Mutex::new(pool),
            cursor: Mutex::new(None),
            produce_lock: tokio::sync::Mutex::new(()),
            anchor_lock: tokio::sync::Mutex::new(()),
            block_wanted: std::sync::atomic::AtomicBool::new(false),
            metrics: metrics::Metrics::new(),
            blocks,
            snapshots: Mutex::new(Vec::new()),
            committee_member: std::sync::OnceLock::new(),
            upstream: std::sync::OnceLock::new(),
        }))
    }

    /// The chain runtime.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The chain runtime, shared (a committee member executes into it on its own thread).
    pub fn chain_arc(&self) -> Arc<Chain> {
        self.chain.clone()
    }

    /// The committee member's mailbox, if the node runs as one.
    pub fn committee_member(&self) -> Option<&wisp_consensus::Mailbox> {
        self.committee_member.get()
    }

    /// An access node's upstream (the RPC it follows and passes requests on to), if it is one.
    pub fn upstream(&self) -> Option<&jsonrpsee::http_client::HttpClient> {
        self.upstream.get()
    }

    /// Makes the node an access node following `client`.
    fn set_upstream(&self, client: jsonrpsee::http_client::HttpClient) {
        let _ = self.upstream.set(client);
    }

    /// Whether the chain runs on a committee (no key of this node signs its anchor alone).
    pub fn is_committee_chain(&self) -> bool {
        self.committee.is_none()
    }

    /// Makes the node a committee member: from now on its off-ledger requests go to `mailbox`.
    fn set_committee(&self, mailbox: wisp_consensus::Mailbox) {
        let _ = self.committee_member.set(mailbox);
    }

    /// Tells the node's metrics and block subscribers (RPC subscriptions, receipt waiters) of a
    /// committed block, whoever made it ([`Node::produce_block`] or the committee member).
    fn publish(&self, output: Arc<BlockOutput>) {
        self.metrics.blocks.inc();
        self.metrics
            .requests
            .inc_by(u64::from(output.header.request_count));
        self.metrics.gas.inc_by(output.header.gas_used);
        tracing::info!(block = output.header.index, requests = output.header.request_count, gas = output.header.gas_used, root = %output.header.state_root, "block committed");
        let _ = self.blocks.send(output);
    }

    /// The chain's human name.
    pub fn chain_name(&self) -> &str {
        &self.chain_name
    }

    /// The L1 client.
    pub fn l1(&self) -> &L1Client {
        &self.l1
    }

    /// Kaspa consensus parameters of the L1 network.
    pub fn l1_params(&self) -> &Params {
        &self.l1_params
    }

    /// Address prefix of the L1 network.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The address deposits into the chain are paid to: the P2SH of the deposit script,
    /// spendable only together with the chain's anchor.
    pub fn deposit_address(&self) -> kaspa_addresses::Address {
        self.deposit_address.clone()
    }

    /// The chain's anchor on Kaspa.
    pub fn anchor(&self) -> &ChainAnchor {
        &self.anchor
    }

    /// The committee's x-only key (the one key the anchor accepts).
    pub fn committee_key(&self) -> [u8; 32] {
        self.anchor.committee_key
    }

    /// New committed blocks.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BlockOutput>> {
        self.blocks.subscribe()
    }

    /// Agent formatting with this chain's contract names.
    pub fn agents(&self) -> KaspaAgents {
        let names = self
            .chain
            .contracts()
            .map(|c| c.into_iter().map(|(h, n, _)| (h, n)).collect())
            .unwrap_or_default();
        KaspaAgents {
            prefix: self.prefix,
            chain: self.chain.chain_id(),
            names,
        }
    }

    /// The mempool as the node left it: every acknowledged request still pending on disk,
    /// checked again (signature, nonce) against the committed state.
    fn restore_mempool(chain: &Chain) -> mempool::Mempool {
        let mut pool = mempool::Mempool::default();
        let stored = match chain.db().pending() {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "could not read the pending off-ledger requests");
                return pool;
            }
        };
        let mut stale: Vec<Vec<u8>> = Vec::new();
        let now = std::time::Instant::now();
        // Signatures are checked on all cores first; admission then goes in stored order, as
        // it depends on what the pool already holds.
        let mut kept = Vec::with_capacity(stored.len());
        let mut decoded = Vec::with_capacity(stored.len());
        for (id, bytes) in stored {
            match borsh::from_slice::<OffLedgerRequest>(&bytes) {
                Ok(request) => {
                    kept.push((id, bytes.len()));
                    decoded.push(request);
                }
                Err(_) => stale.push(id),
            }
        }
        for ((id, len), verified) in kept.into_iter().zip(wisp_chain::verify_signatures(decoded)) {
            let restored = verified.ok().and_then(|v| {
                let sender = v.request().sender();
                let spend = chain.admit(&v, pool.queued(&sender)).ok()?;
                Some((v, spend))
            });
            match restored {
                Some((request, spend)) => {
                    let entry = mempool::Entry {
                        request,
                        bytes: len,
                        spend_sompi: spend,
                        admitted: now,
                    };
                    if pool.insert(entry).is_err() {
                        stale.push(id);
                    }
                }
                None => stale.push(id),
            }
        }
        let ids: Vec<&[u8]> = stale.iter().map(Vec::as_slice).collect();
        if let Err(e) = chain.db().remove_pending(&ids) {
            tracing::warn!(error = %e, "could not forget stale pending requests");
        }
        if pool.len() > 0 {
            tracing::info!(requests = pool.len(), "restored the mempool");
        }
        pool
    }

    /// Checks an off-ledger request (size, signature, chain, nonce window, funds on top of what
    /// the sender has queued), writes it to disk and queues it.
    ///
    /// # Errors
    /// The request-level [`ReceiptError`] it is refused with: `too_large`, `bad_signature`,
    /// `wrong_chain`, `bad_nonce` (replayed, duplicate or too far ahead), `gas_budget_out_of_range`,
    /// `insufficient_funds`, `mempool_full`, or `storage_failure`.
    pub fn submit(&self, request: OffLedgerRequest) -> std::result::Result<Hash32, ReceiptError> {
        let err = request_error;
        let (verified, bytes) = self.check_request(request)?;
        let sender = verified.request().sender();
        let nonce = verified.request().nonce;
        let id = verified.id();
        let mut pool = self.mempool.lock().map_err(|_| {
            err(
                RequestErrorCode::StorageFailure,
                "the mempool lock is poisoned; restart the node".into(),
            )
        })?;
        if pool.contains(&sender, nonce) {
            return Err(err(
                RequestErrorCode::BadNonce,
                format!("a request with nonce {nonce} from this sender is already pending"),
            ));
        }
        let spend = self.chain.admit(&verified, pool.queued(&sender))?;
        if !pool.has_room(bytes.len()) {
            let now = std::time::Instant::now();
            let chain = &self.chain;
            if let Ok(evicted) = pool.prune(|s| chain.nonce(s), now) {
                self.forget_pending(&evicted);
            }
            if !pool.has_room(bytes.len()) {
                return Err(err(
                    RequestErrorCode::MempoolFull,
                    format!(
                        "the node's mempool is full ({} requests); retry in a few blocks",
                        pool.len()
                    ),
                ));
            }
        }
        // On disk before the acknowledgement: a crash loses no acknowledged request.
        self.chain.db().put_pending(&id.0, &bytes).map_err(|e| {
            err(
                RequestErrorCode::StorageFailure,
                format!("node storage: {e}"),
            )
        })?;
        let entry = mempool::Entry {
            request: verified,
            bytes: bytes.len(),
            spend_sompi: spend,
            admitted: std::time::Instant::now(),
        };
        if let Err(refusal) = pool.insert(entry) {
            self.forget_pending(&[id]);
            return Err(err(
                RequestErrorCode::MempoolFull,
                format!("the request could not be queued: {refusal:?}"),
            ));
        }
        Ok(id)
    }

    /// The checks every off-ledger request passes before any mempool takes it: its size, its
    /// chain, and its signature. Returns it verified, and its encoding.
    ///
    /// # Errors
    /// `too_large`, `malformed`, `wrong_chain` or `bad_signature`.
    pub fn check_request(
        &self,
        request: OffLedgerRequest,
    ) -> std::result::Result<(VerifiedRequest, Vec<u8>), ReceiptError> {
        let err = request_error;
        let bytes = borsh::to_vec(&request).map_err(|e| {
            err(
                RequestErrorCode::Malformed,
                format!("request encoding: {e}"),
            )
        })?;
        if bytes.len() > wisp_chain::admission::MAX_REQUEST_BYTES {
            return Err(err(
                RequestErrorCode::TooLarge,
                format!(
                    "the request is {} bytes; the most a node accepts is {}",
                    bytes.len(),
                    wisp_chain::admission::MAX_REQUEST_BYTES
                ),
            ));
        }
        if request.body.chain != self.chain.chain_id() {
            return Err(err(
                RequestErrorCode::WrongChain,
                format!(
                    "the request is for chain {}, this node serves {}",
                    request.body.chain,
                    self.chain.chain_id()
                ),
            ));
        }
        Ok((wisp_chain::verify_signature(request)?, bytes))
    }

    /// Removes requests from the on-disk mempool.
    fn forget_pending(&self, ids: &[wisp_core::RequestId]) {
        let keys: Vec<&[u8]> = ids.iter().map(|id| id.0.as_slice()).collect();
        if let Err(e) = self.chain.db().remove_pending(&keys) {
            tracing::warn!(error = %e, "could not remove executed requests from the on-disk mempool");
        }
    }

    /// Number of queued off-ledger requests.
    pub fn mempool_len(&self) -> usize {
        self.mempool.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The requests a lane transaction carries, for this chain's deposit key.
    fn lane_requests(&self, tx: &LaneTx) -> Vec<OnLedgerRequest> {
        lane_requests(tx, &self.deposit_script)
    }

    /// DAA score of the newest confirmed Kaspa chain block the node has followed (scanned for
    /// lane requests), whether or not it made a chain block for it: how far the chain has
    /// caught up with Kaspa. A quiet chain makes no blocks but keeps following.
    ///
    /// # Errors
    /// [`NodeError::Chain`] if the head cannot be read (before the first pass).
    pub fn l1_followed_daa_score(&self) -> Result<u64> {
        match self.cursor.lock().ok().and_then(|c| *c) {
            Some((_, daa)) => Ok(daa),
            None => Ok(self.chain.head()?.l1_daa_score),
        }
    }

    /// Follows L1 and, if there is anything to execute, produces and commits one block.
    ///
    /// # Errors
    /// [`NodeError`] if Kaspa or storage fails; nothing is committed then.
    pub async fn produce_block(&self) -> Result<Option<Arc<BlockOutput>>> {
        let _guard = self.produce_lock.lock().await;
        self.produce_locked().await
    }

    /// Produces a block for a request just admitted (`sender`'s `nonce`), unless a block made
    /// while this call waited for its turn has already taken the request out of the mempool:
    /// requests that arrive while a block is being made go into the next one together (group
    /// commit), instead of each waiting for a block, most of them empty, of its own.
    ///
    /// # Errors
    /// As [`Node::produce_block`].
    pub async fn produce_block_for(
        &self,
        sender: &AgentId,
        nonce: u64,
    ) -> Result<Option<Arc<BlockOutput>>> {
        let _guard = self.produce_lock.lock().await;
        let pending = self
            .mempool
            .lock()
            .map(|pool| pool.contains(sender, nonce))
            .unwrap_or(true);
        if !pending {
            return Ok(None);
        }
        self.produce_locked().await
    }

    /// [`Node::produce_block`] with the production lock held.
    async fn produce_locked(&self) -> Result<Option<Arc<BlockOutput>>> {
        let head = self.chain.head()?;
        let genesis = self.l1.genesis_hash().await?;
        let (cursor, cursor_daa) = self.cursor.lock().ok().and_then(|c| *c).unwrap_or((
            if head.l1_block == Hash32::ZERO {
                genesis
            } else {
                head.l1_block.0
            },
            head.l1_daa_score,
        ));
        let mut on_ledger = Vec::new();
        let mut l1 = L1Ref {
            block_hash: head.l1_block,
            daa_score: head.l1_daa_score,
            timestamp_ms: head.timestamp_ms,
        };
        let mut latest_seen = (cursor, cursor_daa);
        let mut from = cursor;
        let depth = self.chain.params()?.l1_confirmations;
        let mut seen: Vec<wisp_l1::ChainBlock> = Vec::new();
        loop {
            let update = self
                .l1
                .virtual_chain_since(from, &self.lane, Some(&self.deposit_script))
                .await?;
            if !update.removed.is_empty() {
                self.undo_l1_reorg(&update.removed)?;
                if let Ok(mut c) = self.cursor.lock() {
                    *c = None;
                }
                return Ok(None);
            }
            let Some(last) = update.added.last() else {
                break;
            };
            from = last.hash;
            self.metrics
                .l1_seen_daa
                .fetch_max(last.daa_score, std::sync::atomic::Ordering::Relaxed);
            seen.extend(update.added);
            if seen.len() as u64 >= MAX_L1_BLOCKS_PER_PASS.saturating_add(depth) {
                break; // the rest on the next pass: catch-up is bounded in memory
            }
        }
        for block in confirmed(&seen, depth) {
            for tx in &block.lane_txs {
                on_ledger.extend(self.lane_requests(tx));
            }
            latest_seen = (block.hash, block.daa_score);
            // The block refers to the newest confirmed chain block: every lane request accepted
            // up to it is in `on_ledger`, and its time moves the chain's clock.
            l1 = L1Ref {
                block_hash: Hash32(block.hash),
                daa_score: block.daa_score,
                timestamp_ms: block.timestamp_ms,
            };
        }
        // Off-ledger: for each sender, the run of consecutive nonces from its next nonce.
        let off_ledger: Vec<VerifiedRequest> = {
            let pool = self
                .mempool
                .lock()
                .map_err(|_| wisp_l1::L1Error::Simnet("mempool poisoned".into()))?;
            pool.select(|s| self.chain.nonce(s))?
        };
        let backlog = self.chain.backlog(head.index)?;
        // An anchor whose outbox commits withdrawals can only pay them in a successor that
        // commits a newer block: the anchoring step asks for one, empty if need be.
        let anchor_wants_block = self
            .block_wanted
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        if on_ledger.is_empty()
            && off_ledger.is_empty()
            && backlog.is_empty()
            && !anchor_wants_block
            && !self
                .chain
                .time_lock_due(l1.daa_score, l1.timestamp_ms.max(head.timestamp_ms))?
        {
            if let Ok(mut c) = self.cursor.lock() {
                *c = Some(latest_seen);
            }
            return Ok(None);
        }
        let offledger_bytes = borsh::to_vec(
            &off_ledger
                .iter()
                .map(|v| v.request().clone())
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let index = head.index + 1;
        let output = self.chain.execute_block_with_meta(
            BlockInputs {
                randomness: None,
                l1,
                on_ledger,
                off_ledger,
            },
            &[(&format!("offledger/{index}"), offledger_bytes)],
        )?;
        if let Ok(mut c) = self.cursor.lock() {
            *c = Some(latest_seen);
        }
        // Drop what was executed and what can no longer run. The block's commit already took
        // the requests it ran off the disk; the rest (expired, or stranded behind a nonce gap
        // that another request filled) go now.
        let mut evicted = match self.mempool.lock() {
            Ok(mut pool) => pool
                .prune(|s| self.chain.nonce(s), std::time::Instant::now())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let ran: std::collections::BTreeSet<wisp_core::RequestId> =
            output.receipts.iter().map(|r| r.request_id).collect();
        evicted.retain(|id| !ran.contains(id));
        self.forget_pending(&evicted);
        let output = Arc::new(output);
        self.publish(output.clone());
        Ok(Some(output))
    }

    /// Undoes the chain blocks that refer to L1 chain blocks Kaspa has just removed from its
    /// selected chain (a reorg, tip first in `removed`), and puts their off-ledger requests back
    /// in the mempool (hardening defect 13: they were lost). On-ledger requests need no re-queue:
    /// they come back from L1 if the new branch accepts them. The next [`Node::produce_block`]
    /// follows the new branch. Called by `produce_block` when the L1 follower reports removed
    /// blocks; public so an operator tool or a test can drive it.
    ///
    /// Returns the indices rolled back (`from` → `to`, `None` if no chain block referred to a
    /// removed L1 block) and how many requests went back to the mempool; a request that can no
    /// longer be admitted (its sender's balance changed on the new branch, say) is dropped with
    /// a warning, as a request submitted then would be refused.
    ///
    /// # Errors
    /// [`NodeError`] if storage fails; the rollback is one transaction, so nothing is half done.
    pub fn undo_l1_reorg(&self, removed: &[[u8; 32]]) -> Result<Option<Reorged>> {
        let removed: Vec<Hash32> = removed.iter().map(|h| Hash32(*h)).collect();
        // The off-ledger requests of the blocks about to be undone (the same walk as
        // `rollback_l1`), oldest block first.
        let mut undone: Vec<OffLedgerRequest> = Vec::new();
        let mut header = self.chain.head()?;
        while header.index > 0 && removed.contains(&header.l1_block) {
            let mut archived = self.archived_off_ledger(header.index)?;
            archived.extend(undone);
            undone = archived;
            header = self
                .chain
                .db()
                .block(header.index - 1)
                .map_err(wisp_chain::ChainError::from)?;
        }
        let Some((from, to)) = self.chain.rollback_l1(&removed)? else {
            return Ok(None);
        };
        // Follow L1 again from the surviving block's reference: the new branch's transactions,
        // and those of the undone blocks that it still accepts, are read and executed again.
        if let Ok(mut c) = self.cursor.lock() {
            *c = None;
        }
        tracing::warn!(
            from,
            to,
            "L1 reorg removed referenced chain blocks: rolled back"
        );
        let mut requeued = 0usize;
        for request in undone {
            match self.submit(request) {
                Ok(_) => requeued += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "an undone off-ledger request was not re-queued")
                }
            }
        }
        tracing::info!(
            requeued,
            "off-ledger requests of the undone blocks re-queued"
        );
        Ok(Some(Reorged { from, to, requeued }))
    }

    /// The off-ledger requests block `index` executed, from the archive.
    fn archived_off_ledger(&self, index: u64) -> Result<Vec<OffLedgerRequest>> {
        match self
            .chain
            .db()
            .meta(&format!("offledger/{index}"))
            .map_err(wisp_chain::ChainError::from)?
        {
            None => Ok(Vec::new()),
            Some(bytes) => borsh::from_slice(&bytes).map_err(|e| {
                wisp_chain::ChainError::from(wisp_state::StateError::Corrupt(format!(
                    "off-ledger archive of block {index}: {e}"
                )))
                .into()
            }),
        }
    }

    /// Devnet: mines `n` L1 blocks, then produces a block if there is work.
    ///
    /// # Errors
    /// [`NodeError::L1`] if mining fails.
    pub async fn mine(&self, n: u32) -> Result<Option<Arc<BlockOutput>>> {
        if let Some(miner) = &self.miner {
            for _ in 0..n {
                self.l1.mine_block(&miner.address()).await?;
            }
        }
        let block = self.produce_block().await?;
        // Anchoring never stops block production: a failure is logged and retried next time.
        if let Err(e) = self.advance_anchor().await {
            tracing::warn!(error = %e, "anchoring failed; will retry");
        }
        Ok(block)
    }

    /// Re-executes this node's history into `target` (a fresh chain with the same genesis): each
    /// block's on-ledger requests are taken again from Kaspa's accepted order, its off-ledger
    /// requests from the archive; returns the number of blocks replayed. A mismatch of any state
    /// root is reported as an error naming the block (docs/design.md §5.7, replay).
    ///
    /// # Errors
    /// [`NodeError`] on storage or Kaspa failure, or [`NodeError::ReplayMismatch`] naming the
    /// first block whose state root differs.
    pub async fn replay_into(&self, target: &Chain) -> Result<u64> {
        let head = self.chain.head()?;
        let mut from = self.l1.genesis_hash().await?;
        let mut pending: Vec<OnLedgerRequest> = Vec::new();
        let mut seen: Vec<wisp_l1::ChainBlock> = Vec::new();
        let mut last_consumed = Hash32::ZERO;
        for index in 1..=head.index {
            let header = self
                .chain
                .db()
                .block(index)
                .map_err(wisp_chain::ChainError::from)?;
            // Collect lane requests of chain blocks up to and including this block's L1 reference.
            while header.l1_block != Hash32::ZERO && header.l1_block != last_consumed {
                if let Some(pos) = seen.iter().position(|b| Hash32(b.hash) == header.l1_block) {
                    for block in seen.drain(..=pos) {
                        for tx in &block.lane_txs {
                            pending.extend(self.lane_requests(tx));
                        }
                    }
                    last_consumed = header.l1_block;
                    break;
                }
                let update = self
                    .l1
                    .virtual_chain_since(from, &self.lane, Some(&self.deposit_script))
                    .await?;
                let Some(last) = update.added.last() else {
                    break;
                };
                from = last.hash;
                seen.extend(update.added);
            }
            // Requests whose L1 block was referenced by an earlier Wisp block were executed there.
            let off: Vec<OffLedgerRequest> = self
                .chain
                .db()
                .meta(&format!("offledger/{index}"))
                .map_err(wisp_chain::ChainError::from)?
                .and_then(|b| borsh::from_slice(&b).ok())
                .unwrap_or_default();
            let off_ledger = wisp_chain::verify_signatures(off)
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            let l1 = L1Ref {
                block_hash: header.l1_block,
                daa_score: header.l1_daa_score,
                timestamp_ms: header.timestamp_ms,
            };
            let output = target.execute_block(BlockInputs {
                randomness: None,
                l1,
                on_ledger: std::mem::take(&mut pending),
                off_ledger,
            })?;
            if output.header.state_root != header.state_root {
                return Err(NodeError::ReplayMismatch {
                    block: index,
                    expected: header.state_root,
                    got: output.header.state_root,
                });
            }
        }
        Ok(head.index)
    }

    /// Whether this node runs a devnet ([`NodeMode::Devnet`]): it mines and serves `dev_*`.
    pub fn is_devnet(&self) -> bool {
        self.miner.is_some()
    }

    /// Devnet: remembers the current head; returns the snapshot id.
    pub fn snapshot(&self) -> Result<u64> {
        let head = self.chain.head()?.index;
        let mut snapshots = self
            .snapshots
            .lock()
            .map_err(|_| wisp_l1::L1Error::Simnet("snapshots poisoned".into()))?;
        snapshots.push(head);
        Ok(snapshots.len() as u64 - 1)
    }

    /// Devnet: returns the chain to snapshot `id` (later snapshots are dropped). L1 is not
    /// reverted: lane requests already accepted after the snapshot are executed again.
    ///
    /// # Errors
    /// `Ok(false)` for an unknown snapshot.
    pub async fn revert(&self, id: u64) -> Result<bool> {
        let _guard = self.produce_lock.lock().await;
        let block = {
            let mut snapshots = self
                .snapshots
                .lock()
                .map_err(|_| wisp_l1::L1Error::Simnet("snapshots poisoned".into()))?;
            let Some(block) = snapshots.get(id as usize).copied() else {
                return Ok(false);
            };
            snapshots.truncate(id as usize);
            block
        };
        self.chain.rollback_to(block)?;
        if let Ok(mut c) = self.cursor.lock() {
            *c = None;
        }
        let cleared = match self.mempool.lock() {
            Ok(mut pool) => pool.clear(),
            Err(_) => Vec::new(),
        };
        self.forget_pending(&cleared);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_chain::OnLedgerBody;

    /// Guards defect 7 of the hardening review: an acknowledged off-ledger request lived only
    /// in memory and was lost by a crash. The node writes it to disk before acknowledging it
    /// and restores it at start, checked again (a request whose nonce has been used is dropped).
    #[test]
    fn acknowledged_requests_survive_a_restart() {
        use wisp_chain::{BlockInputs, Genesis, L1Ref};
        let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[7; 32]).unwrap();
        let sender = AgentId::Address(key.x_only_public_key().0.serialize());
        let genesis = Genesis {
            name: "t".into(),
            owner: AgentId::Address([1; 32]),
            params: wisp_chain::ChainParams::default(),
            timestamp_ms: 0,
            protocol: wisp_chain::Protocol::default(),
            anchor: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let chain = Chain::open(dir.path(), &genesis).unwrap();
        chain
            .execute_block(BlockInputs {
                randomness: None,
                l1: L1Ref::default(),
                on_ledger: vec![OnLedgerRequest {
                    l1_tx_id: Hash32([2; 32]),
                    index: 0,
                    sender,
                    deposit_sompi: 100_000_000,
                    body: OnLedgerBody::DepositOnly,
                }],
                off_ledger: vec![],
            })
            .unwrap();
        let body = |n: u64| {
            wisp_chain::sign_request(
                wisp_core::RequestBody {
                    chain: chain.chain_id(),
                    call: wisp_core::Call {
                        target: wisp_core::Hname::of("accounts"),
                        entry_point: wisp_core::Hname::of("transfer"),
                        args: borsh::to_vec(&(sender, 1u64)).unwrap(),
                        transfer_sompi: 0,
                    },
                    gas_budget: 100_000,
                    access_list: None,
                    time_lock: None,
                },
                &key,
                n,
            )
        };
        for n in [0, 1] {
            let request = body(n);
            chain
                .db()
                .put_pending(&request.id().0, &borsh::to_vec(&request).unwrap())
                .unwrap();
        }
        // Nonce 0 runs before the "restart": its pending record is stale.
        chain
            .execute_block(BlockInputs {
                randomness: None,
                l1: L1Ref::default(),
                on_ledger: vec![],
                off_ledger: vec![wisp_chain::verify_signature(body(0)).unwrap()],
            })
            .unwrap();
        drop(chain);
        let chain = Chain::open(dir.path(), &genesis).unwrap();
        let pool = Node::restore_mempool(&chain);
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&sender, 1));
        assert_eq!(
            chain.db().pending().unwrap().len(),
            1,
            "the stale record is gone"
        );
    }
}
