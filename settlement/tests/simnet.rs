//! Kaspa itself enforces the anchor: on a real simnet (kaspad in process, over wRPC), a chain's
//! anchor is created, advanced with a deposit swept in and a withdrawal committed, then
//! advanced again paying that withdrawal; every way of breaking the rules is refused by
//! kaspad's mempool with its own reason.

use kaspa_consensus_core::subnets::SubnetworkId;
use kaspa_consensus_core::tx::{ScriptPublicKey, Transaction, TransactionOutput};
use kaspa_txscript::{extract_script_pub_key_address, pay_to_address_script};
use wisp_l1::{L1Client, Prefix, SimnetConfig, SimnetNode, Wallet};
use wisp_settlement::anchor::{AnchorRules, AnchorState, Payout};
use wisp_settlement::tx::{self, AnchorTx, AnchorUtxo, DepositUtxo};
use wisp_settlement::{deposit, outbox_commitment};

const KAS: u64 = 100_000_000;
/// Generous fixed fees (kaspad's minimum for these sizes is a few hundred thousand sompi).
const FEE: u64 = 2_000_000;

fn keypair(seed: u8) -> secp256k1::Keypair {
    secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap()
}

/// Mines until `spk` holds a UTXO (or fails after 20 blocks); returns its outpoint and value.
async fn wait_for(
    client: &L1Client,
    miner: &Wallet,
    spk: &ScriptPublicKey,
) -> (kaspa_consensus_core::tx::TransactionOutpoint, u64) {
    let address = extract_script_pub_key_address(spk, Prefix::Simnet).unwrap();
    for _ in 0..20 {
        client.mine_block(&miner.address()).await.unwrap();
        let utxos = client.spendable_utxos(&address, 0).await.unwrap();
        if let Some((outpoint, entry)) = utxos.into_iter().next() {
            return (outpoint, entry.amount);
        }
    }
    panic!("nothing arrived at {address}");
}

/// Submits `tx`, expecting kaspad to refuse it; returns its reason.
async fn refused(client: &L1Client, tx: &Transaction, what: &str) -> String {
    match client.submit_transaction(tx).await {
        Ok(_) => panic!("kaspad accepted {what}"),
        Err(e) => {
            let reason = e.to_string();
            assert!(
                reason.contains("script") || reason.contains("covenant"),
                "{what}: {reason}"
            );
            reason
        }
    }
}

/// The x-only public key of `keypair(seed)`.
fn x_only(seed: u8) -> [u8; 32] {
    keypair(seed).x_only_public_key().0.serialize()
}

fn resign(t: &mut AnchorTx, rules: &AnchorRules, new: &AnchorState, old: &AnchorState) {
    resign_with(t, rules, new, old, &keypair(1));
}

/// Signs the anchor input again with `key` (any key: `UnsignedAnchorTx::finish` refuses a
/// signature that is not the committee's, so forged transactions are made here).
fn resign_with(
    t: &mut AnchorTx,
    rules: &AnchorRules,
    new: &AnchorState,
    old: &AnchorState,
    key: &secp256k1::Keypair,
) {
    let mut sig = [0u8; 65];
    sig.copy_from_slice(&tx::sign_input(&t.tx, &t.entries, 0, key));
    t.tx.inputs[0].signature_script = rules.signature_script(&sig, new, old).unwrap();
    t.tx.finalize();
}

/// A simnet with a funded miner, and a chain anchor of 10 KAS created under `rules` for
/// committee key `key` (checked accepted): what both tests start from.
struct Setup {
    _dir: tempfile::TempDir,
    node: SimnetNode,
    client: L1Client,
    params: kaspa_consensus_core::config::params::Params,
    funder: Wallet,
    genesis: AnchorTx,
}

