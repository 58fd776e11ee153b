//! A wRPC (Borsh) client to kaspad: mining on simnet, UTXOs, submitting transactions, and the
//! lane follower over `get_virtual_chain_from_block_v2` (accepted order, with reorgs).

use crate::wallet::p2pk_key_of_script;
use crate::{L1Error, Result};
use kaspa_addresses::Address;
use kaspa_consensus_core::subnets::SubnetworkId;
use kaspa_consensus_core::tx::{Transaction, TransactionOutpoint, UtxoEntry};
use kaspa_hashes::Hash;
use kaspa_rpc_core::api::rpc::RpcApi;
use kaspa_rpc_core::{RpcDataVerbosityLevel, RpcTransaction};
use kaspa_wrpc_client::prelude::{ConnectOptions, ConnectStrategy};
use kaspa_wrpc_client::{KaspaRpcClient, WrpcEncoding};
use std::time::Duration;

/// A script public key as kaspad reports it: its version and script bytes.
///
/// Kaspa runs only version-0 scripts; a UTXO locked by a higher version is anyone-can-spend
/// (kaspa-txscript 2.1.0 accepts it unexecuted). So a key is read out of a script only when the
/// version is 0: otherwise anyone, a miner first, could pose as that key's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneScript {
    /// The script version (only 0 is executed by Kaspa).
    pub version: u16,
    /// The script bytes.
    pub script: Vec<u8>,
}

impl LaneScript {
    /// The x-only key of a version-0 pay-to-public-key script; `None` for any other script or
    /// any other version.
    pub fn p2pk_key(&self) -> Option<[u8; 32]> {
        if self.version != 0 {
            return None;
        }
        p2pk_key_of_script(&self.script)
    }
}

impl From<&kaspa_consensus_core::tx::ScriptPublicKey> for LaneScript {
    fn from(spk: &kaspa_consensus_core::tx::ScriptPublicKey) -> LaneScript {
        LaneScript {
            version: spk.version(),
            script: spk.script().to_vec(),
        }
    }
}

/// An output of a lane transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneOutput {
    /// Its position in the transaction's outputs (with the transaction id, its outpoint).
    pub index: u32,
    /// Its value, sompi.
    pub amount_sompi: u64,
    /// Who may spend it.
    pub script: LaneScript,
}

/// A transaction accepted by a chain block: on the Wisp lane, or off it paying the deposit
/// script the follower watches (`on_lane` says which).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneTx {
    /// The transaction id.
    pub tx_id: [u8; 32],
    /// Whether it is on the Wisp lane; `false`: a plain payment to the deposit script the
    /// follower was asked to watch.
    pub on_lane: bool,
    /// The script public key of the UTXO the first input spends (the sender's), if kaspad
    /// reported it.
    pub sender_script: Option<LaneScript>,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// The outputs, in order.
    pub outputs: Vec<LaneOutput>,
}

impl LaneTx {
    /// The x-only key that owns the first input (the request sender): only for a version-0
    /// pay-to-public-key script (see [`LaneScript`]).
    pub fn sender_key(&self) -> Option<[u8; 32]> {
        self.sender_script.as_ref().and_then(LaneScript::p2pk_key)
    }

    /// Sompi this transaction pays to outputs locked by exactly `script` (version and bytes;
    /// a chain's deposit script is version 0, which Kaspa executes).
    pub fn paid_to(&self, script: &LaneScript) -> u64 {
        self.outputs_to(script)
            .map(|o| o.amount_sompi)
            .fold(0u64, u64::saturating_add)
    }

    /// The outputs locked by exactly `script`, in order.
    pub fn outputs_to<'a>(
        &'a self,
        script: &'a LaneScript,
    ) -> impl Iterator<Item = &'a LaneOutput> + 'a {
        self.outputs.iter().filter(move |o| &o.script == script)
    }
}

/// A chain block added to the selected chain, with its accepted lane transactions in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    /// The block hash.
    pub hash: [u8; 32],
    /// Its DAA score.
    pub daa_score: u64,
    /// Its timestamp, ms.
    pub timestamp_ms: u64,
    /// Accepted transactions on the lane, and plain payments to the watched deposit key, in
    /// acceptance order.
    pub lane_txs: Vec<LaneTx>,
}

