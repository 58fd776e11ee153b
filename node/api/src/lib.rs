//! The Wisp node's JSON-RPC 2.0 API, declared once: [`WispApi`] (namespace `wisp_`) and
//! [`DevApi`] (namespace `dev_`, devnet controls in the manner of anvil's `anvil_*`), with the
//! request and response types both sides share. The node implements the generated
//! `WispApiServer` / `DevApiServer` traits; clients call the generated `WispApiClient` /
//! `DevApiClient` methods on any jsonrpsee client (HTTP or WebSocket).
//!
//! Wire conventions: field names are camelCase; amounts (sompi), gas and other `u64` counters
//! that can exceed JavaScript's safe integers are decimal strings ([`U64`]); hashes and bytes
//! are `0x` hex ([`H256`], [`Bytes`]); agents are Kaspa addresses or `contract:<name>`; contract
//! arguments, return values and event fields are JSON decoded with the contract's interface.
//!
//! Errors: a request the runtime refuses is a JSON-RPC error with code `-32000 - code` (request
//! level), `-32100 - code` (VM level) or `-32200` (contract level), and `data` =
//! [`ErrorInfo`]; invalid parameters are `-32602`, node trouble `-32603`, an unknown contract
//! [`UNKNOWN_CONTRACT`] (`-32301`), an unknown function [`UNKNOWN_FUNCTION`] (`-32302`), and
//! `dev_` methods on a non-devnet node `-32601`. The ranges do not overlap, but clients decide
//! by `data.level` (present exactly on refusals and failures of a request), not by the code.

use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

pub use wisp_core::interface::ContractInterface;

/// JSON-RPC error code: the named contract is not on this chain. Outside the request-level
/// range (`-32000 - code`), with which it collided as `-32005` before API version 3.
pub const UNKNOWN_CONTRACT: i32 = -32301;

/// JSON-RPC error code: the contract has no entry point or view of that name.
pub const UNKNOWN_FUNCTION: i32 = -32302;

/// The result of an API method: the value, or a JSON-RPC error object.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// A `u64` on the wire as a decimal string (amounts in sompi, gas, scores, timestamps), since
/// JSON numbers lose precision above 2^53 in JavaScript. Accepts a number too when reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U64(pub u64);

impl Serialize for U64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<U64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(U64(n)),
            Either::Text(t) => t
                .parse()
                .map(U64)
                .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a decimal u64"))),
        }
    }
}

impl From<u64> for U64 {
    fn from(v: u64) -> U64 {
        U64(v)
    }
}

impl fmt::Display for U64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Bytes on the wire as `0x`-prefixed lowercase hex (reading accepts the prefix or not).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("0x{}", wisp_core::hash::to_hex(&self.0)))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        wisp_core::hash::from_hex(&text)
            .map(Bytes)
            .ok_or_else(|| serde::de::Error::custom("expected 0x-hex bytes"))
    }
}

/// A 32-byte hash (block, request, state root, Kaspa transaction) as `0x` hex.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct H256(pub [u8; 32]);

impl Serialize for H256 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("0x{}", wisp_core::hash::to_hex(&self.0)))
    }
}

impl<'de> Deserialize<'de> for H256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<H256, D::Error> {
        let text = String::deserialize(d)?;
        wisp_core::hash::from_hex(&text)
            .and_then(|b| b.try_into().ok())
            .map(H256)
            .ok_or_else(|| serde::de::Error::custom("expected a 32-byte 0x-hex hash"))
    }
}

impl fmt::Display for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", wisp_core::hash::to_hex(&self.0))
    }
}

impl From<wisp_core::Hash32> for H256 {
    fn from(h: wisp_core::Hash32) -> H256 {
        H256(h.0)
    }
}

impl From<wisp_core::ChainId> for H256 {
    fn from(id: wisp_core::ChainId) -> H256 {
        H256(id.0)
    }
}

impl From<H256> for wisp_core::Hash32 {
    fn from(h: H256) -> wisp_core::Hash32 {
        wisp_core::Hash32(h.0)
    }
}

/// Which block: its index, or the string `"latest"` (the head). Absent also means the head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockId {
    /// A block index (a JSON number or a decimal string).
    Index(U64),
    /// `"latest"`.
    Tag(String),
}

