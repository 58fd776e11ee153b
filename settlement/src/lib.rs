//! How a Wisp chain is settled on Kaspa.
//!
//! A chain's **anchor** is one covenant UTXO on Kaspa: it holds every sompi pegged into the
//! chain and commits to the chain's latest settled block. Its covenant id (Kaspa's covenant
//! lineage gives an anchor exactly one successor) is the chain's identity on L1. This crate
//! builds the scripts that make Kaspa itself enforce the rules, and the transactions that move
//! the anchor:
//!
//! - [`anchor`]: the anchor's P2SH script. Only the committee key may spend it, and only into
//!   a successor with the same script and a newer block, paying exactly the withdrawals the
//!   previous anchor committed to and keeping every other sompi (less a bounded fee).
//! - [`deposit`]: the deposit script. Coins paid to it can only be spent by a transaction that
//!   spends the anchor in the same transaction, so they can only flow into the anchor.
//! - [`tx`]: builds and signs anchor transactions (genesis and successors).
//! - [`committee`]: the anchor key of a committee: FROST key generation and threshold
//!   signing, verified by Kaspa as one BIP340 signature.
//!
//! The script is documented opcode by opcode in `docs/anchor.md`. Everything here is
//! deterministic and performs no I/O; the node submits what it builds.

pub mod anchor;
pub mod committee;
pub mod deposit;
pub mod tx;

pub use anchor::{outbox_commitment, AnchorRules, AnchorState, Payout};

/// What can go wrong building settlement scripts and transactions.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// Kaspa's script builder refused a script (an element or the script too large).
    #[error("script builder: {0}")]
    Script(#[from] kaspa_txscript::script_builder::ScriptBuilderError),
    /// Kaspa could not make an address of a script public key (it always can of a P2SH).
    #[error("address: {0}")]
    Address(String),
    /// The anchor code's length did not settle while placing its own offsets (a bug here).
    #[error("the anchor script's length did not settle ({0} bytes); please report this")]
    UnstableCode(usize),
    /// More withdrawals than one anchor transaction may pay.
    #[error("{count} withdrawals in one anchor transaction; at most {max}")]
    TooManyPayouts {
        /// Payouts asked for.
        count: usize,
        /// [`anchor::MAX_PAYOUTS`].
        max: usize,
    },
    /// More inputs than the anchor script sums.
    #[error("{count} inputs in one anchor transaction; at most {max} (the anchor and {} deposits)", max - 1)]
    TooManyInputs {
        /// Inputs asked for.
        count: usize,
        /// [`anchor::MAX_INPUTS`].
        max: usize,
    },
    /// A signature that is not the committee key's BIP340 signature of the anchor input.
    #[error("the signature is not the committee key's signature of this anchor transaction")]
    BadSignature,
    /// The anchor cannot pay the withdrawals and the fee.
    #[error("the anchor holds {available_sompi} sompi with its deposits; {needed_sompi} are needed for the withdrawals and the fee")]
    InsufficientAnchor {
        /// Anchor value plus swept deposits, sompi.
        available_sompi: u64,
        /// Withdrawals plus fee, sompi.
        needed_sompi: u64,
    },
    /// A fee above what the script allows.
    #[error("fee of {fee_sompi} sompi exceeds the anchor's maximum of {max_sompi}")]
    FeeTooHigh {
        /// The fee asked for.
        fee_sompi: u64,
        /// [`AnchorRules::max_fee_sompi`].
        max_sompi: u64,
    },
    /// A successor must commit to a newer block.
    #[error("the successor commits block {new}, not newer than the anchored block {old}")]
    StaleBlock {
        /// The anchored block index.
        old: u64,
        /// The block index asked for.
        new: u64,
    },
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, SettlementError>;
