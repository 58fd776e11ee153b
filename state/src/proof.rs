//! State proofs: a key's value or absence against a block's state root, checkable by anyone
//! holding only the root (a light client), with no trust in the node that produced the proof.

use jmt::proof::SparseMerkleProof;
use jmt::{KeyHash, RootHash, SimpleHasher};
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

/// A sparse Merkle proof, borsh-encoded (jmt's `SparseMerkleProof<Blake2bHasher>`).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct StateProof(pub Vec<u8>);

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof bytes do not decode.
    #[error("the proof bytes do not decode as a sparse Merkle proof")]
    Malformed,
    /// The proof does not lead to the given root for this key and value (or absence).
    #[error("the proof does not verify against state root {root}: {reason}")]
    Mismatch {
        /// The root checked against.
        root: Hash32,
        /// jmt's explanation.
        reason: String,
    },
}

/// Checks that `key` has `value` (`None`: is absent) in the state whose root is `root`.
///
/// # Errors
/// [`ProofError`] if the proof is malformed or does not match.
pub fn verify_proof(
    root: Hash32,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    let decoded: SparseMerkleProof<Blake2bHasher> =
        borsh::from_slice(&proof.0).map_err(|_| ProofError::Malformed)?;
    decoded
        .verify(RootHash(root.0), KeyHash::with::<Blake2bHasher>(key), value)
        .map_err(|e| ProofError::Mismatch {
            root,
            reason: e.to_string(),
        })
}
