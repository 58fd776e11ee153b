//! State proofs: a key's value or absence against a block's state root, checkable by anyone
//! holding only the root (a light client), with no trust in the node that produced the proof.

use jmt::SimpleHasher;
use wisp_core::Hash32;

/// blake2b-256 as the tree's hash function (the one hash Wisp uses).
pub struct Blake2bHasher(wisp_core::hash::Blake2b256);

impl SimpleHasher for Blake2bHasher {
    fn new() -> Self {
        Blake2bHasher(blake2::Digest::new())
    }
    fn update(&mut self, data: &[u8]) {
        blake2::Digest::update(&mut self.0, data);
    }
    fn finalize(self) -> [u8; 32] {
        blake2::Digest::finalize(self.0).into()
    }
}

/// A sparse Merkle proof of one key against a state root, in Wisp's compact encoding: the borsh
/// of [`CompactProof`] (at most [`MAX_PROOF_BYTES`]).
///
/// jmt's own encoding of the same proof (`SparseMerkleProof`) carries each sibling's two
/// children (65 bytes); a verifier needs only the sibling's hash (33 bytes with its tag), so
/// proofs are about half as long (at 10^6 keys, ~1.4 KB in jmt's encoding). The hashing is
/// jmt's, unchanged: leaf = blake2b-256(`"JMT::LeafNode"` ‖ key hash ‖ value hash), internal
/// node = blake2b-256(`"JMT::IntrnalNode"` ‖ left ‖ right), an empty subtree
/// `"SPARSE_MERKLE_PLACEHOLDER_HASH__"`, key hash = blake2b-256(key), value hash =
/// blake2b-256(value).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct StateProof(pub Vec<u8>);

/// What a [`StateProof`]'s bytes decode to.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct CompactProof {
    /// The leaf the key's path ends at: (key hash, value hash). For an inclusion proof, the
    /// key's own; for an exclusion proof, another key's sharing the path, or `None` where the
    /// path ends in an empty subtree.
    pub leaf: Option<([u8; 32], [u8; 32])>,
    /// The hash of each sibling on the path, from the leaf's level up to the root's children
    /// (`None`: an empty subtree); at most [`MAX_SIBLINGS`].
    pub siblings: Vec<Option<[u8; 32]>>,
}

/// Most siblings a proof can have: one per bit of a 256-bit key hash.
pub const MAX_SIBLINGS: usize = 256;
/// Longest valid [`StateProof`], bytes: a leaf and [`MAX_SIBLINGS`] hashes.
pub const MAX_PROOF_BYTES: usize = 1 + 64 + 4 + MAX_SIBLINGS * 33;

const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";
const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    wisp_core::hash::blake2b_256_parts(parts).0
}

impl StateProof {
    /// Re-encodes a proof from jmt's encoding (the borsh of its `SparseMerkleProof`): each
    /// sibling's children are replaced by the sibling's hash. jmt 0.12 keeps a proof's
    /// siblings and their hashing crate-private, so its borsh layout is read here (the test
    /// `compact_verification_agrees_with_jmt` holds the two verifiers to the same verdicts).
    ///
    /// # Errors
    /// [`ProofError::Malformed`] if `jmt_borsh` is not such a proof.
    pub fn from_jmt(jmt_borsh: &[u8]) -> Result<StateProof, ProofError> {
        let mut rest = jmt_borsh;
        let mut take = |n: usize| -> Result<&[u8], ProofError> {
            if rest.len() < n {
                return Err(ProofError::Malformed);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let pair = |bytes: &[u8]| -> ([u8; 32], [u8; 32]) {
            let mut a = [0; 32];
            let mut b = [0; 32];
            a.copy_from_slice(&bytes[..32]);
            b.copy_from_slice(&bytes[32..64]);
            (a, b)
        };
        let leaf = match take(1)?[0] {
            0 => None,
            1 => Some(pair(take(64)?)),
            _ => return Err(ProofError::Malformed),
        };
        let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| ProofError::Malformed)?);
        if count as usize > MAX_SIBLINGS {
            return Err(ProofError::Malformed);
        }
        let mut siblings = Vec::with_capacity(count as usize);
        for _ in 0..count {
            siblings.push(match take(1)?[0] {
                0 => None,
                1 => {
                    let (left, right) = pair(take(64)?);
                    Some(hash(&[INTERNAL_DOMAIN, &left, &right]))
                }
                2 => {
                    let (key, value) = pair(take(64)?);
                    Some(hash(&[LEAF_DOMAIN, &key, &value]))
                }
                _ => return Err(ProofError::Malformed),
            });
        }
        if !rest.is_empty() {
            return Err(ProofError::Malformed);
        }
        let compact = CompactProof { leaf, siblings };
        Ok(StateProof(
            borsh::to_vec(&compact).map_err(|_| ProofError::Malformed)?,
        ))
    }

