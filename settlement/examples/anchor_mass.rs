//! Bytes, masses and fees of anchor transactions by shape, on simnet parameters:
//! `cargo run -p wisp-settlement --example anchor_mass`.

use kaspa_consensus_core::tx::{ScriptPublicKey, TransactionOutpoint};
use kaspa_hashes::Hash;
use wisp_settlement::anchor::{AnchorRules, AnchorState, Payout};
use wisp_settlement::outbox_commitment;
use wisp_settlement::tx::{self, AnchorUtxo, DepositUtxo, FEE_SOMPI_PER_GRAM};

const KAS: u64 = 100_000_000;

fn main() {
    lane_transaction(&simnet_params());
    let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[1; 32])
        .expect("a valid secret key");
    let rules = AnchorRules {
        max_fee_sompi: KAS / 10,
    };
    let params = simnet_params();
    println!("| deposits swept | withdrawals paid | bytes | compute | transient | storage | fee (sompi) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (deposits, payouts) in [(0, 0), (1, 0), (0, 1), (7, 8)] {
        let owed: Vec<Payout> = (0..payouts)
            .map(|i| Payout {
                amount_sompi: 2 * KAS,
                script_public_key: p2pk(10 + i as u8),
            })
            .collect();
        let anchor = AnchorUtxo {
            outpoint: TransactionOutpoint::new(Hash::from_u64_word(1), 0),
            amount_sompi: 1_000 * KAS,
            state: AnchorState {
                block_index: 1,
                header_hash: [1; 32],
                outbox: outbox_commitment(&owed),
                committee_key: key.x_only_public_key().0.serialize(),
            },
            covenant_id: Hash::from_u64_word(2),
            block_daa_score: 0,
        };
        let swept: Vec<DepositUtxo> = (0..deposits)
            .map(|i| DepositUtxo {
                outpoint: TransactionOutpoint::new(Hash::from_u64_word(10 + i), 0),
                amount_sompi: 5 * KAS,
                block_daa_score: 0,
            })
            .collect();
        let new = AnchorState {
            block_index: 2,
            header_hash: [2; 32],
            outbox: outbox_commitment(&[]),
            committee_key: key.x_only_public_key().0.serialize(),
        };
        let t = tx::successor(&rules, &anchor, &swept, &owed, new, 0, &key)
            .expect("a valid anchor transaction");
        let m = tx::mass(&params, &t);
        let bytes = serialized_size(&t.tx);
        println!(
            "| {deposits} | {payouts} | {bytes} | {} | {} | {} | {} |",
            m.compute,
            m.transient,
            m.storage,
            m.fee_mass() * FEE_SOMPI_PER_GRAM
        );
    }
}

/// A one-request on-ledger transaction as the wallet builds it: version 1 on the Wisp lane, one
/// P2PK input, a 1 KAS deposit to the chain's deposit script and change; the payload carries
/// one `accounts.transfer` request.
fn lane_transaction(params: &kaspa_consensus_core::config::params::Params) {
    use kaspa_consensus_core::sign::sign;
    use kaspa_consensus_core::tx::{
        SignableTransaction, Transaction, TransactionInput, TransactionOutput, UtxoEntry,
    };
    let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[3; 32])
        .expect("a valid secret key");
    let body = wisp_core::RequestBody {
        chain: wisp_core::ChainId([5; 32]),
        call: wisp_core::Call {
            target: wisp_core::Hname::of("accounts"),
            entry_point: wisp_core::Hname::of("transfer"),
            args: borsh::to_vec(&(wisp_core::AgentId::Address([6; 32]), 1u64))
                .expect("borsh of a tuple"),
            transfer_sompi: 0,
        },
        gas_budget: 100_000,
        access_list: None,
        time_lock: None,
    };
    let payload = wisp_core::LanePayload {
        requests: vec![body],
        beneficiary: None,
    }
    .encode();
    let deposit = wisp_settlement::deposit::script_public_key(&Hash::from_u64_word(2))
        .expect("the deposit script");
    let tx = Transaction::new(
        kaspa_consensus_core::constants::TX_VERSION_TOCCATA,
        vec![TransactionInput::new_with_compute_budget(
            TransactionOutpoint::new(Hash::from_u64_word(9), 0),
            vec![],
            0,
            10,
        )],
        vec![
            TransactionOutput::new(KAS, deposit),
            TransactionOutput::new(8 * KAS, p2pk(3)),
        ],
        0,
        kaspa_consensus_core::subnets::SubnetworkId::from_namespace(*b"wisp"),
        0,
        payload.clone(),
    );
    let entries = vec![UtxoEntry::new(10 * KAS, p2pk(3), 0, false, None)];
    let signed = sign(SignableTransaction::with_entries(tx, entries), key);
    let calculator = kaspa_consensus_core::mass::MassCalculator::new_with_consensus_params(params);
    let masses = calculator.calc_non_contextual_masses(&signed.tx);
    let storage = calculator
        .calc_contextual_masses(&signed.as_verifiable())
        .map(|m| m.storage_mass)
        .unwrap_or(0);
    let transient = masses.normalized_transient(&params.block_mass_cofactors());
    println!(
        "one-request on-ledger transaction: payload {} bytes, {} bytes, compute {}, transient {}, storage {}, fee {} sompi",
        payload.len(),
        serialized_size(&signed.tx),
        masses.compute_mass,
        transient,
        storage,
        masses.compute_mass.max(transient).max(storage) * FEE_SOMPI_PER_GRAM
    );
}

fn p2pk(seed: u8) -> ScriptPublicKey {
    let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32])
        .expect("a valid secret key");
    let mut script = vec![0x20];
    script.extend(key.x_only_public_key().0.serialize());
    script.push(0xac);
    ScriptPublicKey::new(0, script.into())
}

fn simnet_params() -> kaspa_consensus_core::config::params::Params {
    kaspa_consensus_core::config::params::Params::from(
        kaspa_consensus_core::network::NetworkId::new(
            kaspa_consensus_core::network::NetworkType::Simnet,
        ),
    )
}

/// Serialized size as Kaspa counts it for mass (`transaction_estimated_serialized_size`).
fn serialized_size(tx: &kaspa_consensus_core::tx::Transaction) -> u64 {
    kaspa_consensus_core::mass::transaction_estimated_serialized_size(tx)
}
