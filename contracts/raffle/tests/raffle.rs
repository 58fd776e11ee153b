//! The raffle contract: tickets, a draw with the chain's randomness, and the pot paid to the
//! drawn ticket.

use wisp_raffle::{Drawn, RaffleError};
use wisp_test::{
    events, random_value, Account, AgentId, CallOptions, ContractId, Hname, TestChain, VmErrorCode,
};

const KAS: u64 = 100_000_000;
const PRICE: u64 = KAS;
const ROUND_BLOCKS: u64 = 5;

/// A chain with the raffle deployed and three players who each bought one ticket, in ticket
/// order: (chain, players, the raffle's hname, its agent).
fn three_tickets(seed: Option<[u8; 32]>) -> (TestChain, Vec<Account>, Hname, AgentId) {
    let mut chain = TestChain::new();
    chain.set_random_seed(seed);
    let players: Vec<Account> = (0..3).map(|_| chain.new_account(10 * KAS)).collect();
    let raffle = chain
        .deploy(
            &players[0],
            "raffle",
            &wisp_test::contract_wasm("contracts/raffle"),
            &(PRICE, ROUND_BLOCKS),
        )
        .unwrap();
    let agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: raffle,
    });
    let ticket = CallOptions {
        transfer_sompi: PRICE,
        ..Default::default()
    };
    for (i, player) in players.iter().enumerate() {
        let r = chain
            .call_with(player, raffle, "buy", &(), &ticket)
            .unwrap();
        assert_eq!(borsh::from_slice::<u32>(&r.return_data).unwrap(), i as u32);
    }
    (chain, players, raffle, agent)
}

/// Mines blocks until the round that `raffle` has open has closed.
fn close_round(chain: &mut TestChain, raffle: Hname) {
    let closes_at: u64 = chain.view(raffle, "closes_at", &()).unwrap();
    let head = chain.chain().head().unwrap().index;
    chain.advance_blocks(closes_at.saturating_sub(head));
}

/// The ticket `env::random_below(sold)` picks from the first draw of request `id` in a block
/// with `randomness`, computed here from the documented derivation.
fn expected_ticket(randomness: [u8; 32], id: &wisp_test::Hash32, sold: u64) -> u32 {
    let value = random_value(&randomness, id, 0);
    let word = u64::from_le_bytes(value[..8].try_into().unwrap());
    let zone = u64::MAX - (u64::MAX % sold);
    assert!(word < zone, "this seed needs a second word; pick another");
    (word % sold) as u32
}

