//! The state key layout. Every key starts with the 4-byte hname of the contract that owns it;
//! core contracts own their partitions like any other contract.
//!
//! | owner | key | value |
//! |---|---|---|
//! | root | `c` ‖ hname | borsh(ContractRecord) |
//! | root | `a` ‖ hname | borsh(AgentId): who may upgrade the contract (absent: immutable) |
//! | root | `list` | borsh(Vec<Hname>) (deploy order) |
//! | root | `owner` | borsh(AgentId): the chain owner |
//! | accounts | `b` ‖ borsh(AgentId) | u64 LE sompi |
//! | accounts | `n` ‖ borsh(AgentId) | u64 LE next off-ledger nonce |
//! | accounts | `total` | u64 LE: sum of all balances and storage deposits |
//! | accounts | `d` ‖ hname | borsh((u64, u64)): a contract's stored bytes and their deposit |
//! | accounts | `u` ‖ L1 tx id | u64 LE: a deposit nobody can be credited with, refundable |
//! | blob | `c` ‖ code hash | module bytes |
//! | blocklog | `r` ‖ request id | borsh((block index, request index, receipt hash)) |
//! | blocklog | `b` ‖ u64 BE index | block hash of the *previous* block (the chain's history) |
//! | blocklog | `q` | borsh(Vec<QueuedTimeLock>): waiting time-locked requests, arrival order |
//! | blocklog | `t` ‖ request id | borsh(TimeLocked): a waiting time-locked request |
//! | governance | `p` | borsh(ChainParams) |
//! | governance | `v` | borsh(Protocol): version and VM limits in force |
//! | governance | `u` | borsh(Upgrade): a scheduled protocol change |
//! | governance | `e` | u64 LE: the newest committee epoch (absent: 0, the creating committee) |
//! | governance | `r` ‖ u64 BE epoch | borsh(CommitteeRotation): the rotation to that epoch |
//! | any WASM contract | its own keys (SDK layout) | |

use wisp_core::{AgentId, Hash32, Hname, RequestId};

/// Hnames of the core contracts, each hashed once per process: key building runs them on
/// every state access.
pub mod hnames {
    use std::sync::LazyLock;
    use wisp_core::Hname;
    /// `root`: deploys contracts, keeps the registry and the chain owner.
    pub fn root() -> Hname {
        static H: LazyLock<Hname> = LazyLock::new(|| Hname::of("root"));
        *H
    }
    /// `accounts`: base-token balances and nonces.
    pub fn accounts() -> Hname {
        static H: LazyLock<Hname> = LazyLock::new(|| Hname::of("accounts"));
        *H
    }
    /// `blob`: code by hash.
    pub fn blob() -> Hname {
        static H: LazyLock<Hname> = LazyLock::new(|| Hname::of("blob"));
        *H
    }
    /// `blocklog`: processed requests and block history.
    pub fn blocklog() -> Hname {
        static H: LazyLock<Hname> = LazyLock::new(|| Hname::of("blocklog"));
        *H
    }
    /// `governance`: gas price and limits.
    pub fn governance() -> Hname {
        static H: LazyLock<Hname> = LazyLock::new(|| Hname::of("governance"));
        *H
    }
}

