//! The Wisp node: follows Kaspa's accepted order on the Wisp lane, orders off-ledger requests,
//! produces blocks (a committee of one on the devnet), and serves JSON-RPC on loopback.
//!
//! Invariants:
//! - One block producer at a time (`produce_lock`); a block is committed before it is announced.
//! - A Wisp block refers to one L1 chain block and takes every lane request accepted after the
//!   previous Wisp block's L1 reference up to it, in L1 order; off-ledger requests follow.
//! - On restart the node resumes from the last committed block's L1 reference.

mod agents;
pub mod rpc;

pub use agents::KaspaAgents;

use kaspa_addresses::Prefix;
use kaspa_consensus_core::config::params::Params;
use kaspa_consensus_core::subnets::SubnetworkId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use wisp_chain::{
    BlockInputs, BlockOutput, Chain, L1Ref, OnLedgerBody, OnLedgerRequest, VerifiedRequest,
};
use wisp_core::{
    AgentId, Hash32, LanePayload, OffLedgerRequest, ReceiptError, RequestErrorCode, LANE_ID,
};
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
}

/// Result alias of this crate.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// Most off-ledger requests waiting in the mempool.
pub const MEMPOOL_LIMIT: usize = 10_000;

/// A running node's shared state.
pub struct Node {
    chain: Chain,
    chain_name: String,
    l1: L1Client,
    l1_params: Params,
    prefix: Prefix,
    lane: SubnetworkId,
    custody: Wallet,
    miner: Option<Wallet>,
    mempool: Mutex<BTreeMap<(AgentId, u64), VerifiedRequest>>,
    /// The newest L1 chain block already scanned for lane requests (`None`: start from the
    /// head's L1 reference).
    cursor: Mutex<Option<[u8; 32]>>,
    produce_lock: tokio::sync::Mutex<()>,
    blocks: broadcast::Sender<Arc<BlockOutput>>,
    snapshots: Mutex<Vec<u64>>,
}

