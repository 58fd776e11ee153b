//! Requests: what a sender asks a chain to do, on-ledger (in a Kaspa lane transaction's payload)
//! or off-ledger (signed and sent to a node's RPC). docs/design.md §2 and §5.

use crate::hash::{blake2b_256_parts, Hash32};
use crate::ids::{AgentId, ChainId, Hname};
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The Kaspa lane (subnetwork id) Wisp's on-ledger requests travel on: the 4-byte namespace
/// `b"wisp"` followed by 16 zero bytes (docs/kaspa.md, "Lane transactions").
pub const LANE_ID: [u8; 20] = [
    b'w', b'i', b's', b'p', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The first bytes of every Wisp lane payload; the byte after it is the payload version (1).
pub const LANE_PAYLOAD_MAGIC: &[u8; 4] = b"WSP\x01";

/// A request's id: for off-ledger requests the hash of the signed request, for on-ledger ones the
/// hash of (L1 transaction id, index in its payload).
pub type RequestId = Hash32;

/// Whether a call may change state.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum CallKind {
    /// A mutating entry point (exported by the contract as `ep:<name>`).
    Entry = 0,
    /// A read-only view (exported as `view:<name>`): writes, events and transfers trap.
    View = 1,
}

/// One call of a contract's entry point.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Call {
    /// The contract called.
    pub target: Hname,
    /// The hname of the entry point's name.
    pub entry_point: Hname,
    /// borsh-encoded arguments (a tuple of the entry point's parameters, in order).
    pub args: Vec<u8>,
    /// Base tokens moved from the sender's on-chain account to the target contract with the call,
    /// in sompi.
    pub transfer_sompi: u64,
}

/// One declared access: a contract's whole partition, or the keys with a given prefix in it.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Access {
    /// The contract whose state is touched.
    pub contract: Hname,
    /// `None`: any key of the contract; `Some(p)`: keys starting with `p` (contract-relative).
    pub key_prefix: Option<Vec<u8>>,
}

/// Declared read and write sets (vProgs). A write access also grants reads. Calling a contract
/// needs at least a read access to it. Checked even while execution is sequential: an access
/// outside the list fails the request with `access_list_violation`.
#[derive(
    Clone, PartialEq, Eq, Debug, Default, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct AccessList {
    /// Keys the request may read.
    pub reads: Vec<Access>,
    /// Keys the request may read and write.
    pub writes: Vec<Access>,
}

impl AccessList {
    /// Most entries (reads + writes) one access list may declare.
    pub const MAX_ENTRIES: usize = 64;
    /// Longest declared key prefix, bytes.
    pub const MAX_PREFIX_BYTES: usize = 256;

    /// Entries declared, reads and writes.
    pub fn entries(&self) -> usize {
        self.reads.len() + self.writes.len()
    }

    /// Bytes of all declared prefixes.
    pub fn prefix_bytes(&self) -> usize {
        self.reads
            .iter()
            .chain(&self.writes)
            .map(|a| a.key_prefix.as_ref().map_or(0, |p| p.len()))
            .sum()
    }

    /// Whether the list is within [`AccessList::MAX_ENTRIES`] and
    /// [`AccessList::MAX_PREFIX_BYTES`] per prefix.
    pub fn within_limits(&self) -> bool {
        self.entries() <= Self::MAX_ENTRIES
            && self
                .reads
                .iter()
                .chain(&self.writes)
                .all(|a| a.key_prefix.as_ref().map_or(0, |p| p.len()) <= Self::MAX_PREFIX_BYTES)
    }

    fn covers(list: &[Access], contract: Hname, key: Option<&[u8]>) -> bool {
        list.iter().any(|a| {
            a.contract == contract
                && match (&a.key_prefix, key) {
                    (None, _) => true,
                    (Some(p), Some(k)) => k.starts_with(p),
                    (Some(_), None) => false,
                }
        })
    }

    /// Whether reading `key` of `contract` is declared (`key = None`: calling the contract).
    pub fn allows_read(&self, contract: Hname, key: Option<&[u8]>) -> bool {
        // A call (`key == None`) is allowed by any access to the contract.
        if key.is_none() {
            return self
                .reads
                .iter()
                .chain(&self.writes)
                .any(|a| a.contract == contract);
        }
        Self::covers(&self.reads, contract, key) || Self::covers(&self.writes, contract, key)
    }

    /// Whether writing `key` of `contract` is declared.
    pub fn allows_write(&self, contract: Hname, key: &[u8]) -> bool {
        Self::covers(&self.writes, contract, Some(key))
    }
}

