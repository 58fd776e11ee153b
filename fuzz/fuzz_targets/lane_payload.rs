//! Guards `LanePayload::decode`, which every node runs on the payload of every Kaspa transaction
//! on the Wisp lane: anyone on L1 chooses these bytes. Decoding must never panic or allocate
//! without bound, and a payload that decodes must be canonical: re-encoding gives back the very
//! same bytes (so one set of requests has one encoding) and decodes to the same value again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wisp_core::LanePayload;

fuzz_target!(|data: &[u8]| {
    let Some(payload) = LanePayload::decode(data) else {
        return;
    };
    assert!(payload.requests.len() <= LanePayload::MAX_REQUESTS);
    let encoded = payload.encode();
    assert_eq!(
        encoded, data,
        "a lane payload decoded from non-canonical bytes"
    );
    assert_eq!(LanePayload::decode(&encoded).as_ref(), Some(&payload));
});
