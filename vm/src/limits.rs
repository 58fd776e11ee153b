//! The resource limiter of a store running one request at a time: wasmi's per-memory and per-table limits plus
//! Wisp's cap on the memory of all instances of a request together.

use wasmi::{ResourceLimiter, StoreLimits};

/// Bytes in a WebAssembly page.
const WASM_PAGE_BYTES: usize = 65_536;

/// wasmi's per-memory and per-table limits, plus a cap on the memory of all instances of one
/// request together (defect 17 of the hardening review: 64 instances × 16 MiB each).
pub(crate) struct RequestLimits {
    pub store: StoreLimits,
    pub memory_bytes: usize,
    pub max_memory_bytes: usize,
    /// Memory this store allocated over its whole life, bytes (instances created and grown
    /// by every request it ran; a reused instance allocates nothing): a pooled store that
    /// holds too much is retired.
    pub allocated_bytes: usize,
    /// Gas owed for pages `memory.grow` granted since the gas was last settled
    /// ([`crate::gas::GROWN_PAGE_GAS`] each; `u64::MAX` once a grow was refused for gas).
    pub grow_owed_gas: u64,
    /// The request's gas left when it was last settled: what the pages grown since may cost
    /// at most.
    pub grow_credit_gas: u64,
    /// Whether memories being created now are an instantiation's initial memory (charged by
    /// `instantiate_gas`), not growth.
    pub instantiating: bool,
}

impl RequestLimits {
    /// Starts a request with `gas_limit`: nothing owed.
    pub fn start_request(&mut self, gas_limit: u64) {
        self.memory_bytes = 0;
        self.grow_owed_gas = 0;
        self.grow_credit_gas = gas_limit;
        self.instantiating = false;
    }
}

impl ResourceLimiter for RequestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let added = desired.saturating_sub(current);
        if self.memory_bytes.saturating_add(added) > self.max_memory_bytes {
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        // Growth (not an instance's initial memory) owes GROWN_PAGE_GAS a page: refused if
        // the request could not pay it with the gas it had when last settled.
        let owed = match self.instantiating {
            true => 0,
            false => ((added / WASM_PAGE_BYTES) as u64).saturating_mul(crate::gas::GROWN_PAGE_GAS),
        };
        if self.grow_owed_gas.saturating_add(owed) > self.grow_credit_gas {
            self.grow_owed_gas = u64::MAX;
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        let allowed = self.store.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes += added;
            self.allocated_bytes = self.allocated_bytes.saturating_add(added);
            self.grow_owed_gas += owed;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        self.store.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(
        &mut self,
        error: &wasmi::errors::MemoryError,
    ) -> Result<(), wasmi_core::LimiterError> {
        self.store.memory_grow_failed(error)
    }

    fn table_grow_failed(
        &mut self,
        error: &wasmi::errors::TableError,
    ) -> Result<(), wasmi_core::LimiterError> {
        self.store.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.store.instances()
    }

    fn tables(&self) -> usize {
        self.store.tables()
    }

    fn memories(&self) -> usize {
        self.store.memories()
    }
}
