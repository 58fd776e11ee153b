//! The multisig wallet: 2-of-3 owners approving by calls and by signatures collected off-chain,
//! transfers and arbitrary calls (the wallet changing its own owners), and what it refuses.

use wisp_multisig::{Executed, MultisigError, OwnersChanged, Proposed};
use wisp_test::{events, Account, AgentId, CallOptions, ContractId, Hname, Receipt, TestChain};

const KAS: u64 = 100_000_000;

struct Wallet {
    chain: TestChain,
    owners: [Account; 3],
    stranger: Account,
    wallet: Hname,
    agent: AgentId,
}

/// A 2-of-3 wallet holding 50 KAS.
fn wallet() -> Wallet {
    let mut chain = TestChain::new();
    let owners = [
        chain.new_account(100 * KAS),
        chain.new_account(100 * KAS),
        chain.new_account(100 * KAS),
    ];
    let stranger = chain.new_account(100 * KAS);
    let keys: Vec<AgentId> = owners.iter().map(Account::agent).collect();
    let wallet = chain
        .deploy(
            &owners[0],
            "vault",
            &wisp_test::contract_wasm("contracts/multisig"),
            &(keys, 2u8),
        )
        .unwrap();
    let agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: wallet,
    });
    let accounts = chain.hname("accounts");
    chain
        .call_raw(
            &owners[0],
            accounts,
            "transfer",
            borsh::to_vec(&(agent, 50 * KAS)).unwrap(),
            &CallOptions::default(),
        )
        .unwrap();
    Wallet {
        chain,
        owners,
        stranger,
        wallet,
        agent,
    }
}

fn proposal_id(receipt: &Receipt) -> u64 {
    events::<Proposed>(receipt, "Proposed")[0].id
}

#[test]
fn two_of_three_owners_move_base_tokens_by_calls() {
    let mut w = wallet();
    let to = w.stranger.agent();
    let propose = w
        .chain
        .call(&w.owners[0], w.wallet, "propose_transfer", &(to, 7 * KAS))
        .unwrap();
    let id = proposal_id(&propose);
    // The proposer's approval alone is not enough; strangers neither approve nor propose.
    let f = w
        .chain
        .call(&w.stranger, w.wallet, "execute", &(id,))
        .unwrap_err();
    assert!(
        f.is_contract(MultisigError::NotEnoughApprovals as u32),
        "{f:?}"
    );
    let f = w
        .chain
        .call(&w.stranger, w.wallet, "approve", &(id,))
        .unwrap_err();
    assert!(f.is_contract(MultisigError::NotOwner as u32));
    let f = w
        .chain
        .call(&w.stranger, w.wallet, "propose_transfer", &(to, 1u64))
        .unwrap_err();
    assert!(f.is_contract(MultisigError::NotOwner as u32));
    assert_eq!(w.chain.balance(&w.agent), 50 * KAS);

    let approve = w
        .chain
        .call(&w.owners[2], w.wallet, "approve", &(id,))
        .unwrap();
    let before = w.chain.balance(&to);
    let execute = w
        .chain
        .call(&w.owners[1], w.wallet, "execute", &(id,))
        .unwrap();
    let executed = &events::<Executed>(&execute, "Executed")[0];
    assert_eq!((executed.id, executed.approvals), (id, 0b101));
    assert_eq!(w.chain.balance(&to), before + 7 * KAS);
    assert_eq!(w.chain.balance(&w.agent), 43 * KAS);
    // Once only.
    let f = w
        .chain
        .call(&w.owners[1], w.wallet, "execute", &(id,))
        .unwrap_err();
    assert!(f.is_contract(MultisigError::AlreadyExecuted as u32));
    let f = w
        .chain
        .call(&w.owners[1], w.wallet, "approve", &(id,))
        .unwrap_err();
    assert!(f.is_contract(MultisigError::AlreadyExecuted as u32));
    println!(
        "gas: propose_transfer {}, approve {}, execute (transfer) {}",
        propose.gas_used, approve.gas_used, execute.gas_used
    );
}

