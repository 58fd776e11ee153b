//! Planning parallel execution from declared read/write sets (Kaspa vProgs' model; Solana
//! Sealevel and Aptos Block-STM are the well-known relatives, the latter optimistic where this
//! is not: every access is declared up front, so nothing is ever re-executed).
//!
//! A block's requests keep their canonical order. [`plan`] cuts that order into consecutive
//! batches: a request joins the running batch if its footprint conflicts with no member's, and
//! a request without a footprint (no access list) is a barrier that runs alone. Members of one
//! batch touch disjoint state where it matters (two members may read the same key; no member
//! writes a key another reads or writes), so executing them at once and applying their writes
//! in canonical order gives exactly the sequential result. [`Workers`] runs a batch.
//!
//! Regions are byte prefixes of full state keys: a region covers every key that starts with
//! it, so an exact key is a region too (covering, at worst, longer keys that extend it — a
//! false conflict costs parallelism, never correctness).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

/// The state a request may touch: regions (byte prefixes of full state keys) it may read and
/// regions it may write (a write region also grants reads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Regions read.
    pub reads: Vec<Vec<u8>>,
    /// Regions written.
    pub writes: Vec<Vec<u8>>,
}

/// Whether two regions share a key: one is a prefix of the other.
pub fn overlap(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Whether two footprints conflict: a write of one meets a read or write of the other.
pub fn conflict(a: &Footprint, b: &Footprint) -> bool {
    let meets = |writes: &[Vec<u8>], other: &Footprint| {
        writes.iter().any(|w| {
            other
                .reads
                .iter()
                .chain(&other.writes)
                .any(|r| overlap(w, r))
        })
    };
    meets(&a.writes, b) || meets(&b.writes, a)
}

/// Keyed 64-bit hashes of byte strings: aHash's `RandomState`, whose keys come from the
/// operating system's random source once per process and differ for every [`Batch`] made
/// (one emptied for the next batch keeps its keys).
type Keys = ahash::RandomState;

/// Most region lengths a [`RegionSet`] keeps prefix-hash sets for (each as large as the set);
/// regions of other lengths are looked up in an ordered copy of the members, made when first
/// needed. Access lists choose their prefixes' lengths (up to `AccessList::MAX_PREFIX_BYTES`,
/// 256, after the contract's 4-byte hname), so without this cap a batch's memory would grow
/// with members × lengths.
const TRACKED_LENGTHS: usize = 16;

/// Hashes a `u64` that is already a keyed hash (uniform, and unknown to whoever chose the
/// bytes it was made from) as itself: hashing it again would only cost time. Only `u64`s are
/// hashed with it (`nohash-hasher` refuses anything else).
type PrehashedState = nohash_hasher::BuildNoHashHasher<u64>;

/// A set of keyed hashes of regions (see [`Keys`]).
type HashSet64 = HashSet<u64, PrehashedState>;

/// A set of regions that answers "does this region overlap any member?" in a few hash
/// lookups, without comparing it with every member: the members it extends are found by
/// hashing its prefixes at the lengths members have, the members extending it by its hash in
/// the set of members' prefixes at its length (made the first time that length is asked
/// about; past [`TRACKED_LENGTHS`] lengths, by a range in an ordered copy of the members).
///
/// Only 64-bit keyed hashes are compared, so two different regions may, with probability
/// about 2^-64 per pair, look equal: that can only report a conflict that is not there (a
/// false conflict costs parallelism, never correctness), never miss one, since every member
/// and prefix that is there is found. The keys are random, so a stranger choosing
/// access-list prefixes cannot aim collisions, and nothing observes the sets' order.
/// Memory: the members' bytes (twice once the ordered copy is made), and at most
/// [`TRACKED_LENGTHS`] + 1 hashes per member.
#[derive(Debug, Default)]
struct RegionSet {
    /// Hashes of the members, and where each hash's first member is in `bytes` (to tell a
    /// repeated member from a collision).
    members: HashMap<u64, Range<usize>, PrehashedState>,
    /// Members' lengths, ascending, without repeats.
    lengths: Vec<usize>,
    /// For up to [`TRACKED_LENGTHS`] lengths asked about: hashes of the first that many bytes
    /// of every longer member.
    extended: HashMap<usize, HashSet64, Keys>,
    /// The members in order, once a length beyond those `extended` tracks is asked about.
    ordered: Option<BTreeSet<Vec<u8>>>,
    /// The members, concatenated (each once), and where each ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RegionSet {
    fn insert(&mut self, keys: &Keys, region: &[u8]) {
        let hash = keys.hash_one(region);
        if let Some(first) = self.members.get(&hash) {
            if self.bytes.get(first.clone()) == Some(region) {
                return;
            }
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(region);
        self.ends.push(self.bytes.len());
        self.members.entry(hash).or_insert(start..self.bytes.len());
        if let Err(at) = self.lengths.binary_search(&region.len()) {
            self.lengths.insert(at, region.len());
        }
        for (&n, prefixes) in self.extended.iter_mut() {
            if n < region.len() {
                prefixes.insert(keys.hash_one(&region[..n]));
            }
        }
        if let Some(ordered) = &mut self.ordered {
            ordered.insert(region.to_vec());
        }
    }

    /// Empties the set, keeping its allocations (and the lengths it tracks prefixes at, their
    /// sets emptied too: each holds the prefixes of every member, of which there are none).
    fn clear(&mut self) {
        self.members.clear();
        self.lengths.clear();
        for prefixes in self.extended.values_mut() {
            prefixes.clear();
        }
        self.ordered = None;
        self.bytes.clear();
        self.ends.clear();
    }

    /// The members, each as a slice of `bytes`.
    fn each_member(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }

    /// Whether a member is a prefix of `region` (or equal to it), or extends it.
    fn overlaps(&mut self, keys: &Keys, region: &[u8]) -> bool {
        let mut longer = false;
        for &n in &self.lengths {
            if n > region.len() {
                longer = true;
                break;
            }
            if self.members.contains_key(&keys.hash_one(&region[..n])) {
                return true;
            }
        }
        if !longer {
            return false;
        }
        let n = region.len();
        if self.extended.len() < TRACKED_LENGTHS && !self.extended.contains_key(&n) {
            let mut prefixes = HashSet64::default();
            prefixes.extend(
                self.each_member()
                    .filter(|m| m.len() > n)
                    .map(|m| keys.hash_one(&m[..n])),
            );
            self.extended.insert(n, prefixes);
        }
        if let Some(prefixes) = self.extended.get(&n) {
            return prefixes.contains(&keys.hash_one(region));
        }
        // A longer member that starts with `region` sorts right after it.
        if self.ordered.is_none() {
            self.ordered = Some(self.each_member().map(<[u8]>::to_vec).collect());
        }
        self.ordered.as_ref().is_some_and(|ordered| {
            ordered
                .range::<[u8], _>((
                    std::ops::Bound::Excluded(region),
                    std::ops::Bound::Unbounded,
                ))
                .next()
                .is_some_and(|m| m.starts_with(region))
        })
    }
}

/// A batch being built: the regions its members read and write. A footprint that conflicts
/// with no member may join ([`Batch::admits`]).
#[derive(Debug, Default)]
pub struct Batch {
    keys: Keys,
    reads: RegionSet,
    writes: RegionSet,
    len: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Whether `f` conflicts with no member: none of its writes meets a member's read or
    /// write, and none of its reads meets a member's write. Work: a hash of each prefix of
    /// each region at the members' lengths, plus, the first time a region length is asked
    /// about, one pass over the members.
    pub fn admits(&mut self, f: &Footprint) -> bool {
        let keys = &self.keys;
        !f.writes
            .iter()
            .any(|w| self.reads.overlaps(keys, w) || self.writes.overlaps(keys, w))
            && !f.reads.iter().any(|r| self.writes.overlaps(keys, r))
    }

    /// Adds a member.
    pub fn add(&mut self, f: &Footprint) {
        for r in &f.reads {
            self.reads.insert(&self.keys, r);
        }
        for w in &f.writes {
            self.writes.insert(&self.keys, w);
        }
        self.len += 1;
    }

    /// Empties the batch for the next one, keeping its tables' allocations (a batch of a few
    /// hundred members grew them from nothing: 5% of planning's instructions, callgrind of
    /// `profile_block -- 2 30 independent`).
    pub fn clear(&mut self) {
        self.reads.clear();
        self.writes.clear();
        self.len = 0;
    }

    /// Members so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no member.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Cuts requests, in canonical order, into consecutive batches of requests that may run at
/// once (see the module docs). `footprints[i]` is request `i`'s footprint, `None` for a
/// barrier. The batches cover `0..footprints.len()` in order; a barrier is a batch of one.
/// Work: a few hash lookups per region (see [`Batch::admits`]).
pub fn plan(footprints: &[Option<Footprint>]) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut batch = Batch::new();
    for (i, footprint) in footprints.iter().enumerate() {
        let Some(f) = footprint else {
            // A barrier runs alone, after the batch before it.
            if i > start {
                batches.push(start..i);
            }
            batches.push(i..i + 1);
            start = i + 1;
            batch.clear();
            continue;
        };
        if !batch.admits(f) {
            batches.push(start..i);
            start = i;
            batch.clear();
        }
        batch.add(f);
    }
    if start < footprints.len() {
        batches.push(start..footprints.len());
    }
    batches
}

/// `f` of every item, on all cores (rayon's global pool), in the items' order: for
/// independent work ahead of execution, such as checking the signatures of many requests.
pub fn map_on_all_cores<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    use rayon::prelude::*;
    items.into_par_iter().map(f).collect()
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The worker pool could not be started.
    #[error("cannot start {threads} execution threads: {message}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// Why.
        message: String,
    },
}

