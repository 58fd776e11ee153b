//! Client operations over a node's JSON-RPC: what `wisp deploy`, `call`, `view`, `proof` and
//! the end-to-end tests do. Requests are encoded, signed and checked here, on the client side.

use anyhow::{anyhow, bail, Context, Result};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::time::Duration;
use wisp_core::hash::{from_hex, to_hex};
use wisp_core::interface::ContractInterface;
use wisp_core::{Call, ChainId, Hash32, Hname, LanePayload, RequestBody};

/// Default gas budget of `wisp call` and `wisp deploy`.
pub const DEFAULT_GAS_BUDGET: u64 = 20_000_000;

/// A connection to a node.
pub struct Client {
    http: HttpClient,
    url: String,
}

/// Options of [`Client::call`].
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// Sompi attached to the call.
    pub transfer_sompi: u64,
    /// Gas budget.
    pub gas_budget: u64,
    /// Send through Kaspa (a lane transaction) instead of off-ledger.
    pub on_ledger: bool,
    /// On-ledger only: sompi deposited into the sender's on-chain account with the transaction.
    pub deposit_sompi: u64,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            transfer_sompi: 0,
            gas_budget: DEFAULT_GAS_BUDGET,
            on_ledger: false,
            deposit_sompi: 0,
        }
    }
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", to_hex(bytes))
}

