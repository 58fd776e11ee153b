//! The anchor and deposit scripts run by Kaspa's own script engine (kaspa-txscript, with the
//! covenant context and the per-input script-unit limits that consensus uses): every rule of
//! `docs/anchor.md` accepts the honest transaction and refuses each way of breaking it.

use kaspa_consensus_core::hashing::sighash::SigHashReusedValuesUnsync;
use kaspa_consensus_core::tx::{
    CovenantBinding, PopulatedTransaction, ScriptPublicKey, Transaction, TransactionOutpoint,
    TransactionOutput, UtxoEntry, VerifiableTransaction,
};
use kaspa_hashes::Hash;
use kaspa_txscript::caches::Cache;
use kaspa_txscript::covenants::CovenantsContext;
use kaspa_txscript::{EngineCtx, EngineFlags, TxScriptEngine};
use wisp_settlement::anchor::{AnchorRules, AnchorState, Payout, MAX_PAYOUTS};
use wisp_settlement::tx::{self, AnchorTx, AnchorUtxo, DepositUtxo};
use wisp_settlement::{deposit, outbox_commitment};

const KAS: u64 = 100_000_000;

fn key(seed: u8) -> secp256k1::Keypair {
    secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap()
}

fn rules() -> AnchorRules {
    AnchorRules {
        max_fee_sompi: KAS / 10,
    }
}

/// Runs every input's script as consensus does; the first failure, or Ok.
fn verify(tx: &Transaction, entries: &[UtxoEntry]) -> Result<(), String> {
    let populated = PopulatedTransaction::new(tx, entries.to_vec());
    let covenants = CovenantsContext::from_tx(&populated).map_err(|e| format!("{e}"))?;
    let cache = Cache::new(100);
    let reused = SigHashReusedValuesUnsync::new();
    let ctx = EngineCtx::new(&cache)
        .with_reused(&reused)
        .with_covenants_ctx(&covenants);
    for (i, (input, entry)) in populated.populated_inputs().enumerate() {
        let mut vm = TxScriptEngine::from_transaction_input_with_script_units_limit(
            &populated,
            input,
            i,
            entry,
            ctx,
            EngineFlags::default(),
            input.compute_commit.allowed_script_units(),
        );
        vm.execute().map_err(|e| format!("input {i}: {e}"))?;
    }
    Ok(())
}

fn p2pk(seed: u8) -> ScriptPublicKey {
    let mut script = vec![0x20];
    script.extend(key(seed).x_only_public_key().0.serialize());
    script.push(0xac);
    ScriptPublicKey::new(0, script.into())
}

fn state(index: u64, outbox: &[Payout]) -> AnchorState {
    AnchorState {
        block_index: index,
        header_hash: [index as u8; 32],
        outbox: outbox_commitment(outbox),
        committee_key: key(1).x_only_public_key().0.serialize(),
    }
}

fn anchor(amount: u64, state: AnchorState) -> AnchorUtxo {
    AnchorUtxo {
        outpoint: TransactionOutpoint::new(Hash::from_u64_word(7), 0),
        amount_sompi: amount,
        state,
        covenant_id: Hash::from_u64_word(99),
        block_daa_score: 1,
    }
}

fn deposits(n: u64) -> Vec<DepositUtxo> {
    (0..n)
        .map(|i| DepositUtxo {
            outpoint: TransactionOutpoint::new(Hash::from_u64_word(100 + i), 1),
            amount_sompi: (i + 1) * KAS,
            block_daa_score: 2,
        })
        .collect()
}

fn payouts(n: u64) -> Vec<Payout> {
    (0..n)
        .map(|i| Payout {
            amount_sompi: KAS + i,
            script_public_key: p2pk(50 + i as u8),
        })
        .collect()
}

/// Re-signs input 0 after `edit` changed the transaction (as a key holder would), keeping
/// the signature script's other pushes.
fn resign(t: &mut AnchorTx, new: &AnchorState, old: &AnchorState, signer: &secp256k1::Keypair) {
    let mut sig = [0u8; 65];
    sig.copy_from_slice(&tx::sign_input(&t.tx, &t.entries, 0, signer));
    t.tx.inputs[0].signature_script = rules().signature_script(&sig, new, old).unwrap();
    t.tx.finalize();
}

