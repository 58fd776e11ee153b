//! The call's environment: arguments, caller, block, base tokens, events, cross-contract calls,
//! aborts. Thin safe wrappers over [`crate::sys`]; each costs the gas listed in the host ABI.

use crate::sys;
use crate::{AgentId, Event, Hash32, Hname, ReceiptError};
use alloc::vec;
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use wisp_core::ChainId;

/// Appends the borsh encoding of `value` to `out`; aborts the call if it does not encode (a
/// collection longer than `u32::MAX` elements).
pub(crate) fn encode_into<T: BorshSerialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    if value.serialize(out).is_err() {
        abort(wisp_core::CONTRACT_PANIC_CODE, "value does not encode")
    }
}

/// The borsh encoding of `value`. Starts small instead of `borsh::to_vec`'s 1 KiB: the
/// allocator never frees, and most values (numbers, agent IDs, events) are far shorter; a
/// longer one grows in place when it is the last allocation.
pub(crate) fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_into(value, &mut out);
    out
}

fn read_register(len: u32) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    // SAFETY: buf has exactly `len` bytes, the register's length.
    unsafe { sys::register_read(buf.as_mut_ptr() as u32) };
    buf
}

/// The raw borsh-encoded arguments of this call.
pub fn input() -> Vec<u8> {
    // SAFETY: host call with no pointers.
    let len = unsafe { sys::input() };
    read_register(len)
}

/// Sets the call's return value.
pub fn set_return<T: BorshSerialize + ?Sized>(value: &T) {
    let bytes = encode(value);
    // SAFETY: pointer and length describe `bytes`.
    unsafe { sys::set_return(bytes.as_ptr() as u32, bytes.len() as u32) }
}

/// Fails the call with a contract-level error; nothing it did is kept.
pub fn abort(code: u32, message: &str) -> ! {
    // SAFETY: pointer and length describe `message`; the host never returns.
    unsafe { sys::abort(code, message.as_ptr() as u32, message.len() as u32) };
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Who called: the request's sender, or the contract that made this call.
pub fn caller() -> AgentId {
    // SAFETY: host call with no pointers.
    let len = unsafe { sys::caller() };
    decode_or_abort(&read_register(len))
}

/// This contract's hname.
pub fn self_hname() -> Hname {
    // SAFETY: host call with no pointers.
    Hname(unsafe { sys::self_hname() })
}

/// The chain this contract runs on.
pub fn chain_id() -> ChainId {
    let mut out = [0u8; 32];
    // SAFETY: out has 32 bytes.
    unsafe { sys::chain_id(out.as_mut_ptr() as u32) };
    ChainId(out)
}

/// This contract as an agent (to hold tokens or compare with [`caller`]).
pub fn self_agent() -> AgentId {
    AgentId::Contract(wisp_core::ContractId {
        chain: chain_id(),
        hname: self_hname(),
    })
}

/// Index of the block being built.
pub fn block_index() -> u64 {
    // SAFETY: host call with no pointers.
    unsafe { sys::block_index() }
}

/// Block time, ms since the Unix epoch, from the L1 chain block (deterministic).
pub fn block_timestamp_ms() -> u64 {
    // SAFETY: host call with no pointers.
    unsafe { sys::block_timestamp_ms() }
}

/// 32 random bytes, a new value at every call within a request, the same on every node.
///
/// On a committee chain they derive from the committee's threshold signature of a view after
/// the one the block was proposed in, so no one (no member either, short of a quorum
/// colluding) knew them when the block's requests were fixed. What remains: a leader may keep
/// the following view from completing, so the block's randomness comes from a later view
/// instead (a re-draw, never a choice of value); a quorum of members can compute values
/// early. A contract that pays out on a draw should take bets in one request and draw in a
/// later one. The full statement is in `docs/randomness.md`.
///
/// Fails the call with `randomness_unavailable` on a chain without a committee (one operator
/// could choose the value) and in a view. The test harness simulates a committee (see
/// `TestChain::set_random_seed`).
pub fn random() -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: out has 32 bytes.
    unsafe { sys::random(out.as_mut_ptr() as u32) };
    out
}

/// A uniformly random integer in `0..bound` from [`random`] (rejection sampling, so without
/// modulo bias); 0 when `bound` is 0.
pub fn random_below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    // The largest multiple of `bound` that fits: values at or above it are drawn again.
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let bytes = random();
        for chunk in bytes.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let value = u64::from_le_bytes(word);
            if value < zone {
                return value % bound;
            }
        }
    }
}

/// Base tokens (sompi) attached to this call, already credited to this contract.
pub fn transferred_sompi() -> u64 {
    // SAFETY: host call with no pointers.
    unsafe { sys::transferred_sompi() }
}

