//! The anchor covenant: a P2SH script that carries the chain's settled state and lets Kaspa
//! enforce what its successor may be.
//!
//! The redeem script is `state prefix ‖ code`:
//! - the **state prefix** pushes the anchored block index (8 bytes, little-endian), that block's
//!   header hash (32 bytes), the **outbox commitment** (32 bytes): the withdrawals the next
//!   anchor transaction must pay, committed by [`outbox_commitment`], and the **committee
//!   key** (32 bytes, x-only) that may spend this anchor;
//! - the **code** is the same for every state of one chain ([`AnchorRules`]: the fee cap). It
//!   reads its own bytes from its input's signature script, authenticates them against the
//!   UTXO's P2SH hash, and requires output 0 to be the P2SH of the *new* state prefix (pushed
//!   by the spender) followed by the same code.
//!
//! A spend is valid only if (all checked by Kaspa, `docs/anchor.md` walks the opcodes):
//! 1. the anchor is input 0 and the transaction has at most [`MAX_INPUTS`] inputs;
//! 2. the new state's fields have their sizes, and its block index is greater than the old;
//! 3. output 0 is the successor: the same code under the new state, carrying the anchor's
//!    covenant id, authorized by input 0, and the only output of that covenant;
//! 4. outputs 1.. are exactly the payouts the old state's outbox committed to, in order (at
//!    most [`MAX_PAYOUTS`]);
//! 5. output 0 keeps every sompi of the inputs except the payouts and at most
//!    `max_fee_sompi`;
//! 6. the committee key of the *old* state signed the transaction (BIP340 Schnorr,
//!    `SIG_HASH_ALL`).
//!
//! The committee key is one x-only key: a single node's key, or the group key of a FROST
//! committee ([`crate::committee`]); Kaspa verifies either as one BIP340 signature. Because it
//! is part of the state, a successor signed by the current key may name another: that is how
//! a chain moves to a new committee, and from that anchor on the old key moves nothing. The
//! script does not check that the new key is a valid point (a successor naming one that is not
//! could never be spent): signers check it before they sign.

use crate::{Result, SettlementError};
use kaspa_consensus_core::tx::ScriptPublicKey;
use kaspa_txscript::opcodes::codes::*;
use kaspa_txscript::pay_to_script_hash_script;
use kaspa_txscript::script_builder::ScriptBuilder;

/// Most withdrawals one anchor transaction pays (outputs 1..=8); more wait for the next.
pub const MAX_PAYOUTS: usize = 8;

/// Most inputs of one anchor transaction: the anchor and up to 7 deposits it sweeps.
pub const MAX_INPUTS: usize = 8;

/// Bytes of the state prefix: four pushes of 8, 32, 32 and 32 bytes.
pub const STATE_PREFIX_BYTES: usize = 9 + 33 + 33 + 33;

/// Bytes of the signature script before the redeem script's push: the signature (65 bytes)
/// and the new state's four fields, each with its one-byte push opcode.
const SIGNATURE_SCRIPT_HEAD: usize = 66 + STATE_PREFIX_BYTES;

/// The bytes Kaspa's `OpTxInputSpk`/`OpTxOutputSpk` give for a P2SH script public key:
/// version 0 (2 bytes, big-endian), `OpBlake2b`, `OpData32`; then the hash and `OpEqual`.
const P2SH_HEAD: [u8; 4] = [0x00, 0x00, OpBlake2b, OpData32];

/// The state an anchor commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorState {
    /// Index of the anchored Wisp block (below 2^63: Kaspa script numbers are signed).
    pub block_index: u64,
    /// Hash of that block's header (which covers its state root).
    pub header_hash: [u8; 32],
    /// [`outbox_commitment`] of the withdrawals the next anchor transaction pays.
    pub outbox: [u8; 32],
    /// The x-only BIP340 key that may spend this anchor: a single node's key or a
    /// committee's group key.
    pub committee_key: [u8; 32],
}