    /// Decodes the proof's bytes.
    ///
    /// # Errors
    /// [`ProofError::Malformed`] if they are not a [`CompactProof`] of at most
    /// [`MAX_SIBLINGS`] siblings, exactly.
    pub fn decode(&self) -> Result<CompactProof, ProofError> {
        if self.0.len() > MAX_PROOF_BYTES {
            return Err(ProofError::Malformed);
        }
        let proof: CompactProof = borsh::from_slice(&self.0).map_err(|_| ProofError::Malformed)?;
        if proof.siblings.len() > MAX_SIBLINGS {
            return Err(ProofError::Malformed);
        }
        Ok(proof)
    }
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof bytes do not decode.
    #[error("the proof bytes do not decode as a Wisp state proof")]
    Malformed,
    /// The proof does not lead to the given root for this key and value (or absence).
    #[error("the proof does not verify against state root {root}: {reason}")]
    Mismatch {
        /// The root checked against.
        root: Hash32,
        /// What does not match.
        reason: String,
    },
}

/// Checks that `key` has `value` (`None`: is absent) in the state whose root is `root`, with the
/// checks of jmt's `SparseMerkleProof::verify` (jmt 0.12): an inclusion proof's leaf is the
/// key's and holds the value's hash; an exclusion proof ends in an empty subtree or at another
/// key's leaf that shares the path; the path's hashes lead to `root`.
///
/// # Errors
/// [`ProofError`] if the proof is malformed or does not match.
pub fn verify_proof(
    root: Hash32,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    let proof = proof.decode()?;
    let mismatch = |reason: String| ProofError::Mismatch { root, reason };
    let key_hash = hash(&[key]);
    match (value, &proof.leaf) {
        (Some(value), Some((leaf_key, leaf_value))) => {
            if *leaf_key != key_hash {
                return Err(mismatch("the proof is for another key".into()));
            }
            if *leaf_value != hash(&[value]) {
                return Err(mismatch("the value does not match the proof".into()));
            }
        }
        (Some(_), None) => {
            return Err(mismatch(
                "expected an inclusion proof, found a non-inclusion proof".into(),
            ))
        }
        (None, Some((leaf_key, _))) => {
            if *leaf_key == key_hash {
                return Err(mismatch(
                    "the key exists: this is an inclusion proof".into(),
                ));
            }
            if common_prefix_bits(&key_hash, leaf_key) < proof.siblings.len() {
                return Err(mismatch(
                    "the key would not be in the subtree this proof shows".into(),
                ));
            }
        }
        (None, None) => {}
    }
    let mut current = match &proof.leaf {
        Some((k, v)) => hash(&[LEAF_DOMAIN, k, v]),
        None => PLACEHOLDER,
    };
    let n = proof.siblings.len();
    for (j, sibling) in proof.siblings.iter().enumerate() {
        let sibling = sibling.as_ref().unwrap_or(&PLACEHOLDER);
        current = if bit(&key_hash, n - 1 - j) {
            hash(&[INTERNAL_DOMAIN, sibling, &current])
        } else {
            hash(&[INTERNAL_DOMAIN, &current, sibling])
        };
    }
    if current != root.0 {
        return Err(mismatch(format!(
            "the proof leads to root {}",
            Hash32(current)
        )));
    }
    Ok(())
}

/// Bit `i` of `h`, most significant first.
fn bit(h: &[u8; 32], i: usize) -> bool {
    (h[i / 8] >> (7 - i % 8)) & 1 == 1
}