/// One answer of the follower.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtualChainUpdate {
    /// Chain blocks that left the selected chain (a reorg), tip first.
    pub removed: Vec<[u8; 32]>,
    /// Chain blocks that joined it, oldest first.
    pub added: Vec<ChainBlock>,
}

/// A connected wRPC client.
pub struct L1Client {
    client: KaspaRpcClient,
    url: String,
    network: kaspa_consensus_core::network::NetworkId,
}

impl L1Client {
    /// Connects to `url` (`ws://host:port`), retrying until `timeout`.
    ///
    /// # Errors
    /// [`L1Error::Rpc`] if no connection is made in time.
    pub async fn connect(url: &str, timeout: Duration) -> Result<L1Client> {
        let rpc_err = |m: String| L1Error::Rpc {
            url: url.to_string(),
            message: m,
        };
        let client = KaspaRpcClient::new(WrpcEncoding::Borsh, Some(url), None, None, None)
            .map_err(|e| rpc_err(e.to_string()))?;
        let options = ConnectOptions {
            block_async_connect: true,
            strategy: ConnectStrategy::Retry,
            url: None,
            connect_timeout: Some(Duration::from_millis(500)),
            retry_interval: Some(Duration::from_millis(50)),
        };
        match tokio::time::timeout(timeout, client.connect(Some(options))).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(rpc_err(format!("cannot connect: {e}"))),
            Err(_) => {
                let _ = client.disconnect().await;
                return Err(rpc_err(format!(
                    "no answer within {timeout:?}; is kaspad running with --rpclisten-borsh?"
                )));
            }
        }
        // The network comes from kaspad, never from configuration.
        let network = match client.get_server_info().await {
            Ok(info) => info.network_id,
            Err(e) => {
                let _ = client.disconnect().await;
                return Err(rpc_err(format!("get_server_info: {e}")));
            }
        };
        Ok(L1Client {
            client,
            url: url.to_string(),
            network,
        })
    }

    /// Asks kaspad to connect to the peer at `addr` (P2P) and keep the connection (needs
    /// `--unsaferpc`). Used to join two simnets that mined apart, which makes one reorg.
    ///
    /// # Errors
    /// [`L1Error::Rpc`] if kaspad refuses.
    pub async fn add_peer(&self, addr: std::net::SocketAddr) -> Result<()> {
        let peer = kaspa_utils::networking::NetAddress::from(addr);
        self.client
            .add_peer(peer.into(), true)
            .await
            .map_err(|e| self.err(e))
    }

    /// Bans P2P peers at `ip` (kaspad must run with `--unsaferpc`): kaspad drops its
    /// connections from that address and refuses new ones until [`L1Client::unban_peer`]. Used
    /// to split two simnets on one host, so that they mine apart.
    ///
    /// # Errors
    /// [`L1Error::Rpc`] if kaspad refuses (safe RPC mode, or a permanent connection to `ip`).
    pub async fn ban_peer(&self, ip: std::net::IpAddr) -> Result<()> {
        self.client
            .ban(kaspa_utils::networking::IpAddress::from(ip))
            .await
            .map_err(|e| self.err(e))
    }

    /// Lifts a ban set with [`L1Client::ban_peer`].
    ///
    /// # Errors
    /// [`L1Error::Rpc`] if `ip` is not banned or kaspad refuses.
    pub async fn unban_peer(&self, ip: std::net::IpAddr) -> Result<()> {
        self.client
            .unban(kaspa_utils::networking::IpAddress::from(ip))
            .await
            .map_err(|e| self.err(e))
    }

    /// The network kaspad runs (mainnet, testnet-N, simnet, devnet), as it reported at connect.
    pub fn network_id(&self) -> kaspa_consensus_core::network::NetworkId {
        self.network
    }

    /// The address prefix of that network (`kaspa`, `kaspatest`, `kaspasim`, `kaspadev`).
    pub fn prefix(&self) -> kaspa_addresses::Prefix {
        self.network.network_type().into()
    }

    fn err(&self, e: impl std::fmt::Display) -> L1Error {
        L1Error::Rpc {
            url: self.url.clone(),
            message: e.to_string(),
        }
    }

    /// The URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the connection.
    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
    }

    /// Mines one block on simnet paying the coinbase to `pay_to`; returns its hash.
    ///
    /// # Errors
    /// [`L1Error::Rejected`] if kaspad refuses the block.
    pub async fn mine_block(&self, pay_to: &Address) -> Result<[u8; 32]> {
        let template = self
            .client
            .get_block_template(pay_to.clone(), vec![])
            .await
            .map_err(|e| self.err(e))?;
        let header = kaspa_consensus_core::header::Header::try_from(&template.block.header)
            .map_err(|e| self.err(e))?;
        let hash = header.hash;
        let report = self
            .client
            .submit_block(template.block, false)
            .await
            .map_err(|e| self.err(e))?;
        if !report.report.is_success() {
            return Err(L1Error::Rejected {
                what: format!("block {hash}"),
                reason: format!("{:?}", report.report),
            });
        }
        Ok(hash.as_bytes())
    }

    /// The virtual DAA score.
    ///
    /// # Errors
    /// [`L1Error::Rpc`] on connection failure.
    pub async fn virtual_daa_score(&self) -> Result<u64> {
        Ok(self
            .client
            .get_block_dag_info()
            .await
            .map_err(|e| self.err(e))?
            .virtual_daa_score)
    }

    /// The genesis hash of kaspad's network (the follower's starting point).
    ///
    /// # Errors
    /// Never today (kept fallible for networks whose genesis must be asked for).
    pub async fn genesis_hash(&self) -> Result<[u8; 32]> {
        let params = kaspa_consensus_core::config::params::Params::from(self.network);
        Ok(params.genesis.hash.as_bytes())
    }

    /// Spendable UTXOs of `address` at the current virtual DAA score (immature coinbases left
    /// out).
    ///
    /// # Errors
    /// [`L1Error::Rpc`] on connection failure.
    pub async fn spendable_utxos(
        &self,
        address: &Address,
        coinbase_maturity: u64,
    ) -> Result<Vec<(TransactionOutpoint, UtxoEntry)>> {
        let daa = self.virtual_daa_score().await?;
        let entries = self
            .client
            .get_utxos_by_addresses(vec![address.clone()])
            .await
            .map_err(|e| self.err(e))?;
        let mut utxos: Vec<(TransactionOutpoint, UtxoEntry)> = entries
            .into_iter()
            .map(|e| {
                (
                    TransactionOutpoint::from(e.outpoint),
                    UtxoEntry::from(e.utxo_entry),
                )
            })
            .filter(|(_, u)| !u.is_coinbase || u.block_daa_score + coinbase_maturity <= daa)
            .collect();
        // Deterministic order: largest first, then by outpoint.
        utxos.sort_by(|a, b| {
            b.1.amount
                .cmp(&a.1.amount)
                .then_with(|| a.0.transaction_id.cmp(&b.0.transaction_id))
                .then(a.0.index.cmp(&b.0.index))
        });
        Ok(utxos)
    }

    /// Submits a signed transaction to the mempool; returns its id.
    ///
    /// # Errors
    /// [`L1Error::Rejected`] with kaspad's reason.
    pub async fn submit_transaction(&self, tx: &Transaction) -> Result<[u8; 32]> {
        let id = self
            .client
            .submit_transaction(RpcTransaction::from(tx), false)
            .await
            .map_err(|e| L1Error::Rejected {
                what: format!("transaction {}", tx.id()),
                reason: e.to_string(),
            })?;
        Ok(id.as_bytes())
    }

    /// Chain blocks added (and removed) since `from`, with their accepted transactions on
    /// `lane` and, when `deposit` is given, any other accepted transaction that pays an output
    /// locked by exactly that script (a plain payment to the chain's deposit address).
    ///
    /// # Errors
    /// [`L1Error::Rpc`] on connection failure or if `from` is unknown to the node.
    pub async fn virtual_chain_since(
        &self,
        from: [u8; 32],
        lane: &SubnetworkId,
        deposit: Option<&LaneScript>,
    ) -> Result<VirtualChainUpdate> {
        let response = self
            .client
            .get_virtual_chain_from_block_v2(
                Hash::from_bytes(from),
                Some(RpcDataVerbosityLevel::Full),
                None,
            )
            .await
            .map_err(|e| self.err(e))?;
        let removed = response
            .removed_chain_block_hashes
            .iter()
            .map(|h| h.as_bytes())
            .collect();
        let mut added = Vec::new();
        for (hash, accepted) in response
            .added_chain_block_hashes
            .iter()
            .zip(response.chain_block_accepted_transactions.iter())
        {
            let header = &accepted.chain_block_header;
            let mut lane_txs = Vec::new();
            for tx in &accepted.accepted_transactions {
                let on_lane = tx.subnetwork_id.as_ref() == Some(lane);
                // Off the lane, only plain payments to the deposit script matter: a deposit
                // is never dropped because its sender skipped the lane.
                let pays_deposit = || {
                    deposit.is_some_and(|d| {
                        tx.outputs.iter().any(|o| {
                            o.script_public_key.as_ref().is_some_and(|spk| {
                                spk.version() == d.version && spk.script() == d.script.as_slice()
                            })
                        })
                    })
                };
                if !on_lane && !pays_deposit() {
                    continue;
                }
                let Some(tx_id) = tx.verbose_data.as_ref().and_then(|v| v.transaction_id) else {
                    continue;
                };
                let script = |spk: &kaspa_consensus_core::tx::ScriptPublicKey| LaneScript {
                    version: spk.version(),
                    script: spk.script().to_vec(),
                };
                let sender_script = tx
                    .inputs
                    .first()
                    .and_then(|i| i.verbose_data.as_ref())
                    .and_then(|v| v.utxo_entry.as_ref())
                    .and_then(|u| u.script_public_key.as_ref())
                    .map(script);
                let outputs = tx
                    .outputs
                    .iter()
                    .enumerate()
                    .filter_map(|(index, o)| {
                        Some(LaneOutput {
                            index: u32::try_from(index).ok()?,
                            amount_sompi: o.value?,
                            script: script(o.script_public_key.as_ref()?),
                        })
                    })
                    .collect();
                lane_txs.push(LaneTx {
                    tx_id: tx_id.as_bytes(),
                    on_lane,
                    sender_script,
                    payload: tx.payload.clone().unwrap_or_default(),
                    outputs,
                });
            }
            added.push(ChainBlock {
                hash: hash.as_bytes(),
                daa_score: header.daa_score.unwrap_or(0),
                timestamp_ms: header.timestamp.unwrap_or(0),
                lane_txs,
            });
        }
        Ok(VirtualChainUpdate { removed, added })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p2pk(key: [u8; 32]) -> Vec<u8> {
        let mut s = vec![0x20];
        s.extend(key);
        s.push(0xac);
        s
    }

    /// Guards defect 3 of the hardening review: the follower read a sender key and deposits
    /// out of scripts of any version, but Kaspa treats version > 0 as anyone-can-spend, so a
    /// miner could pose as any sender or credit an unbacked deposit.
    #[test]
    fn only_version_zero_p2pk_scripts_name_a_key() {
        let key = [7u8; 32];
        let v0 = LaneScript {
            version: 0,
            script: p2pk(key),
        };
        let v1 = LaneScript {
            version: 1,
            script: p2pk(key),
        };
        assert_eq!(v0.p2pk_key(), Some(key));
        assert_eq!(v1.p2pk_key(), None);
        let tx = LaneTx {
            tx_id: [1; 32],
            on_lane: true,
            sender_script: Some(v1.clone()),
            payload: vec![],
            outputs: vec![
                LaneOutput {
                    index: 0,
                    amount_sompi: 5,
                    script: v0.clone(),
                },
                LaneOutput {
                    index: 1,
                    amount_sompi: 1_000,
                    script: v1.clone(),
                },
            ],
        };
        assert_eq!(tx.sender_key(), None);
        // A deposit script is matched with its version: the version-1 twin pays nothing.
        assert_eq!(tx.paid_to(&v0), 5);
        assert_eq!(tx.outputs_to(&v0).map(|o| o.index).collect::<Vec<_>>(), [0]);
        let tx = LaneTx {
            sender_script: Some(v0),
            ..tx
        };
        assert_eq!(tx.sender_key(), Some(key));
    }
}