/// A block header; with its receipts where the method says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// Height, from 0 (genesis).
    pub index: u64,
    /// The header's hash (what anchors commit to and proofs lead to).
    pub hash: H256,
    /// The previous block's hash (zero for genesis).
    pub prev_hash: H256,
    /// The chain id (the anchor's covenant id).
    pub chain_id: H256,
    /// The Kaspa chain block this block follows.
    pub l1_block: H256,
    /// That Kaspa block's DAA score.
    pub l1_daa_score: U64,
    /// Block time, milliseconds since the Unix epoch (from Kaspa's block).
    pub timestamp_ms: U64,
    /// Root of the chain's state after this block.
    pub state_root: H256,
    /// Root of the block's receipts.
    pub receipts_root: H256,
    /// Root of the block's events.
    pub events_root: H256,
    /// Requests executed.
    pub request_count: u32,
    /// Gas the block's requests used.
    pub gas_used: U64,
    /// Protocol version of the block's rules.
    pub protocol_version: u32,
    /// The receipts, in execution order (`wisp_getBlock`, `wisp_subscribeBlocks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<Receipt>>,
    /// borsh of the header, whose blake2b-256 is `hash`: what a client hashes to check it.
    #[serde(default)]
    pub raw: Bytes,
}

/// Why a request failed: `data` of an error response, and `error` of a failed receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// `request`, `vm` or `contract`.
    pub level: String,
    /// The code at that level (a contract's own error code at `contract` level).
    pub code: u32,
    /// The code's name (`insufficient_funds`, `out_of_gas`, a contract error's name, …).
    pub name: String,
    /// What went wrong, for people.
    pub message: String,
}

/// An event a contract emitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEntry {
    /// The emitting contract (`contract:<name>` or its id).
    pub contract: String,
    /// The event's topic (its type name).
    pub topic: String,
    /// The fields, decoded with the contract's interface (null without one).
    pub fields: Option<Value>,
    /// The borsh-encoded event.
    pub data: Bytes,
    /// The block that holds it (`wisp_getEvents`, `wisp_subscribeEvents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_index: Option<u64>,
    /// The request that emitted it (`wisp_getEvents`, `wisp_subscribeEvents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<H256>,
    /// Its position among that request's events, from 0 (what `wisp_getEventProof` takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_index: Option<u32>,
}

/// What executing a request did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The request's id.
    pub request_id: H256,
    /// The block that executed it (0 in an estimate).
    pub block_index: u64,
    /// Its position in that block.
    pub request_index: u32,
    /// Who sent it.
    pub sender: String,
    /// `success` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<ErrorInfo>,
    /// Gas used.
    pub gas_used: U64,
    /// Fee charged, sompi.
    pub fee_sompi: U64,
    /// Storage deposit taken from the sender for the bytes the request added to contracts'
    /// state, sompi.
    #[serde(default)]
    pub storage_locked_sompi: U64,
    /// Storage deposit returned to the sender for the bytes the request freed, sompi.
    #[serde(default)]
    pub storage_refunded_sompi: U64,
    /// Events emitted (none when it failed).
    pub events: Vec<EventEntry>,
    /// The return value, borsh-encoded.
    pub return_data: Bytes,
    /// The return value decoded with the contract's interface. The node leaves it out;
    /// clients that know the interface fill it in (the `wisp` command does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_value: Option<Value>,
    /// Withdrawals to Kaspa the request queued, with the Kaspa transaction that paid each once
    /// an anchor transaction has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawals: Vec<Withdrawal>,
    /// `onLedger` or `offLedger`, when the node keeps the request (not in simulations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Off-ledger: the nonce the request used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<U64>,
    /// On-ledger: the Kaspa transaction that carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1_tx_id: Option<H256>,
    /// The call, arguments decoded (as `wisp_getRequest` gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallView>,
    /// borsh of the receipt itself, whose blake2b-256 the block's `receiptsRoot` commits to.
    #[serde(default)]
    pub raw: Bytes,
}

