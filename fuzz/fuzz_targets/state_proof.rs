//! Guards `wisp_state::verify_proof` and `StateProof::decode`, which a light client (the CLI's
//! `wisp proof --verify`, the TypeScript client) runs on the proof bytes a node it does not trust
//! sends, and `StateProof::from_jmt`, the re-encoding of jmt's proofs. Input: a 32-byte root, a
//! flag byte (bit 0: claim a value), a length byte and that many key bytes, then the proof. None
//! may panic; a proof that decodes is canonical (its encoding is the input) and within the
//! bounds; a proof over the byte bound never decodes; a re-encoded jmt proof always decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_core::Hash32;
use wisp_state::{verify_proof, StateProof, MAX_PROOF_BYTES, MAX_SIBLINGS};

fuzz_target!(|data: &[u8]| {
    if data.len() < 34 {
        return;
    }
    let (root, rest) = data.split_at(32);
    let root = Hash32(root.try_into().expect("32 bytes"));
    let (flag, key_len) = (rest[0], rest[1] as usize);
    let rest = &rest[2..];
    let (key, proof_bytes) = rest.split_at(key_len.min(rest.len()));
    let proof = StateProof(proof_bytes.to_vec());
    let value = (flag & 1 == 1).then_some(&b"value"[..]);
    let _ = verify_proof(root, key, value, &proof);
    if let Ok(decoded) = proof.decode() {
        assert!(proof_bytes.len() <= MAX_PROOF_BYTES);
        assert!(decoded.siblings.len() <= MAX_SIBLINGS);
        assert_eq!(
            borsh::to_vec(&decoded).expect("encodes"),
            proof_bytes,
            "a state proof decoded from non-canonical bytes"
        );
    }
    if let Ok(compact) = StateProof::from_jmt(proof_bytes) {
        assert!(
            compact.decode().is_ok(),
            "a re-encoded jmt proof does not decode"
        );
    }
});