#[test]
fn an_honest_successor_with_deposits_and_payouts_is_accepted() {
    let owed = payouts(3);
    let old = state(5, &owed);
    let a = anchor(100 * KAS, old);
    let new = state(9, &payouts(1));
    let t = tx::successor(&rules(), &a, &deposits(3), &owed, new, 10_000, &key(1)).unwrap();
    verify(&t.tx, &t.entries).unwrap();
    // 100 + 1 + 2 + 3 KAS in; three payouts and the fee out; the rest stays in the anchor.
    let paid: u64 = owed.iter().map(|p| p.amount_sompi).sum();
    assert_eq!(t.tx.outputs[0].value, 106 * KAS - paid - 10_000);
    assert_eq!(t.successor.state, new);
    // The successor can itself be spent by the next honest successor.
    let next = state(10, &[]);
    let mut succ = t.successor.clone();
    succ.outpoint = TransactionOutpoint::new(t.tx.id(), 0);
    let t2 = tx::successor(&rules(), &succ, &[], &payouts(1), next, 0, &key(1)).unwrap();
    verify(&t2.tx, &t2.entries).unwrap();
}

#[test]
fn the_most_payouts_and_inputs_fit_the_script_budget() {
    let owed = payouts(MAX_PAYOUTS as u64);
    let old = state(1, &owed);
    let t = tx::successor(
        &rules(),
        &anchor(1_000 * KAS, old),
        &deposits(7),
        &owed,
        state(2, &[]),
        KAS / 10,
        &key(1),
    )
    .unwrap();
    verify(&t.tx, &t.entries).unwrap();
    assert!(matches!(
        tx::successor(
            &rules(),
            &anchor(1_000 * KAS, state(1, &payouts(9))),
            &[],
            &payouts(9),
            state(2, &[]),
            0,
            &key(1)
        ),
        Err(wisp_settlement::SettlementError::TooManyPayouts { .. })
    ));
}

#[test]
fn a_successor_may_name_a_new_key_and_from_then_on_only_that_key_moves_the_anchor() {
    let old = state(1, &[]);
    let rotated = AnchorState {
        committee_key: key(3).x_only_public_key().0.serialize(),
        ..state(2, &[])
    };
    // The current key (1) signs a successor that names key 3.
    let t = tx::successor(
        &rules(),
        &anchor(10 * KAS, old),
        &[],
        &[],
        rotated,
        0,
        &key(1),
    )
    .unwrap();
    verify(&t.tx, &t.entries).unwrap();
    let next = AnchorState {
        block_index: 3,
        ..rotated
    };
    // The old key no longer moves it, even forged around the builder's check...
    assert!(matches!(
        tx::successor(&rules(), &t.successor, &[], &[], next, 0, &key(1)),
        Err(wisp_settlement::SettlementError::BadSignature)
    ));
    let mut by_old = tx::successor(&rules(), &t.successor, &[], &[], next, 0, &key(3)).unwrap();
    resign(&mut by_old, &next, &rotated, &key(1));
    assert!(verify(&by_old.tx, &by_old.entries).is_err());
    // ...and the new key does.
    let by_new = tx::successor(&rules(), &t.successor, &[], &[], next, 0, &key(3)).unwrap();
    verify(&by_new.tx, &by_new.entries).unwrap();
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let old = state(1, &[]);
    let new = state(2, &[]);
    // Building it refuses another key's signature before Kaspa sees it...
    assert!(matches!(
        tx::successor(&rules(), &anchor(10 * KAS, old), &[], &[], new, 0, &key(2)),
        Err(wisp_settlement::SettlementError::BadSignature)
    ));
    // ...and Kaspa's script refuses it when forged around that check.
    let mut t = tx::successor(&rules(), &anchor(10 * KAS, old), &[], &[], new, 0, &key(1)).unwrap();
    resign(&mut t, &new, &old, &key(2));
    let err = verify(&t.tx, &t.entries).unwrap_err();
    assert!(err.contains("input 0"), "{err}");
}