/// One entry of an access list: a contract's storage, all of it (`keyPrefix` absent) or the
/// keys starting with `keyPrefix` (contract-relative bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// The contract's hname (8 hex digits).
    pub contract: String,
    /// The key prefix; absent: the whole contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<Bytes>,
}

/// A request's declared read and write sets (a write grants the read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessList {
    /// Storage the request may read.
    pub reads: Vec<AccessEntry>,
    /// Storage the request may read and write.
    pub writes: Vec<AccessEntry>,
}

impl From<&wisp_core::AccessList> for AccessList {
    fn from(list: &wisp_core::AccessList) -> AccessList {
        let entries = |accesses: &[wisp_core::Access]| {
            accesses
                .iter()
                .map(|a| AccessEntry {
                    contract: a.contract.to_string(),
                    key_prefix: a.key_prefix.clone().map(Bytes),
                })
                .collect()
        };
        AccessList {
            reads: entries(&list.reads),
            writes: entries(&list.writes),
        }
    }
}

impl TryFrom<&AccessList> for wisp_core::AccessList {
    type Error = String;

    /// Fails on an hname that is not 8 hex digits.
    fn try_from(list: &AccessList) -> Result<wisp_core::AccessList, String> {
        let entries = |entries: &[AccessEntry]| {
            entries
                .iter()
                .map(|e| {
                    let hname = u32::from_str_radix(&e.contract, 16)
                        .ok()
                        .filter(|_| e.contract.len() == 8)
                        .ok_or_else(|| {
                            format!("`{}` is not an hname (8 hex digits)", e.contract)
                        })?;
                    Ok(wisp_core::Access {
                        contract: wisp_core::Hname(hname),
                        key_prefix: e.key_prefix.clone().map(|b| b.0),
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(wisp_core::AccessList {
            reads: entries(&list.reads)?,
            writes: entries(&list.writes)?,
        })
    }
}

/// `wisp_simulateRequest`: the receipt a request would get now, and the access list it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    /// The receipt (fields inline, so `wisp_estimateGas` callers reading `gasUsed` still work).
    #[serde(flatten)]
    pub receipt: Receipt,
    /// The accesses the request made, to attach to its body before signing; absent if they
    /// do not fit an access list (more than 64 contracts). After a failed call: the accesses
    /// it made before failing.
    pub access_list: Option<AccessList>,
}

/// The chain's anchor on Kaspa (DESIGN: a covenant UTXO whose covenant id is the chain id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorInfo {
    /// The anchor's covenant id (= the chain id).
    pub covenant_id: H256,
    /// The genesis anchor UTXO, `txid:index`.
    pub genesis_outpoint: String,
    /// The x-only BIP340 key the anchor script accepts.
    pub committee_key: H256,
    /// Most sompi one anchor transaction may leave as fee.
    pub max_fee_sompi: U64,
    /// The confirmed anchor UTXO, `txid:index` (absent if the node cannot read it now).
    pub outpoint: Option<String>,
    /// Its value, sompi.
    pub value_sompi: Option<U64>,
    /// The chain block its state commits to.
    pub anchored_block: Option<u64>,
    /// That block's header hash.
    pub anchored_header_hash: Option<H256>,
    /// The outbox commitment (withdrawals its successor pays).
    pub outbox: Option<H256>,
    /// L1 fees spent by confirmed anchor transactions, sompi.
    pub fees_spent_sompi: Option<U64>,
    /// A submitted successor not yet accepted: its Kaspa transaction id.
    pub in_flight: Option<String>,
    /// The withdrawals (outbox sequence numbers) the anchor's outbox commits to: its
    /// successor pays them.
    #[serde(default)]
    pub committed_withdrawals: Vec<u64>,
    /// The first outbox entry no anchor has committed to yet.
    #[serde(default)]
    pub next_withdrawal: Option<u64>,
}

/// `wisp_chainInfo`: what a client needs to talk to the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// The chain id.
    pub chain_id: H256,
    /// Its name.
    pub name: String,
    /// The head block.
    pub head: Block,
    /// Sompi per gas unit.
    pub gas_price_sompi: U64,
    /// Most gas one request may use.
    pub max_request_gas: U64,
    /// Most gas one block may use.
    pub max_block_gas: U64,
    /// The Kaspa address deposits are paid to (P2SH, spendable only with the anchor).
    pub deposit_address: String,
    /// The anchor on Kaspa.
    pub anchor: AnchorInfo,
    /// The node's kaspad wRPC URL.
    pub l1_rpc_url: String,
    /// Coinbase maturity of the Kaspa network, DAA score units.
    pub l1_coinbase_maturity: u64,
    /// DAA score of the newest confirmed Kaspa chain block the node has followed, blocks made
    /// for it or not (a quiet chain keeps following): compare with kaspad's virtual DAA score
    /// for the L1 lag.
    pub l1_followed_daa_score: U64,
    /// Off-ledger requests waiting in the mempool.
    pub mempool: usize,
    /// Whether this node is a devnet (serves `dev_` methods).
    pub devnet: bool,
    /// The version of this API ([`API_VERSION`]): clients check it before relying on methods
    /// or fields added later.
    #[serde(default)]
    pub api_version: u32,
}

/// The version of the JSON-RPC API this crate declares. It grows when methods or fields are
/// added; a change that breaks clients also changes it.
///
/// 2: request time locks, event proofs, indexed event fields, storage deposits in receipts,
/// `eventIndex` on events, `wisp_getCode`.
///
/// 3: stored requests (`wisp_getRequest`, `wisp_getRequests`), the call, kind, nonce or L1
/// transaction and `raw` borsh in receipts, `raw` headers, error names from interfaces, and
/// the unknown-contract and unknown-function codes moved out of the request-level range
/// ([`UNKNOWN_CONTRACT`], [`UNKNOWN_FUNCTION`]); the explorer served at `GET /explorer/`.
///
/// 4: `wisp_getCommitteeBlocks` (what access nodes follow); `randomness_unavailable` (VM
/// error 11).
///
/// 5: state snapshots (`wisp_getSnapshotBase`, `wisp_getStateChunk`): what an access node
/// started with `--snapshot` syncs from.
///
/// 6: committee rotation: `wisp_chainInfo`'s anchor names the key the current anchor names
/// and the withdrawals it commits (`committedWithdrawals`, `nextWithdrawal`);
/// `wisp_getCommitteeBlocks` ends a batch at a committee handover; a committee that handed
/// the chain over refuses requests with a message naming the next committee.
pub const API_VERSION: u32 = 6;

/// `wisp_sendRequest`: the admitted request's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentRequest {
    /// The request id, for `wisp_getReceipt`.
    pub request_id: H256,
}

/// `wisp_callView`: a view's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewResult {
    /// The return value decoded with the contract's interface (null without one).
    pub value: Option<Value>,
    /// The borsh-encoded return value.
    pub data: Bytes,
    /// Gas the view used (views are free; bounded by the view gas limit).
    pub gas_used: U64,
}