/// Base-token balance of `agent`, in sompi.
pub fn balance_sompi(agent: &AgentId) -> u64 {
    let bytes = encode(agent);
    // SAFETY: pointer and length describe `bytes`.
    unsafe { sys::balance_sompi(bytes.as_ptr() as u32, bytes.len() as u32) }
}

/// Moves `amount_sompi` base tokens from this contract to `to`; the call fails (VM level,
/// `insufficient_balance`) if the contract holds less.
pub fn transfer_sompi(to: &AgentId, amount_sompi: u64) {
    let bytes = encode(to);
    // SAFETY: pointer and length describe `bytes`.
    unsafe { sys::transfer_sompi(bytes.as_ptr() as u32, bytes.len() as u32, amount_sompi) }
}

/// Withdraws `amount_sompi` from this contract's account to the Kaspa address `to` (peg out,
/// like `accounts.withdraw`): at least 1 KAS; the 1,500,000-sompi withdrawal fee is also taken
/// from this contract's account. Returns the outbox sequence number; the chain's next anchor
/// transactions pay it on Kaspa. The call fails (VM level, `insufficient_balance`) if the
/// contract holds less than amount + fee, and panics if `to` is a contract (only Kaspa
/// addresses can be paid on L1).
pub fn withdraw_to_l1(to: &AgentId, amount_sompi: u64) -> u64 {
    let AgentId::Address(key) = to else {
        panic!("withdraw_to_l1 pays a Kaspa address, not a contract");
    };
    // SAFETY: `key` is 32 readable bytes.
    unsafe { sys::withdraw_to_l1(key.as_ptr() as u32, amount_sompi) }
}

/// Emits `event`; kept only if the request succeeds.
pub fn emit<E: Event>(event: &E) {
    let data = encode(event);
    let topic = E::TOPIC;
    // SAFETY: pointers and lengths describe `topic` and `data`.
    unsafe {
        sys::emit_event(
            topic.as_ptr() as u32,
            topic.len() as u32,
            data.as_ptr() as u32,
            data.len() as u32,
        )
    }
}

/// Writes a debug line to the node log / test harness output.
pub fn log(message: &str) {
    // SAFETY: pointer and length describe `message`.
    unsafe { sys::log(message.as_ptr() as u32, message.len() as u32) }
}

/// blake2b-256 of `data`.
pub fn blake2b_256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: pointers and lengths describe `data` and `out`.
    unsafe {
        sys::blake2b_256(
            data.as_ptr() as u32,
            data.len() as u32,
            out.as_mut_ptr() as u32,
        )
    };
    out
}

/// Whether `sig` is a valid BIP-340 Schnorr signature of the 32-byte `msg` by the x-only
/// public key `key` (Kaspa's default key type; an `AgentId::Address` holds such a key). A key
/// that is not on the curve gives `false`. Costs about as much gas as 60 storage reads
/// (`docs/host-abi.md`).
pub fn verify_schnorr(msg: &[u8; 32], sig: &[u8; 64], key: &[u8; 32]) -> bool {
    // SAFETY: the pointers address arrays of the sizes the host reads.
    unsafe {
        sys::verify_schnorr(
            msg.as_ptr() as u32,
            sig.as_ptr() as u32,
            key.as_ptr() as u32,
        ) == 1
    }
}

/// Whether `sig` (compact: r ‖ s) is a valid ECDSA secp256k1 signature of the 32-byte message
/// hash `msg` by the 33-byte compressed public key `key` (Kaspa's ECDSA key type). Signatures
/// with a high s are invalid, as in Kaspa.
pub fn verify_ecdsa(msg: &[u8; 32], sig: &[u8; 64], key: &[u8; 33]) -> bool {
    // SAFETY: the pointers address arrays of the sizes the host reads.
    unsafe {
        sys::verify_ecdsa(
            msg.as_ptr() as u32,
            sig.as_ptr() as u32,
            key.as_ptr() as u32,
        ) == 1
    }
}

/// Whether `sig` is a valid Ed25519 signature (RFC 8032, strict verification) of `msg` by the
/// 32-byte public key `key`. Gas grows with the message's length.
pub fn verify_ed25519(msg: &[u8], sig: &[u8; 64], key: &[u8; 32]) -> bool {
    // SAFETY: the pointers and length describe `msg`, `sig` and `key`.
    unsafe {
        sys::verify_ed25519(
            msg.as_ptr() as u32,
            msg.len() as u32,
            sig.as_ptr() as u32,
            key.as_ptr() as u32,
        ) == 1
    }
}

/// Gas left in this request.
pub fn gas_left() -> u64 {
    // SAFETY: host call with no pointers.
    unsafe { sys::gas_left() }
}