impl Client {
    /// Connects (lazily) to `url`, e.g. `http://127.0.0.1:8645`.
    ///
    /// # Errors
    /// If the URL is malformed.
    pub fn new(url: &str) -> Result<Client> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(120))
            .max_request_size(64 * 1024 * 1024)
            .max_response_size(64 * 1024 * 1024)
            .build(url)
            .with_context(|| format!("bad RPC URL {url}"))?;
        Ok(Client {
            http,
            url: url.to_string(),
        })
    }

    /// Calls a method with positional parameters.
    ///
    /// # Errors
    /// The node's error (with its message), or a connection error naming the URL.
    pub async fn rpc(
        &self,
        method: &str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<Value> {
        self.http
            .request(method, params)
            .await
            .map_err(|e| match e {
                jsonrpsee::core::ClientError::Call(obj) => {
                    let data = obj
                        .data()
                        .map(|d| format!(" {}", d.get()))
                        .unwrap_or_default();
                    anyhow!("{method}: {} (code {}){data}", obj.message(), obj.code())
                }
                other => anyhow!(
                    "{method} at {}: {other} (is `wisp devnet` running? set --rpc or WISP_RPC)",
                    self.url
                ),
            })
    }

    /// `wisp_chainInfo`.
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn chain_info(&self) -> Result<Value> {
        self.rpc("wisp_chainInfo", rpc_params![]).await
    }

    async fn chain_id(&self) -> Result<ChainId> {
        let info = self.chain_info().await?;
        info["chainId"]
            .as_str()
            .and_then(ChainId::from_hex)
            .ok_or_else(|| anyhow!("node returned no chain id"))
    }

    /// The interface of a contract (`null` if it has none).
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn interface(&self, contract: &str) -> Result<Option<ContractInterface>> {
        let v = self.rpc("wisp_getInterface", rpc_params![contract]).await?;
        Ok(serde_json::from_value(v).ok())
    }

    async fn encode(
        &self,
        contract: &str,
        function: &str,
        kind: &str,
        args: &Value,
    ) -> Result<(Hname, Vec<u8>)> {
        let v = self
            .rpc(
                "wisp_encodeArgs",
                rpc_params![contract, function, kind, args],
            )
            .await?;
        let hname = v["contract"]
            .as_str()
            .and_then(Hname::from_hex)
            .ok_or_else(|| anyhow!("node returned no hname"))?;
        let args = v["args"]
            .as_str()
            .and_then(from_hex)
            .ok_or_else(|| anyhow!("node returned no args"))?;
        Ok((hname, args))
    }

    /// Sends a call of `function` on `contract` signed by `keypair`; waits for and returns the
    /// receipt JSON (with `returnValue` decoded when the contract has an interface).
    ///
    /// # Errors
    /// If the node refuses the request (bad nonce, funds...) or no receipt arrives in 60 s.
    pub async fn call(
        &self,
        keypair: &secp256k1::Keypair,
        contract: &str,
        function: &str,
        args: &Value,
        options: &CallOptions,
    ) -> Result<Value> {
        let (target, args) = self.encode(contract, function, "entry", args).await?;
        let receipt = self
            .send_call(keypair, target, function, args, options)
            .await?;
        Ok(self.decorate(receipt, contract, function).await)
    }

    async fn decorate(&self, mut receipt: Value, contract: &str, function: &str) -> Value {
        if let Ok(Some(interface)) = self.interface(contract).await {
            if let Some(f) = interface.function(function, wisp_core::CallKind::Entry) {
                let data = receipt["returnData"]
                    .as_str()
                    .and_then(from_hex)
                    .unwrap_or_default();
                if receipt["status"] == "success" {
                    if let Ok(v) = wisp_core::json::decode_return(
                        f.returns.as_ref(),
                        &data,
                        &wisp_core::json::RawAgentFormat,
                    ) {
                        receipt["returnValue"] = v;
                    }
                }
            }
            if let Some(err) = receipt
                .get_mut("error")
                .filter(|e| e["level"] == "contract")
            {
                let code = err["code"].as_u64().unwrap_or(0) as u32;
                if let Some(name) = interface.error_name(code) {
                    err["name"] = Value::String(name.to_string());
                }
            }
        }
        receipt
    }

    /// Simulates a call of `function` on `contract` by the owner of `keypair` against the head
    /// state, committing nothing: the receipt it would get now, with its gas (`wisp_estimateGas`).
    ///
    /// # Errors
    /// If the arguments do not fit or the node cannot be reached.
    pub async fn estimate(
        &self,
        keypair: &secp256k1::Keypair,
        contract: &str,
        function: &str,
        args: &Value,
        options: &CallOptions,
    ) -> Result<Value> {
        let (target, args) = self.encode(contract, function, "entry", args).await?;
        let body = self.request_body(target, function, args, options).await?;
        let sender =
            wisp_core::AgentId::Address(keypair.x_only_public_key().0.serialize()).to_raw_string();
        let receipt = self
            .rpc(
                "wisp_estimateGas",
                rpc_params![sender, hex0x(&borsh::to_vec(&body)?)],
            )
            .await?;
        Ok(self.decorate(receipt, contract, function).await)
    }

    /// The request body for a call on this node's chain.
    async fn request_body(
        &self,
        target: Hname,
        function: &str,
        args: Vec<u8>,
        options: &CallOptions,
    ) -> Result<RequestBody> {
        Ok(RequestBody {
            chain: self.chain_id().await?,
            call: Call {
                target,
                entry_point: Hname::of(function),
                args,
                transfer_sompi: options.transfer_sompi,
            },
            gas_budget: options.gas_budget,
            access_list: None,
        })
    }

    /// Sends a call with pre-encoded arguments.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn send_call(
        &self,
        keypair: &secp256k1::Keypair,
        target: Hname,
        function: &str,
        args: Vec<u8>,
        options: &CallOptions,
    ) -> Result<Value> {
        let body = self.request_body(target, function, args, options).await?;
        let request_id = if options.on_ledger {
            self.send_on_ledger(keypair, vec![body], options.deposit_sompi)
                .await?
        } else {
            let sender = wisp_core::AgentId::Address(keypair.x_only_public_key().0.serialize());
            let nonce_info = self
                .rpc("wisp_getNonce", rpc_params![sender.to_raw_string()])
                .await?;
            let next: u64 = nonce_info["next"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let pending = nonce_info["pending"].as_u64().unwrap_or(0);
            let signed = wisp_chain::sign_request(body, keypair, next + pending);
            let bytes = borsh::to_vec(&signed)?;
            let v = self
                .rpc("wisp_sendRequest", rpc_params![hex0x(&bytes)])
                .await?;
            v["requestId"]
                .as_str()
                .and_then(Hash32::from_hex)
                .ok_or_else(|| anyhow!("node returned no request id"))?
        };
        self.wait_receipt(&request_id, Duration::from_secs(60))
            .await
    }

    /// Sends `requests` (and a deposit) in one Kaspa lane transaction paid by `keypair`'s L1
    /// coins; returns the id of the first request.
    ///
    /// # Errors
    /// If the L1 wallet lacks coins or kaspad refuses the transaction.
    pub async fn send_on_ledger(
        &self,
        keypair: &secp256k1::Keypair,
        requests: Vec<RequestBody>,
        deposit_sompi: u64,
    ) -> Result<Hash32> {
        let tx_id = self
            .send_lane(keypair, requests, deposit_sompi, None)
            .await?;
        Ok(wisp_core::request::on_ledger_request_id(&tx_id, 0))
    }

    /// Deposits `amount_sompi` of `keypair`'s L1 coins into the chain (peg in), credited to
    /// `beneficiary` (default: the sender) once Kaspa has accepted the transaction; waits for
    /// the deposit's receipt.
    ///
    /// # Errors
    /// If the L1 wallet lacks coins, kaspad refuses the transaction, or no receipt arrives in
    /// 60 s.
    pub async fn deposit(
        &self,
        keypair: &secp256k1::Keypair,
        amount_sompi: u64,
        beneficiary: Option<wisp_core::AgentId>,
    ) -> Result<Value> {
        if amount_sompi == 0 {
            bail!("a deposit needs an amount above 0 sompi");
        }
        let sender = wisp_core::AgentId::Address(keypair.x_only_public_key().0.serialize());
        let beneficiary = beneficiary.filter(|b| *b != sender);
        let tx_id = self
            .send_lane(keypair, vec![], amount_sompi, beneficiary)
            .await?;
        // A deposit for someone else is its own entry (index u32::MAX), the sender's own is
        // request 0 of the transaction (node/src/lane.rs).
        let index = if beneficiary.is_some() { u32::MAX } else { 0 };
        let id = wisp_core::request::on_ledger_request_id(&tx_id, index);
        self.wait_receipt(&id, Duration::from_secs(60)).await
    }

    /// Builds, signs and submits one lane transaction; returns its id.
    async fn send_lane(
        &self,
        keypair: &secp256k1::Keypair,
        requests: Vec<RequestBody>,
        deposit_sompi: u64,
        beneficiary: Option<wisp_core::AgentId>,
    ) -> Result<[u8; 32]> {
        let info = self.chain_info().await?;
        let l1_url = info["l1RpcUrl"]
            .as_str()
            .ok_or_else(|| anyhow!("the node did not say where its Kaspa node is"))?;
        let deposit_address = info["depositAddress"]
            .as_str()
            .ok_or_else(|| anyhow!("the node has no deposit address"))?;
        let maturity = info["l1CoinbaseMaturity"].as_u64().unwrap_or(1000);
        let address = kaspa_addresses::Address::try_from(deposit_address)
            .map_err(|e| anyhow!("deposit address {deposit_address}: {e}"))?;
        let l1 = wisp_l1::L1Client::connect(l1_url, Duration::from_secs(10)).await?;
        let wallet = wisp_l1::Wallet::new(*keypair, address.prefix);
        // The network's own parameters (mass rules), with the maturity the node reports.
        let mut params = kaspa_consensus_core::config::params::Params::from(l1.network_id());
        params.coinbase_maturity = maturity;
        let mut outputs = Vec::new();
        if deposit_sompi > 0 {
            outputs.push((
                kaspa_txscript::pay_to_address_script(&address),
                deposit_sompi,
            ));
        }
        let payload = LanePayload {
            requests,
            beneficiary,
        }
        .encode();
        let lane = kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID);
        let sent = wallet.send(&l1, &params, lane, payload, &outputs).await;
        l1.disconnect().await;
        Ok(sent?)
    }

    /// Polls `wisp_getReceipt` until the request is executed (mining on a devnet meanwhile).
    ///
    /// # Errors
    /// If `timeout` passes first.
    pub async fn wait_receipt(&self, id: &Hash32, timeout: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let receipt = self
                .rpc("wisp_getReceipt", rpc_params![hex0x(&id.0)])
                .await?;
            if !receipt.is_null() {
                return Ok(receipt);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no receipt for request 0x{} after {timeout:?}; the node may be stuck (see its log)", id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deploys module bytes under `name`, encoding `init_args` JSON with the module's own
    /// embedded interface; returns the receipt.
    ///
    /// # Errors
    /// If the module is invalid, the arguments do not fit, or the node refuses the request.
    pub async fn deploy(
        &self,
        keypair: &secp256k1::Keypair,
        name: &str,
        code: &[u8],
        init_args: &Value,
        options: &CallOptions,
    ) -> Result<Value> {
        let validated = wisp_vm::validate(code, &wisp_vm::ValidationLimits::default())
            .map_err(|e| anyhow!("{e}"))?;
        let init = match validated
            .interface()
            .and_then(|i| i.function("init", wisp_core::CallKind::Entry))
        {
            Some(f) => {
                let agents = LocalAgents {
                    prefix: self.prefix().await?,
                };
                wisp_core::json::encode_args(&f.params, init_args, &agents)
                    .map_err(|e| anyhow!("init args: {e}"))?
            }
            None if init_args.is_null() || init_args.as_array().is_some_and(Vec::is_empty) => {
                Vec::new()
            }
            None => bail!("the module has no embedded interface; pass no init args"),
        };
        let args = borsh::to_vec(&(name.to_string(), code.to_vec(), init))?;
        self.send_call(keypair, Hname::of("root"), "deploy", args, options)
            .await
    }

    /// The address prefix of the node's Kaspa network (from its deposit address).
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn prefix(&self) -> Result<kaspa_addresses::Prefix> {
        let info = self.chain_info().await?;
        let address = info["depositAddress"].as_str().unwrap_or("kaspasim:");
        Ok(kaspa_addresses::Address::try_from(address)
            .map(|a| a.prefix)
            .unwrap_or(kaspa_addresses::Prefix::Simnet))
    }

    /// Calls a view; returns `{value, data, gasUsed}`.
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn view(&self, contract: &str, function: &str, args: &Value) -> Result<Value> {
        self.rpc("wisp_callView", rpc_params![contract, function, args])
            .await
    }

    /// Fetches a proof of `key` at `block` (head if `None`) and verifies it locally.
    ///
    /// Checks, without trusting the node: the header's hash is recomputed from its fields and
    /// must equal the reported block hash; the sparse Merkle proof must lead from the key and
    /// value (or absence) to the header's state root.
    ///
    /// # Errors
    /// If the proof does not verify (the message says which check failed).
    pub async fn verified_proof(&self, key_hex: &str, block: Option<u64>) -> Result<Value> {
        let proof = self
            .rpc("wisp_getProof", rpc_params![key_hex, block])
            .await?;
        verify_proof_json(&proof)?;
        Ok(proof)
    }

    /// Checks, trusting Kaspa and not this node, that `header` is part of the chain whose id
    /// is `chain_id`: reads the chain's anchor state from the node, recomputes the anchor's
    /// P2SH address from it, and asks kaspad (at the node's `l1RpcUrl`) for a UTXO at that
    /// address carrying the chain's covenant id. Kaspa's covenant lineage gives that id only
    /// to the chain's anchors, so such a UTXO proves the anchored header hash; a `header` older
    /// than the anchored block is linked to it through the headers in between (`prev_hash`).
    /// Returns the anchored block's index.
    ///
    /// # Errors
    /// If `header` is newer than the anchored block, a link or the anchor does not check out,
    /// or kaspad cannot be reached.
    pub async fn anchored_on_kaspa(&self, header: &wisp_core::BlockHeader) -> Result<u64> {
        let info = self.rpc("wisp_chainInfo", rpc_params![]).await?;
        let a = &info["anchor"];
        let chain_id = info["chainId"]
            .as_str()
            .and_then(Hash32::from_hex)
            .ok_or_else(|| anyhow!("node reported no chain id"))?;
        if header.chain.0 != chain_id.0 {
            bail!("the header belongs to another chain");
        }
        let anchored = a["anchoredBlock"]
            .as_u64()
            .filter(|b| *b > 0)
            .ok_or_else(|| anyhow!("the chain has not anchored a block on Kaspa yet"))?;
        if header.index > anchored {
            bail!(
                "block {} is newer than the block anchored on Kaspa ({anchored}); use --block {anchored} or wait for the next anchor",
                header.index
            );
        }
        let hash32 = |field: &str| -> Result<[u8; 32]> {
            a[field]
                .as_str()
                .and_then(Hash32::from_hex)
                .map(|h| h.0)
                .ok_or_else(|| anyhow!("node reported no anchor.{field}"))
        };
        let anchored_hash = hash32("anchoredHeaderHash")?;
        // Link the header to the anchored one through the headers in between.
        let mut expected_prev = None;
        for index in (header.index + 1..=anchored).rev() {
            let h = header_from_json(&self.rpc("wisp_getBlock", rpc_params![index]).await?)?;
            if index == anchored && h.hash().0 != anchored_hash {
                bail!("the node's block {anchored} is not the block its anchor commits to");
            }
            if let Some(prev) = expected_prev {
                if h.hash() != prev {
                    bail!("block {index} does not link to block {}", index + 1);
                }
            }
            expected_prev = Some(h.prev_hash);
        }
        match expected_prev {
            Some(prev) if prev != header.hash() => {
                bail!("block {} does not link to the anchored block", header.index)
            }
            None if header.hash().0 != anchored_hash => {
                bail!(
                    "block {} is not the block the anchor commits to",
                    header.index
                )
            }
            _ => {}
        }
        let rules = wisp_settlement::AnchorRules {
            committee_key: hash32("committeeKey")?,
            max_fee_sompi: a["maxFeeSompi"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("node reported no anchor.maxFeeSompi"))?,
        };
        let state = wisp_settlement::AnchorState {
            block_index: anchored,
            header_hash: anchored_hash,
            outbox: hash32("outbox")?,
        };
        let prefix = self.prefix().await?;
        let address = rules.address(&state, prefix)?;
        let url = info["l1RpcUrl"]
            .as_str()
            .ok_or_else(|| anyhow!("node reported no l1RpcUrl"))?;
        let l1 = wisp_l1::L1Client::connect(url, std::time::Duration::from_secs(10)).await?;
        let utxos = l1.spendable_utxos(&address, 0).await;
        l1.disconnect().await;
        let covenant = kaspa_hashes::Hash::from_bytes(chain_id.0);
        if !utxos?.iter().any(|(_, e)| e.covenant_id == Some(covenant)) {
            bail!("Kaspa holds no anchor of this chain committing block {anchored} (at {address})");
        }
        Ok(anchored)
    }
}

/// A block header from its `wisp_getBlock` / `wisp_getProof` JSON form, checked to hash to
/// the `hash` the node reported.
///
/// # Errors
/// A missing field, or a header that does not hash to the reported hash.
pub fn header_from_json(b: &Value) -> Result<wisp_core::BlockHeader> {
    let h = |field: &str| -> Result<Hash32> {
        b[field]
            .as_str()
            .and_then(Hash32::from_hex)
            .ok_or_else(|| anyhow!("proof: block.{field} missing"))
    };
    let n = |field: &str| -> Result<u64> {
        b[field]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| b[field].as_u64())
            .ok_or_else(|| anyhow!("proof: block.{field} missing"))
    };
    let header = wisp_core::BlockHeader {
        chain: ChainId(h("chainId")?.0),
        index: n("index")?,
        prev_hash: h("prevHash")?,
        l1_block: h("l1Block")?,
        l1_daa_score: n("l1DaaScore")?,
        timestamp_ms: n("timestampMs")?,
        state_root: h("stateRoot")?,
        receipts_root: h("receiptsRoot")?,
        events_root: h("eventsRoot")?,
        request_count: n("requestCount")? as u32,
        gas_used: n("gasUsed")?,
        protocol_version: u32::try_from(n("protocolVersion")?)
            .map_err(|_| anyhow!("proof: block.protocolVersion out of range"))?,
    };
    if header.hash() != h("hash")? {
        bail!("the block header does not hash to the block hash the node reported");
    }
    Ok(header)
}

