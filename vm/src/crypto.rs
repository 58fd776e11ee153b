//! Signature checks behind the `verify_*` host functions. Each answers only valid or invalid:
//! a malformed key or signature is invalid, never an error, so a contract decides what an
//! invalid signature means. The libraries are pinned (`vm/Cargo.toml`): which signatures are
//! valid is consensus.

use secp256k1::{ecdsa, schnorr, Message, PublicKey, XOnlyPublicKey, SECP256K1};

/// BIP-340: `sig` over the 32-byte `msg` by the x-only key `key` (libsecp256k1, as Kaspa's
/// `OpCheckSig`).
pub fn verify_schnorr(msg: &[u8; 32], sig: &[u8; 64], key: &[u8; 32]) -> bool {
    let (Ok(key), Ok(sig)) = (
        XOnlyPublicKey::from_slice(key),
        schnorr::Signature::from_slice(sig),
    ) else {
        return false;
    };
    SECP256K1
        .verify_schnorr(&sig, &Message::from_digest(*msg), &key)
        .is_ok()
}

/// ECDSA over secp256k1: the compact `sig` (r ‖ s) over the 32-byte hash `msg` by the
/// compressed key `key`. A high s is invalid (libsecp256k1 verifies only normalised
/// signatures, as Kaspa's `OpCheckSigECDSA` does).
pub fn verify_ecdsa(msg: &[u8; 32], sig: &[u8; 64], key: &[u8; 33]) -> bool {
    let (Ok(key), Ok(sig)) = (
        PublicKey::from_slice(key),
        ecdsa::Signature::from_compact(sig),
    ) else {
        return false;
    };
    SECP256K1
        .verify_ecdsa(&Message::from_digest(*msg), &sig, &key)
        .is_ok()
}

/// Ed25519 (RFC 8032) with ed25519-dalek's strict rules: non-canonical points and scalars and
/// small-order keys are refused.
pub fn verify_ed25519(msg: &[u8], sig: &[u8; 64], key: &[u8; 32]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(key) else {
        return false;
    };
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let bytes = wisp_core::hash::from_hex(s).unwrap();
        bytes.try_into().unwrap()
    }

    /// BIP-340's test vectors 0 (valid) and 5 (key not on the curve), from the BIP's
    /// `test-vectors.csv`, and vector 0 with one bit of s flipped.
    #[test]
    fn schnorr_follows_bip340_vectors() {
        let key = hex::<32>("F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9");
        let msg = hex::<32>("0000000000000000000000000000000000000000000000000000000000000000");
        let sig = hex::<64>("E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA821525F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0");
        assert!(verify_schnorr(&msg, &sig, &key));
        let mut bad = sig;
        bad[63] ^= 1;
        assert!(!verify_schnorr(&msg, &bad, &key));
        // Vector 5: the public key is not an x coordinate on the curve.
        let off_curve =
            hex::<32>("EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34");
        let msg5 = hex::<32>("243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89");
        let sig5 = hex::<64>("6CFF5C3BA86C69EA4B7376F31A9BCB4F74C1976089B2D9963DA2E5543E17776969E89B4C5564D00349106B8497785DD7D1D713A8AE82B32FA79D5F7FC407D39B");
        assert!(!verify_schnorr(&msg5, &sig5, &off_curve));
    }

    #[test]
    fn ecdsa_accepts_low_s_only() {
        let secret = secp256k1::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let key = PublicKey::from_secret_key(SECP256K1, &secret).serialize();
        let msg = [9u8; 32];
        let sig = SECP256K1
            .sign_ecdsa(&Message::from_digest(msg), &secret)
            .serialize_compact();
        assert!(verify_ecdsa(&msg, &sig, &key));
        assert!(!verify_ecdsa(&[8u8; 32], &sig, &key));
        // The same signature with s replaced by n - s (high s) is refused.
        let n = hex::<32>("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141");
        let mut high = sig;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
            high[32 + i] = d.rem_euclid(256) as u8;
            borrow = i16::from(d < 0);
        }
        assert!(!verify_ecdsa(&msg, &high, &key));
        assert!(!verify_ecdsa(&msg, &sig, &[2u8; 33]), "not a key");
    }

    /// RFC 8032 section 7.1, test 2 (one-byte message).
    #[test]
    fn ed25519_follows_rfc8032() {
        let key = hex::<32>("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig = hex::<64>("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
        assert!(verify_ed25519(&[0x72], &sig, &key));
        assert!(!verify_ed25519(&[0x73], &sig, &key));
        // A small-order key (the identity) is refused even with a signature that a lax
        // verifier would take.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut lax = [0u8; 64];
        lax[..32].copy_from_slice(&identity);
        assert!(!verify_ed25519(b"anything", &lax, &identity));
    }
}