/// `wisp_encodeArgs`: arguments encoded for a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedArgs {
    /// The contract's hname (8 hex digits).
    pub contract: String,
    /// The borsh-encoded arguments.
    pub args: Bytes,
}

/// `wisp_getProof`: a value of the state with its Merkle proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The state key.
    pub key: Bytes,
    /// Its value (absent: the proof proves absence).
    pub value: Option<Bytes>,
    /// The Jellyfish Merkle proof in Wisp's compact encoding (`wisp_state::StateProof`: the
    /// borsh of `{ leaf: Option<(key hash, value hash)>, siblings: Vec<Option<hash>> }`, each
    /// sibling by its hash, bottom first), checked by `wisp_state::verify_proof` or the
    /// TypeScript client's `verifyStateProof`.
    pub proof: Bytes,
    /// The block whose state it proves.
    pub block_index: u64,
    /// That block's state root.
    pub state_root: H256,
    /// That block's header.
    pub block: Block,
}

/// A request's call, its arguments decoded with the contract's interface where it has one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    /// The target contract (`contract:<name>` or its id).
    pub contract: String,
    /// The entry point's name (its hname in hex when the interface does not name it).
    pub function: String,
    /// The arguments by parameter name (null without an interface, or if they do not decode).
    pub args: Option<Value>,
    /// The borsh-encoded arguments.
    pub args_raw: Bytes,
    /// Sompi moved to the contract with the call.
    pub transfer_sompi: U64,
    /// The gas budget.
    pub gas_budget: U64,
}

