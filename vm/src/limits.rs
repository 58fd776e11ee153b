//! The resource limiter of a store running one request at a time: wasmi's per-memory and per-table limits plus
//! Wisp's cap on the memory of all instances of a request together.

use wasmi::{ResourceLimiter, StoreLimits};

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
        let allowed = self.store.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes += added;
            self.allocated_bytes = self.allocated_bytes.saturating_add(added);
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
