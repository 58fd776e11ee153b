//! The protocol: the VM limits and gas schedule every node of a chain must run, kept in chain
//! state and named by a version in every block header. It changes only through a governance
//! upgrade that states the block it activates at, so all nodes switch at the same block (the
//! activation rule of the Kaspa smart-contract design: behaviour selected by protocol version).
//!
//! Invariants:
//! - The protocol in force for block `n` is the committed one, or the scheduled upgrade if its
//!   activation block is `<= n`; it is written at the start of the activating block.
//! - A node whose software does not implement a version refuses to execute blocks under it
//!   ([`crate::ChainError::UnsupportedProtocol`]) instead of diverging.
//! - Governance can only schedule limits within [`check_vm_bounds`], so it cannot brick the chain.

use wisp_vm::VmConfig;

/// The newest protocol version this software implements (gas schedule of `wisp_vm::gas`, host
/// ABI of `wisp_core::abi`).
pub const SUPPORTED_PROTOCOL_VERSION: u32 = 1;

/// A protocol version and its VM limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Protocol {
    /// Version number, from 1; it never decreases. An upgrade that keeps it changes only the
    /// limits.
    pub version: u32,
    /// The VM limits in force.
    pub vm: VmConfig,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            version: 1,
            vm: VmConfig::default(),
        }
    }
}

/// A scheduled protocol change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Upgrade {
    /// The first block executed under `protocol`.
    pub activation_block: u64,
    /// The protocol from then on.
    pub protocol: Protocol,
}

fn within<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    low: T,
    high: T,
) -> Result<(), String> {
    if value < low || value > high {
        return Err(format!("{name} = {value} is outside {low}..={high}"));
    }
    Ok(())
}

/// Checks VM limits against the bounds governance may set: every limit positive and below a
/// ceiling that keeps one request's cost to a node bounded.
///
/// # Errors
/// The first limit out of bounds, named, with its allowed range.
pub fn check_vm_bounds(vm: &VmConfig) -> Result<(), String> {
    const MIB: usize = 1024 * 1024;
    within("max_memory_bytes", vm.max_memory_bytes, MIB, 256 * MIB)?;
    within(
        "max_request_memory_bytes",
        vm.max_request_memory_bytes,
        vm.max_memory_bytes,
        1024 * MIB,
    )?;
    within("max_call_depth", vm.max_call_depth, 1, 64)?;
    within("max_instances", vm.max_instances, 1, 256)?;
    within("max_recursion_depth", vm.max_recursion_depth, 64, 16_384)?;
    within("max_data_bytes", vm.max_data_bytes, 1024, MIB)?;
    within("max_key_bytes", vm.max_key_bytes, 32, 1024)?;
    within("max_value_bytes", vm.max_value_bytes, 1024, MIB)?;
    within("max_event_bytes", vm.max_event_bytes, 256, 256 * 1024)?;
    let v = &vm.validation;
    within("max_module_bytes", v.max_module_bytes, 64 * 1024, 4 * MIB)?;
    within(
        "max_memory_pages",
        v.max_memory_pages,
        1,
        (vm.max_memory_bytes / (64 * 1024)) as u64,
    )?;
    within("max_table_elements", v.max_table_elements, 0, 1 << 20)?;
    within("max_functions", v.max_functions, 1, 100_000)?;
    within(
        "max_locals_per_function",
        v.max_locals_per_function,
        1,
        4096,
    )?;
    within("max_globals", v.max_globals, 1, 4096)?;
    within("max_data_segments", v.max_data_segments, 1, 4096)?;
    within("max_element_segments", v.max_element_segments, 1, 4096)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limits_are_within_bounds() {
        assert_eq!(check_vm_bounds(&VmConfig::default()), Ok(()));
        let bad = VmConfig {
            max_call_depth: 0,
            ..VmConfig::default()
        };
        assert!(check_vm_bounds(&bad)
            .unwrap_err()
            .contains("max_call_depth"));
    }
}
