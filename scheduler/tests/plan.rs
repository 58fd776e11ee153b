//! The plan's guarantees, on random blocks: batches cover the requests in order, a barrier
//! runs alone, no two members of a batch conflict (checked by brute force against the
//! definition), and batches are as long as the rule allows (the request after a batch
//! conflicts with it or is a barrier), so the planner does not give parallelism away.

use proptest::prelude::*;
use wisp_scheduler::{conflict, plan, Footprint, Workers};

/// Regions over a tiny alphabet, so prefixes and overlaps are frequent.
fn region() -> impl Strategy<Value = Vec<u8>> + Clone {
    proptest::collection::vec(0u8..3, 0..4)
}

fn footprint() -> impl Strategy<Value = Option<Footprint>> {
    footprint_of(region())
}

/// Regions of up to 40 bytes over two letters: more lengths than a batch keeps prefix-hash
/// sets for, so the ordered fallback is planned with too.
fn long_region() -> impl Strategy<Value = Vec<u8>> + Clone {
    proptest::collection::vec(0u8..2, 0..40)
}

fn footprint_of(
    region: impl Strategy<Value = Vec<u8>> + Clone,
) -> impl Strategy<Value = Option<Footprint>> {
    prop_oneof![
        1 => Just(None),
        6 => (
            proptest::collection::vec(region.clone(), 0..4),
            proptest::collection::vec(region, 0..3)
        )
            .prop_map(|(reads, writes)| Some(Footprint { reads, writes })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn batches_are_ordered_conflict_free_and_maximal(
        block in proptest::collection::vec(footprint(), 0..40)
    ) {
        check_plan(&block)?;
    }

    #[test]
    fn batches_of_regions_of_many_lengths_are_ordered_conflict_free_and_maximal(
        block in proptest::collection::vec(footprint_of(long_region()), 0..40)
    ) {
        check_plan(&block)?;
    }
}

/// The plan of `block` covers it in order, runs barriers alone, puts no two conflicting
/// requests in a batch and ends a batch only at a conflict or a barrier.
fn check_plan(block: &[Option<Footprint>]) -> Result<(), TestCaseError> {
    let batches = plan(block);
    // In order, covering everything, none empty.
    let mut next = 0;
    for b in &batches {
        prop_assert_eq!(b.start, next);
        prop_assert!(b.end > b.start);
        next = b.end;
    }
    prop_assert_eq!(next, block.len());
    for (k, b) in batches.iter().enumerate() {
        // A barrier is alone.
        if b.clone().any(|i| block[i].is_none()) {
            prop_assert_eq!(b.len(), 1);
            continue;
        }
        // No two members conflict.
        for i in b.clone() {
            for j in b.clone().filter(|&j| j > i) {
                prop_assert!(
                    !conflict(block[i].as_ref().unwrap(), block[j].as_ref().unwrap()),
                    "{} and {} share batch {:?}",
                    i,
                    j,
                    b
                );
            }
        }
        // Maximal: the next request is a barrier or conflicts with a member.
        if let Some(after) = batches.get(k + 1).map(|n| n.start) {
            match &block[after] {
                None => {}
                Some(f) => prop_assert!(
                    b.clone().any(|i| conflict(block[i].as_ref().unwrap(), f)),
                    "request {} could have joined batch {:?}",
                    after,
                    b
                ),
            }
        }
    }
    Ok(())
}

/// Reads shared, writes apart: independent transfers form one batch; transfers that all
/// touch one hot account run one by one.
#[test]
fn independent_requests_share_a_batch_and_a_hot_key_serialises() {
    let transfer = |from: u8, to: u8| {
        Some(Footprint {
            reads: vec![b"code/token".to_vec()],
            writes: vec![vec![b'b', from], vec![b'b', to]],
        })
    };
    let independent: Vec<_> = (0..8).map(|i| transfer(2 * i, 2 * i + 1)).collect();
    assert_eq!(plan(&independent), vec![0..8]);
    let hot: Vec<_> = (0..4).map(|i| transfer(100, i)).collect();
    assert_eq!(plan(&hot), vec![0..1, 1..2, 2..3, 3..4]);
    // A barrier splits the block and runs alone.
    let mut mixed = independent[..3].to_vec();
    mixed.push(None);
    mixed.extend(independent[3..5].iter().cloned());
    assert_eq!(plan(&mixed), vec![0..3, 3..4, 4..6]);
}

/// The pool keeps the items' order in its results, whatever order they finish in.
#[test]
fn workers_return_results_in_item_order() {
    let workers = Workers::new(4).unwrap();
    assert_eq!(workers.threads(), 4);
    let out = workers.run((0..100u64).collect(), |i| {
        // Later items finish first.
        std::thread::sleep(std::time::Duration::from_micros(100 - i));
        i * i
    });
    assert_eq!(out, (0..100u64).map(|i| i * i).collect::<Vec<_>>());
}