/// `wisp_getRequest`: a request as it reached the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request id.
    pub request_id: H256,
    /// `onLedger` (a Kaspa lane transaction) or `offLedger` (signed and sent to a node).
    pub kind: String,
    /// Who sent it.
    pub sender: String,
    /// The block that processed it.
    pub block_index: u64,
    /// Its position in that block.
    pub request_index: u32,
    /// Off-ledger: the sender's nonce it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<U64>,
    /// On-ledger: the Kaspa transaction that carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1_tx_id: Option<H256>,
    /// On-ledger: sompi the transaction paid into the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_sompi: Option<U64>,
    /// The call (none for a deposit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallView>,
    /// Its time lock, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_lock: Option<wisp_core::TimeLock>,
}

/// `wisp_getEventProof`: one event with a Merkle proof to its block's events root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProof {
    /// The event, its fields decoded as `wisp_getEvents` gives them.
    pub event: EventEntry,
    /// borsh(`wisp_core::events::EventProof`): the request id, the event's index in it, the
    /// event, its leaf position among the block's events, and the sibling hashes. What a
    /// client checks against `block.eventsRoot` (`EventProof::verify`).
    pub proof: Bytes,
    /// The block holding the event.
    pub block_index: u64,
    /// That block's events root.
    pub events_root: H256,
    /// That block's header.
    pub block: Block,
}

/// `wisp_stateKey`: a state key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateKey {
    /// The key, for `wisp_getProof`.
    pub key: Bytes,
}

/// `wisp_getNonce`: an agent's nonces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nonce {
    /// The next nonce the chain accepts.
    pub next: U64,
    /// Requests of this agent waiting in the mempool.
    pub pending: u64,
}

/// A withdrawal (peg out) in the chain's outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    /// Position in the outbox, from 0.
    pub seq: u64,
    /// Who withdrew.
    pub from: String,
    /// The Kaspa address paid.
    pub to: String,
    /// Sompi paid on Kaspa.
    pub amount_sompi: U64,
    /// The block that took it.
    pub block_index: u64,
    /// `queued` (no anchor commits it yet), `committed` (the current anchor commits it; its
    /// successor pays it) or `paid`.
    pub status: String,
    /// The Kaspa transaction that paid it (absent on a node that took the anchor over from
    /// another committee's after a rotation, for what was paid before).
    pub paid_by: Option<String>,
}

/// A contract deployed on the chain (or a core contract).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractEntry {
    /// Its hname (8 hex digits).
    pub hname: String,
    /// Its name.
    pub name: String,
    /// A native core contract (no code, no deployer).
    pub core: bool,
    /// blake2b-256 of its module.
    pub code_hash: Option<H256>,
    /// Who deployed it.
    pub deployer: Option<String>,
    /// The block that deployed it.
    pub deployed_at_block: Option<u64>,
}

/// `wisp_getCommitteeBlocks`: final committee blocks and the certificate that makes them
/// final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitteeBlocks {
    /// The committee height of the newest certified block this node executed (0: none yet),
    /// or of the handover block the answer ends at.
    pub certified_height: u64,
    /// The blocks from the asked height on, in order, each borsh-encoded
    /// (`wisp_consensus::Block`).
    pub blocks: Vec<Bytes>,
    /// The finalization certificate of the block at `certified_height` (commonware's
    /// encoding), present when `blocks` reach it.
    pub finalization: Option<Bytes>,
}

/// `wisp_getSnapshotBase`: the newest state of a committee chain that its committee has
/// certified, which a new access node can start from instead of executing every block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotBase {
    /// The Wisp block (= committee height) whose state the snapshot is.
    pub height: u64,
    /// Its header, borsh-encoded (`wisp_core::BlockHeader`): the state root to check against.
    pub header: Bytes,
    /// The committee blocks from `height` up to the newest certified one, in order, each
    /// borsh-encoded (`wisp_consensus::Block`); a later one attests `header`'s hash.
    pub blocks: Vec<Bytes>,
    /// The finalization certificate of the last of `blocks` (commonware's encoding).
    pub finalization: Bytes,
    /// The receipts of block `height`, borsh-encoded (`Vec<wisp_core::Receipt>`): checked
    /// against the header's receipts root, so the snapshot's block is whole on the new node.
    pub receipts: Bytes,
}