impl Node {
    /// A node for `chain` following Kaspa through `l1`. `custody` holds the chain's deposit key
    /// (a committee of one); `miner` is set on the devnet, where the node also mines L1 blocks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Chain,
        chain_name: String,
        l1: L1Client,
        l1_params: Params,
        prefix: Prefix,
        custody: Wallet,
        miner: Option<Wallet>,
    ) -> Arc<Node> {
        let (blocks, _) = broadcast::channel(256);
        Arc::new(Node {
            chain,
            chain_name,
            l1,
            l1_params,
            prefix,
            lane: SubnetworkId::from(LANE_ID),
            custody,
            miner,
            mempool: Mutex::new(BTreeMap::new()),
            cursor: Mutex::new(None),
            produce_lock: tokio::sync::Mutex::new(()),
            blocks,
            snapshots: Mutex::new(Vec::new()),
        })
    }

    /// The chain runtime.
    pub fn chain(&self) -> &Chain {
        &self.chain
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

    /// The address deposits into the chain are paid to.
    pub fn deposit_address(&self) -> kaspa_addresses::Address {
        self.custody.address()
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

    /// Checks an off-ledger request (signature, chain, nonce, funds) and queues it.
    ///
    /// # Errors
    /// The request-level [`ReceiptError`] it would fail with (bad signature, wrong chain,
    /// replayed or duplicate nonce, gas budget, insufficient funds, full mempool).
    pub fn submit(&self, request: OffLedgerRequest) -> std::result::Result<Hash32, ReceiptError> {
        let err = |code: RequestErrorCode, msg: String| ReceiptError {
            level: wisp_core::ErrorLevel::Request,
            code: code.code(),
            message: msg,
        };
        let internal = |e: wisp_chain::ChainError| {
            err(RequestErrorCode::Malformed, format!("node storage: {e}"))
        };
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
        let verified = wisp_chain::verify_signature(request)?;
        let sender = verified.request().sender();
        let nonce = verified.request().nonce;
        if self.chain.is_processed(&verified.id()).map_err(internal)? {
            return Err(err(
                RequestErrorCode::BadNonce,
                "this exact request was already processed (replay)".into(),
            ));
        }
        let next = self.chain.nonce(&sender).map_err(internal)?;
        if nonce < next {
            return Err(err(
                RequestErrorCode::BadNonce,
                format!("nonce {nonce} was already used; the sender's next nonce is {next}"),
            ));
        }
        let params = self.chain.params().map_err(internal)?;
        let body = &verified.request().body;
        if body.gas_budget < wisp_vm::gas::REQUEST_BASE_GAS
            || body.gas_budget > params.max_request_gas
        {
            return Err(err(
                RequestErrorCode::GasBudgetOutOfRange,
                format!(
                    "gas budget {} is outside {}..={}",
                    body.gas_budget,
                    wisp_vm::gas::REQUEST_BASE_GAS,
                    params.max_request_gas
                ),
            ));
        }
        let needed = body
            .gas_budget
            .saturating_mul(params.gas_price_sompi)
            .saturating_add(body.call.transfer_sompi);
        let balance = self.chain.balance(&sender).map_err(internal)?;
        if balance < needed {
            return Err(err(RequestErrorCode::InsufficientFunds, format!("the sender holds {balance} sompi on chain; gas budget × price + transfer = {needed}; deposit first (wisp call --on-ledger or an L1 payment to {})", self.deposit_address())));
        }
        let id = verified.id();
        let mut mempool = self
            .mempool
            .lock()
            .map_err(|_| err(RequestErrorCode::Malformed, "mempool poisoned".into()))?;
        if mempool.len() >= MEMPOOL_LIMIT {
            return Err(err(
                RequestErrorCode::BlockGasExhausted,
                "the mempool is full; retry later".into(),
            ));
        }
        if mempool.contains_key(&(sender, nonce)) {
            return Err(err(
                RequestErrorCode::BadNonce,
                format!("a request with nonce {nonce} from this sender is already pending"),
            ));
        }
        mempool.insert((sender, nonce), verified);
        Ok(id)
    }

    /// Number of queued off-ledger requests.
    pub fn mempool_len(&self) -> usize {
        self.mempool.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The requests a lane transaction carries (deposit-only, calls, or malformed).
    fn lane_requests(&self, tx: &LaneTx) -> Vec<OnLedgerRequest> {
        let Some(sender_key) = tx.sender_key else {
            tracing::warn!(tx = %Hash32(tx.tx_id), "lane transaction whose first input is not pay-to-public-key: ignored");
            return Vec::new();
        };
        let custody = self.custody.x_only_key();
        let deposit: u64 = tx
            .outputs
            .iter()
            .filter(|(_, s)| wisp_l1::p2pk_key_of_script(s) == Some(custody))
            .map(|(v, _)| *v)
            .sum();
        let sender = AgentId::Address(sender_key);
        let l1_tx_id = Hash32(tx.tx_id);
        match LanePayload::decode(&tx.payload) {
            Some(payload) if payload.requests.is_empty() => {
                vec![OnLedgerRequest {
                    l1_tx_id,
                    index: 0,
                    sender,
                    deposit_sompi: deposit,
                    body: OnLedgerBody::DepositOnly,
                }]
            }
            Some(payload) => payload
                .requests
                .into_iter()
                .enumerate()
                .map(|(i, body)| OnLedgerRequest {
                    l1_tx_id,
                    index: i as u32,
                    sender,
                    deposit_sompi: deposit,
                    body: OnLedgerBody::Call(body),
                })
                .collect(),
            None => vec![OnLedgerRequest {
                l1_tx_id,
                index: 0,
                sender,
                deposit_sompi: deposit,
                body: OnLedgerBody::Malformed(
                    "the lane payload does not decode (expected WSP\\x01 + borsh LanePayload)"
                        .into(),
                ),
            }],
        }
    }

    /// Follows L1 and, if there is anything to execute, produces and commits one block.
    ///
    /// # Errors
    /// [`NodeError`] if Kaspa or storage fails; nothing is committed then.
    pub async fn produce_block(&self) -> Result<Option<Arc<BlockOutput>>> {
        let _guard = self.produce_lock.lock().await;
        let head = self.chain.head()?;
        let genesis = self.l1.genesis_hash().await?;
        let cursor =
            self.cursor
                .lock()
                .ok()
                .and_then(|c| *c)
                .unwrap_or(if head.l1_block == Hash32::ZERO {
                    genesis
                } else {
                    head.l1_block.0
                });
        let mut on_ledger = Vec::new();
        let mut l1 = L1Ref {
            block_hash: head.l1_block,
            daa_score: head.l1_daa_score,
            timestamp_ms: head.timestamp_ms,
        };
        let mut latest_seen = cursor;
        let mut from = cursor;
        loop {
            let update = self.l1.virtual_chain_since(from, &self.lane).await?;
            if !update.removed.is_empty() {
                self.handle_reorg(&update.removed)?;
                if let Ok(mut c) = self.cursor.lock() {
                    *c = None;
                }
                return Ok(None);
            }
            let Some(last) = update.added.last() else {
                break;
            };
            from = last.hash;
            for block in &update.added {
                for tx in &block.lane_txs {
                    on_ledger.extend(self.lane_requests(tx));
                }
                latest_seen = block.hash;
                // The block refers to the newest chain block seen: every lane request accepted
                // up to it is in `on_ledger`, and its time moves the chain's clock.
                l1 = L1Ref {
                    block_hash: Hash32(block.hash),
                    daa_score: block.daa_score,
                    timestamp_ms: block.timestamp_ms,
                };
            }
        }
        // Off-ledger: for each sender, the run of consecutive nonces from its next nonce.
        let off_ledger: Vec<VerifiedRequest> = {
            let mempool = self
                .mempool
                .lock()
                .map_err(|_| wisp_l1::L1Error::Simnet("mempool poisoned".into()))?;
            let mut out = Vec::new();
            let mut expected: BTreeMap<AgentId, u64> = BTreeMap::new();
            for ((sender, nonce), request) in mempool.iter() {
                let next = match expected.get(sender) {
                    Some(n) => *n,
                    None => self.chain.nonce(sender)?,
                };
                if *nonce == next {
                    out.push(request.clone());
                    expected.insert(*sender, next + 1);
                } else {
                    expected.insert(*sender, u64::MAX);
                }
            }
            out
        };
        if on_ledger.is_empty() && off_ledger.is_empty() {
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
                l1,
                on_ledger,
                off_ledger,
            },
            &[(&format!("offledger/{index}"), offledger_bytes)],
        )?;
        if let Ok(mut c) = self.cursor.lock() {
            *c = Some(latest_seen);
        }
        // Drop what was executed and what can no longer run.
        if let Ok(mut mempool) = self.mempool.lock() {
            let mut next_nonce: BTreeMap<AgentId, u64> = BTreeMap::new();
            let keys: Vec<(AgentId, u64)> = mempool.keys().cloned().collect();
            for (sender, nonce) in keys {
                let next = match next_nonce.get(&sender) {
                    Some(n) => *n,
                    None => {
                        let n = self.chain.nonce(&sender).unwrap_or(0);
                        next_nonce.insert(sender, n);
                        n
                    }
                };
                if nonce < next {
                    mempool.remove(&(sender, nonce));
                }
            }
        }
        let output = Arc::new(output);
        tracing::info!(block = output.header.index, requests = output.header.request_count, gas = output.header.gas_used, root = %output.header.state_root, "block committed");
        let _ = self.blocks.send(output.clone());
        Ok(Some(output))
    }

    fn handle_reorg(&self, removed: &[[u8; 32]]) -> Result<()> {
        let removed: Vec<Hash32> = removed.iter().map(|h| Hash32(*h)).collect();
        if let Some((from, to)) = self.chain.rollback_l1(&removed)? {
            tracing::warn!(
                from,
                to,
                "L1 reorg removed referenced chain blocks: rolled back"
            );
        }
        Ok(())
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
        self.produce_block().await
    }

    /// Re-executes this node's history into `target` (a fresh chain with the same genesis): each
    /// block's on-ledger requests are taken again from Kaspa's accepted order, its off-ledger
    /// requests from the archive; returns the number of blocks replayed. A mismatch of any state
    /// root is reported as an error naming the block (DESIGN.md §5.7, replay).
    ///
    /// # Errors
    /// [`NodeError`] on storage or Kaspa failure, or [`wisp_l1::L1Error::Rejected`] naming the
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
                let update = self.l1.virtual_chain_since(from, &self.lane).await?;
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
            let off_ledger = off
                .into_iter()
                .filter_map(|r| wisp_chain::verify_signature(r).ok())
                .collect();
            let l1 = L1Ref {
                block_hash: header.l1_block,
                daa_score: header.l1_daa_score,
                timestamp_ms: header.timestamp_ms,
            };
            let output = target.execute_block(BlockInputs {
                l1,
                on_ledger: std::mem::take(&mut pending),
                off_ledger,
            })?;
            if output.header.state_root != header.state_root {
                return Err(wisp_l1::L1Error::Rejected {
                    what: format!("replay of block {index}"),
                    reason: format!(
                        "state root {} differs from the original {}",
                        output.header.state_root, header.state_root
                    ),
                }
                .into());
            }
        }
        Ok(head.index)
    }

    /// Whether this node mines (devnet).
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
        if let Ok(mut m) = self.mempool.lock() {
            m.clear();
        }
        Ok(true)
    }
}