impl AnchorState {
    /// The state of a chain's first anchor, spendable by `committee_key`: no block settled
    /// yet, nothing to pay.
    pub fn genesis(committee_key: [u8; 32]) -> AnchorState {
        AnchorState {
            block_index: 0,
            header_hash: [0; 32],
            outbox: outbox_commitment(&[]),
            committee_key,
        }
    }

    /// The state prefix of the redeem script (four data pushes, [`STATE_PREFIX_BYTES`]).
    pub fn prefix(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(STATE_PREFIX_BYTES);
        p.push(OpData8);
        p.extend_from_slice(&self.block_index.to_le_bytes());
        p.push(OpData32);
        p.extend_from_slice(&self.header_hash);
        p.push(OpData32);
        p.extend_from_slice(&self.outbox);
        p.push(OpData32);
        p.extend_from_slice(&self.committee_key);
        p
    }
}

/// A withdrawal paid by an anchor transaction: an output of `amount_sompi` to
/// `script_public_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    /// Sompi paid.
    pub amount_sompi: u64,
    /// Where: any script public key (version and script).
    pub script_public_key: ScriptPublicKey,
}

impl Payout {
    /// A payout to the Kaspa pay-to-public-key (BIP340) address of x-only `key`.
    pub fn to_key(key: &[u8; 32], amount_sompi: u64) -> Payout {
        let mut script = Vec::with_capacity(34);
        script.push(OpData32);
        script.extend_from_slice(key);
        script.push(OpCheckSig);
        Payout {
            amount_sompi,
            script_public_key: ScriptPublicKey::new(0, script.into()),
        }
    }
}

/// The commitment to an ordered list of payouts that an anchor state carries: blake2b-256
/// (32-byte output, no key: Kaspa's `OpBlake2b`) of, for each payout in order, its amount
/// (8 bytes little-endian), its script version (2 bytes big-endian) and its script.
pub fn outbox_commitment(payouts: &[Payout]) -> [u8; 32] {
    use blake2::Digest as _;
    let mut state = blake2::Blake2b::<blake2::digest::consts::U32>::new();
    for p in payouts {
        state.update(p.amount_sompi.to_le_bytes());
        state.update(p.script_public_key.version().to_be_bytes());
        state.update(p.script_public_key.script());
    }
    state.finalize().into()
}

/// The rules of one chain's anchor: everything in the code part of its script (the key that
/// may move it is part of its state, [`AnchorState::committee_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorRules {
    /// Most sompi one anchor transaction may leave as fee.
    pub max_fee_sompi: u64,
}

impl AnchorRules {
    /// The code part of the redeem script (the same for every state of the chain).
    ///
    /// # Errors
    /// [`SettlementError::Script`] only if Kaspa's builder refuses it (it does not for any key
    /// and fee).
    pub fn code(&self) -> Result<Vec<u8>> {
        // The code reads itself from the signature script at offsets that depend on its own
        // length: build until the length is stable (two or three rounds).
        let mut len = 0usize;
        for _ in 0..8 {
            let start = code_start(len);
            let code = self.code_at(start, start + len)?;
            if code.len() == len {
                return Ok(code);
            }
            len = code.len();
        }
        // Not reached: the pushes of the offsets change size only at fixed thresholds.
        Err(SettlementError::UnstableCode(len))
    }

    /// The redeem script for `state`: its prefix followed by [`AnchorRules::code`].
    ///
    /// # Errors
    /// As [`AnchorRules::code`].
    pub fn redeem_script(&self, state: &AnchorState) -> Result<Vec<u8>> {
        let mut script = state.prefix();
        script.extend(self.code()?);
        Ok(script)
    }

    /// The anchor's script public key for `state` (P2SH of the redeem script).
    ///
    /// # Errors
    /// As [`AnchorRules::code`].
    pub fn script_public_key(&self, state: &AnchorState) -> Result<ScriptPublicKey> {
        Ok(pay_to_script_hash_script(&self.redeem_script(state)?))
    }

