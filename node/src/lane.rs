//! Reading Kaspa for the chain: which chain blocks are confirmed enough to follow, and which
//! requests and deposits an accepted transaction carries.

use wisp_chain::{OnLedgerBody, OnLedgerRequest};
use wisp_core::{AgentId, Hash32, LanePayload};
use wisp_l1::{LaneScript, LaneTx};

/// Most L1 chain blocks one block-production pass reads (catching up after downtime takes
/// several passes instead of one unbounded one).
pub const MAX_L1_BLOCKS_PER_PASS: u64 = 1_000;

/// The chain blocks of `seen` (oldest first, ending at the L1 tip) that have at least `depth`
/// chain blocks after them: only those are followed (the chain's `l1_confirmations`).
pub fn confirmed(seen: &[wisp_l1::ChainBlock], depth: u64) -> &[wisp_l1::ChainBlock] {
    let keep = usize::try_from(depth).unwrap_or(usize::MAX);
    &seen[..seen.len().saturating_sub(keep)]
}

/// The requests an accepted transaction carries for this chain, with the sompi it pays to
/// the chain's `deposit` script as the deposit; nothing it pays is ever dropped:
/// - The sender is the owner of the first input, only if that is a version-0 pay-to-public-key
///   script (a higher version is anyone-can-spend on Kaspa, so its "owner" proves nothing).
/// - The deposit goes to the payload's beneficiary if it names one, else to the sender; with
///   neither, it is recorded as refundable under the L1 transaction id.
/// - Calls run only with a sender; a plain payment off the lane is a deposit of its sender.
pub fn lane_requests(tx: &LaneTx, deposit: &LaneScript) -> Vec<OnLedgerRequest> {
    let deposit = tx.paid_to(deposit);
    let sender = tx.sender_key().map(AgentId::Address);
    let l1_tx_id = Hash32(tx.tx_id);
    let payload = if tx.on_lane {
        LanePayload::decode(&tx.payload)
    } else {
        None
    };
    let entry =
        |index: u32, sender: AgentId, deposit_sompi: u64, body: OnLedgerBody| OnLedgerRequest {
            l1_tx_id,
            index,
            sender,
            deposit_sompi,
            body,
        };
    // The entry that carries a deposit nobody sent with a request (index u32::MAX: never a
    // payload position).
    let deposit_entry = |beneficiary: Option<AgentId>| -> Option<OnLedgerRequest> {
        (deposit > 0).then(|| match beneficiary {
            Some(b) => entry(
                u32::MAX,
                sender.unwrap_or(b),
                deposit,
                OnLedgerBody::DepositFor(b),
            ),
            None => entry(
                u32::MAX,
                sender.unwrap_or(AgentId::Address([0; 32])),
                deposit,
                OnLedgerBody::Refundable,
            ),
        })
    };
    let Some(sender) = sender else {
        if deposit > 0 {
            tracing::warn!(tx = %l1_tx_id, deposit, "a deposit from a transaction whose first input is not a version-0 pay-to-public-key script");
        }
        let beneficiary = payload.as_ref().and_then(|p| p.beneficiary);
        return deposit_entry(beneficiary).into_iter().collect();
    };
    if !tx.on_lane {
        return deposit_entry(Some(sender)).into_iter().collect();
    }
    match payload {
        Some(p) if p.beneficiary.is_some_and(|b| b != sender) => {
            // The deposit to the beneficiary first, then the sender's calls (without it).
            let mut out: Vec<OnLedgerRequest> = deposit_entry(p.beneficiary).into_iter().collect();
            out.extend(
                p.requests
                    .into_iter()
                    .enumerate()
                    .map(|(i, body)| entry(i as u32, sender, 0, OnLedgerBody::Call(body))),
            );
            out
        }
        Some(p) if p.requests.is_empty() => {
            vec![entry(0, sender, deposit, OnLedgerBody::DepositOnly)]
        }
        Some(p) => p
            .requests
            .into_iter()
            .enumerate()
            .map(|(i, body)| entry(i as u32, sender, deposit, OnLedgerBody::Call(body)))
            .collect(),
        None => vec![entry(
            0,
            sender,
            deposit,
            OnLedgerBody::Malformed(
                "the lane payload does not decode (expected WSP\\x01 + borsh LanePayload)".into(),
            ),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_l1::{LaneOutput, LaneScript};

    fn p2pk(version: u16, key: [u8; 32]) -> LaneScript {
        let mut script = vec![0x20];
        script.extend(key);
        script.push(0xac);
        LaneScript { version, script }
    }

    /// Guards defect 14 of the hardening review: deposits from a transaction whose first input
    /// is not a P2PK script, and plain payments to the deposit address, were dropped silently.
    /// They go to the payload's beneficiary, the payer, or are recorded as refundable.
    #[test]
    fn no_deposit_is_dropped() {
        let (alice, bob, chain_key) = ([1u8; 32], [2u8; 32], [9u8; 32]);
        let p2pk = |version: u16, key: [u8; 32]| {
            let mut script = vec![0x20];
            script.extend(key);
            script.push(0xac);
            LaneScript { version, script }
        };
        let multisig = LaneScript {
            version: 0,
            script: vec![0x51, 0xae],
        };
        let body = wisp_core::RequestBody {
            chain: wisp_core::ChainId([4; 32]),
            call: wisp_core::Call {
                target: wisp_core::Hname(1),
                entry_point: wisp_core::Hname(2),
                args: vec![],
                transfer_sompi: 0,
            },
            gas_budget: 100_000,
            access_list: None,
            time_lock: None,
        };
        let tx = |on_lane: bool, sender: LaneScript, beneficiary: Option<[u8; 32]>| LaneTx {
            tx_id: [3; 32],
            on_lane,
            sender_script: Some(sender),
            payload: LanePayload {
                requests: vec![body.clone()],
                beneficiary: beneficiary.map(AgentId::Address),
            }
            .encode(),
            outputs: vec![LaneOutput {
                index: 0,
                amount_sompi: 700,
                script: p2pk(0, chain_key),
            }],
        };
        // A sender that names bob: bob gets the deposit, alice's call runs without it.
        let r = lane_requests(&tx(true, p2pk(0, alice), Some(bob)), &p2pk(0, chain_key));
        assert_eq!(r[0].body, OnLedgerBody::DepositFor(AgentId::Address(bob)));
        assert_eq!(r[0].deposit_sompi, 700);
        assert_eq!(r[1].sender, AgentId::Address(alice));
        assert_eq!(r[1].deposit_sompi, 0);
        assert!(matches!(r[1].body, OnLedgerBody::Call(_)));
        assert_ne!(r[0].id(), r[1].id());
        // No sender identity (a multisig input): only the deposit, to the beneficiary...
        let r = lane_requests(&tx(true, multisig.clone(), Some(bob)), &p2pk(0, chain_key));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].body, OnLedgerBody::DepositFor(AgentId::Address(bob)));
        // ...or, with none named, recorded as refundable.
        let r = lane_requests(&tx(true, multisig.clone(), None), &p2pk(0, chain_key));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].body, OnLedgerBody::Refundable);
        assert_eq!(r[0].deposit_sompi, 700);
        // A plain payment off the lane: a deposit of its payer, or refundable.
        let r = lane_requests(&tx(false, p2pk(0, alice), None), &p2pk(0, chain_key));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].body, OnLedgerBody::DepositFor(AgentId::Address(alice)));
        let r = lane_requests(&tx(false, multisig, None), &p2pk(0, chain_key));
        assert_eq!(r[0].body, OnLedgerBody::Refundable);
    }

    /// Guards defect 13 of the hardening review: the follower used no confirmation depth.
    #[test]
    fn only_blocks_at_the_confirmation_depth_are_followed() {
        let block = |n: u8| wisp_l1::ChainBlock {
            hash: [n; 32],
            daa_score: u64::from(n),
            timestamp_ms: 0,
            lane_txs: vec![],
        };
        let seen: Vec<_> = (1..=5).map(block).collect();
        assert_eq!(confirmed(&seen, 0).len(), 5);
        assert_eq!(confirmed(&seen, 2).last().map(|b| b.hash), Some([3; 32]));
        assert!(confirmed(&seen, 5).is_empty());
        assert!(confirmed(&seen, u64::MAX).is_empty());
    }

    /// Guards defect 3 of the hardening review: a version-1 script (anyone-can-spend on Kaspa)
    /// named the sender of a lane transaction, and a version-1 output to the deposit key was
    /// credited as a deposit.
    #[test]
    fn lane_requests_need_version_zero_scripts() {
        let (alice, chain_key) = ([1u8; 32], [9u8; 32]);
        let payload = LanePayload {
            requests: vec![],
            beneficiary: None,
        }
        .encode();
        let tx = |sender: LaneScript, deposit: LaneScript| LaneTx {
            tx_id: [3; 32],
            on_lane: true,
            sender_script: Some(sender),
            payload: payload.clone(),
            outputs: vec![LaneOutput {
                index: 0,
                amount_sompi: 500,
                script: deposit,
            }],
        };
        // A miner spending an anyone-can-spend (version 1) UTXO "of alice": no request runs as
        // alice, and the deposit is not hers: it is recorded as refundable.
        let requests = lane_requests(&tx(p2pk(1, alice), p2pk(0, chain_key)), &p2pk(0, chain_key));
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].body, OnLedgerBody::Refundable);
        assert_ne!(requests[0].sender, AgentId::Address(alice));
        // Alice pays a version-1 output "to the chain": not a deposit.
        let requests = lane_requests(&tx(p2pk(0, alice), p2pk(1, chain_key)), &p2pk(0, chain_key));
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].deposit_sompi, 0);
        // The honest case.
        let requests = lane_requests(&tx(p2pk(0, alice), p2pk(0, chain_key)), &p2pk(0, chain_key));
        assert_eq!(requests[0].sender, AgentId::Address(alice));
        assert_eq!(requests[0].deposit_sompi, 500);
    }
}
