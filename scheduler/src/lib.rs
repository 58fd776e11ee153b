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

use std::collections::BTreeSet;
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

/// A set of regions that answers "does this region overlap any member?" without comparing it
/// with every member: members extending the region are found by an ordered range, members it
/// extends by looking up its prefixes at the lengths members have.
#[derive(Debug, Default)]
struct RegionSet {
    regions: BTreeSet<Vec<u8>>,
    lengths: BTreeSet<usize>,
}

impl RegionSet {
    fn insert(&mut self, region: &[u8]) {
        self.lengths.insert(region.len());
        self.regions.insert(region.to_vec());
    }

    fn overlaps(&self, region: &[u8]) -> bool {
        use std::ops::Bound;
        // A member that starts with `region` sorts at or right after it.
        if self
            .regions
            .range::<[u8], _>((Bound::Included(region), Bound::Unbounded))
            .next()
            .is_some_and(|m| m.starts_with(region))
        {
            return true;
        }
        // A member that `region` starts with has one of the members' lengths.
        self.lengths
            .range(..=region.len())
            .any(|&n| self.regions.contains(&region[..n]))
    }
}

/// A batch being built: the regions its members read and write. A footprint that conflicts
/// with no member may join ([`Batch::admits`]).
#[derive(Debug, Default)]
pub struct Batch {
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
    /// write, and none of its reads meets a member's write.
    pub fn admits(&self, f: &Footprint) -> bool {
        !f.writes
            .iter()
            .any(|w| self.reads.overlaps(w) || self.writes.overlaps(w))
            && !f.reads.iter().any(|r| self.writes.overlaps(r))
    }

    /// Adds a member.
    pub fn add(&mut self, f: &Footprint) {
        for r in &f.reads {
            self.reads.insert(r);
        }
        for w in &f.writes {
            self.writes.insert(w);
        }
        self.len += 1;
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
/// Work: O(total regions × (log n + distinct region lengths)).
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
            batch = Batch::new();
            continue;
        };
        if !batch.admits(f) {
            batches.push(start..i);
            start = i;
            batch = Batch::new();
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