    /// The anchor's address for `state` on the network with address `prefix` (to find the
    /// anchor UTXO through kaspad's UTXO index).
    ///
    /// # Errors
    /// As [`AnchorRules::code`]; [`SettlementError::Address`] if Kaspa cannot make the address.
    pub fn address(
        &self,
        state: &AnchorState,
        prefix: kaspa_addresses::Prefix,
    ) -> Result<kaspa_addresses::Address> {
        crate::deposit::p2sh_address(&self.script_public_key(state)?, prefix)
    }

    /// The signature script spending the anchor at `old` into a successor at `new`: the
    /// 65-byte signature of `old`'s committee key (64-byte BIP340 signature and the sighash
    /// type byte), the new state's fields, and the old redeem script.
    ///
    /// # Errors
    /// As [`AnchorRules::code`].
    pub fn signature_script(
        &self,
        signature: &[u8; 65],
        new: &AnchorState,
        old: &AnchorState,
    ) -> Result<Vec<u8>> {
        let redeem = self.redeem_script(old)?;
        let mut b = ScriptBuilder::new();
        b.add_data(signature)?
            .add_data(&new.block_index.to_le_bytes())?
            .add_data(&new.header_hash)?
            .add_data(&new.outbox)?
            .add_data(&new.committee_key)?
            .add_data(&redeem)?;
        Ok(b.drain())
    }

