//! The `verify_*` host functions through the real runtime: a contract (WAT, so the bytes the
//! host reads are exactly the test's) checks BIP-340, ECDSA and Ed25519 signatures made here,
//! gets 1 or 0, pays each function's ABI gas, and traps on a pointer outside its memory.

use ed25519_dalek::Signer as _;
use secp256k1::{Keypair, Message, SecretKey, SECP256K1};
use wisp_core::abi::host_fn;
use wisp_test::{Account, CallOptions, Hname, Receipt, TestChain, VmErrorCode};

const KAS: u64 = 100_000_000;

/// `ep:run`: its arguments at address 16 are `selector ‖ data`; selector 0 checks a Schnorr
/// `msg(32) ‖ sig(64) ‖ key(32)`, 1 an ECDSA `msg(32) ‖ sig(64) ‖ key(33)`, 2 an Ed25519
/// `sig(64) ‖ key(32) ‖ msg`, 3 a Schnorr signature at an address past the memory. Returns
/// the host's answer as a u32.
const CHECKER: &str = r#"(module
  (import "wisp" "input" (func $input (result i32)))
  (import "wisp" "register_read" (func $register_read (param i32)))
  (import "wisp" "set_return" (func $set_return (param i32 i32)))
  (import "wisp" "verify_schnorr" (func $schnorr (param i32 i32 i32) (result i32)))
  (import "wisp" "verify_ecdsa" (func $ecdsa (param i32 i32 i32) (result i32)))
  (import "wisp" "verify_ed25519" (func $ed25519 (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "ep:init"))
  (func (export "ep:run") (local $len i32) (local $sel i32)
    (local.set $len (call $input))
    (call $register_read (i32.const 16))
    (local.set $sel (i32.load8_u (i32.const 16)))
    (i32.store (i32.const 0)
      (if (result i32) (i32.eq (local.get $sel) (i32.const 0))
        (then (call $schnorr (i32.const 17) (i32.const 49) (i32.const 113)))
        (else (if (result i32) (i32.eq (local.get $sel) (i32.const 1))
          (then (call $ecdsa (i32.const 17) (i32.const 49) (i32.const 113)))
          (else (if (result i32) (i32.eq (local.get $sel) (i32.const 2))
            (then (call $ed25519 (i32.const 113) (i32.sub (local.get $len) (i32.const 97))
                                 (i32.const 17) (i32.const 81)))
            (else (call $schnorr (i32.const 65530) (i32.const 49) (i32.const 113)))))))))
    (call $set_return (i32.const 0) (i32.const 4))))"#;

struct Checker {
    chain: TestChain,
    caller: Account,
    contract: Hname,
}

impl Checker {
    fn new() -> Checker {
        let mut chain = TestChain::new();
        let caller = chain.new_account(100 * KAS);
        let wasm = wat::parse_str(CHECKER).unwrap();
        let contract = chain.deploy(&caller, "checker", &wasm, &()).unwrap();
        // A first call pays the module's compilation; the calls measured below do not.
        chain
            .call_raw(
                &caller,
                contract,
                "run",
                vec![0; 129],
                &CallOptions::default(),
            )
            .unwrap();
        Checker {
            chain,
            caller,
            contract,
        }
    }

    fn run(&mut self, selector: u8, data: &[&[u8]]) -> Result<Receipt, wisp_test::Failure> {
        let mut args = vec![selector];
        for d in data {
            args.extend_from_slice(d);
        }
        let (caller, contract) = (self.caller.clone(), self.contract);
        self.chain
            .call_raw(&caller, contract, "run", args, &CallOptions::default())
    }

    /// The host's answer, and the gas of the request.
    fn check(&mut self, selector: u8, data: &[&[u8]]) -> (u32, u64) {
        let r = self.run(selector, data).unwrap();
        (
            u32::from_le_bytes(r.return_data[..4].try_into().unwrap()),
            r.gas_used,
        )
    }
}

#[test]
fn bip340_schnorr() {
    let mut c = Checker::new();
    let keypair = Keypair::from_secret_key(SECP256K1, &SecretKey::from_slice(&[3; 32]).unwrap());
    let key = keypair.x_only_public_key().0.serialize();
    let msg = [5u8; 32];
    let sig = SECP256K1
        .sign_schnorr_with_aux_rand(&Message::from_digest(msg), &keypair, &[0; 32])
        .serialize();
    let (valid, gas) = c.check(0, &[&msg, &sig, &key]);
    assert_eq!(valid, 1);
    let mut tampered = sig;
    tampered[0] ^= 1;
    let (invalid, gas_invalid) = c.check(0, &[&msg, &tampered, &key]);
    assert_eq!(invalid, 0);
    // Not an x coordinate on the curve (BIP-340 test vector 5's key).
    let off_curve = wisp_core::hash::from_hex(
        "eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34",
    )
    .unwrap();
    assert_eq!(c.check(0, &[&msg, &sig, &off_curve]).0, 0);
    // The price does not depend on the answer: the host did the same work.
    assert_eq!(gas, gas_invalid);
    assert!(gas > host_fn("verify_schnorr").unwrap().base_gas);
}

#[test]
fn ecdsa_secp256k1() {
    let mut c = Checker::new();
    let secret = SecretKey::from_slice(&[4; 32]).unwrap();
    let key = secp256k1::PublicKey::from_secret_key(SECP256K1, &secret).serialize();
    let msg = [6u8; 32];
    let sig = SECP256K1
        .sign_ecdsa(&Message::from_digest(msg), &secret)
        .serialize_compact();
    assert_eq!(c.check(1, &[&msg, &sig, &key]).0, 1);
    assert_eq!(c.check(1, &[&[7u8; 32], &sig, &key]).0, 0);
    // An uncompressed-key prefix in a 33-byte slot is not a key.
    let mut bad_key = key;
    bad_key[0] = 4;
    assert_eq!(c.check(1, &[&msg, &sig, &bad_key]).0, 0);
}

#[test]
fn ed25519_strict_and_priced_by_message_length() {
    let mut c = Checker::new();
    let signer = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let key = signer.verifying_key().to_bytes();
    let short = [1u8; 32];
    let long = vec![2u8; 4096];
    let (ok_short, gas_short) = c.check(2, &[&signer.sign(&short).to_bytes(), &key, &short]);
    let (ok_long, gas_long) = c.check(2, &[&signer.sign(&long).to_bytes(), &key, &long]);
    assert_eq!((ok_short, ok_long), (1, 1));
    // Each extra message byte costs the ABI's per-byte gas, plus the one gas per byte that
    // moving the longer arguments costs (`input` and `register_read`).
    let per_byte = host_fn("verify_ed25519").unwrap().per_byte_gas
        + host_fn("input").unwrap().per_byte_gas
        + host_fn("register_read").unwrap().per_byte_gas;
    assert_eq!(gas_long - gas_short, per_byte * (4096 - 32));
    // A signature over other bytes, and the small-order identity key, are refused.
    assert_eq!(
        c.check(2, &[&signer.sign(&long).to_bytes(), &key, &short])
            .0,
        0
    );
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut lax = [0u8; 64];
    lax[..32].copy_from_slice(&identity);
    assert_eq!(c.check(2, &[&lax, &identity, &short]).0, 0);
}

#[test]
fn a_pointer_outside_memory_traps() {
    let mut c = Checker::new();
    let f = c.run(3, &[&[0u8; 128]]).unwrap_err();
    assert!(f.is_vm(VmErrorCode::HostAbiMisuse), "{f:?}");
}
