//! How the node writes agents in JSON: Kaspa addresses (`kaspasim:…`) for accounts and
//! `contract:<name>` for contracts on this chain.

use kaspa_addresses::{Address, Prefix, Version};
use wisp_core::json::AgentFormat;
use wisp_core::{AgentId, ChainId, ContractId, Hname};

/// The node's [`AgentFormat`].
pub struct KaspaAgents {
    /// Address prefix of the L1 network.
    pub prefix: Prefix,
    /// This chain (contracts without an explicit chain are on it).
    pub chain: ChainId,
    /// Known contract names, for printing and parsing `contract:<name>`.
    pub names: Vec<(Hname, String)>,
}

impl AgentFormat for KaspaAgents {
    fn parse(&self, text: &str) -> Option<AgentId> {
        if let Some(rest) = text.strip_prefix("contract:") {
            if rest.contains('@') {
                return AgentId::from_raw_string(text);
            }
            let hname = self
                .names
                .iter()
                .find(|(_, n)| n == rest)
                .map(|(h, _)| *h)
                .or_else(|| Hname::from_hex(rest))?;
            return Some(AgentId::Contract(ContractId {
                chain: self.chain,
                hname,
            }));
        }
        if let Ok(address) = Address::try_from(text) {
            if address.version == Version::PubKey {
                return Some(AgentId::Address(
                    address.payload.as_slice().try_into().ok()?,
                ));
            }
            return None;
        }
        AgentId::from_raw_string(text)
    }

    fn format(&self, agent: &AgentId) -> String {
        match agent {
            AgentId::Address(key) => Address::new(self.prefix, Version::PubKey, key).to_string(),
            AgentId::Contract(c) if c.chain == self.chain => {
                match self.names.iter().find(|(h, _)| *h == c.hname) {
                    Some((_, name)) => format!("contract:{name}"),
                    None => format!("contract:{}", c.hname),
                }
            }
            other => other.to_raw_string(),
        }
    }
}