/// `wisp_getStateChunk`: one page of a block's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChunk {
    /// `[keyHash, value]` pairs in increasing key-hash order (the key hash is blake2b-256 of
    /// the state key).
    pub entries: Vec<(H256, Bytes)>,
    /// The Jellyfish Merkle range proof of the entries (jmt's `SparseMerkleRangeProof`,
    /// borsh): with every entry so far it hashes to the block's state root.
    pub proof: Bytes,
    /// No key follows: the state is complete.
    pub last: bool,
}

/// `dev_mine`: what mining did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mined {
    /// Kaspa blocks mined.
    pub l1_blocks: u32,
    /// The chain block produced, if any.
    pub block: Option<Block>,
}

/// The node's public API (namespace `wisp_`).
#[rpc(server, client, namespace = "wisp")]
pub trait WispApi {
    /// The chain id, head, gas parameters, deposit address and anchor.
    #[method(name = "chainInfo")]
    fn chain_info(&self) -> RpcResult<ChainInfo>;

    /// Admits a signed off-ledger request (borsh-encoded, `0x` hex) to the mempool.
    #[method(name = "sendRequest")]
    async fn send_request(&self, request: Bytes) -> RpcResult<SentRequest>;

    /// Runs a request body (borsh, `0x` hex) as `sender` against the head state without
    /// committing, recording what it reads and writes: the receipt it would get (with its gas)
    /// and the access list to declare so it can run in parallel. The body's own access list is
    /// ignored while recording; the returned receipt is from a second run with the recorded
    /// list. `wisp_estimateGas` is the same method under its former name.
    #[method(name = "simulateRequest", aliases = ["wisp_estimateGas"], blocking)]
    fn simulate_request(&self, sender: String, body: Bytes) -> RpcResult<Simulation>;

    /// Calls a view of `contract` with `args` (JSON for its parameters, or `0x` hex borsh).
    #[method(name = "callView", blocking)]
    fn call_view(
        &self,
        contract: String,
        function: String,
        args: Option<Value>,
    ) -> RpcResult<ViewResult>;

    /// Encodes JSON `args` for `function` (`kind`: `entry` or `view`) of `contract`.
    #[method(name = "encodeArgs")]
    fn encode_args(
        &self,
        contract: String,
        function: String,
        kind: String,
        args: Value,
    ) -> RpcResult<EncodedArgs>;

    /// A request's receipt (null until it is executed).
    #[method(name = "getReceipt")]
    fn get_receipt(&self, request_id: H256) -> RpcResult<Option<Receipt>>;

    /// A processed request as it reached the chain: kind, sender, nonce or Kaspa transaction,
    /// and its call with decoded arguments (null until a block has processed it; -32602 if
    /// a block this node did not index, `--no-index`, processed it).
    #[method(name = "getRequest", blocking)]
    fn get_request(&self, request_id: H256) -> RpcResult<Option<RequestView>>;

    /// Processed requests sent by `sender` or calling `contract` (exactly one of the two),
    /// newest first, from before request `before` (exclusive; default: the newest), at most
    /// `limit` (default 20, at most 100). From the node's request index; a node that runs
    /// with `--no-index` answers -32602 for a listing that reaches blocks it did not index.
    #[method(name = "getRequests", blocking)]
    fn get_requests(
        &self,
        sender: Option<String>,
        contract: Option<String>,
        before: Option<H256>,
        limit: Option<u32>,
    ) -> RpcResult<Vec<RequestView>>;

    /// A block with its receipts (null if there is no such block).
    #[method(name = "getBlock")]
    fn get_block(&self, block: Option<BlockId>) -> RpcResult<Option<Block>>;