/// `owner ‖ parts…`, allocated once (key building runs on every state access).
fn key(owner: Hname, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.extend_from_slice(&owner.to_bytes());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// A full state key built on the stack ([`balance_key`], [`nonce_key`],
/// [`with_contract_key`], [`contract_record_key`]): for reads and comparisons, which need no key
/// of their own. Each allocation on the request path costs more than its instructions: the
/// allocator's free block is usually out of the core's first-level cache by then (perf of
/// `profile_block -- 1 400 independent no-index`, 2026-12-03: allocations ~14% of the
/// execution phase at 41 a transfer).
pub(crate) struct StackKey {
    len: usize,
    bytes: [u8; STACK_KEY_BYTES],
}

/// Longest key a [`StackKey`] holds: a 4-byte hname and 60 more bytes (an agent key, a
/// 1-byte tag and borsh(AgentId), takes at most 42).
const STACK_KEY_BYTES: usize = 64;

impl StackKey {
    /// `owner ‖ parts…`, or `None` if longer than [`STACK_KEY_BYTES`].
    fn of(owner: Hname, parts: &[&[u8]]) -> Option<StackKey> {
        let mut key = StackKey {
            len: 4,
            bytes: [0u8; STACK_KEY_BYTES],
        };
        key.bytes[..4].copy_from_slice(&owner.to_bytes());
        for p in parts {
            let end = key
                .len
                .checked_add(p.len())
                .filter(|&e| e <= STACK_KEY_BYTES)?;
            key.bytes[key.len..end].copy_from_slice(p);
            key.len = end;
        }
        Some(key)
    }
}

impl std::ops::Deref for StackKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl AsRef<[u8]> for StackKey {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// `accounts ‖ tag ‖ borsh(agent)` on the stack: what [`agent_key`] makes for the one-byte
/// tags `b` and `n`.
fn agent_key_on_stack(tag: u8, agent: &AgentId) -> StackKey {
    let mut bytes = [0u8; STACK_KEY_BYTES];
    bytes[..4].copy_from_slice(&hnames::accounts().to_bytes());
    bytes[4] = tag;
    let mut rest = &mut bytes[5..];
    // The buffer holds the longest encoding (38 bytes), so writing cannot fail.
    let _ = borsh::to_writer(&mut rest, agent);
    let len = STACK_KEY_BYTES - rest.len();
    StackKey { len, bytes }
}

/// [`balance`], built on the stack.
pub(crate) fn balance_key(agent: &AgentId) -> StackKey {
    agent_key_on_stack(b'b', agent)
}

/// [`nonce`], built on the stack.
pub(crate) fn nonce_key(agent: &AgentId) -> StackKey {
    agent_key_on_stack(b'n', agent)
}

/// `f` of [`contract_key`]`(contract, relative)`, built on the stack when it fits in
/// [`STACK_KEY_BYTES`] (every key of the example contracts does), else allocated.
pub(crate) fn with_contract_key<R>(
    contract: Hname,
    relative: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    match StackKey::of(contract, &[relative]) {
        Some(key) => f(&key),
        None => f(&contract_key(contract, relative)),
    }
}

/// `owner ‖ tail` on the stack, for the fixed keys below: a tail too long for a
/// [`StackKey`] does not compile.
fn fixed_key<const N: usize>(owner: Hname, tail: [u8; N]) -> StackKey {
    const { assert!(N <= STACK_KEY_BYTES - 4) };
    let mut bytes = [0u8; STACK_KEY_BYTES];
    bytes[..4].copy_from_slice(&owner.to_bytes());
    bytes[4..4 + N].copy_from_slice(&tail);
    StackKey { len: 4 + N, bytes }
}

/// [`contract_record`], built on the stack.
pub(crate) fn contract_record_key(contract: Hname) -> StackKey {
    let h = contract.to_bytes();
    fixed_key(hnames::root(), [b'c', h[0], h[1], h[2], h[3]])
}

/// [`request`], built on the stack.
pub(crate) fn request_key(id: &RequestId) -> StackKey {
    let mut tail = [0u8; 33];
    tail[0] = b'r';
    tail[1..].copy_from_slice(&id.0);
    fixed_key(hnames::blocklog(), tail)
}

/// [`chain_owner`], built on the stack.
pub(crate) fn chain_owner_key() -> StackKey {
    fixed_key(hnames::root(), *b"owner")
}

/// `owner ‖ tag ‖ borsh(agent)`, allocated once.
fn agent_key(owner: Hname, tag: &[u8], agent: &AgentId) -> Vec<u8> {
    // borsh(AgentId): a 1-byte variant tag, then 32 bytes (an address) or 36 (a contract id).
    let mut k = Vec::with_capacity(4 + tag.len() + 37);
    k.extend_from_slice(&owner.to_bytes());
    k.extend_from_slice(tag);
    // Writing into a Vec cannot fail.
    let _ = borsh::to_writer(&mut k, agent);
    k
}

/// Full state key of a contract-relative key.
pub fn contract_key(contract: Hname, relative: &[u8]) -> Vec<u8> {
    key(contract, &[relative])
}
/// The registry record of a contract.
pub fn contract_record(contract: Hname) -> Vec<u8> {
    key(hnames::root(), &[b"c", &contract.to_bytes()])
}
/// Who may upgrade a contract (absent: nobody, the contract is immutable).
pub fn contract_admin(contract: Hname) -> Vec<u8> {
    key(hnames::root(), &[b"a", &contract.to_bytes()])
}
/// Every contract record: the prefix of [`contract_record`] keys.
pub fn contract_records() -> Vec<u8> {
    key(hnames::root(), &[b"c"])
}
/// The list of deployed contracts.
pub fn contract_list() -> Vec<u8> {
    key(hnames::root(), &[b"list"])
}
/// The chain owner.
pub fn chain_owner() -> Vec<u8> {
    key(hnames::root(), &[b"owner"])
}
/// An agent's base-token balance.
pub fn balance(agent: &AgentId) -> Vec<u8> {
    agent_key(hnames::accounts(), b"b", agent)
}
/// An agent's next off-ledger nonce.
pub fn nonce(agent: &AgentId) -> Vec<u8> {
    agent_key(hnames::accounts(), b"n", agent)
}
/// A deposit with no sender identity and no beneficiary, by L1 transaction id.
pub fn unclaimed(l1_tx_id: &Hash32) -> Vec<u8> {
    key(hnames::accounts(), &[b"u", &l1_tx_id.0])
}
/// Storage deposit held for a WASM contract's state: borsh((bytes, sompi)), the bytes its
/// entries count and the sompi locked for them; written once per block, at its end, from the
/// block's sums.
pub fn storage_deposit(contract: Hname) -> Vec<u8> {
    key(hnames::accounts(), &[b"d", &contract.to_bytes()])
}
/// Sum of all balances and storage deposits: the coins pegged into the chain.
pub fn total_balance() -> Vec<u8> {
    key(hnames::accounts(), &[b"total"])
}
/// Withdrawal `seq` of the outbox (borsh [`crate::OutboxEntry`]); `seq` big-endian so entries
/// sort in order.
pub fn outbox(seq: u64) -> Vec<u8> {
    key(hnames::accounts(), &[b"o", &seq.to_be_bytes()])
}
/// The next outbox sequence number (`u64` LE): how many withdrawals were ever requested.
pub fn outbox_next() -> Vec<u8> {
    key(hnames::accounts(), &[b"outbox-next"])
}
/// Sompi the owner has paid towards anchor transactions' L1 fees, in all (`u64` LE).
pub fn anchor_fees() -> Vec<u8> {
    key(hnames::accounts(), &[b"anchor-fees"])
}
/// Code by hash.
pub fn blob(code_hash: &Hash32) -> Vec<u8> {
    key(hnames::blob(), &[b"c", &code_hash.0])
}
/// Where a processed request's receipt is recorded.
pub fn request(id: &RequestId) -> Vec<u8> {
    key(hnames::blocklog(), &[b"r", &id.0])
}
/// The time-lock queue: borsh(Vec<QueuedTimeLock>), in arrival order (absent: empty).
pub fn time_lock_queue() -> Vec<u8> {
    key(hnames::blocklog(), &[b"q"])
}
/// An on-ledger request waiting for its time lock: borsh(TimeLocked).
pub fn time_locked(id: &RequestId) -> Vec<u8> {
    key(hnames::blocklog(), &[b"t", &id.0])
}
/// The hash of block `index`, recorded in block `index + 1`.
pub fn block_hash(index: u64) -> Vec<u8> {
    key(hnames::blocklog(), &[b"b", &index.to_be_bytes()])
}
/// Governance parameters.
pub fn params() -> Vec<u8> {
    key(hnames::governance(), &[b"p"])
}
/// The protocol in force.
pub fn protocol() -> Vec<u8> {
    key(hnames::governance(), &[b"v"])
}
/// A scheduled protocol upgrade.
pub fn protocol_upgrade() -> Vec<u8> {
    key(hnames::governance(), &[b"u"])
}
/// The newest committee epoch (u64 LE; absent: 0).
pub fn committee_epoch() -> Vec<u8> {
    key(hnames::governance(), &[b"e"])
}
/// The rotation to committee epoch `epoch`: borsh(CommitteeRotation).
pub fn committee_rotation(epoch: u64) -> Vec<u8> {
    key(hnames::governance(), &[b"r", &epoch.to_be_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_built_on_the_stack_are_the_allocated_ones() {
        let agents = [
            AgentId::Address([7; 32]),
            AgentId::Contract(wisp_core::ContractId {
                chain: wisp_core::ChainId([9; 32]),
                hname: Hname(0x0102_0304),
            }),
        ];
        for agent in &agents {
            assert_eq!(&*balance_key(agent), balance(agent).as_slice());
            assert_eq!(&*nonce_key(agent), nonce(agent).as_slice());
        }
        assert_ne!(&*balance_key(&agents[0]), &*nonce_key(&agents[0]));
        for h in [Hname(0), Hname(0x0102_0304), Hname(u32::MAX)] {
            assert_eq!(&*contract_record_key(h), contract_record(h).as_slice());
        }
        assert_eq!(&*chain_owner_key(), chain_owner().as_slice());
        for id in [Hash32([0; 32]), Hash32([0xab; 32])] {
            assert_eq!(&*request_key(&id), request(&id).as_slice());
        }
    }

    #[test]
    fn contract_keys_fit_the_stack_up_to_its_size_and_are_allocated_beyond() {
        let token = Hname(0x0a0b_0c0d);
        // Relative keys up to 60 bytes are built on the stack; longer ones are allocated. Both
        // are the same key `contract_key` makes.
        for len in [0, 1, 34, 59, 60, 61, 200, 1024] {
            let relative: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let on_stack = StackKey::of(token, &[&relative]).is_some();
            assert_eq!(on_stack, len <= 60, "{len} bytes");
            let built = with_contract_key(token, &relative, <[u8]>::to_vec);
            assert_eq!(built, contract_key(token, &relative), "{len} bytes");
        }
    }
}
