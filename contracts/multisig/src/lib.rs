//! A multisig wallet: N owners, M of whom must approve an action before it runs. An action is a
//! base-token transfer from the wallet or a call of any contract (the wallet's own `set_owners`
//! included, so the owners change their set the same way). Owners approve by calling `approve`,
//! or sign a proposal's digest off-chain (BIP-340 Schnorr, the key of their
//! `AgentId::Address`) and anyone submits the signatures with `execute_signed`.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[wisp_sdk::contract]
mod multisig {
    use wisp_sdk::prelude::*;

    /// Most owners (approvals are a 32-bit mask).
    pub const MAX_OWNERS: usize = 32;

    /// A proposal: transfer recipient (`Some` for a base-token transfer, then the call fields
    /// are empty), call target, function, borsh argument bytes, sompi sent, approvals (bit i:
    /// owner i), executed.
    type Proposal = (Option<AgentId>, Hname, String, Vec<u8>, u64, u32, bool);

    const OWNERS: Item<Vec<AgentId>> = Item::new("owners");
    const THRESHOLD: Item<u8> = Item::new("threshold");
    const NEXT_ID: Item<u64> = Item::new("next_id");
    const PROPOSALS: Map<u64, Proposal> = Map::new("proposals");
    /// Bumped whenever the owners change: approvals are by owner index, so a proposal made
    /// under other owners cannot be approved or run.
    const EPOCH: Item<u64> = Item::new("epoch");
    /// The epoch each proposal was made in.
    const PROPOSAL_EPOCH: Map<u64, u64> = Map::new("proposal_epoch");

    /// An owner proposed an action (and approved it).
    #[event]
    pub struct Proposed {
        pub id: u64,
        pub proposer: AgentId,
    }

    /// An owner approved a proposal by a call.
    #[event]
    pub struct Approved {
        pub id: u64,
        pub owner: AgentId,
    }

    /// A proposal ran.
    #[event]
    pub struct Executed {
        pub id: u64,
        /// Owners whose approval counted (bit i: owner i).
        pub approvals: u32,
    }

    /// The owners or the threshold changed.
    #[event]
    pub struct OwnersChanged {
        pub owners: Vec<AgentId>,
        pub threshold: u8,
    }

    #[errors]
    pub enum MultisigError {
        /// the threshold must be between 1 and the number of owners, with 1 to 32 distinct owners
        BadOwners = 1,
        /// only an owner may do this
        NotOwner = 2,
        /// no such proposal
        UnknownProposal = 3,
        /// the proposal has already run
        AlreadyExecuted = 4,
        /// fewer owners approved than the threshold
        NotEnoughApprovals = 5,
        /// a signature is not an owner's valid signature of the proposal's digest
        BadSignature = 6,
        /// the proposed call failed; nothing it did remains
        CallFailed = 7,
        /// the wallet holds fewer base tokens than the transfer
        InsufficientBalance = 8,
        /// only the wallet itself may do this (through an approved proposal)
        NotWallet = 9,
        /// the owners changed since this proposal was made; propose it again
        StaleProposal = 10,
    }

    fn check_owners(owners: &[AgentId], threshold: u8) -> Result<(), MultisigError> {
        let distinct = owners
            .iter()
            .enumerate()
            .all(|(i, a)| owners[i + 1..].iter().all(|b| b != a));
        require!(
            (1..=MAX_OWNERS).contains(&owners.len())
                && distinct
                && threshold >= 1
                && usize::from(threshold) <= owners.len(),
            MultisigError::BadOwners
        );
        Ok(())
    }

    fn set(owners: Vec<AgentId>, threshold: u8) -> Result<(), MultisigError> {
        check_owners(&owners, threshold)?;
        OWNERS.set(&owners);
        THRESHOLD.set(&threshold);
        EPOCH.set(&(EPOCH.get_or_default() + 1));
        env::emit(&OwnersChanged { owners, threshold });
        Ok(())
    }

    #[init]
    fn init(owners: Vec<AgentId>, threshold: u8) -> Result<(), MultisigError> {
        NEXT_ID.set(&0);
        set(owners, threshold)
    }

    /// The caller's index among the owners.
    fn owner_index() -> Result<u32, MultisigError> {
        let caller = env::caller();
        OWNERS
            .get_or_default()
            .iter()
            .position(|o| *o == caller)
            .map(|i| i as u32)
            .ok_or(MultisigError::NotOwner)
    }

    fn propose(proposal: Proposal) -> Result<u64, MultisigError> {
        let index = owner_index()?;
        let id = NEXT_ID.get_or_default();
        NEXT_ID.set(&(id + 1));
        let (to, target, function, args, sompi, _, _) = proposal;
        PROPOSALS.set(&id, &(to, target, function, args, sompi, 1 << index, false));
        PROPOSAL_EPOCH.set(&id, &EPOCH.get_or_default());
        env::emit(&Proposed {
            id,
            proposer: env::caller(),
        });
        Ok(id)
    }

    /// Proposes sending `amount_sompi` of the wallet's base tokens to `to`; the proposer's
    /// approval counts. Returns the proposal's id.
    #[entry]
    fn propose_transfer(to: AgentId, amount_sompi: u64) -> Result<u64, MultisigError> {
        propose((
            Some(to),
            Hname(0),
            String::new(),
            Vec::new(),
            amount_sompi,
            0,
            false,
        ))
    }

    /// Proposes calling entry point `function` of `contract` with the borsh-encoded `args`,
    /// attaching `transfer_sompi` of the wallet's base tokens; the proposer's approval counts.
    /// Returns the proposal's id.
    #[entry]
    fn propose_call(
        contract: Hname,
        function: String,
        args: Vec<u8>,
        transfer_sompi: u64,
    ) -> Result<u64, MultisigError> {
        propose((None, contract, function, args, transfer_sompi, 0, false))
    }

