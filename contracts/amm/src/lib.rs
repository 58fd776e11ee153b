//! A constant-product AMM pair over two `token` contracts, with Uniswap V2's formulas
//! (UniswapV2Pair.sol, UniswapV2Library.sol): 0.3% fee, `getAmountOut`, liquidity
//! `sqrt(amount0 × amount1) − MINIMUM_LIQUIDITY` on the first mint with `MINIMUM_LIQUIDITY` = 1000
//! locked forever, `min(amount0 × supply / reserve0, amount1 × supply / reserve1)` afterwards.
//! Products are computed in 256 bits, as Solidity's uint256 does. Tokens move with the
//! token contracts' `transfer_from` (the caller approves the pair first) and `transfer`.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[wisp_sdk::contract]
mod amm {
    use ethnum::U256;
    use wisp_sdk::prelude::*;
    use wisp_token::TokenClient;

    /// Liquidity locked forever by the first mint.
    pub const MINIMUM_LIQUIDITY: u128 = 1000;

    const TOKEN0: Item<Hname> = Item::new("token0");
    const TOKEN1: Item<Hname> = Item::new("token1");
    const RESERVES: Item<(u128, u128)> = Item::new("reserves");
    const TOTAL_SUPPLY: Item<u128> = Item::new("total_supply");
    const LIQUIDITY: Map<AgentId, u128> = Map::new("liquidity");

    /// Liquidity added.
    #[event]
    pub struct Mint {
        pub sender: AgentId,
        pub amount0: u128,
        pub amount1: u128,
        pub liquidity: u128,
    }

    /// Liquidity removed.
    #[event]
    pub struct Burn {
        pub sender: AgentId,
        pub amount0: u128,
        pub amount1: u128,
        pub to: AgentId,
    }

    /// A swap.
    #[event]
    pub struct Swap {
        pub sender: AgentId,
        pub token_in: Hname,
        pub amount_in: u128,
        pub amount_out: u128,
        pub to: AgentId,
    }

    #[errors]
    pub enum AmmError {
        /// the deposit mints no liquidity
        InsufficientLiquidityMinted = 1,
        /// the output is below the minimum asked for
        InsufficientOutputAmount = 2,
        /// the pool has no liquidity for this trade
        InsufficientLiquidity = 3,
        /// the token is not one of the pair's
        InvalidToken = 4,
        /// a token contract call failed (allowance or balance too low?)
        TokenCallFailed = 5,
        /// the burn returns nothing
        InsufficientLiquidityBurned = 6,
        /// the amount does not fit in u128
        Overflow = 7,
    }

    fn to_u128(x: U256) -> Result<u128, AmmError> {
        u128::try_from(x).map_err(|_| AmmError::Overflow)
    }

    /// Babylonian integer square root (Uniswap's Math.sqrt).
    fn sqrt(y: U256) -> U256 {
        if y > U256::new(3) {
            let mut z = y;
            let mut x = y / 2 + 1;
            while x < z {
                z = x;
                x = (y / x + x) / 2;
            }
            z
        } else if y != U256::ZERO {
            U256::ONE
        } else {
            U256::ZERO
        }
    }

    fn pull(token: Hname, from: AgentId, amount: u128) -> Result<(), AmmError> {
        TokenClient::new(token)
            .transfer_from(&from, &env::self_agent(), amount)
            .map_err(|_| AmmError::TokenCallFailed)
    }

    fn push(token: Hname, to: AgentId, amount: u128) -> Result<(), AmmError> {
        TokenClient::new(token)
            .transfer(&to, amount)
            .map_err(|_| AmmError::TokenCallFailed)
    }

    /// Creates the pair of `token0` and `token1` (hnames of deployed token contracts).
    #[init]
    fn init(token0: Hname, token1: Hname) {
        TOKEN0.set(&token0);
        TOKEN1.set(&token1);
        RESERVES.set(&(0, 0));
        TOTAL_SUPPLY.set(&0);
    }

    /// Uniswap V2's getAmountOut: the output for `amount_in` against the reserves, after the 0.3%
    /// fee: `amount_in·997·reserve_out / (reserve_in·1000 + amount_in·997)`.
    #[view]
    fn get_amount_out(
        amount_in: u128,
        reserve_in: u128,
        reserve_out: u128,
    ) -> Result<u128, AmmError> {
        require!(
            reserve_in > 0 && reserve_out > 0,
            AmmError::InsufficientLiquidity
        );
        let with_fee = U256::from(amount_in) * 997;
        let numerator = with_fee * U256::from(reserve_out);
        let denominator = U256::from(reserve_in) * 1000 + with_fee;
        to_u128(numerator / denominator)
    }

