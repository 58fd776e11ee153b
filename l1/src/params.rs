//! Simnet consensus parameters: what the devnet and tests change, and the override file that
//! hands the same parameters to a kaspad started as a separate process.

use crate::{L1Error, Result};
use kaspa_consensus_core::config::params::{OverrideParams, Params};
use kaspa_consensus_core::network::{NetworkId, NetworkType};
use std::path::Path;

/// Simnet consensus parameters with `coinbase_maturity` (in DAA score units; simnet's default
/// is 1,000) overridden.
pub fn simnet_params(coinbase_maturity: u64) -> Params {
    let mut params = Params::from(NetworkId::new(NetworkType::Simnet));
    params.coinbase_maturity = coinbase_maturity;
    params
}

/// Writes [`simnet_params`]`(coinbase_maturity)` to `path` as kaspad's
/// `--override-params-file` JSON, so a kaspad process (`kaspad --simnet
/// --override-params-file <path>`) runs the same consensus as the in-process simnet.
///
/// # Errors
/// [`L1Error::Simnet`] if the file cannot be written.
pub fn write_simnet_overrides(path: &Path, coinbase_maturity: u64) -> Result<()> {
    let overrides = OverrideParams::from(simnet_params(coinbase_maturity));
    let json = serde_json::to_string(&overrides).map_err(|e| L1Error::Simnet(e.to_string()))?;
    std::fs::write(path, json).map_err(|e| L1Error::Simnet(format!("{}: {e}", path.display())))
}