    /// Events of blocks `from..=to` (default: the last 100 blocks), optionally of one contract
    /// and, with a contract, of one topic, in order; with a topic, `indexed = [field, value]`
    /// keeps the events whose `#[indexed]` field has that value (JSON, as in arguments). With
    /// a contract the node's event index answers (any range); without one, blocks are read
    /// one by one, so `to - from` is at most 10,000. More than 10,000 matching events, or
    /// those limits broken, is `-32602`: narrow the range. So is a contract's query reaching
    /// blocks a node running with `--no-index` did not index (query without a contract).
    #[method(name = "getEvents", blocking)]
    fn get_events(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        contract: Option<String>,
        topic: Option<String>,
        indexed: Option<(String, Value)>,
    ) -> RpcResult<Vec<EventEntry>>;

    /// Event `index` (from 0, in the order the request emitted them) of request `request_id`,
    /// with a Merkle proof to its block's events root; null if the request has no such event
    /// (not executed yet, failed, or fewer events).
    #[method(name = "getEventProof", blocking)]
    fn get_event_proof(&self, request_id: H256, index: u32) -> RpcResult<Option<EventProof>>;

    /// The value under a state key at a block (default: the head) with its Merkle proof.
    #[method(name = "getProof", blocking)]
    fn get_proof(&self, key: Bytes, block: Option<u64>) -> RpcResult<Proof>;

    /// The state key of an agent's `balance` or `nonce`, or of a contract's own key
    /// (`contract`, subject `[contract, 0x-key]`).
    #[method(name = "stateKey")]
    fn state_key(&self, kind: String, subject: Value) -> RpcResult<StateKey>;

    /// An agent's on-chain balance, sompi.
    #[method(name = "getBalance")]
    fn get_balance(&self, agent: String) -> RpcResult<U64>;

    /// An agent's next nonce and its requests pending in the mempool (the committee's, on a
    /// committee member).
    #[method(name = "getNonce")]
    async fn get_nonce(&self, agent: String) -> RpcResult<Nonce>;

    /// Withdrawals from outbox position `from` (default 0), at most `limit` (default 100,
    /// at most 1,000).
    #[method(name = "getWithdrawals")]
    fn get_withdrawals(&self, from: Option<u64>, limit: Option<u32>) -> RpcResult<Vec<Withdrawal>>;

    /// The chain's contracts, core ones included.
    #[method(name = "listContracts")]
    fn list_contracts(&self) -> RpcResult<Vec<ContractEntry>>;

    /// A committee chain's final blocks from committee height `from` (at most `limit`, 256 by
    /// default and at most), up to the newest block this node executed that carries a
    /// finalization certificate, with that certificate once the blocks reach it: what an access
    /// node follows (`wisp node --follow`). The answer never crosses a committee rotation: from
    /// before a handover it ends at the outgoing committee's last block, with that committee's
    /// certificate of it (`certifiedHeight` is then that block's). Errors on a chain without a
    /// committee.
    #[method(name = "getCommitteeBlocks", blocking)]
    fn get_committee_blocks(&self, from: u64, limit: Option<u32>) -> RpcResult<CommitteeBlocks>;

    /// The newest certified state of a committee chain that this node can serve as a
    /// snapshot: the Wisp header of the newest height a certified committee block attests,
    /// the committee blocks linking it to that certificate, and the certificate. Errors on a
    /// chain without a committee, or before the committee has certified any state.
    #[method(name = "getSnapshotBase", blocking)]
    fn get_snapshot_base(&self) -> RpcResult<SnapshotBase>;

    /// The state of block `height` after key hash `after` (from the start if null): at most
    /// `limit` entries (4096 by default and at most) and about 4 MiB of values (at least one
    /// entry), with their range proof. Errors if the block's state is not retained here.
    #[method(name = "getStateChunk", blocking)]
    fn get_state_chunk(
        &self,
        height: u64,
        after: Option<H256>,
        limit: Option<u32>,
    ) -> RpcResult<StateChunk>;

    /// A contract's interface (null if it has none).
    #[method(name = "getInterface")]
    fn get_interface(&self, contract: String) -> RpcResult<Option<ContractInterface>>;

    /// The module stored under a code hash (null if none is), so anyone can check a deployed
    /// contract against the source it claims: rebuild, compare blake2b-256.
    #[method(name = "getCode", blocking)]
    fn get_code(&self, code_hash: H256) -> RpcResult<Option<Bytes>>;