    /// Proposal `id`, if it exists and was made under the current owners.
    fn live(id: u64) -> Result<Proposal, MultisigError> {
        let p = PROPOSALS.get(&id).ok_or(MultisigError::UnknownProposal)?;
        require!(!p.6, MultisigError::AlreadyExecuted);
        require!(
            PROPOSAL_EPOCH.get(&id) == Some(EPOCH.get_or_default()),
            MultisigError::StaleProposal
        );
        Ok(p)
    }

    /// The caller, an owner, approves proposal `id`.
    #[entry]
    fn approve(id: u64) -> Result<(), MultisigError> {
        let index = owner_index()?;
        let mut p = live(id)?;
        p.5 |= 1 << index;
        PROPOSALS.set(&id, &p);
        env::emit(&Approved {
            id,
            owner: env::caller(),
        });
        Ok(())
    }

    /// What an owner signs to approve proposal `id` off-chain: blake2b-256 of
    /// `wisp/multisig/approve` ‖ chain id ‖ this wallet's hname (LE) ‖ id (LE) ‖ the owners'
    /// epoch (LE) ‖ borsh of the action (recipient, target, function, args, sompi). Bound to
    /// this chain, this wallet, these owners and this action, so a signature cannot approve
    /// anything else.
    fn digest(id: u64, p: &Proposal) -> [u8; 32] {
        let mut bytes = b"wisp/multisig/approve".to_vec();
        bytes.extend_from_slice(&env::chain_id().0);
        bytes.extend_from_slice(&env::self_hname().0.to_le_bytes());
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&PROPOSAL_EPOCH.get(&id).unwrap_or_default().to_le_bytes());
        let action = (&p.0, &p.1, &p.2, &p.3, &p.4);
        bytes.extend(wisp_sdk::borsh::to_vec(&action).unwrap_or_default());
        env::blake2b_256(&bytes)
    }

    /// Runs proposal `id` if owners holding the threshold approved it: anyone may call.
    /// Returns the call's return bytes (empty for a transfer).
    #[entry]
    fn execute(id: u64) -> Result<Vec<u8>, MultisigError> {
        run(id, live(id)?, 0)
    }

    /// Runs proposal `id` with approvals signed off-chain: each `(owner index, 64-byte BIP-340
    /// signature of the proposal's digest)` adds that owner's approval to those given by
    /// calls. Anyone may submit. Fails with `BadSignature` if any signature is not valid.
    #[entry]
    fn execute_signed(id: u64, signatures: Vec<(u8, Vec<u8>)>) -> Result<Vec<u8>, MultisigError> {
        let p = live(id)?;
        let owners = OWNERS.get_or_default();
        let digest = digest(id, &p);
        let mut signed = 0u32;
        for (index, signature) in &signatures {
            let key = match owners.get(usize::from(*index)) {
                Some(AgentId::Address(key)) => key,
                _ => return Err(MultisigError::BadSignature),
            };
            let signature: &[u8; 64] = signature
                .as_slice()
                .try_into()
                .map_err(|_| MultisigError::BadSignature)?;
            require!(
                env::verify_schnorr(&digest, signature, key),
                MultisigError::BadSignature
            );
            signed |= 1 << index;
        }
        run(id, p, signed)
    }

    /// Runs live proposal `id` if its approvals and `signed` reach the threshold.
    fn run(id: u64, mut p: Proposal, signed: u32) -> Result<Vec<u8>, MultisigError> {
        let approvals = p.5 | signed;
        require!(
            approvals.count_ones() >= u32::from(THRESHOLD.get_or_default()),
            MultisigError::NotEnoughApprovals
        );
        // Marked before the call: a callee that calls back cannot run it twice.
        p.5 = approvals;
        p.6 = true;
        PROPOSALS.set(&id, &p);
        let (to, target, function, args, sompi, _, _) = p;
        let out = match to {
            Some(to) => {
                require!(
                    env::balance_sompi(&env::self_agent()) >= sompi,
                    MultisigError::InsufficientBalance
                );
                env::transfer_sompi(&to, sompi);
                Vec::new()
            }
            None => env::call_bytes(target, &function, &args, sompi)
                .map_err(|_| MultisigError::CallFailed)?,
        };
        env::emit(&Executed { id, approvals });
        Ok(out)
    }

    /// Replaces the owners and the threshold; only the wallet itself may call it, so it takes
    /// an approved proposal of a call to this wallet.
    #[entry]
    fn set_owners(owners: Vec<AgentId>, threshold: u8) -> Result<(), MultisigError> {
        require!(env::caller() == env::self_agent(), MultisigError::NotWallet);
        set(owners, threshold)
    }

    /// The owners and the threshold.
    #[view]
    fn owners() -> (Vec<AgentId>, u8) {
        (OWNERS.get_or_default(), THRESHOLD.get_or_default())
    }

    /// Proposal `id`: (recipient, target, function, args, sompi, approvals mask, executed).
    // Spelled out, not `Proposal`: the embedded interface is read from the signature.
    #[allow(clippy::type_complexity)]
    #[view]
    fn proposal(id: u64) -> Option<(Option<AgentId>, Hname, String, Vec<u8>, u64, u32, bool)> {
        PROPOSALS.get(&id)
    }

    /// The digest owners sign to approve proposal `id` off-chain (see `execute_signed`).
    #[view]
    fn approval_digest(id: u64) -> Option<Hash32> {
        PROPOSALS.get(&id).map(|p| Hash32(digest(id, &p)))
    }
}

pub use multisig::{
    Approved, Executed, MultisigClient, MultisigError, OwnersChanged, Proposed, INTERFACE_JSON,
};