/// Verifies a `wisp_getProof` answer locally against the block header in it: the header
/// hashes to the reported block hash and the proof leads to its state root. Returns the
/// header (see [`Client::anchored_on_kaspa`] to check the header against Kaspa).
///
/// # Errors
/// Which check failed.
pub fn verify_proof_json(proof: &Value) -> Result<wisp_core::BlockHeader> {
    let header = header_from_json(&proof["block"])?;
    let key = proof["key"]
        .as_str()
        .and_then(from_hex)
        .ok_or_else(|| anyhow!("proof: key missing"))?;
    let value = match &proof["value"] {
        Value::Null => None,
        v => Some(
            v.as_str()
                .and_then(from_hex)
                .ok_or_else(|| anyhow!("proof: value is not hex"))?,
        ),
    };
    let bytes = proof["proof"]
        .as_str()
        .and_then(from_hex)
        .ok_or_else(|| anyhow!("proof: proof bytes missing"))?;
    wisp_state::verify_proof(
        header.state_root,
        &key,
        value.as_deref(),
        &wisp_state::StateProof(bytes),
    )?;
    Ok(header)
}

/// Agent parsing on the client: Kaspa addresses and raw forms.
pub struct LocalAgents {
    /// Address prefix.
    pub prefix: kaspa_addresses::Prefix,
}

impl wisp_core::json::AgentFormat for LocalAgents {
    fn parse(&self, text: &str) -> Option<wisp_core::AgentId> {
        if let Ok(a) = kaspa_addresses::Address::try_from(text) {
            return Some(wisp_core::AgentId::Address(
                a.payload.as_slice().try_into().ok()?,
            ));
        }
        wisp_core::AgentId::from_raw_string(text)
    }
    fn format(&self, agent: &wisp_core::AgentId) -> String {
        match agent {
            wisp_core::AgentId::Address(k) => wisp_l1::address_of(k, self.prefix).to_string(),
            other => other.to_raw_string(),
        }
    }
}