#[test]
fn a_successor_with_another_script_is_refused() {
    let old = state(1, &[]);
    let new = state(2, &[]);
    let a = anchor(10 * KAS, old);
    // The key holder pays the covenant output to a plain key of theirs (covenant id kept).
    let mut t = tx::successor(&rules(), &a, &[], &[], new, 0, &key(1)).unwrap();
    t.tx.outputs[0].script_public_key = p2pk(1);
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
    // ... or to an anchor of other rules (a higher fee cap).
    let mut t = tx::successor(&rules(), &a, &[], &[], new, 0, &key(1)).unwrap();
    let greedy = AnchorRules {
        max_fee_sompi: 10 * KAS,
    };
    t.tx.outputs[0].script_public_key = greedy.script_public_key(&new).unwrap();
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
}

#[test]
fn a_successor_keeping_less_value_than_the_rules_require_is_refused() {
    let old = state(1, &[]);
    let new = state(2, &[]);
    let a = anchor(10 * KAS, old);
    let mut t = tx::successor(&rules(), &a, &deposits(1), &[], new, 0, &key(1)).unwrap();
    // A fee one sompi above the cap.
    t.tx.outputs[0].value -= rules().max_fee_sompi + 1;
    resign(&mut t, &new, &old, &key(1));
    let err = verify(&t.tx, &t.entries).unwrap_err();
    assert!(err.contains("input 0"), "{err}");
    // At the cap it passes.
    let mut t = tx::successor(&rules(), &a, &deposits(1), &[], new, 0, &key(1)).unwrap();
    t.tx.outputs[0].value -= rules().max_fee_sompi;
    resign(&mut t, &new, &old, &key(1));
    verify(&t.tx, &t.entries).unwrap();
}

#[test]
fn a_payout_not_in_the_outbox_is_refused() {
    let owed = payouts(2);
    let old = state(1, &owed);
    let new = state(2, &[]);
    let a = anchor(10 * KAS, old);
    // An extra output to the key holder, value taken from the successor.
    let mut t = tx::successor(&rules(), &a, &[], &owed, new, 0, &key(1)).unwrap();
    t.tx.outputs[0].value -= KAS;
    t.tx.outputs.push(TransactionOutput::new(KAS, p2pk(1)));
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
    // A committed payout redirected.
    let mut t = tx::successor(&rules(), &a, &[], &owed, new, 0, &key(1)).unwrap();
    t.tx.outputs[2].script_public_key = p2pk(1);
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
    // A committed payout left out (its value kept in the anchor).
    let t = tx::successor(&rules(), &a, &[], &owed[..1], new, 0, &key(1)).unwrap();
    assert!(verify(&t.tx, &t.entries).is_err());
}

#[test]
fn a_successor_committing_an_older_or_the_same_block_is_refused() {
    let old = state(5, &[]);
    let a = anchor(10 * KAS, old);
    for stale in [5, 4, 0] {
        // Built past the library's own check, as an attacker would.
        let mut t = tx::successor(&rules(), &a, &[], &[], state(6, &[]), 0, &key(1)).unwrap();
        let new = state(stale, &[]);
        t.tx.outputs[0].script_public_key = rules().script_public_key(&new).unwrap();
        resign(&mut t, &new, &old, &key(1));
        assert!(verify(&t.tx, &t.entries).is_err(), "block {stale}");
    }
    // A block index with the sign bit set is a negative script number: refused too.
    let mut t = tx::successor(&rules(), &a, &[], &[], state(6, &[]), 0, &key(1)).unwrap();
    let new = AnchorState {
        block_index: 1 << 63 | 6,
        ..state(6, &[])
    };
    t.tx.outputs[0].script_public_key = rules().script_public_key(&new).unwrap();
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
}

#[test]
fn a_successor_that_leaves_the_covenant_is_refused() {
    let old = state(1, &[]);
    let new = state(2, &[]);
    let a = anchor(10 * KAS, old);
    // No covenant binding on the successor.
    let mut t = tx::successor(&rules(), &a, &[], &[], new, 0, &key(1)).unwrap();
    t.tx.outputs[0].covenant = None;
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
    // Two outputs of the covenant (a fork of the chain's identity).
    let mut t = tx::successor(&rules(), &a, &[], &[], new, 0, &key(1)).unwrap();
    t.tx.outputs[0].value -= KAS;
    t.tx.outputs.push(TransactionOutput::with_covenant(
        KAS,
        t.tx.outputs[0].script_public_key.clone(),
        Some(CovenantBinding::new(0, a.covenant_id)),
    ));
    resign(&mut t, &new, &old, &key(1));
    assert!(verify(&t.tx, &t.entries).is_err());
}

