//! An escrow of base tokens (pegged KAS): a depositor locks sompi for a beneficiary; the
//! depositor may release them at any time, the beneficiary may claim them once the deadline
//! block has passed, and the depositor may cancel (refund) before the deadline.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[wisp_sdk::contract]
mod escrow {
    use wisp_sdk::prelude::*;

    /// depositor, beneficiary, amount (sompi), deadline block.
    type Deal = (AgentId, AgentId, u64, u64);

    const NEXT_ID: Item<u64> = Item::new("next_id");
    const DEALS: Map<u64, Deal> = Map::new("deals");

    /// A deal was opened.
    #[event]
    pub struct Opened {
        pub id: u64,
        pub depositor: AgentId,
        pub beneficiary: AgentId,
        pub amount_sompi: u64,
        pub deadline_block: u64,
    }

    /// A deal was paid out (to the beneficiary, or back to the depositor).
    #[event]
    pub struct Closed {
        pub id: u64,
        pub to: AgentId,
        pub amount_sompi: u64,
    }

    #[errors]
    pub enum EscrowError {
        /// attach base tokens to the call
        NothingAttached = 1,
        /// no such deal
        UnknownDeal = 2,
        /// only the depositor may do this
        NotDepositor = 3,
        /// only the beneficiary may claim
        NotBeneficiary = 4,
        /// the deadline has not passed yet
        TooEarly = 5,
        /// the deadline has passed; the beneficiary may claim
        TooLate = 6,
        /// the beneficiary is a contract, or the amount after the withdrawal fee is below
        /// the minimum withdrawal (1 KAS); use `release`
        NotPayableOnL1 = 7,
    }

    #[init]
    fn init() {
        NEXT_ID.set(&0);
    }

    /// Locks the attached sompi for `beneficiary` until block `deadline_block`; returns the id.
    #[entry]
    fn open(beneficiary: AgentId, deadline_block: u64) -> Result<u64, EscrowError> {
        let amount = env::transferred_sompi();
        require!(amount > 0, EscrowError::NothingAttached);
        let id = NEXT_ID.get_or_default();
        NEXT_ID.set(&(id + 1));
        let depositor = env::caller();
        DEALS.set(&id, &(depositor, beneficiary, amount, deadline_block));
        env::emit(&Opened {
            id,
            depositor,
            beneficiary,
            amount_sompi: amount,
            deadline_block,
        });
        Ok(id)
    }

    fn close(id: u64, to: AgentId, amount: u64) {
        DEALS.remove(&id);
        env::transfer_sompi(&to, amount);
        env::emit(&Closed {
            id,
            to,
            amount_sompi: amount,
        });
    }

    /// The depositor pays the beneficiary now.
    #[entry]
    fn release(id: u64) -> Result<(), EscrowError> {
        let (depositor, beneficiary, amount, _) = DEALS.get(&id).ok_or(EscrowError::UnknownDeal)?;
        require!(env::caller() == depositor, EscrowError::NotDepositor);
        close(id, beneficiary, amount);
        Ok(())
    }

    /// The depositor pays the beneficiary now, on Kaspa: the beneficiary's Kaspa address
    /// receives the amount less the withdrawal fee ([`wisp_sdk::WITHDRAWAL_FEE_SOMPI`]) in the
    /// chain's next anchor transactions. Returns the outbox sequence number of the payout.
    #[entry]
    fn release_to_l1(id: u64) -> Result<u64, EscrowError> {
        let (depositor, beneficiary, amount, _) = DEALS.get(&id).ok_or(EscrowError::UnknownDeal)?;
        require!(env::caller() == depositor, EscrowError::NotDepositor);
        let payout = amount.saturating_sub(wisp_sdk::WITHDRAWAL_FEE_SOMPI);
        require!(
            matches!(beneficiary, AgentId::Address(_)) && payout >= wisp_sdk::MIN_WITHDRAWAL_SOMPI,
            EscrowError::NotPayableOnL1
        );
        DEALS.remove(&id);
        let seq = env::withdraw_to_l1(&beneficiary, payout);
        env::emit(&Closed {
            id,
            to: beneficiary,
            amount_sompi: amount,
        });
        Ok(seq)
    }

    /// The beneficiary takes the funds after the deadline.
    #[entry]
    fn claim(id: u64) -> Result<(), EscrowError> {
        let (_, beneficiary, amount, deadline) = DEALS.get(&id).ok_or(EscrowError::UnknownDeal)?;
        require!(env::caller() == beneficiary, EscrowError::NotBeneficiary);
        require!(env::block_index() > deadline, EscrowError::TooEarly);
        close(id, beneficiary, amount);
        Ok(())
    }

    /// The depositor takes the funds back before the deadline.
    #[entry]
    fn cancel(id: u64) -> Result<(), EscrowError> {
        let (depositor, _, amount, deadline) = DEALS.get(&id).ok_or(EscrowError::UnknownDeal)?;
        require!(env::caller() == depositor, EscrowError::NotDepositor);
        require!(env::block_index() <= deadline, EscrowError::TooLate);
        close(id, depositor, amount);
        Ok(())
    }

    /// A deal: (depositor, beneficiary, amount sompi, deadline block).
    #[view]
    fn deal(id: u64) -> Option<(AgentId, AgentId, u64, u64)> {
        DEALS.get(&id)
    }
}

pub use escrow::{Closed, EscrowClient, EscrowError, Opened, INTERFACE_JSON};
