//! Guards the borsh decoding of `OffLedgerRequest` (the `wisp_sendRequest` RPC body, signed by
//! anyone) and of `RequestBody` (`wisp_estimateGas`). Decoding must never panic or allocate
//! without bound; a value that decodes must re-encode to exactly the input bytes (request ids and
//! signing hashes are taken over the encoding, so it must be canonical) and decode again to itself.
#![no_main]

use borsh::BorshDeserialize;
use libfuzzer_sys::fuzz_target;
use wisp_core::{OffLedgerRequest, RequestBody};

fn round_trip<T>(data: &[u8])
where
    T: BorshDeserialize + borsh::BorshSerialize + PartialEq + std::fmt::Debug,
{
    let Ok(value) = borsh::from_slice::<T>(data) else {
        return;
    };
    let encoded = borsh::to_vec(&value).expect("encoding into a Vec cannot fail");
    assert_eq!(encoded, data, "decoded from non-canonical bytes");
    let again = borsh::from_slice::<T>(&encoded).expect("re-encoded value must decode");
    assert_eq!(again, value);
}

fuzz_target!(|data: &[u8]| {
    round_trip::<OffLedgerRequest>(data);
    round_trip::<RequestBody>(data);
    if let Ok(request) = borsh::from_slice::<OffLedgerRequest>(data) {
        // What the node computes right after decoding: must not panic.
        let _ = request.id();
        let _ = OffLedgerRequest::signing_hash(&request.body, &request.sender_key, request.nonce);
    }
});