/// What a sender asks for, independent of how it reached the chain.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RequestBody {
    /// The chain the request is for; other chains ignore it.
    pub chain: ChainId,
    /// The call to make.
    pub call: Call,
    /// Most gas the request may use; the fee is `gas_used × gas price` (sompi).
    pub gas_budget: u64,
    /// Declared read/write sets; `None` means undeclared (any access, sequential execution).
    pub access_list: Option<AccessList>,
    /// When the request may run; `None`: as soon as it arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_lock: Option<TimeLock>,
}

/// A moment on Kaspa's clock, as the chain sees it through the L1 chain block each Wisp block
/// refers to.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum L1Time {
    /// A DAA score (about 10 per second on mainnet since Crescendo, 1 per block on simnet).
    DaaScore(u64),
    /// An L1 block timestamp, ms since the Unix epoch.
    TimestampMs(u64),
}

impl L1Time {
    /// Whether a block referring to an L1 block with `daa_score` and `timestamp_ms` is at or
    /// past this moment.
    pub fn reached(&self, daa_score: u64, timestamp_ms: u64) -> bool {
        match *self {
            L1Time::DaaScore(s) => daa_score >= s,
            L1Time::TimestampMs(t) => timestamp_ms >= t,
        }
    }

    /// The clock's name: `daa_score` or `timestamp_ms`.
    pub fn clock(&self) -> &'static str {
        match self {
            L1Time::DaaScore(_) => "daa_score",
            L1Time::TimestampMs(_) => "timestamp_ms",
        }
    }

    /// The value on its clock.
    pub fn value(&self) -> u64 {
        match *self {
            L1Time::DaaScore(v) | L1Time::TimestampMs(v) => v,
        }
    }
}

impl core::fmt::Display for L1Time {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            L1Time::DaaScore(s) => write!(f, "DAA score {s}"),
            L1Time::TimestampMs(t) => write!(f, "L1 time {t} ms"),
        }
    }
}

/// When a request may run (IOTA ISC's time lock and expiration): not in a block whose L1
/// reference is before `not_before`, and not in one at or after `expires_at`. An on-ledger
/// request that arrives early waits in the chain's time-lock queue (state) and runs once, in
/// the first block at or after `not_before` with room for it; one that arrives or comes due at
/// or after `expires_at` gets an `expired` receipt. An off-ledger request is refused outside
/// its window.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct TimeLock {
    /// Earliest moment the request may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<L1Time>,
    /// First moment the request may no longer run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<L1Time>,
}

impl TimeLock {
    /// Checks the lock is usable: at least one bound; both on the same clock, `expires_at`
    /// after `not_before` (so a waiting request comes due before it expires).
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn validate(&self) -> Result<(), &'static str> {
        match (self.not_before, self.expires_at) {
            (None, None) => Err("a time lock needs not_before or expires_at"),
            (Some(a), Some(b)) if a.clock() != b.clock() => {
                Err("not_before and expires_at must be on the same clock (both DAA scores or both timestamps)")
            }
            (Some(a), Some(b)) if b.value() <= a.value() => {
                Err("expires_at must be after not_before")
            }
            _ => Ok(()),
        }
    }

    /// Whether the request may run in a block referring to `daa_score` and `timestamp_ms`
    /// as far as `not_before` goes.
    pub fn is_due(&self, daa_score: u64, timestamp_ms: u64) -> bool {
        self.not_before
            .is_none_or(|t| t.reached(daa_score, timestamp_ms))
    }

    /// Whether the request's window has closed at `daa_score` and `timestamp_ms`.
    pub fn is_expired(&self, daa_score: u64, timestamp_ms: u64) -> bool {
        self.expires_at
            .is_some_and(|t| t.reached(daa_score, timestamp_ms))
    }
}

/// A request signed by its sender and sent to a node (`wisp_sendRequest`).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct OffLedgerRequest {
    /// What is asked.
    pub body: RequestBody,
    /// The sender's x-only secp256k1 public key; the sender is `AgentId::Address(sender_key)`.
    pub sender_key: [u8; 32],
    /// Must equal the sender's next nonce on the chain (starts at 0, +1 per processed request).
    pub nonce: u64,
    /// BIP-340 Schnorr signature over [`OffLedgerRequest::signing_hash`].
    #[serde(with = "sig_hex")]
    pub signature: [u8; 64],
}

impl OffLedgerRequest {
    /// Domain separator of the signed message.
    pub const SIGNING_DOMAIN: &'static [u8] = b"wisp/off-ledger-request/v1";

    /// The 32-byte message the sender signs: blake2b-256(domain ‖ borsh(body) ‖ key ‖ nonce LE).
    pub fn signing_hash(body: &RequestBody, sender_key: &[u8; 32], nonce: u64) -> Hash32 {
        let body_bytes = borsh::to_vec(body).unwrap_or_default();
        blake2b_256_parts(&[
            Self::SIGNING_DOMAIN,
            &body_bytes,
            sender_key,
            &nonce.to_le_bytes(),
        ])
    }