/// The proposer's approval by call plus one owner's signature, submitted by a stranger, run a
/// call of the wallet's own `set_owners`; signatures that are not exactly right are refused.
#[test]
fn signatures_collected_off_chain_run_a_call() {
    let mut w = wallet();
    let new_owners: Vec<AgentId> =
        vec![w.owners[0].agent(), w.owners[1].agent(), w.stranger.agent()];
    let args = borsh::to_vec(&(new_owners.clone(), 3u8)).unwrap();
    let propose = w
        .chain
        .call(
            &w.owners[0],
            w.wallet,
            "propose_call",
            &(w.wallet, "set_owners".to_string(), args, 0u64),
        )
        .unwrap();
    let id = proposal_id(&propose);
    let other = proposal_id(
        &w.chain
            .call(
                &w.owners[0],
                w.wallet,
                "propose_transfer",
                &(w.stranger.agent(), 1u64),
            )
            .unwrap(),
    );
    let digest = |w: &Wallet, id: u64| -> [u8; 32] {
        let d: Option<wisp_test::Hash32> =
            w.chain.view(w.wallet, "approval_digest", &(id,)).unwrap();
        d.unwrap().0
    };
    let (d, d_other) = (digest(&w, id), digest(&w, other));
    assert_ne!(d, d_other);
    let sig = w.owners[2].sign_schnorr(&d);

    let mut refused = |signatures: Vec<(u8, Vec<u8>)>| {
        let f = w
            .chain
            .call(&w.stranger, w.wallet, "execute_signed", &(id, signatures))
            .unwrap_err();
        assert!(f.is_contract(MultisigError::BadSignature as u32), "{f:?}");
    };
    let mut tampered = sig;
    tampered[5] ^= 1;
    refused(vec![(2, tampered.to_vec())]);
    refused(vec![(1, sig.to_vec())]); // owner 2's signature as owner 1's
    refused(vec![(2, w.owners[2].sign_schnorr(&d_other).to_vec())]); // another proposal's
    refused(vec![(2, sig[..63].to_vec())]);
    refused(vec![(7, sig.to_vec())]); // no such owner
                                      // The other proposal gets its second approval but is left pending while the owners change.
    w.chain
        .call(&w.owners[1], w.wallet, "approve", &(other,))
        .unwrap();

    let execute = w
        .chain
        .call(
            &w.stranger,
            w.wallet,
            "execute_signed",
            &(id, vec![(2u8, sig.to_vec())]),
        )
        .unwrap();
    assert_eq!(events::<Executed>(&execute, "Executed")[0].approvals, 0b101);
    let changed = &events::<OwnersChanged>(&execute, "OwnersChanged")[0];
    assert_eq!(
        (changed.owners.clone(), changed.threshold),
        (new_owners.clone(), 3)
    );
    let (owners, threshold): (Vec<AgentId>, u8) = w.chain.view(w.wallet, "owners", &()).unwrap();
    assert_eq!((owners, threshold), (new_owners, 3));
    // Approvals count by owner index: what was approved under the old owners is stale.
    for f in [
        w.chain.call(&w.owners[0], w.wallet, "execute", &(other,)),
        w.chain.call(&w.owners[0], w.wallet, "approve", &(other,)),
    ] {
        let f = f.unwrap_err();
        assert!(f.is_contract(MultisigError::StaleProposal as u32), "{f:?}");
    }
    // The same signatures cannot run it again.
    let f = w
        .chain
        .call(
            &w.stranger,
            w.wallet,
            "execute_signed",
            &(id, vec![(2u8, sig.to_vec())]),
        )
        .unwrap_err();
    assert!(f.is_contract(MultisigError::AlreadyExecuted as u32));
    println!(
        "gas: propose_call {}, execute_signed (one signature, set_owners call) {}",
        propose.gas_used, execute.gas_used
    );
}

#[test]
fn owners_change_only_through_the_wallet_and_must_make_sense() {
    let mut w = wallet();
    let keys: Vec<AgentId> = w.owners.iter().map(Account::agent).collect();
    let f = w
        .chain
        .call(&w.owners[0], w.wallet, "set_owners", &(keys.clone(), 1u8))
        .unwrap_err();
    assert!(f.is_contract(MultisigError::NotWallet as u32));
    let code = wisp_test::contract_wasm("contracts/multisig");
    let dup = vec![keys[0], keys[0]];
    for (name, owners, threshold) in [
        ("zero", keys.clone(), 0u8),
        ("above", keys.clone(), 4),
        ("dup", dup, 1),
        ("none", vec![], 1),
    ] {
        let f = w
            .chain
            .deploy(&w.owners[0], name, &code, &(owners, threshold))
            .unwrap_err();
        assert!(
            f.is_contract(MultisigError::BadOwners as u32),
            "{name}: {f:?}"
        );
    }
}

#[test]
fn a_failed_action_leaves_the_proposal_pending() {
    let mut w = wallet();
    // A call the callee refuses (no such entry point), and more sompi than the wallet holds.
    let call = proposal_id(
        &w.chain
            .call(
                &w.owners[0],
                w.wallet,
                "propose_call",
                &(
                    w.wallet,
                    "no_such_function".to_string(),
                    Vec::<u8>::new(),
                    0u64,
                ),
            )
            .unwrap(),
    );
    let big = proposal_id(
        &w.chain
            .call(
                &w.owners[0],
                w.wallet,
                "propose_transfer",
                &(w.stranger.agent(), 51 * KAS),
            )
            .unwrap(),
    );
    for id in [call, big] {
        w.chain
            .call(&w.owners[1], w.wallet, "approve", &(id,))
            .unwrap();
    }
    let f = w
        .chain
        .call(&w.owners[1], w.wallet, "execute", &(call,))
        .unwrap_err();
    assert!(f.is_contract(MultisigError::CallFailed as u32), "{f:?}");
    let f = w
        .chain
        .call(&w.owners[1], w.wallet, "execute", &(big,))
        .unwrap_err();
    assert!(
        f.is_contract(MultisigError::InsufficientBalance as u32),
        "{f:?}"
    );
    type P = Option<(Option<AgentId>, Hname, String, Vec<u8>, u64, u32, bool)>;
    for id in [call, big] {
        let p: P = w.chain.view(w.wallet, "proposal", &(id,)).unwrap();
        let p = p.unwrap();
        assert_eq!((p.5, p.6), (0b011, false), "still approved, not executed");
    }
    assert_eq!(w.chain.balance(&w.agent), 50 * KAS);
}
