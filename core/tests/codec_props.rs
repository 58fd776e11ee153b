//! Property tests of the wire codecs: round trips, and decoders of untrusted bytes never panic.

use proptest::prelude::*;
use wisp_core::interface::{Field, Type};
use wisp_core::json::{decode_fields, encode_args, RawAgentFormat};
use wisp_core::{
    AgentId, Call, ChainId, ContractId, Hname, LanePayload, OffLedgerRequest, RequestBody,
};

fn agent() -> impl Strategy<Value = AgentId> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(AgentId::Address),
        (any::<[u8; 32]>(), any::<u32>()).prop_map(|(c, h)| AgentId::Contract(ContractId {
            chain: ChainId(c),
            hname: Hname(h)
        })),
    ]
}

fn body() -> impl Strategy<Value = RequestBody> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(chain, target, ep, args, transfer_sompi, gas_budget)| RequestBody {
                chain: ChainId(chain),
                call: Call {
                    target: Hname(target),
                    entry_point: Hname(ep),
                    args,
                    transfer_sompi,
                },
                gas_budget,
                access_list: None,
                time_lock: None,
            },
        )
}

proptest! {
    #[test]
    fn lane_payloads_round_trip(bodies in proptest::collection::vec(body(), 0..5)) {
        let payload = LanePayload {
            requests: bodies,
            beneficiary: None,
        };
        prop_assert_eq!(LanePayload::decode(&payload.encode()), Some(payload));
    }

    #[test]
    fn lane_payload_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = LanePayload::decode(&bytes);
        let mut with_magic = wisp_core::LANE_PAYLOAD_MAGIC.to_vec();
        with_magic.extend(&bytes);
        let _ = LanePayload::decode(&with_magic);
    }

    #[test]
    fn signed_request_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = borsh::from_slice::<OffLedgerRequest>(&bytes);
    }

    #[test]
    fn json_args_round_trip(to in agent(), amount in any::<u128>(), memo in proptest::option::of("[a-z]{0,12}"), items in proptest::collection::vec(any::<u64>(), 0..6)) {
        let fields: Vec<Field> = [("to", "AgentId"), ("amount", "u128"), ("memo", "Option<String>"), ("items", "Vec<u64>")]
            .iter()
            .map(|(n, t)| Field { name: (*n).into(), ty: Type::parse(t).unwrap() })
            .collect();
        let expected = borsh::to_vec(&(to, amount, memo.clone(), items.clone())).unwrap();
        let decoded = decode_fields(&fields, &expected, &RawAgentFormat).unwrap();
        let encoded = encode_args(&fields, &decoded, &RawAgentFormat).unwrap();
        prop_assert_eq!(encoded, expected);
    }

    #[test]
    fn json_decoding_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let fields: Vec<Field> = [("a", "Vec<Option<(u8, AgentId)>>"), ("b", "String")]
            .iter()
            .map(|(n, t)| Field { name: (*n).into(), ty: Type::parse(t).unwrap() })
            .collect();
        let _ = decode_fields(&fields, &bytes, &RawAgentFormat);
    }
}
