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
