//! Bytes, masses and fees of anchor transactions by shape, on simnet parameters:
//! `cargo run -p wisp-settlement --example anchor_mass`.

use kaspa_consensus_core::tx::{ScriptPublicKey, TransactionOutpoint};
use kaspa_hashes::Hash;
use wisp_settlement::anchor::{AnchorRules, AnchorState, Payout};
use wisp_settlement::outbox_commitment;
use wisp_settlement::tx::{self, AnchorUtxo, DepositUtxo, FEE_SOMPI_PER_GRAM};

const KAS: u64 = 100_000_000;

fn main() {
    let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[1; 32])
        .expect("a valid secret key");
    let rules = AnchorRules {
        committee_key: key.x_only_public_key().0.serialize(),
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