/// A pool of execution threads (rayon) that runs the members of a batch at once.
pub struct Workers {
    pool: rayon::ThreadPool,
}

impl Workers {
    /// A pool of `threads` threads (0: one per core).
    ///
    /// # Errors
    /// [`SchedulerError::Pool`] if the operating system refuses the threads.
    pub fn new(threads: usize) -> Result<Workers, SchedulerError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("wisp-exec-{i}"))
            .build()
            .map_err(|e| SchedulerError::Pool {
                threads,
                message: e.to_string(),
            })?;
        Ok(Workers { pool })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` on one of the pool's threads, the caller waiting; [`Workers::run`] or
    /// [`Workers::in_place_scope`] called inside shares the work with the pool's other
    /// threads.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Runs `f` on the calling thread (one of the pool's, inside [`Workers::install`]) with a
    /// scope whose spawned work the pool's other threads take while `f` goes on, and returns
    /// once all of it has finished (the caller helps with what is left): for work that is
    /// handed out as it is found, such as a batch's members as they are planned.
    pub fn in_place_scope<'s, R>(&self, f: impl FnOnce(&rayon::Scope<'s>) -> R) -> R {
        self.pool.in_place_scope(f)
    }

    /// Wakes the pool's other threads ahead of work about to be handed out: each spins until
    /// the returned [`Warm`] is dropped or stopped, or `at_most` has passed, instead of
    /// sleeping, so the work does not wait for the operating system to schedule a sleeping
    /// thread. Call it from one of the pool's threads (inside [`Workers::install`]).
    ///
    /// A sleeping worker took 87–137 µs on average to start a batch handed to it on this
    /// project's 2-core virtual machines (`profile_block -- 2 100 independent`, three runs,
    /// timed from the hand-over to the start), against ~10 µs per request; 45–96 µs with the
    /// warm-up begun at the start of the block's execution (its own wake-up is what remains).
    pub fn warm_up(&self, at_most: std::time::Duration) -> Warm {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 1..self.threads() {
            let stop = stop.clone();
            self.pool.spawn(move || {
                // Timing only: nothing computed depends on it.
                let started = std::time::Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Acquire)
                    && started.elapsed() < at_most
                {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        Warm { stop }
    }

    /// Runs `f` on every item at once (as the pool allows); the results keep the items'
    /// order, whatever order they finish in.
    pub fn run<T, R, F>(&self, items: Vec<T>, f: F) -> Vec<R>
    where
        T: Send,
        R: Send,
        F: Fn(T) -> R + Sync + Send,
    {
        use rayon::prelude::*;
        self.pool
            .install(|| items.into_par_iter().map(f).collect::<Vec<R>>())
    }
}

/// Keeps the threads [`Workers::warm_up`] woke spinning until it is dropped or
/// [`Warm::stop`]ped.
pub struct Warm {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Warm {
    /// Lets the spinning threads go: to take the work just handed out, or to sleep.
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two jobs that can only finish together (each waits for the other at a barrier), on a
    /// pool of two: they finish only if no thread is still spinning. Run on a thread of its
    /// own, so a spinner that never stops fails the test instead of hanging it.
    fn both_threads_free(workers: std::sync::Arc<Workers>) -> bool {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let barrier = std::sync::Barrier::new(2);
            workers.install(|| rayon::join(|| barrier.wait(), || barrier.wait()));
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_ok()
    }

    #[test]
    fn warmed_threads_go_back_to_work_when_stopped_or_at_the_limit() {
        let workers = std::sync::Arc::new(Workers::new(2).unwrap());
        // Stopped by dropping the guard, however long it allowed.
        let warm = workers.install(|| workers.warm_up(std::time::Duration::MAX));
        drop(warm);
        assert!(both_threads_free(workers.clone()));
        // Never stopped: the limit ends the spinning.
        let warm = workers.install(|| workers.warm_up(std::time::Duration::from_millis(5)));
        std::mem::forget(warm);
        assert!(both_threads_free(workers));
    }

    /// Regions of more lengths than `extended` tracks: the ordered fallback answers as the
    /// definition does, and the prefix-hash sets stop at the cap.
    #[test]
    fn many_region_lengths_fall_back_to_the_ordered_members() {
        let region = |n: usize| vec![7u8; n];
        let mut set = RegionSet::default();
        let keys = Keys::default();
        set.insert(&keys, &region(60));
        set.insert(&keys, &[1, 2, 3]);
        for n in 1..40 {
            // Every shorter run of 7s is a prefix of the member.
            assert!(set.overlaps(&keys, &region(n)), "length {n}");
            assert!(!set.overlaps(&keys, &[7u8, 8]), "length {n}");
        }
        assert!(set.extended.len() <= TRACKED_LENGTHS);
        assert!(set.ordered.is_some());
        // Members added after the fallback was made are found through it too.
        set.insert(&keys, &[9u8; 50]);
        assert!(set.overlaps(&keys, &[9u8; 45]));
        assert!(!set.overlaps(&keys, &[9u8, 9, 8]));
        assert!(set.overlaps(&keys, &[1, 2, 3, 4]));
        assert!(!set.overlaps(&keys, &[1, 3]));
    }
}