    /// The code with its own position in the signature script given.
    fn code_at(&self, start: usize, end: usize) -> Result<Vec<u8>> {
        let mut b = ScriptBuilder::new();
        // Stack on entry (top last): sig, n_idx, n_hdr, n_out, n_key, o_idx, o_hdr, o_out,
        // o_key.
        // 1. The anchor is input 0; at most MAX_INPUTS inputs.
        b.add_op(OpTxInputIndex)?
            .add_op(OpFalse)?
            .add_op(OpNumEqualVerify)?;
        b.add_op(OpTxInputCount)?
            .add_i64(MAX_INPUTS as i64)?
            .add_op(OpLessThanOrEqual)?
            .add_op(OpVerify)?;
        // 2. Sizes of the new state's fields; the block index grows.
        for (depth, size) in [(7, 8), (6, 32), (5, 32), (4, 32)] {
            b.add_i64(depth)?
                .add_op(OpPick)?
                .add_op(OpSize)?
                .add_i64(size)?
                .add_op(OpNumEqualVerify)?
                .add_op(OpDrop)?;
        }
        b.add_i64(7)?
            .add_op(OpPick)?
            .add_i64(4)?
            .add_op(OpPick)?
            .add_op(OpGreaterThan)?
            .add_op(OpVerify)?;
        // 3a. Read this code from the signature script; keep it on the alt stack.
        b.add_op(OpFalse)?
            .add_i64(start as i64)?
            .add_i64(end as i64)?
            .add_op(OpTxInputScriptSigSubstr)?
            .add_op(OpToAltStack)?;
        // 3b. Authenticate it: P2SH(old prefix ‖ code) must be this input's script public key.
        cat_state_prefix(&mut b, 4)?;
        b.add_op(OpFromAltStack)?
            .add_op(OpDup)?
            .add_op(OpToAltStack)?
            .add_op(OpCat)?;
        p2sh_bytes(&mut b)?;
        b.add_op(OpFalse)?
            .add_op(OpTxInputSpk)?
            .add_op(OpEqualVerify)?;
        // Keep the old outbox and key; drop the old index and header (under the key, which
        // waits on the alt stack above the code).
        b.add_op(OpToAltStack)?
            .add_op(OpNip)?
            .add_op(OpNip)?
            .add_op(OpFromAltStack)?;
        // Stack: sig, n_idx, n_hdr, n_out, n_key, o_out, o_key.
        // 3c. Output 0 is P2SH(new prefix ‖ code).
        cat_state_prefix(&mut b, 6)?;
        b.add_op(OpFromAltStack)?.add_op(OpCat)?;
        p2sh_bytes(&mut b)?;
        b.add_op(OpFalse)?
            .add_op(OpTxOutputSpk)?
            .add_op(OpEqualVerify)?;
        // The old key waits on the alt stack for the signature check (step 6).
        b.add_op(OpToAltStack)?
            .add_op(OpToAltStack)?
            .add_op(OpDrop)?
            .add_op(OpDrop)?
            .add_op(OpDrop)?
            .add_op(OpDrop)?
            .add_op(OpFromAltStack)?;
        // Stack: sig, o_out. Alt stack: o_key.
        // 3d. Output 0 continues this covenant, authorized by input 0, and is its only output.
        b.add_op(OpFalse)?
            .add_op(OpOutputCovenantId)?
            .add_op(OpFalse)?
            .add_op(OpInputCovenantId)?
            .add_op(OpEqualVerify)?;
        b.add_op(OpFalse)?
            .add_op(OpOutputAuthorizingInput)?
            .add_op(OpFalse)?
            .add_op(OpNumEqualVerify)?;
        b.add_op(OpFalse)?
            .add_op(OpInputCovenantId)?
            .add_op(OpCovOutputCount)?
            .add_op(OpTrue)?
            .add_op(OpNumEqualVerify)?;
        // 4. Outputs 1.. are exactly the committed payouts: sum their amounts and hash them.
        b.add_op(OpTxOutputCount)?
            .add_i64(1 + MAX_PAYOUTS as i64)?
            .add_op(OpLessThanOrEqual)?
            .add_op(OpVerify)?;
        b.add_op(OpFalse)?.add_op(OpFalse)?; // sum, acc
        for i in 1..=MAX_PAYOUTS as i64 {
            b.add_i64(i)?
                .add_op(OpTxOutputCount)?
                .add_op(OpLessThan)?
                .add_op(OpIf)?;
            // sum acc → sum acc a → sum acc a a8 → sum a a8 acc → sum a acc a8 → sum a acc'
            b.add_i64(i)?
                .add_op(OpTxOutputAmount)?
                .add_op(OpDup)?
                .add_i64(8)?
                .add_op(OpNum2Bin)?
                .add_op(OpRot)?
                .add_op(OpSwap)?
                .add_op(OpCat)?
                .add_i64(i)?
                .add_op(OpTxOutputSpk)?
                .add_op(OpCat)?;
            // sum a acc' → a acc' sum → acc' sum a → acc' sum' → sum' acc'
            b.add_op(OpRot)?
                .add_op(OpRot)?
                .add_op(OpAdd)?
                .add_op(OpSwap)?;
            b.add_op(OpEndIf)?;
        }
        b.add_op(OpBlake2b)?.add_op(OpRot)?.add_op(OpEqualVerify)?;
        // Stack: sig, payouts.
        // 5. Value: output 0 + payouts + max fee ≥ every input.
        b.add_op(OpFalse)?.add_op(OpTxInputAmount)?;
        for i in 1..MAX_INPUTS as i64 {
            b.add_i64(i)?
                .add_op(OpTxInputCount)?
                .add_op(OpLessThan)?
                .add_op(OpIf)?
                .add_i64(i)?
                .add_op(OpTxInputAmount)?
                .add_op(OpAdd)?
                .add_op(OpEndIf)?;
        }
        b.add_op(OpSwap)?
            .add_op(OpFalse)?
            .add_op(OpTxOutputAmount)?
            .add_op(OpAdd)?
            .add_i64(
                i64::try_from(self.max_fee_sompi)
                    .unwrap_or(i64::MAX)
                    .min(1 << 62),
            )?
            .add_op(OpAdd)?
            .add_op(OpLessThanOrEqual)?
            .add_op(OpVerify)?;
        // 6. The old state's committee key signed.
        b.add_op(OpFromAltStack)?.add_op(OpCheckSig)?;
        Ok(b.drain())
    }
}

