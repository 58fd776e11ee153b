//! The deposit script: coins paid to a chain's deposit address can only be spent by a
//! transaction whose input 0 is the chain's anchor (it carries the chain's covenant id, which
//! Kaspa's covenant lineage gives to the anchor alone). The anchor script then requires every
//! input's value, less the withdrawals and a bounded fee, to flow into its successor: not even
//! the committee can move a deposit anywhere but into the anchor.
//!
//! Redeem script (37 bytes): `OpFalse OpInputCovenantId OpData32 <covenant id> OpEqual`.

use crate::Result;
use kaspa_consensus_core::tx::ScriptPublicKey;
use kaspa_hashes::Hash;
use kaspa_txscript::opcodes::codes::{OpEqual, OpFalse, OpInputCovenantId};
use kaspa_txscript::pay_to_script_hash_script;
use kaspa_txscript::script_builder::ScriptBuilder;

/// The deposit redeem script of the chain whose anchor carries `covenant_id`.
///
/// # Errors
/// [`crate::SettlementError::Script`] only if Kaspa's builder refuses it (it does not).
pub fn redeem_script(covenant_id: &Hash) -> Result<Vec<u8>> {
    let mut b = ScriptBuilder::new();
    b.add_op(OpFalse)?
        .add_op(OpInputCovenantId)?
        .add_data(&covenant_id.as_bytes())?
        .add_op(OpEqual)?;
    Ok(b.drain())
}

/// The deposit script public key (P2SH of [`redeem_script`]): what a depositor pays.
///
/// # Errors
/// As [`redeem_script`].
pub fn script_public_key(covenant_id: &Hash) -> Result<ScriptPublicKey> {
    Ok(pay_to_script_hash_script(&redeem_script(covenant_id)?))
}

/// The signature script of a deposit input: the redeem script alone (no signature: the
/// anchor's presence is the authorization).
///
/// # Errors
/// As [`redeem_script`].
pub fn signature_script(covenant_id: &Hash) -> Result<Vec<u8>> {
    let mut b = ScriptBuilder::new();
    b.add_data(&redeem_script(covenant_id)?)?;
    Ok(b.drain())
}

/// The deposit address (P2SH) on the network with address `prefix`: what users pay to move
/// KAS into the chain.
///
/// # Errors
/// As [`redeem_script`]; [`crate::SettlementError::Address`] if Kaspa cannot make the address
/// (it always can of a P2SH).
pub fn address(
    covenant_id: &Hash,
    prefix: kaspa_addresses::Prefix,
) -> Result<kaspa_addresses::Address> {
    p2sh_address(&script_public_key(covenant_id)?, prefix)
}

/// The address of a P2SH script public key, by Kaspa's own extractor.
pub(crate) fn p2sh_address(
    spk: &ScriptPublicKey,
    prefix: kaspa_addresses::Prefix,
) -> Result<kaspa_addresses::Address> {
    kaspa_txscript::extract_script_pub_key_address(spk, prefix)
        .map_err(|e| crate::SettlementError::Address(e.to_string()))
}