    /// Every new block with its receipts. A subscriber that falls behind the node's buffer is
    /// dropped with an error saying so.
    #[subscription(name = "subscribeBlocks" => "block", unsubscribe = "unsubscribeBlocks", item = Block)]
    async fn subscribe_blocks(&self) -> jsonrpsee::core::SubscriptionResult;

    /// Every new event, optionally of one contract.
    #[subscription(name = "subscribeEvents" => "event", unsubscribe = "unsubscribeEvents", item = EventEntry)]
    async fn subscribe_events(
        &self,
        contract: Option<String>,
    ) -> jsonrpsee::core::SubscriptionResult;
}

/// Devnet controls (namespace `dev_`); a node that is not a devnet answers `-32601`.
#[rpc(server, client, namespace = "dev")]
pub trait DevApi {
    /// Mines `n` Kaspa blocks (default 1, at most 1,000) and produces a chain block.
    #[method(name = "mine")]
    async fn mine(&self, n: Option<u32>) -> RpcResult<Mined>;

    /// Snapshots the chain; returns the id (a decimal string) for `dev_revert`.
    #[method(name = "snapshot")]
    fn snapshot(&self) -> RpcResult<U64>;

    /// Reverts the chain to a snapshot; true if it existed.
    #[method(name = "revert")]
    async fn revert(&self, id: U64) -> RpcResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_decimal_strings_and_read_from_either_form() {
        assert_eq!(
            serde_json::to_value(U64(u64::MAX)).unwrap(),
            json!("18446744073709551615")
        );
        assert_eq!(serde_json::from_value::<U64>(json!("42")).unwrap(), U64(42));
        assert_eq!(serde_json::from_value::<U64>(json!(42)).unwrap(), U64(42));
        assert!(serde_json::from_value::<U64>(json!("-1")).is_err());
        assert!(serde_json::from_value::<U64>(json!("0x10")).is_err());
    }

    #[test]
    fn bytes_and_hashes_are_0x_hex_and_checked_for_length() {
        assert_eq!(
            serde_json::to_value(Bytes(vec![1, 0xab])).unwrap(),
            json!("0x01ab")
        );
        assert_eq!(
            serde_json::from_value::<Bytes>(json!("01ab")).unwrap(),
            Bytes(vec![1, 0xab])
        );
        assert!(serde_json::from_value::<Bytes>(json!("0x1")).is_err());
        let h = H256([7; 32]);
        assert_eq!(
            serde_json::from_value::<H256>(serde_json::to_value(h).unwrap()).unwrap(),
            h
        );
        assert!(serde_json::from_value::<H256>(json!("0x0707")).is_err());
    }

    #[test]
    fn a_block_is_named_by_index_or_latest() {
        let id = |v| serde_json::from_value::<BlockId>(v).unwrap();
        assert_eq!(id(json!(5)), BlockId::Index(U64(5)));
        assert_eq!(id(json!("5")), BlockId::Index(U64(5)));
        assert_eq!(id(json!("latest")), BlockId::Tag("latest".into()));
    }

    /// The wire names clients depend on (camelCase; optional parts left out, not null).
    #[test]
    fn wire_names_are_camel_case() {
        let w = Withdrawal {
            seq: 3,
            from: "contract:escrow".into(),
            to: "kaspasim:q".into(),
            amount_sompi: U64(100_000_000),
            block_index: 9,
            status: "paid".into(),
            paid_by: Some("ab".into()),
        };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            json!({"seq": 3, "from": "contract:escrow", "to": "kaspasim:q",
                   "amountSompi": "100000000", "blockIndex": 9, "status": "paid", "paidBy": "ab"})
        );
        let event = EventEntry {
            contract: "contract:accounts".into(),
            topic: "Withdrawal".into(),
            fields: None,
            data: Bytes(vec![]),
            block_index: None,
            request_id: None,
            event_index: None,
        };
        let v = serde_json::to_value(&event).unwrap();
        assert!(v.get("blockIndex").is_none() && v.get("requestId").is_none());
        assert!(v.get("eventIndex").is_none());
    }
}