#[test]
fn a_deposit_moves_only_with_the_anchor() {
    let cov = Hash::from_u64_word(99);
    let spk = deposit::script_public_key(&cov).unwrap();
    // Spent alone by anyone into their own output: refused.
    let thief = Transaction::new(
        kaspa_consensus_core::constants::TX_VERSION_TOCCATA,
        vec![
            kaspa_consensus_core::tx::TransactionInput::new_with_compute_budget(
                TransactionOutpoint::new(Hash::from_u64_word(5), 0),
                deposit::signature_script(&cov).unwrap(),
                0,
                1,
            ),
        ],
        vec![TransactionOutput::new(KAS, p2pk(3))],
        0,
        kaspa_consensus_core::subnets::SUBNETWORK_ID_NATIVE,
        0,
        vec![],
    );
    let entry = UtxoEntry::new(KAS, spk.clone(), 1, false, None);
    assert!(verify(&thief, &[entry]).is_err());
    // Alongside a UTXO of another covenant at input 0: refused.
    let old = state(1, &[]);
    let mut other = anchor(10 * KAS, old);
    other.covenant_id = Hash::from_u64_word(98);
    let t = tx::successor(&rules(), &other, &[], &[], state(2, &[]), 0, &key(1)).unwrap();
    let mut entries = t.entries.clone();
    let mut stolen = t.tx.clone();
    stolen.inputs.push(
        kaspa_consensus_core::tx::TransactionInput::new_with_compute_budget(
            TransactionOutpoint::new(Hash::from_u64_word(5), 0),
            deposit::signature_script(&cov).unwrap(),
            0,
            1,
        ),
    );
    stolen.finalize();
    entries.push(UtxoEntry::new(KAS, spk, 1, false, None));
    let err = verify(&stolen, &entries).unwrap_err();
    assert!(err.starts_with("input"), "{err}");
}

#[test]
fn the_signature_script_cannot_be_rearranged() {
    let old = state(1, &[]);
    let new = state(2, &[]);
    let a = anchor(10 * KAS, old);
    let t = tx::successor(&rules(), &a, &[], &[], new, 0, &key(1)).unwrap();
    // A new header hash of 31 bytes (shifting every offset the code reads itself at).
    let script = &t.tx.inputs[0].signature_script;
    let mut b = kaspa_txscript::script_builder::ScriptBuilder::new();
    b.add_data(&script[1..66])
        .unwrap()
        .add_data(&new.block_index.to_le_bytes())
        .unwrap()
        .add_data(&new.header_hash[..31])
        .unwrap()
        .add_data(&new.outbox)
        .unwrap()
        .add_data(&rules().redeem_script(&old).unwrap())
        .unwrap();
    let mut bad = t.clone();
    bad.tx.inputs[0].signature_script = b.drain();
    assert!(verify(&bad.tx, &bad.entries).is_err());
    verify(&t.tx, &t.entries).unwrap();
}

#[test]
fn genesis_creates_an_anchor_under_a_fresh_covenant_id() {
    let funder = key(9);
    let funding = vec![(
        TransactionOutpoint::new(Hash::from_u64_word(1), 0),
        UtxoEntry::new(50 * KAS, p2pk(9), 1, false, None),
    )];
    let committee = key(1).x_only_public_key().0.serialize();
    let g = tx::genesis(
        &rules(),
        committee,
        &funding,
        &funder,
        10 * KAS,
        p2pk(9),
        5_000,
    )
    .unwrap();
    verify(&g.tx, &g.entries).unwrap();
    assert_eq!(g.tx.outputs[0].value, 10 * KAS);
    assert_eq!(g.tx.outputs[1].value, 40 * KAS - 5_000);
    assert_eq!(
        g.tx.outputs[0].covenant.map(|c| c.covenant_id),
        Some(g.successor.covenant_id)
    );
    assert_eq!(g.successor.state, AnchorState::genesis(committee));
    // Its first successor is valid.
    let t = tx::successor(&rules(), &g.successor, &[], &[], state(1, &[]), 0, &key(1)).unwrap();
    verify(&t.tx, &t.entries).unwrap();
}