/// Pushes the bytes of a state prefix (`OpData8` ‖ index ‖ `OpData32` ‖ header ‖ `OpData32` ‖
/// outbox ‖ `OpData32` ‖ key) built from copies of the stack items index, header, outbox and
/// key, which lie at depths `depth` to `depth - 3` counted once the first byte is pushed.
fn cat_state_prefix(b: &mut ScriptBuilder, depth: i64) -> Result<()> {
    b.add_data(&[OpData8])?
        .add_i64(depth)?
        .add_op(OpPick)?
        .add_op(OpCat)?
        .add_data(&[OpData32])?
        .add_op(OpCat)?
        .add_i64(depth - 1)?
        .add_op(OpPick)?
        .add_op(OpCat)?
        .add_data(&[OpData32])?
        .add_op(OpCat)?
        .add_i64(depth - 2)?
        .add_op(OpPick)?
        .add_op(OpCat)?
        .add_data(&[OpData32])?
        .add_op(OpCat)?
        .add_i64(depth - 3)?
        .add_op(OpPick)?
        .add_op(OpCat)?;
    Ok(())
}

/// Turns the redeem script on top of the stack into the bytes of its P2SH script public key.
fn p2sh_bytes(b: &mut ScriptBuilder) -> Result<()> {
    b.add_op(OpBlake2b)?
        .add_data(&P2SH_HEAD)?
        .add_op(OpSwap)?
        .add_op(OpCat)?
        .add_data(&[OpEqual])?
        .add_op(OpCat)?;
    Ok(())
}

/// Where the code starts in the anchor input's signature script, for code of `len` bytes:
/// after the signature and new-state pushes, the redeem script's push opcode (1 to 3 bytes by
/// its length) and the old state prefix.
fn code_start(len: usize) -> usize {
    let redeem = STATE_PREFIX_BYTES + len;
    let push = match redeem {
        0..=75 => 1,
        76..=255 => 2,
        _ => 3,
    };
    SIGNATURE_SCRIPT_HEAD + push + STATE_PREFIX_BYTES
}

/// Checks what the anchor script would refuse, before signing: the payouts fit, the fee is
/// within the cap, the block is newer. Gives the successor's value (sompi).
///
/// # Errors
/// [`SettlementError`] naming the broken rule.
pub fn successor_value(
    rules: &AnchorRules,
    inputs_sompi: &[u64],
    payouts: &[Payout],
    fee_sompi: u64,
    old: &AnchorState,
    new: &AnchorState,
) -> Result<u64> {
    if payouts.len() > MAX_PAYOUTS {
        return Err(SettlementError::TooManyPayouts {
            count: payouts.len(),
            max: MAX_PAYOUTS,
        });
    }
    if inputs_sompi.len() > MAX_INPUTS {
        return Err(SettlementError::TooManyInputs {
            count: inputs_sompi.len(),
            max: MAX_INPUTS,
        });
    }
    if fee_sompi > rules.max_fee_sompi {
        return Err(SettlementError::FeeTooHigh {
            fee_sompi,
            max_sompi: rules.max_fee_sompi,
        });
    }
    if new.block_index <= old.block_index {
        return Err(SettlementError::StaleBlock {
            old: old.block_index,
            new: new.block_index,
        });
    }
    let available = inputs_sompi.iter().fold(0u64, |a, v| a.saturating_add(*v));
    let needed = payouts
        .iter()
        .fold(fee_sompi, |a, p| a.saturating_add(p.amount_sompi));
    available
        .checked_sub(needed)
        .ok_or(SettlementError::InsufficientAnchor {
            available_sompi: available,
            needed_sompi: needed,
        })
}
