//! A raffle: players buy tickets for base tokens (pegged KAS) while a round is open; once the
//! round has closed, anyone draws, and one ticket, chosen with the chain's randomness
//! (`env::random`), wins the whole pot. Then the next round opens.
//!
//! The draw follows the pattern `env::random`'s documentation asks for: tickets are bought in
//! blocks before the one that draws, so no ticket can be bought by someone who knows the
//! value. On a chain without a committee, `draw` fails with `randomness_unavailable`.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[wisp_sdk::contract]
mod raffle {
    use wisp_sdk::prelude::*;

    /// Most tickets in one round: the pot's owners are stored one key per ticket.
    const MAX_TICKETS: u32 = 10_000;

    /// The ticket price, sompi.
    const PRICE: Item<u64> = Item::new("price");
    /// How many blocks a round stays open.
    const ROUND_BLOCKS: Item<u64> = Item::new("round_blocks");
    /// The current round's number (from 0).
    const ROUND: Item<u64> = Item::new("round");
    /// The last block at which the current round sells tickets.
    const CLOSES_AT: Item<u64> = Item::new("closes_at");
    /// Tickets sold in the current round.
    const SOLD: Item<u32> = Item::new("sold");
    /// Who holds each ticket of the current round.
    const TICKETS: Map<u32, AgentId> = Map::new("tickets");

    /// A ticket was bought.
    #[event]
    pub struct Bought {
        pub round: u64,
        pub ticket: u32,
        pub player: AgentId,
    }

    /// A round was drawn and its pot paid.
    #[event]
    pub struct Drawn {
        pub round: u64,
        pub ticket: u32,
        pub winner: AgentId,
        pub pot_sompi: u64,
    }

    #[errors]
    pub enum RaffleError {
        /// attach exactly the ticket price
        WrongPrice = 1,
        /// the round has closed; draw it, then buy in the next
        Closed = 2,
        /// the round is still open
        StillOpen = 3,
        /// nobody bought a ticket this round
        NoTickets = 4,
        /// the round has sold its maximum number of tickets
        SoldOut = 5,
        /// the ticket price and the round length must be positive
        BadSettings = 6,
    }

    /// Opens the first round: tickets cost `price_sompi`, and each round sells for
    /// `round_blocks` blocks.
    #[init]
    fn init(price_sompi: u64, round_blocks: u64) -> Result<(), RaffleError> {
        require!(
            price_sompi > 0 && round_blocks > 0,
            RaffleError::BadSettings
        );
        PRICE.set(&price_sompi);
        ROUND_BLOCKS.set(&round_blocks);
        ROUND.set(&0);
        SOLD.set(&0);
        CLOSES_AT.set(&(env::block_index().saturating_add(round_blocks)));
        Ok(())
    }

    /// Buys a ticket in the open round with the attached sompi (exactly the price); returns
    /// its number.
    #[entry]
    fn buy() -> Result<u32, RaffleError> {
        require!(
            env::transferred_sompi() == PRICE.get_or_default(),
            RaffleError::WrongPrice
        );
        require!(
            env::block_index() <= CLOSES_AT.get_or_default(),
            RaffleError::Closed
        );
        let ticket = SOLD.get_or_default();
        require!(ticket < MAX_TICKETS, RaffleError::SoldOut);
        let player = env::caller();
        TICKETS.set(&ticket, &player);
        SOLD.set(&(ticket + 1));
        env::emit(&Bought {
            round: ROUND.get_or_default(),
            ticket,
            player,
        });
        Ok(ticket)
    }

    /// Draws the closed round: one ticket, uniformly at random, wins the pot. Anyone may
    /// call it. Opens the next round; returns the winner.
    #[entry]
    fn draw() -> Result<AgentId, RaffleError> {
        require!(
            env::block_index() > CLOSES_AT.get_or_default(),
            RaffleError::StillOpen
        );
        let sold = SOLD.get_or_default();
        require!(sold > 0, RaffleError::NoTickets);
        let ticket = env::random_below(u64::from(sold)) as u32;
        let winner = TICKETS.get(&ticket).ok_or(RaffleError::NoTickets)?;
        let pot = PRICE.get_or_default().saturating_mul(u64::from(sold));
        // The round's tickets stay stored: the next round writes over them, and draws read
        // only the tickets below `SOLD`.
        let round = ROUND.get_or_default();
        env::transfer_sompi(&winner, pot);
        env::emit(&Drawn {
            round,
            ticket,
            winner,
            pot_sompi: pot,
        });
        ROUND.set(&(round + 1));
        SOLD.set(&0);
        CLOSES_AT.set(&env::block_index().saturating_add(ROUND_BLOCKS.get_or_default()));
        Ok(winner)
    }

    /// The open round's number (from 0).
    #[view]
    fn round() -> u64 {
        ROUND.get_or_default()
    }

    /// Tickets sold in the open round.
    #[view]
    fn sold() -> u32 {
        SOLD.get_or_default()
    }

    /// The last block at which the open round sells tickets; `draw` works after it.
    #[view]
    fn closes_at() -> u64 {
        CLOSES_AT.get_or_default()
    }
}

pub use raffle::{Bought, Drawn, RaffleClient, RaffleError, INTERFACE_JSON};
