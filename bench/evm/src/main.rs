//! ERC-20 `transfer(address,uint256)` on revm, in memory (`CacheDB`, each transaction
//! committed, no Merkle root), one thread: prints transfers per second. Run by the benchmark
//! report (`cargo bench -p wisp-bench`); alone: `cargo run --release --manifest-path
//! bench/evm/Cargo.toml -- [TRANSFERS]`.

use revm::context::{Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::{Address, TxKind, U256};
use revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use std::time::Instant;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("Erc20.bin is hex"))
        .collect()
}

fn main() {
    let transfers: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut init = hex(include_str!("../Erc20.bin").trim());
    init.extend_from_slice(&U256::from(u128::MAX).to_be_bytes::<32>());
    let owner = Address::repeat_byte(0x11);
    let mut evm = Context::mainnet()
        .with_db(CacheDB::<EmptyDB>::default())
        .modify_cfg_chained(|cfg| cfg.disable_nonce_check = true)
        .build_mainnet();
    let deploy = TxEnv::builder()
        .caller(owner)
        .kind(TxKind::Create)
        .data(init.into())
        .gas_limit(5_000_000)
        .build()
        .expect("deploy tx");
    let token = evm
        .transact_commit(deploy)
        .expect("deploy runs")
        .created_address()
        .expect("the token deploys");
    let transfer = |to: usize| {
        // transfer(address,uint256): selector a9059cbb, the recipient, 1.
        let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
        let mut recipient = [0u8; 32];
        recipient[12..20].copy_from_slice(&(to as u64 + 1).to_be_bytes());
        data.extend_from_slice(&recipient);
        data.extend_from_slice(&U256::from(1).to_be_bytes::<32>());
        TxEnv::builder()
            .caller(owner)
            .kind(TxKind::Call(token))
            .data(data.into())
            .gas_limit(100_000)
            .build()
            .expect("transfer tx")
    };
    let txs: Vec<TxEnv> = (0..transfers).map(|i| transfer(i % 100)).collect();
    for tx in txs.iter().take(200).cloned() {
        assert!(evm.transact_commit(tx).expect("runs").is_success());
    }
    let start = Instant::now();
    for tx in txs {
        assert!(evm.transact_commit(tx).expect("runs").is_success());
    }
    println!("{:.0}", transfers as f64 / start.elapsed().as_secs_f64());
}