    /// The request id: blake2b-256 of the whole borsh-encoded signed request.
    pub fn id(&self) -> RequestId {
        let bytes = borsh::to_vec(self).unwrap_or_default();
        blake2b_256_parts(&[b"wisp/request-id/off", &bytes])
    }

    /// The sender as an agent.
    pub fn sender(&self) -> AgentId {
        AgentId::Address(self.sender_key)
    }
}

/// The id of the `index`-th request in the payload of L1 transaction `l1_tx_id`.
pub fn on_ledger_request_id(l1_tx_id: &[u8; 32], index: u32) -> RequestId {
    blake2b_256_parts(&[b"wisp/request-id/on", l1_tx_id, &index.to_le_bytes()])
}

/// The payload of a Kaspa transaction on [`LANE_ID`]: [`LANE_PAYLOAD_MAGIC`] then
/// borsh(`LanePayload`). The sender is the owner of the transaction's first input (a version-0
/// pay-to-public-key script); what the transaction pays to the chain's deposit address is
/// credited to `beneficiary`, or to the sender if there is none.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct LanePayload {
    /// Requests, executed in this order, each atomically.
    pub requests: Vec<RequestBody>,
    /// Who the deposit is credited to (default: the sender). A transaction whose first input is
    /// not a version-0 P2PK script has no sender: its deposit needs a beneficiary, or it is
    /// recorded as refundable.
    pub beneficiary: Option<AgentId>,
}

impl LanePayload {
    /// Most requests one payload may carry.
    pub const MAX_REQUESTS: usize = 64;

    /// Magic ‖ borsh(self).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = LANE_PAYLOAD_MAGIC.to_vec();
        out.extend(borsh::to_vec(self).unwrap_or_default());
        out
    }

    /// Decodes a lane payload.
    ///
    /// # Errors
    /// `None` if the magic is missing, the bytes do not decode exactly, or there are more than
    /// [`LanePayload::MAX_REQUESTS`] requests.
    pub fn decode(bytes: &[u8]) -> Option<LanePayload> {
        let rest = bytes.strip_prefix(LANE_PAYLOAD_MAGIC.as_slice())?;
        let payload: LanePayload = borsh::from_slice(rest).ok()?;
        (payload.requests.len() <= Self::MAX_REQUESTS).then_some(payload)
    }
}

mod sig_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hash::to_hex(sig))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = alloc::string::String::deserialize(d)?;
        crate::hash::from_hex(&text)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("signature must be 64 hex-encoded bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> RequestBody {
        RequestBody {
            chain: ChainId([1; 32]),
            call: Call {
                target: Hname(5),
                entry_point: Hname(6),
                args: alloc::vec![1, 2, 3],
                transfer_sompi: 0,
            },
            gas_budget: 1000,
            access_list: None,
            time_lock: None,
        }
    }

    #[test]
    fn lane_payload_round_trips_and_rejects_junk() {
        let p = LanePayload {
            beneficiary: None,
            requests: alloc::vec![body(), body()],
        };
        let bytes = p.encode();
        assert_eq!(LanePayload::decode(&bytes), Some(p));
        assert_eq!(LanePayload::decode(b"nope"), None);
        assert_eq!(LanePayload::decode(&bytes[..bytes.len() - 1]), None);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(LanePayload::decode(&trailing), None);
    }

    #[test]
    fn signing_hash_binds_every_field() {
        let b = body();
        let h = OffLedgerRequest::signing_hash(&b, &[2; 32], 0);
        assert_ne!(h, OffLedgerRequest::signing_hash(&b, &[2; 32], 1));
        assert_ne!(h, OffLedgerRequest::signing_hash(&b, &[3; 32], 0));
        let mut b2 = b.clone();
        b2.gas_budget += 1;
        assert_ne!(h, OffLedgerRequest::signing_hash(&b2, &[2; 32], 0));
    }

    #[test]
    fn access_list_prefixes() {
        let list = AccessList {
            reads: alloc::vec![Access {
                contract: Hname(1),
                key_prefix: Some(b"bal".to_vec())
            }],
            writes: alloc::vec![Access {
                contract: Hname(2),
                key_prefix: None
            }],
        };
        assert!(list.allows_read(Hname(1), Some(b"balance/x")));
        assert!(!list.allows_read(Hname(1), Some(b"owner")));
        assert!(!list.allows_write(Hname(1), b"balance/x"));
        assert!(list.allows_write(Hname(2), b"anything"));
        assert!(list.allows_read(Hname(2), Some(b"anything")));
        assert!(list.allows_read(Hname(1), None));
        assert!(!list.allows_read(Hname(3), None));
    }
}
