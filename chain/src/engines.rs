//! Compiled code: a wasmi engine with an LRU cache of prepared modules, replaced by a fresh
//! engine after a fixed number of compilations so compiled code cannot grow without bound.
//!
//! Invariants:
//! - Nothing here feeds a result: gas never depends on whether a module was cached, which
//!   engine compiled it, or when the engine was replaced (instantiation is charged by the
//!   module's size and shape, `PreparedModule::instantiate_gas`).
//! - One request (one [`crate::exec::Exec`]) uses one engine from start to end: an `Exec`
//!   holds its [`Runtime`], and modules of another generation are compiled again in it, never
//!   mixed into its store.
//! - wasmi keeps every compiled function for its engine's lifetime; a [`Runtime`] is dropped,
//!   with all its code, once the [`Engines`] has moved on and no `Exec` or module holds it.
//! - Simulations and views read the cache but never insert into it (a stranger's free calls
//!   cannot evict the chain's working set).

use crate::exec::Exec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wisp_core::Hash32;
use wisp_vm::{PreparedModule, ValidatedModule, Vm, VmConfig, VmError};

/// Most prepared modules kept per engine; past it the least recently used is dropped.
pub const MODULE_CACHE_ENTRIES: usize = 512;

/// Compilations after which the next request gets a fresh engine.
pub const ENGINE_COMPILATIONS: usize = 1_024;

/// An LRU map of prepared modules (or any clonable value, for tests) by code hash.
///
/// A hit only stamps the entry with a counter: the entries are ordered only when one must
/// go, by a scan for the oldest stamp, which follows a compilation (milliseconds) and costs
/// microseconds. Keeping them in order at every hit cost a B-tree removal and insertion per
/// call, writing lines the threads of a parallel batch share.
struct Lru<M = PreparedModule> {
    modules: HashMap<Hash32, (M, u64)>,
    tick: u64,
}

impl<M> Default for Lru<M> {
    fn default() -> Self {
        Lru {
            modules: HashMap::new(),
            tick: 0,
        }
    }
}

impl<M: Clone> Lru<M> {
    fn get(&mut self, hash: &Hash32) -> Option<M> {
        let (module, used) = self.modules.get_mut(hash)?;
        self.tick += 1;
        *used = self.tick;
        Some(module.clone())
    }

    fn insert(&mut self, hash: Hash32, module: M) {
        if self.get(&hash).is_some() {
            return;
        }
        while self.modules.len() >= MODULE_CACHE_ENTRIES {
            let Some(oldest) = self
                .modules
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(hash, _)| *hash)
            else {
                break;
            };
            self.modules.remove(&oldest);
        }
        self.tick += 1;
        self.modules.insert(hash, (module, self.tick));
    }
}

/// One engine generation: the VM and the modules it compiled.
pub(crate) struct Runtime {
    pub vm: Vm<Exec>,
    cache: Mutex<Lru>,
    compiled: AtomicUsize,
}

impl Runtime {
    fn new(config: VmConfig) -> Runtime {
        Runtime {
            vm: Vm::new(config),
            cache: Mutex::new(Lru::default()),
            compiled: AtomicUsize::new(0),
        }
    }

    /// The prepared module with this code hash, if this engine has it cached.
    pub fn cached(&self, code_hash: &Hash32) -> Option<PreparedModule> {
        self.cache.lock().ok()?.get(code_hash)
    }

    /// Keeps `module` (compiled by this engine) for later requests.
    pub fn insert(&self, module: PreparedModule) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(module.code_hash(), module);
        }
    }

    /// Compiles a validated module in this engine (counted towards its replacement).
    ///
    /// # Errors
    /// [`VmError::InvalidModule`] if wasmi rejects it.
    pub fn compile(&self, module: &ValidatedModule) -> Result<PreparedModule, VmError> {
        self.compiled.fetch_add(1, Ordering::Relaxed);
        self.vm.prepare(module)
    }
}

/// Most engines kept at once, one per VM configuration in use (chains of one process under
/// different protocol limits; a protocol upgrade).
const ENGINE_CONFIGS: usize = 4;

/// The current engine generation for each VM configuration in use, each replaced after
/// [`ENGINE_COMPILATIONS`] compilations.
pub(crate) struct Engines {
    current: Mutex<Vec<Arc<Runtime>>>,
    generations: AtomicUsize,
    /// Whether VMs reuse instances (`Vm::set_instance_reuse`), for engines made from now on too.
    reuse: std::sync::atomic::AtomicBool,
}

impl Engines {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Engines {
        Engines {
            current: Mutex::new(Vec::new()),
            generations: AtomicUsize::new(0),
            reuse: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Turns instance reuse on or off in every engine, current and future (results and gas
    /// are the same either way).
    pub fn set_instance_reuse(&self, on: bool) {
        self.reuse.store(on, Ordering::Relaxed);
        let current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        for runtime in current.iter() {
            runtime.vm.set_instance_reuse(on);
        }
    }

    /// The engine a new request under `config` uses: the current one for that configuration,
    /// or a fresh one if there is none yet or it has compiled [`ENGINE_COMPILATIONS`] modules.
    pub fn current(&self, config: &VmConfig) -> Arc<Runtime> {
        let mut current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let position = current.iter().position(|r| r.vm.config() == config);
        if let Some(i) = position {
            if current[i].compiled.load(Ordering::Relaxed) < ENGINE_COMPILATIONS {
                return current[i].clone();
            }
            current.remove(i);
        }
        if current.len() >= ENGINE_CONFIGS {
            current.remove(0);
        }
        let fresh = Arc::new(Runtime::new(*config));
        fresh
            .vm
            .set_instance_reuse(self.reuse.load(Ordering::Relaxed));
        self.generations.fetch_add(1, Ordering::Relaxed);
        current.push(fresh.clone());
        fresh
    }

    /// How many engines this process has started.
    pub fn generations(&self) -> usize {
        self.generations.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_drops_the_module_used_least_recently() {
        let hash = |i: usize| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Hash32(h)
        };
        let mut lru = Lru::<usize>::default();
        for i in 0..MODULE_CACHE_ENTRIES {
            lru.insert(hash(i), i);
        }
        // 0 is used again, so 1 is now the least recently used; inserting 0 again is a use.
        assert_eq!(lru.get(&hash(0)), Some(0));
        lru.insert(hash(2), 2);
        lru.insert(hash(MODULE_CACHE_ENTRIES), MODULE_CACHE_ENTRIES);
        assert_eq!(lru.modules.len(), MODULE_CACHE_ENTRIES);
        assert_eq!(lru.get(&hash(1)), None, "the least recently used went");
        lru.insert(hash(MODULE_CACHE_ENTRIES + 1), 0);
        assert_eq!(lru.get(&hash(3)), None, "then the next");
        for kept in [0, 2, 4, MODULE_CACHE_ENTRIES, MODULE_CACHE_ENTRIES + 1] {
            assert!(lru.get(&hash(kept)).is_some(), "{kept}");
        }
    }
}
