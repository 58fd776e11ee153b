//! Off-ledger request signatures (BIP-340 Schnorr over `OffLedgerRequest::signing_hash`): the
//! only way to make a [`VerifiedRequest`].

use crate::exec::request_error;
use wisp_core::{OffLedgerRequest, ReceiptError, RequestBody, RequestErrorCode, RequestId};

/// An off-ledger request whose signature has been checked; only [`verify_signature`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest {
    request: OffLedgerRequest,
    id: RequestId,
}

impl VerifiedRequest {
    /// The signed request.
    pub fn request(&self) -> &OffLedgerRequest {
        &self.request
    }
    /// Its id.
    pub fn id(&self) -> RequestId {
        self.id
    }
}

/// Checks the BIP-340 Schnorr signature of an off-ledger request.
///
/// # Errors
/// `bad_signature` (request level) if the key or signature is malformed or does not verify.
pub fn verify_signature(request: OffLedgerRequest) -> Result<VerifiedRequest, ReceiptError> {
    let bad = |why: &str| {
        request_error(
            RequestErrorCode::BadSignature,
            format!("the request signature {why}"),
        )
    };
    let key = secp256k1::XOnlyPublicKey::from_slice(&request.sender_key)
        .map_err(|_| bad("key is not a valid x-only public key"))?;
    let signature = secp256k1::schnorr::Signature::from_slice(&request.signature)
        .map_err(|_| bad("is malformed"))?;
    let digest = OffLedgerRequest::signing_hash(&request.body, &request.sender_key, request.nonce);
    let message = secp256k1::Message::from_digest(digest.0);
    secp256k1::SECP256K1
        .verify_schnorr(&signature, &message, &key)
        .map_err(|_| bad("does not verify against the sender key"))?;
    let id = request.id();
    Ok(VerifiedRequest { request, id })
}

/// [`verify_signature`] of each request, on all cores, in the requests' order: one BIP-340
/// verification (about 40 µs here) costs more than executing a token transfer, so a batch of
/// requests (restored from the mempool, or re-executed after a reorg) is checked in parallel
/// ahead of execution.
pub fn verify_signatures(
    requests: Vec<OffLedgerRequest>,
) -> Vec<Result<VerifiedRequest, ReceiptError>> {
    wisp_scheduler::map_on_all_cores(requests, verify_signature)
}

/// Signs an off-ledger request with `keypair` (a wallet's or a test's).
pub fn sign_request(
    body: RequestBody,
    keypair: &secp256k1::Keypair,
    nonce: u64,
) -> OffLedgerRequest {
    let sender_key = keypair.x_only_public_key().0.serialize();
    let digest = OffLedgerRequest::signing_hash(&body, &sender_key, nonce);
    let signature = secp256k1::SECP256K1
        .sign_schnorr_no_aux_rand(&secp256k1::Message::from_digest(digest.0), keypair);
    OffLedgerRequest {
        body,
        sender_key,
        nonce,
        signature: *signature.as_ref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_core::{Call, ChainId, Hname};

    /// The parallel check gives each request the answer the sequential one gives, in order.
    #[test]
    fn verifying_many_matches_verifying_each() {
        let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[9; 32]).unwrap();
        let requests: Vec<OffLedgerRequest> = (0..64u64)
            .map(|nonce| {
                let body = RequestBody {
                    chain: ChainId([1; 32]),
                    call: Call {
                        target: Hname::of("token"),
                        entry_point: Hname::of("transfer"),
                        args: nonce.to_le_bytes().to_vec(),
                        transfer_sompi: 0,
                    },
                    gas_budget: 1_000_000,
                    access_list: None,
                    time_lock: None,
                };
                let mut signed = sign_request(body, &key, nonce);
                if nonce % 3 == 0 {
                    signed.signature[5] ^= 1;
                }
                if nonce % 7 == 0 {
                    signed.nonce += 1;
                }
                signed
            })
            .collect();
        let one_by_one: Vec<_> = requests.iter().cloned().map(verify_signature).collect();
        let together = verify_signatures(requests);
        assert_eq!(together, one_by_one);
        assert!(together.iter().any(Result::is_ok) && together.iter().any(Result::is_err));
    }
}