/// Why a cross-contract call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The callee (or something it called) failed; its effects were undone.
    Failed(ReceiptError),
    /// The callee returned data that does not decode as the expected type.
    BadReturn,
}

fn decode_or_abort<T: BorshDeserialize>(bytes: &[u8]) -> T {
    match borsh::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => abort(
            wisp_core::CONTRACT_PANIC_CODE,
            "host returned bytes that do not decode",
        ),
    }
}

fn raw_call<A: BorshSerialize, R: BorshDeserialize>(
    kind: u32,
    target: Hname,
    function: &str,
    args: &A,
    transfer_sompi: u64,
) -> Result<R, CallError> {
    let data = call_with_bytes(kind, target, function, &encode(args), transfer_sompi)?;
    borsh::from_slice(&data).map_err(|_| CallError::BadReturn)
}

/// The host's `call` with argument bytes as given; the callee's return bytes undecoded.
fn call_with_bytes(
    kind: u32,
    target: Hname,
    function: &str,
    args: &[u8],
    transfer_sompi: u64,
) -> Result<Vec<u8>, CallError> {
    let entry_point = Hname::of(function);
    // SAFETY: pointer and length describe `args`.
    let status = unsafe {
        sys::call(
            kind,
            target.0,
            entry_point.0,
            args.as_ptr() as u32,
            args.len() as u32,
            transfer_sompi,
        )
    };
    // SAFETY: host call with no pointers.
    let data = read_register(unsafe { sys::register_len() });
    if status == 0 {
        Ok(data)
    } else {
        Err(CallError::Failed(decode_or_abort(&data)))
    }
}

/// Deploys the code stored under `code_hash` (by `blob.store`, or any earlier deploy) as a new
/// contract `name`, running its `init` with `init_args` (a tuple of its parameters) in this
/// request: a factory. This contract becomes the new one's deployer and admin
/// (`root.deploy_stored`). Returns the new contract's hname.
///
/// # Errors
/// [`CallError::Failed`] if no such code is stored, the name is taken or not usable, or `init`
/// fails (then nothing was deployed).
pub fn deploy<A: BorshSerialize>(
    code_hash: &Hash32,
    name: &str,
    init_args: &A,
) -> Result<Hname, CallError> {
    call(
        Hname::of("root"),
        "deploy_stored",
        &(code_hash, name, encode(init_args)),
        0,
    )
}

/// The code hash of deployed contract `contract` (`root.contract`), `None` if there is none.
pub fn code_hash_of(contract: Hname) -> Option<Hash32> {
    let record: Result<Option<(alloc::string::String, Hash32, AgentId, u64)>, _> =
        view(Hname::of("root"), "contract", &(contract,));
    record.ok().flatten().map(|r| r.1)
}

/// Calls entry point `function` of contract `target` with argument bytes `args` exactly as
/// given (already borsh-encoded: a tuple of the callee's parameters) and returns the callee's
/// return bytes undecoded: for contracts that forward calls they do not know the types of (a
/// multisig wallet, a proxy). Otherwise as [`call`].
///
/// # Errors
/// [`CallError::Failed`] if the callee fails (its effects are undone).
pub fn call_bytes(
    target: Hname,
    function: &str,
    args: &[u8],
    transfer_sompi: u64,
) -> Result<Vec<u8>, CallError> {
    call_with_bytes(0, target, function, args, transfer_sompi)
}

/// Calls view `function` of contract `target` with argument bytes `args` exactly as given and
/// returns its return bytes undecoded; otherwise as [`view`].
///
/// # Errors
/// [`CallError::Failed`] if the view fails.
pub fn view_bytes(target: Hname, function: &str, args: &[u8]) -> Result<Vec<u8>, CallError> {
    call_with_bytes(1, target, function, args, 0)
}

/// Calls entry point `function` of contract `target` with `args` (a tuple of its parameters),
/// attaching `transfer_sompi` base tokens from this contract. Atomic: on `Err` the callee's
/// effects are undone and this call may go on.
///
/// # Errors
/// [`CallError`] if the callee fails or returns something other than `R`.
pub fn call<A: BorshSerialize, R: BorshDeserialize>(
    target: Hname,
    function: &str,
    args: &A,
    transfer_sompi: u64,
) -> Result<R, CallError> {
    raw_call(0, target, function, args, transfer_sompi)
}

/// Calls view `function` of contract `target` (read-only).
///
/// # Errors
/// [`CallError`] if the view fails or returns something other than `R`.
pub fn view<A: BorshSerialize, R: BorshDeserialize>(
    target: Hname,
    function: &str,
    args: &A,
) -> Result<R, CallError> {
    raw_call(1, target, function, args, 0)
}
