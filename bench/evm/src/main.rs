//! ERC-20 `transfer(address,uint256)` on revm, in memory (`CacheDB`, each transaction
//! committed, no Merkle root), one thread: prints transfers per second. Run by the benchmark
//! report (`cargo bench -p wisp-bench`); alone: `cargo run --release --manifest-path
//! bench/evm/Cargo.toml -- [mix|hot] [TRANSFERS]`.
//!
//! Two workloads:
//! - `mix` (the default): the transaction mix of the report's Wisp runs. 100 senders, each with
//!   its own tokens and ether, each paying 1 token to a recipient of its own in every round of
//!   100; nonces checked; a base fee of 1 gwei and a tip of 1 gwei per gas, so every sender pays
//!   for gas and the block's beneficiary collects the tips.
//! - `hot`: one sender paying 100 recipients in turn, nonce checks off, no gas price (this
//!   report's baseline until 2026-12-03): all of the sender's state stays hot in the cache.

use revm::context::{Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::{Address, TxKind, U256};
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use std::time::Instant;

/// Senders (and recipients) of the `mix` workload: the report's blocks of 100.
const SENDERS: usize = 100;
/// Base fee of the `mix` workload, wei per gas.
const BASE_FEE: u64 = 1_000_000_000;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("Erc20.bin is hex"))
        .collect()
}

/// An address from a tag and an index.
fn address(tag: u8, i: usize) -> Address {
    let mut a = [tag; 20];
    a[12..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    Address::from(a)
}

/// `transfer(to, amount)` call data: selector a9059cbb, the recipient, the amount.
fn transfer_data(to: Address, amount: U256) -> Vec<u8> {
    let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(to.as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    data
}

fn main() {
    let (mut hot, mut transfers) = (false, 20_000usize);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "hot" => hot = true,
            "mix" => hot = false,
            n => {
                transfers = n.parse().unwrap_or_else(|_| {
                    panic!("usage: wisp-evm-baseline [mix|hot] [TRANSFERS]; got {n:?}")
                })
            }
        }
    }
    let mut init = hex(include_str!("../Erc20.bin").trim());
    init.extend_from_slice(&U256::from(u128::MAX).to_be_bytes::<32>());
    let owner = Address::repeat_byte(0x11);
    let senders: Vec<Address> = (0..SENDERS).map(|i| address(0x22, i)).collect();
    let mut db = CacheDB::<EmptyDB>::default();
    for who in senders.iter().chain([&owner]) {
        db.insert_account_info(*who, AccountInfo::from_balance(U256::from(u128::MAX)));
    }
    let (base_fee, gas_price) = if hot {
        (0, 0)
    } else {
        (BASE_FEE, 2 * BASE_FEE as u128)
    };
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|cfg| cfg.disable_nonce_check = hot)
        .modify_block_chained(|block| {
            block.basefee = base_fee;
            block.beneficiary = Address::repeat_byte(0x33);
        })
        .build_mainnet();
    let mut nonces = std::collections::HashMap::<Address, u64>::new();
    let mut tx = |from: Address, kind: TxKind, data: Vec<u8>, gas_limit: u64| {
        let nonce = nonces.entry(from).or_insert(0);
        *nonce += 1;
        TxEnv::builder()
            .caller(from)
            .kind(kind)
            .data(data.into())
            .gas_limit(gas_limit)
            .gas_price(gas_price)
            .nonce(*nonce - 1)
            .build()
            .expect("a valid transaction")
    };
    let deploy = tx(owner, TxKind::Create, init, 5_000_000);
    let token = evm
        .transact_commit(deploy)
        .expect("deploy runs")
        .created_address()
        .expect("the token deploys");
    let call = TxKind::Call(token);
    let mut setup = Vec::new();
    if !hot {
        for who in &senders {
            setup.push(tx(
                owner,
                call,
                transfer_data(*who, U256::from(u128::MAX / 1_000)),
                100_000,
            ));
        }
    }
    let one = U256::from(1);
    let txs: Vec<TxEnv> = (0..transfers + 200)
        .map(|i| {
            let n = i % SENDERS;
            if hot {
                tx(owner, call, transfer_data(address(0, n), one), 100_000)
            } else {
                tx(senders[n], call, transfer_data(address(0x44, n), one), 100_000)
            }
        })
        .collect();
    let mut txs = txs.into_iter();
    // The set-up and 200 transfers to warm up, unmeasured.
    for tx in setup.into_iter().chain(txs.by_ref().take(200)) {
        assert!(evm.transact_commit(tx).expect("runs").is_success());
    }
    let start = Instant::now();
    for tx in txs {
        assert!(evm.transact_commit(tx).expect("runs").is_success());
    }
    println!("{:.0}", transfers as f64 / start.elapsed().as_secs_f64());
}
