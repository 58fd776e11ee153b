//! A fungible token with ERC-20 semantics (EIP-20): name, symbol, decimals, total supply,
//! balances, transfer, approve, allowance, transfer_from, plus an owner-only mint. Amounts are
//! u128 in the token's smallest unit.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[wisp_sdk::contract]
mod token {
    use wisp_sdk::prelude::*;

    const NAME: Item<String> = Item::new("name");
    const SYMBOL: Item<String> = Item::new("symbol");
    const DECIMALS: Item<u8> = Item::new("decimals");
    const TOTAL_SUPPLY: Item<u128> = Item::new("total_supply");
    const OWNER: Item<AgentId> = Item::new("owner");
    const BALANCES: Map<AgentId, u128> = Map::new("balances");
    const ALLOWANCES: Map<(AgentId, AgentId), u128> = Map::new("allowances");

    /// Emitted on every movement of tokens, including mint (`from` = the token contract).
    #[event]
    pub struct Transfer {
        #[indexed]
        pub from: AgentId,
        #[indexed]
        pub to: AgentId,
        pub amount: u128,
    }

    /// Emitted when an owner sets a spender's allowance.
    #[event]
    pub struct Approval {
        #[indexed]
        pub owner: AgentId,
        #[indexed]
        pub spender: AgentId,
        pub amount: u128,
    }

    #[errors]
    pub enum TokenError {
        /// the sender's balance is lower than the amount
        InsufficientBalance = 1,
        /// the spender's allowance is lower than the amount
        InsufficientAllowance = 2,
        /// only the token owner may mint
        NotOwner = 3,
        /// total supply would overflow u128
        SupplyOverflow = 4,
    }

    /// Creates the token; the deployer becomes its owner and receives `initial_supply`.
    #[init]
    fn init(name: String, symbol: String, decimals: u8, initial_supply: u128) {
        let owner = env::caller();
        NAME.set(&name);
        SYMBOL.set(&symbol);
        DECIMALS.set(&decimals);
        OWNER.set(&owner);
        TOTAL_SUPPLY.set(&initial_supply);
        if initial_supply > 0 {
            BALANCES.set(&owner, &initial_supply);
            env::emit(&Transfer {
                from: env::self_agent(),
                to: owner,
                amount: initial_supply,
            });
        }
    }

    fn move_tokens(from: AgentId, to: AgentId, amount: u128) -> Result<(), TokenError> {
        let from_balance = BALANCES.get_or_default(&from);
        require!(from_balance >= amount, TokenError::InsufficientBalance);
        if from != to {
            BALANCES.set(&from, &(from_balance - amount));
            let to_balance = BALANCES.get_or_default(&to);
            // Cannot overflow: the sum of balances is the total supply, a u128.
            BALANCES.set(&to, &(to_balance + amount));
        }
        env::emit(&Transfer { from, to, amount });
        Ok(())
    }

    /// Moves `amount` from the caller to `to`.
    #[entry]
    fn transfer(to: AgentId, amount: u128) -> Result<(), TokenError> {
        move_tokens(env::caller(), to, amount)
    }

    /// Lets `spender` move up to `amount` of the caller's tokens (replaces any earlier allowance).
    #[entry]
    fn approve(spender: AgentId, amount: u128) {
        let owner = env::caller();
        ALLOWANCES.set(&(owner, spender), &amount);
        env::emit(&Approval {
            owner,
            spender,
            amount,
        });
    }

    /// Moves `amount` from `from` to `to`, spending the caller's allowance from `from`.
    #[entry]
    fn transfer_from(from: AgentId, to: AgentId, amount: u128) -> Result<(), TokenError> {
        let spender = env::caller();
        let allowance = ALLOWANCES.get_or_default(&(from, spender));
        require!(allowance >= amount, TokenError::InsufficientAllowance);
        ALLOWANCES.set(&(from, spender), &(allowance - amount));
        move_tokens(from, to, amount)
    }

    /// Creates `amount` new tokens for `to`; owner only.
    #[entry]
    fn mint(to: AgentId, amount: u128) -> Result<(), TokenError> {
        require!(Some(env::caller()) == OWNER.get(), TokenError::NotOwner);
        let supply = TOTAL_SUPPLY.get_or_default();
        let new_supply = supply
            .checked_add(amount)
            .ok_or(TokenError::SupplyOverflow)?;
        TOTAL_SUPPLY.set(&new_supply);
        BALANCES.set(&to, &(BALANCES.get_or_default(&to) + amount));
        env::emit(&Transfer {
            from: env::self_agent(),
            to,
            amount,
        });
        Ok(())
    }

    /// The token's name.
    #[view]
    fn name() -> String {
        NAME.get_or_default()
    }

    /// The token's ticker symbol.
    #[view]
    fn symbol() -> String {
        SYMBOL.get_or_default()
    }

    /// Number of decimals of the display unit.
    #[view]
    fn decimals() -> u8 {
        DECIMALS.get_or_default()
    }

    /// Tokens in existence.
    #[view]
    fn total_supply() -> u128 {
        TOTAL_SUPPLY.get_or_default()
    }

    /// Balance of `owner`.
    #[view]
    fn balance_of(owner: AgentId) -> u128 {
        BALANCES.get_or_default(&owner)
    }

    /// What `spender` may still move from `owner`.
    #[view]
    fn allowance(owner: AgentId, spender: AgentId) -> u128 {
        ALLOWANCES.get_or_default(&(owner, spender))
    }

    /// The account allowed to mint.
    #[view]
    fn owner() -> Option<AgentId> {
        OWNER.get()
    }
}

pub use token::{Approval, TokenClient, TokenError, Transfer, INTERFACE_JSON};