async fn setup(rules: &AnchorRules, key: [u8; 32]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let maturity = 10;
    let node =
        SimnetNode::start(&SimnetConfig::local(dir.path().join("kaspad"), maturity)).unwrap();
    let client = node.connect().await.unwrap();
    let params = wisp_l1::simnet_params(maturity);
    let funder = Wallet::new(keypair(9), Prefix::Simnet);
    for _ in 0..maturity + 5 {
        client.mine_block(&funder.address()).await.unwrap();
    }
    // Genesis: the anchor holds 10 KAS under a fresh covenant id.
    let funding = client
        .spendable_utxos(&funder.address(), maturity)
        .await
        .unwrap();
    let genesis = tx::genesis(
        rules,
        key,
        &funding[..1],
        funder.keypair(),
        10 * KAS,
        pay_to_address_script(&funder.address()),
        FEE,
    )
    .unwrap();
    client.submit_transaction(&genesis.tx).await.unwrap();
    let genesis_spk = genesis.tx.outputs[0].script_public_key.clone();
    let (outpoint, value) = wait_for(&client, &funder, &genesis_spk).await;
    assert_eq!(outpoint, genesis.successor.outpoint);
    assert_eq!(value, 10 * KAS);
    Setup {
        _dir: dir,
        node,
        client,
        params,
        funder,
        genesis,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kaspa_enforces_the_anchor_rules() {
    let rules = AnchorRules {
        max_fee_sompi: KAS / 10,
    };
    let Setup {
        _dir,
        node,
        client,
        params,
        funder,
        genesis: g,
    } = setup(&rules, x_only(1)).await;
    let anchor = g.successor.clone();
    let cov = anchor.covenant_id;

    // A deposit of 3 KAS on the lane to the chain's deposit script.
    let deposit_spk = deposit::script_public_key(&cov).unwrap();
    funder
        .send(
            &client,
            &params,
            SubnetworkId::from_namespace(*b"wisp"),
            b"deposit".to_vec(),
            &[(deposit_spk.clone(), 3 * KAS)],
        )
        .await
        .unwrap();
    let (deposit_outpoint, deposit_value) = wait_for(&client, &funder, &deposit_spk).await;
    assert_eq!(deposit_value, 3 * KAS);
    let deposits = [DepositUtxo {
        outpoint: deposit_outpoint,
        amount_sompi: deposit_value,
        block_daa_score: 0,
    }];

    // The first successor: block 1, sweeps the deposit, commits one withdrawal for later.
    let withdrawal = Payout {
        amount_sompi: 2 * KAS,
        script_public_key: pay_to_address_script(
            &Wallet::new(keypair(7), Prefix::Simnet).address(),
        ),
    };
    let old = anchor.state;
    let new = AnchorState {
        block_index: 1,
        header_hash: [1; 32],
        outbox: outbox_commitment(std::slice::from_ref(&withdrawal)),
        committee_key: x_only(1),
    };
    let honest = tx::successor(&rules, &anchor, &deposits, &[], new, FEE, &keypair(1)).unwrap();

    // Kaspa refuses every way of breaking the rules, even signed by the committee key.
    let mut reasons = Vec::new();
    assert!(matches!(
        tx::successor(&rules, &anchor, &deposits, &[], new, FEE, &keypair(2)),
        Err(wisp_settlement::SettlementError::BadSignature)
    ));
    let mut wrong_key = honest.clone();
    resign_with(&mut wrong_key, &rules, &new, &old, &keypair(2));
    reasons.push(refused(&client, &wrong_key.tx, "a spend signed by another key").await);
    let mut other_script = honest.clone();
    other_script.tx.outputs[0].script_public_key = pay_to_address_script(&funder.address());
    resign(&mut other_script, &rules, &new, &old);
    reasons.push(refused(&client, &other_script.tx, "a successor with another script").await);
    let mut less_value = honest.clone();
    less_value.tx.outputs[0].value -= rules.max_fee_sompi;
    resign(&mut less_value, &rules, &new, &old);
    reasons.push(refused(&client, &less_value.tx, "a successor keeping too little").await);
    let mut not_in_outbox = honest.clone();
    not_in_outbox.tx.outputs[0].value -= KAS;
    not_in_outbox.tx.outputs.push(TransactionOutput::new(
        KAS,
        pay_to_address_script(&funder.address()),
    ));
    resign(&mut not_in_outbox, &rules, &new, &old);
    reasons.push(refused(&client, &not_in_outbox.tx, "a payout not in the outbox").await);
    let mut older = honest.clone();
    let stale = AnchorState {
        block_index: 0,
        ..new
    };
    older.tx.outputs[0].script_public_key = rules.script_public_key(&stale).unwrap();
    resign(&mut older, &rules, &stale, &old);
    reasons.push(refused(&client, &older.tx, "a successor committing an older block").await);
    let thief = {
        let mut t = honest.clone();
        t.tx.inputs.remove(0);
        t.entries.remove(0);
        t.tx.outputs = vec![TransactionOutput::new(
            deposit_value - FEE,
            pay_to_address_script(&funder.address()),
        )];
        t.tx.finalize();
        t
    };
    reasons.push(refused(&client, &thief.tx, "a deposit spent without the anchor").await);
    for r in &reasons {
        println!("refused: {r}");
    }

    // The honest successor is accepted: the anchor now holds 13 KAS less the fee.
    client.submit_transaction(&honest.tx).await.unwrap();
    let spk1 = honest.tx.outputs[0].script_public_key.clone();
    let (outpoint, value) = wait_for(&client, &funder, &spk1).await;
    assert_eq!(outpoint, honest.successor.outpoint);
    assert_eq!(value, 13 * KAS - FEE);

    // The second successor pays the committed withdrawal; kaspad shows it at the address.
    let next = AnchorState {
        block_index: 2,
        header_hash: [2; 32],
        outbox: outbox_commitment(&[]),
        committee_key: x_only(1),
    };
    let pay = tx::successor(
        &rules,
        &honest.successor,
        &[],
        std::slice::from_ref(&withdrawal),
        next,
        FEE,
        &keypair(1),
    )
    .unwrap();
    client.submit_transaction(&pay.tx).await.unwrap();
    let (_, paid) = wait_for(&client, &funder, &withdrawal.script_public_key).await;
    assert_eq!(paid, 2 * KAS);
    let (_, anchored) = wait_for(&client, &funder, &pay.tx.outputs[0].script_public_key).await;
    assert_eq!(anchored, 13 * KAS - FEE - 2 * KAS - FEE);

    // Rotation: a successor signed by the current key names another (key 3). From that
    // anchor on, Kaspa refuses the old key and accepts the new one.
    let rotated = AnchorState {
        block_index: 3,
        header_hash: [3; 32],
        outbox: outbox_commitment(&[]),
        committee_key: x_only(3),
    };
    let rotate =
        tx::successor(&rules, &pay.successor, &[], &[], rotated, FEE, &keypair(1)).unwrap();
    client.submit_transaction(&rotate.tx).await.unwrap();
    wait_for(&client, &funder, &rotate.tx.outputs[0].script_public_key).await;
    let after = AnchorState {
        block_index: 4,
        header_hash: [4; 32],
        outbox: outbox_commitment(&[]),
        committee_key: x_only(3),
    };
    assert!(matches!(
        tx::successor(&rules, &rotate.successor, &[], &[], after, FEE, &keypair(1)),
        Err(wisp_settlement::SettlementError::BadSignature)
    ));
    let mut by_old_key =
        tx::successor(&rules, &rotate.successor, &[], &[], after, FEE, &keypair(3)).unwrap();
    resign_with(&mut by_old_key, &rules, &after, &rotated, &keypair(1));
    println!(
        "refused: {}",
        refused(&client, &by_old_key.tx, "a spend by the key rotated away").await
    );
    let by_new_key =
        tx::successor(&rules, &rotate.successor, &[], &[], after, FEE, &keypair(3)).unwrap();
    client.submit_transaction(&by_new_key.tx).await.unwrap();
    let (outpoint, _) = wait_for(
        &client,
        &funder,
        &by_new_key.tx.outputs[0].script_public_key,
    )
    .await;
    assert_eq!(outpoint, by_new_key.successor.outpoint);

    client.disconnect().await;
    tokio::task::spawn_blocking(move || node.shutdown())
        .await
        .unwrap();
}

/// A committee of four made by FROST key generation moves the anchor on a real kaspad: any
/// three sign each successor, Kaspa verifies the result as the one BIP340 signature its
/// script checks, and the transaction is the size of a one-key chain's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frost_committee_moves_the_anchor() {
    use rand_chacha::rand_core::SeedableRng;
    use std::collections::BTreeMap;
    use wisp_settlement::committee::{self, CommitteeSize, MemberId, MemorySigningLog};

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let members = committee::dkg_in_process(CommitteeSize::bft(4).unwrap(), &mut rng).unwrap();
    let rules = AnchorRules {
        max_fee_sompi: KAS / 10,
    };
    let Setup {
        _dir,
        node,
        client,
        params,
        funder,
        genesis: g,
    } = setup(&rules, members[0].group_key()).await;

    let mut logs: BTreeMap<MemberId, MemorySigningLog> = BTreeMap::new();
    let mut anchor = g.successor;
    for (block, signers) in [(1u64, [1u16, 2, 4]), (2, [2, 3, 4])] {
        let new = AnchorState {
            block_index: block,
            header_hash: [block as u8; 32],
            outbox: outbox_commitment(&[]),
            committee_key: members[0].group_key(),
        };
        let unsigned = tx::successor_unsigned(&rules, &anchor, &[], &[], new, FEE).unwrap();
        // Round 1: each signer commits; round 2: each signs what it computed itself.
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for id in signers {
            let (n, c) = members[usize::from(id) - 1].commit(&mut rng).unwrap();
            nonces.insert(id, n);
            commitments.insert(id, c);
        }
        let mut shares = BTreeMap::new();
        for (id, n) in nonces {
            let log = logs.entry(id).or_default();
            let share = members[usize::from(id) - 1]
                .sign_anchor(&unsigned, &commitments, n, log)
                .unwrap();
            shares.insert(id, share);
        }
        let signature =
            committee::aggregate(&members[0].public(), &unsigned, &commitments, &shares).unwrap();
        let expected_mass = unsigned.mass(&params, &rules).unwrap();
        let signed = unsigned.finish(&rules, &signature).unwrap();
        assert_eq!(
            tx::mass(&params, &signed),
            expected_mass,
            "the mass is known before signing"
        );

        // The same successor of an anchor held by one key has the same size and mass.
        let single = AnchorUtxo {
            state: AnchorState {
                committee_key: x_only(1),
                ..anchor.state
            },
            ..anchor.clone()
        };
        let single_new = AnchorState {
            committee_key: x_only(1),
            ..new
        };
        let one_key =
            tx::successor(&rules, &single, &[], &[], single_new, FEE, &keypair(1)).unwrap();
        let (m_committee, m_one) = (tx::mass(&params, &signed), tx::mass(&params, &one_key));
        assert_eq!(m_committee, m_one, "block {block}");
        println!("anchor successor signed by members {signers:?}: {m_committee:?}");

        client.submit_transaction(&signed.tx).await.unwrap();
        let (outpoint, value) =
            wait_for(&client, &funder, &signed.tx.outputs[0].script_public_key).await;
        assert_eq!(outpoint, signed.successor.outpoint);
        assert_eq!(value, 10 * KAS - block * FEE);
        anchor = signed.successor;
    }

    client.disconnect().await;
    tokio::task::spawn_blocking(move || node.shutdown())
        .await
        .unwrap();
}