    /// Deposits `amount0` and `amount1` (approved beforehand) and mints liquidity to `to`.
    #[entry]
    fn add_liquidity(amount0: u128, amount1: u128, to: AgentId) -> Result<u128, AmmError> {
        let sender = env::caller();
        let (token0, token1) = (TOKEN0.get_or_default(), TOKEN1.get_or_default());
        pull(token0, sender, amount0)?;
        pull(token1, sender, amount1)?;
        let (reserve0, reserve1) = RESERVES.get_or_default();
        let supply = TOTAL_SUPPLY.get_or_default();
        let liquidity = if supply == 0 {
            let root = to_u128(sqrt(U256::from(amount0) * U256::from(amount1)))?;
            require!(
                root > MINIMUM_LIQUIDITY,
                AmmError::InsufficientLiquidityMinted
            );
            // Locked forever: credited to the pair itself, which never spends it.
            LIQUIDITY.set(&env::self_agent(), &MINIMUM_LIQUIDITY);
            TOTAL_SUPPLY.set(&MINIMUM_LIQUIDITY);
            root - MINIMUM_LIQUIDITY
        } else {
            let l0 = U256::from(amount0) * U256::from(supply) / U256::from(reserve0);
            let l1 = U256::from(amount1) * U256::from(supply) / U256::from(reserve1);
            to_u128(l0.min(l1))?
        };
        require!(liquidity > 0, AmmError::InsufficientLiquidityMinted);
        TOTAL_SUPPLY.set(&(TOTAL_SUPPLY.get_or_default() + liquidity));
        LIQUIDITY.set(&to, &(LIQUIDITY.get_or_default(&to) + liquidity));
        let new0 = reserve0.checked_add(amount0).ok_or(AmmError::Overflow)?;
        let new1 = reserve1.checked_add(amount1).ok_or(AmmError::Overflow)?;
        RESERVES.set(&(new0, new1));
        env::emit(&Mint {
            sender,
            amount0,
            amount1,
            liquidity,
        });
        Ok(liquidity)
    }

    /// Burns the caller's `liquidity` and sends the underlying tokens to `to`.
    #[entry]
    fn remove_liquidity(liquidity: u128, to: AgentId) -> Result<(u128, u128), AmmError> {
        let sender = env::caller();
        let held = LIQUIDITY.get_or_default(&sender);
        require!(held >= liquidity, AmmError::InsufficientLiquidityBurned);
        let (reserve0, reserve1) = RESERVES.get_or_default();
        let supply = TOTAL_SUPPLY.get_or_default();
        let amount0 = to_u128(U256::from(liquidity) * U256::from(reserve0) / U256::from(supply))?;
        let amount1 = to_u128(U256::from(liquidity) * U256::from(reserve1) / U256::from(supply))?;
        require!(
            amount0 > 0 && amount1 > 0,
            AmmError::InsufficientLiquidityBurned
        );
        LIQUIDITY.set(&sender, &(held - liquidity));
        TOTAL_SUPPLY.set(&(supply - liquidity));
        RESERVES.set(&(reserve0 - amount0, reserve1 - amount1));
        push(TOKEN0.get_or_default(), to, amount0)?;
        push(TOKEN1.get_or_default(), to, amount1)?;
        env::emit(&Burn {
            sender,
            amount0,
            amount1,
            to,
        });
        Ok((amount0, amount1))
    }

    /// Swaps exactly `amount_in` of `token_in` (approved beforehand) for at least `min_out` of
    /// the other token, sent to `to`; returns the output amount.
    #[entry]
    fn swap_exact_in(
        token_in: Hname,
        amount_in: u128,
        min_out: u128,
        to: AgentId,
    ) -> Result<u128, AmmError> {
        let sender = env::caller();
        let (token0, token1) = (TOKEN0.get_or_default(), TOKEN1.get_or_default());
        let (reserve0, reserve1) = RESERVES.get_or_default();
        let (zero_for_one, reserve_in, reserve_out, token_out) = if token_in == token0 {
            (true, reserve0, reserve1, token1)
        } else if token_in == token1 {
            (false, reserve1, reserve0, token0)
        } else {
            return Err(AmmError::InvalidToken);
        };
        let amount_out = get_amount_out(amount_in, reserve_in, reserve_out)?;
        require!(
            amount_out > 0 && amount_out >= min_out,
            AmmError::InsufficientOutputAmount
        );
        require!(amount_out < reserve_out, AmmError::InsufficientLiquidity);
        pull(token_in, sender, amount_in)?;
        push(token_out, to, amount_out)?;
        let new_in = reserve_in
            .checked_add(amount_in)
            .ok_or(AmmError::Overflow)?;
        let new_out = reserve_out - amount_out;
        RESERVES.set(&if zero_for_one {
            (new_in, new_out)
        } else {
            (new_out, new_in)
        });
        env::emit(&Swap {
            sender,
            token_in,
            amount_in,
            amount_out,
            to,
        });
        Ok(amount_out)
    }

    /// Current reserves (token0, token1).
    #[view]
    fn get_reserves() -> (u128, u128) {
        RESERVES.get_or_default()
    }

    /// The pair's tokens (token0, token1).
    #[view]
    fn tokens() -> (Hname, Hname) {
        (TOKEN0.get_or_default(), TOKEN1.get_or_default())
    }

    /// Liquidity in existence (including the locked minimum).
    #[view]
    fn total_supply() -> u128 {
        TOTAL_SUPPLY.get_or_default()
    }

    /// Liquidity held by `owner`.
    #[view]
    fn liquidity_of(owner: AgentId) -> u128 {
        LIQUIDITY.get_or_default(&owner)
    }
}

pub use amm::{AmmClient, AmmError, Burn, Mint, Swap, INTERFACE_JSON, MINIMUM_LIQUIDITY};