fn common_prefix_bits(a: &[u8; 32], b: &[u8; 32]) -> usize {
    (0..256).find(|&i| bit(a, i) != bit(b, i)).unwrap_or(256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::proof::SparseMerkleProof;
    use jmt::{KeyHash, RootHash};

    /// jmt's verdict on its own proof and ours on the re-encoded one agree, for inclusion and
    /// exclusion claims, true and false, and for proofs with bytes flipped.
    #[test]
    fn compact_verification_agrees_with_jmt() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::StateDb::open(&dir.path().join("state.redb")).unwrap();
        let key = |i: u32| format!("key/{i}").into_bytes();
        let value = |i: u32, v: u32| format!("value {i} at {v}").into_bytes();
        let mut roots = Vec::new();
        for version in 0..3u32 {
            let changes = (0..300u32)
                .filter(|i| i % 3 != version)
                .map(|i| {
                    (
                        key(i + 50 * version),
                        (i % 7 != 0).then(|| value(i, version)),
                    )
                })
                .collect::<Vec<_>>();
            let pending = db.prepare(u64::from(version), changes).unwrap();
            let root = pending.root();
            roots.push(root);
            let header = crate::store::tests::header(u64::from(version), root);
            db.commit(pending, &header, &[], &[]).unwrap();
        }
        let (mut checked, mut accepted, mut flips) = (0, 0, 0);
        for i in (0..500u32).step_by(7) {
            let k = key(i);
            let (held, jmt_bytes) = db.prove_jmt(&k, 2).unwrap();
            let jmt_proof: SparseMerkleProof<Blake2bHasher> =
                borsh::from_slice(&jmt_bytes).unwrap();
            let compact = StateProof::from_jmt(&jmt_bytes).unwrap();
            assert!(compact.0.len() <= jmt_bytes.len());
            let claims: [Option<Vec<u8>>; 3] = [held.clone(), None, Some(value(i, 9))];
            for root in [roots[2], roots[1]] {
                for claim in &claims {
                    let theirs = jmt_proof
                        .verify(
                            RootHash(root.0),
                            KeyHash::with::<Blake2bHasher>(&k),
                            claim.as_deref(),
                        )
                        .is_ok();
                    let ours = verify_proof(root, &k, claim.as_deref(), &compact).is_ok();
                    assert_eq!(ours, theirs, "key {i}, claim {claim:?}");
                    checked += 1;
                    accepted += usize::from(ours);
                }
            }
            assert!(verify_proof(roots[2], &k, held.as_deref(), &compact).is_ok());
            // Every byte of the compact proof matters: flipping it is refused (or malformed).
            for at in 0..compact.0.len() {
                let mut bad = compact.clone();
                bad.0[at] ^= 0x01;
                assert!(
                    verify_proof(roots[2], &k, held.as_deref(), &bad).is_err(),
                    "byte {at}"
                );
                flips += 1;
            }
        }
        // Both verdicts are exercised: one claim in three is true at the head (the held value
        // or the absence), fewer at the older root.
        assert!(
            checked > 400 && accepted > 72 && accepted < checked / 2,
            "{checked} {accepted}"
        );
        assert!(flips > 1000, "{flips}");
    }

    #[test]
    fn oversized_and_malformed_proofs_are_refused_before_decoding() {
        let root = Hash32([0; 32]);
        let too_long = StateProof(vec![0; MAX_PROOF_BYTES + 1]);
        assert_eq!(
            verify_proof(root, b"k", None, &too_long),
            Err(ProofError::Malformed)
        );
        // A sibling count past MAX_SIBLINGS.
        let mut many = vec![0u8];
        many.extend_from_slice(&(MAX_SIBLINGS as u32 + 1).to_le_bytes());
        many.extend(std::iter::repeat_n(0u8, MAX_SIBLINGS + 1));
        assert_eq!(
            verify_proof(root, b"k", None, &StateProof(many)),
            Err(ProofError::Malformed)
        );
        // jmt's encoding is not ours.
        assert!(StateProof::from_jmt(&[1, 2, 3]).is_err());
        // An empty tree's exclusion proof: no leaf, no siblings, the placeholder as root.
        let empty = StateProof(
            borsh::to_vec(&CompactProof {
                leaf: None,
                siblings: vec![],
            })
            .unwrap(),
        );
        assert_eq!(
            verify_proof(Hash32(PLACEHOLDER), b"k", None, &empty),
            Ok(())
        );
        assert!(verify_proof(Hash32(PLACEHOLDER), b"k", Some(b"v"), &empty).is_err());
    }
}