#[test]
fn the_drawn_ticket_wins_the_pot_and_the_next_round_opens() {
    let (mut chain, players, raffle, agent) = three_tickets(Some([7; 32]));
    assert_eq!(chain.balance(&agent), 3 * PRICE);
    // Too early: the round sells for ROUND_BLOCKS blocks.
    let f = chain.call(&players[1], raffle, "draw", &()).unwrap_err();
    assert!(f.is_contract(RaffleError::StillOpen as u32), "{f:?}");
    close_round(&mut chain, raffle);
    // Closed: no more tickets.
    let f = chain
        .call_with(
            &players[1],
            raffle,
            "buy",
            &(),
            &CallOptions {
                transfer_sompi: PRICE,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(f.is_contract(RaffleError::Closed as u32), "{f:?}");

    let before: Vec<u64> = players.iter().map(|p| chain.balance(&p.agent())).collect();
    let r = chain.call(&players[2], raffle, "draw", &()).unwrap();
    let drawn = &events::<Drawn>(&r, "Drawn")[0];
    // The ticket the chain's randomness picks, derived independently of the contract.
    let randomness = chain.block_randomness(r.block_index).unwrap();
    let ticket = expected_ticket(randomness.0, &r.request_id, 3);
    assert_eq!(drawn.ticket, ticket);
    assert_eq!(drawn.winner, players[ticket as usize].agent());
    assert_eq!(drawn.pot_sompi, 3 * PRICE);
    assert_eq!(chain.balance(&agent), 0);
    for (i, player) in players.iter().enumerate() {
        let after = chain.balance(&player.agent());
        match (i == ticket as usize, i == 2) {
            (true, _) => assert!(after > before[i] + 3 * PRICE - KAS / 10, "winner paid"),
            (false, true) => assert!(after < before[i], "the drawer paid its fee"),
            (false, false) => assert_eq!(after, before[i]),
        }
    }
    // The next round is open and empty; drawing it fails until someone buys.
    let round: u64 = chain.view(raffle, "round", &()).unwrap();
    let sold: u32 = chain.view(raffle, "sold", &()).unwrap();
    assert_eq!((round, sold), (1, 0));
    close_round(&mut chain, raffle);
    let f = chain.call(&players[0], raffle, "draw", &()).unwrap_err();
    assert!(f.is_contract(RaffleError::NoTickets as u32), "{f:?}");
}

#[test]
fn every_ticket_can_win_and_a_seed_gives_the_same_winner_on_every_run() {
    let winner = |seed: u8| {
        let (mut chain, _, raffle, _) = three_tickets(Some([seed; 32]));
        close_round(&mut chain, raffle);
        let drawer = chain.new_account(KAS);
        let r = chain.call(&drawer, raffle, "draw", &()).unwrap();
        events::<Drawn>(&r, "Drawn")[0].ticket
    };
    let winners: Vec<u32> = (0..24).map(winner).collect();
    for ticket in 0..3 {
        assert!(
            winners.contains(&ticket),
            "ticket {ticket} never won in 24 seeds: {winners:?}"
        );
    }
    // Deterministic: the same seed, the same chain, the same draw.
    assert_eq!(winners[5], winner(5));
}

#[test]
fn without_a_committee_the_draw_fails_and_nothing_moves() {
    let (mut chain, players, raffle, agent) = three_tickets(None);
    close_round(&mut chain, raffle);
    let f = chain.call(&players[0], raffle, "draw", &()).unwrap_err();
    assert_eq!(
        f.error.code,
        VmErrorCode::RandomnessUnavailable.code(),
        "{f:?}"
    );
    assert!(f.error.message.contains("committee"), "{}", f.error.message);
    assert_eq!(chain.balance(&agent), 3 * PRICE);
    let round: u64 = chain.view(raffle, "round", &()).unwrap();
    let sold: u32 = chain.view(raffle, "sold", &()).unwrap();
    assert_eq!((round, sold), (0, 3));
}

#[test]
fn a_draw_declares_the_raffles_whole_state_and_runs_with_it() {
    let (mut chain, players, raffle, _) = three_tickets(Some([11; 32]));
    close_round(&mut chain, raffle);
    // The simulation draws from a stand-in, so the ticket it read is not the one the draw will
    // read: the recorded access list names the raffle's whole state, not single keys.
    let simulated = chain
        .chain()
        .simulate_request(
            players[0].agent(),
            &wisp_core::RequestBody {
                chain: chain.chain_id(),
                call: wisp_core::Call {
                    target: raffle,
                    entry_point: Hname::of("draw"),
                    args: borsh::to_vec(&()).unwrap(),
                    transfer_sompi: 0,
                },
                gas_budget: 5_000_000,
                access_list: None,
                time_lock: None,
            },
        )
        .unwrap();
    let list = simulated.access_list.expect("an access list");
    assert!(
        list.writes
            .iter()
            .any(|a| a.contract == raffle && a.key_prefix.is_none()),
        "{list:?}"
    );
    assert!(list
        .reads
        .iter()
        .chain(&list.writes)
        .all(|a| a.contract != raffle || a.key_prefix.is_none()));
    // Sent with that list, the draw runs whichever ticket the block's randomness picks.
    let r = chain
        .call_with(
            &players[0],
            raffle,
            "draw",
            &(),
            &CallOptions {
                access_list: Some(list),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(events::<Drawn>(&r, "Drawn").len(), 1);
}
