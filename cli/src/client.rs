//! Client operations over a node's JSON-RPC: what `wisp deploy`, `call`, `view`, `proof` and
//! the end-to-end tests do. Requests are encoded, signed and checked here, on the client side.

use anyhow::{anyhow, bail, Context, Result};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;
use std::time::Duration;
use wisp_api::{Bytes, ChainInfo, WispApiClient};
use wisp_core::hash::from_hex;
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
    /// Off-ledger only: simulate the call first and declare the access list it observed, so the
    /// chain can run it in parallel with others (`wisp_simulateRequest`).
    pub declare_access: bool,
    /// Earliest moment the request may run (its time lock's `not_before`).
    pub not_before: Option<When>,
    /// First moment the request may no longer run (its time lock's `expires_at`).
    pub expires_at: Option<When>,
}

/// A moment for a time lock as given on the command line: `daa:<score>`, `daa:+<scores>`,
/// `time:<unix ms>` or `time:+<duration>` (`30s`, `500ms`, `5m`, `2h`). Relative moments count
/// from the DAA score the node last followed on Kaspa, or from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// A DAA score.
    DaaScore(u64),
    /// This many DAA scores after the node's latest.
    DaaFromNow(u64),
    /// An L1 timestamp, ms since the Unix epoch.
    TimestampMs(u64),
    /// This many ms from now.
    MsFromNow(u64),
}

impl std::str::FromStr for When {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<When, String> {
        let usage = || {
            format!("`{text}` is not a moment: use daa:<score>, daa:+<scores>, time:<unix ms> or time:+<duration> (30s, 500ms, 5m, 2h)")
        };
        let (clock, value) = text.split_once(':').ok_or_else(usage)?;
        let (relative, value) = match value.strip_prefix('+') {
            Some(v) => (true, v),
            None => (false, value),
        };
        match (clock, relative) {
            ("daa", false) => value.parse().map(When::DaaScore).map_err(|_| usage()),
            ("daa", true) => value.parse().map(When::DaaFromNow).map_err(|_| usage()),
            ("time", false) => value.parse().map(When::TimestampMs).map_err(|_| usage()),
            ("time", true) => {
                let split = value
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(value.len());
                let (n, unit) = value.split_at(split);
                let n: u64 = n.parse().map_err(|_| usage())?;
                let ms = match unit {
                    "ms" => 1,
                    "s" | "" => 1_000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    _ => return Err(usage()),
                };
                Ok(When::MsFromNow(n.saturating_mul(ms)))
            }
            _ => Err(usage()),
        }
    }
}

impl When {
    /// The moment on Kaspa's clock, counting relative moments from `daa_score` and `now_ms`.
    pub fn resolve(self, daa_score: u64, now_ms: u64) -> wisp_core::L1Time {
        use wisp_core::L1Time;
        match self {
            When::DaaScore(s) => L1Time::DaaScore(s),
            When::DaaFromNow(n) => L1Time::DaaScore(daa_score.saturating_add(n)),
            When::TimestampMs(t) => L1Time::TimestampMs(t),
            When::MsFromNow(n) => L1Time::TimestampMs(now_ms.saturating_add(n)),
        }
    }
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            transfer_sompi: 0,
            gas_budget: DEFAULT_GAS_BUDGET,
            on_ledger: false,
            deposit_sompi: 0,
            declare_access: true,
            not_before: None,
            expires_at: None,
        }
    }
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
        let answer = self.http.request(method, params).await;
        answer.map_err(|e| self.error(method, e))
    }

    /// The typed API: `wisp-api`'s generated client methods (`WispApiClient`,
    /// `DevApiClient`) on this connection. Map their errors with [`Client::typed`].
    pub fn api(&self) -> &HttpClient {
        &self.http
    }

    /// Awaits a typed API call, turning its error into one that names the method and says
    /// what to do.
    ///
    /// # Errors
    /// The node's error (with its message and data), or a connection error naming the URL.
    pub async fn typed<T>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<T, jsonrpsee::core::ClientError>>,
    ) -> Result<T> {
        call.await.map_err(|e| self.error(method, e))
    }

    fn error(&self, method: &str, e: jsonrpsee::core::ClientError) -> anyhow::Error {
        match e {
            jsonrpsee::core::ClientError::Call(obj) => {
                let data = obj
                    .data()
                    .map(|d| format!(" {}", d.get()))
                    .unwrap_or_default();
                anyhow!("{method}: {} (code {}){data}", obj.message(), obj.code())
            }
            jsonrpsee::core::ClientError::ParseError(e) => anyhow!(
                "{method}: the node's answer does not match this wisp's API ({e}); are the node and the command the same version?"
            ),
            other => anyhow!(
                "{method} at {}: {other} (is `wisp devnet` running? set --rpc or WISP_RPC)",
                self.url
            ),
        }
    }

    /// `wisp_chainInfo`.
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn chain_info(&self) -> Result<ChainInfo> {
        self.typed("wisp_chainInfo", self.http.chain_info()).await
    }

    async fn chain_id(&self) -> Result<ChainId> {
        Ok(ChainId(self.chain_info().await?.chain_id.0))
    }

    /// The interface of a contract (`null` if it has none).
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn interface(&self, contract: &str) -> Result<Option<ContractInterface>> {
        self.typed(
            "wisp_getInterface",
            self.http.get_interface(contract.to_string()),
        )
        .await
    }

    async fn encode(
        &self,
        contract: &str,
        function: &str,
        kind: &str,
        args: &Value,
    ) -> Result<(Hname, Vec<u8>)> {
        let encoded = self
            .typed(
                "wisp_encodeArgs",
                self.http.encode_args(
                    contract.to_string(),
                    function.to_string(),
                    kind.to_string(),
                    args.clone(),
                ),
            )
            .await?;
        let hname = Hname::from_hex(&encoded.contract)
            .ok_or_else(|| anyhow!("the node returned a bad hname `{}`", encoded.contract))?;
        Ok((hname, encoded.args.0))
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
    /// state, committing nothing: the receipt it would get now, with its gas, and the access
    /// list it needs (`wisp_simulateRequest`).
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
        let simulation = self.simulate(keypair, &body).await?;
        Ok(self
            .decorate(serde_json::to_value(simulation)?, contract, function)
            .await)
    }

    /// `wisp_simulateRequest` of `body` sent by `keypair`'s owner.
    async fn simulate(
        &self,
        keypair: &secp256k1::Keypair,
        body: &RequestBody,
    ) -> Result<wisp_api::Simulation> {
        let sender =
            wisp_core::AgentId::Address(keypair.x_only_public_key().0.serialize()).to_raw_string();
        self.typed(
            "wisp_simulateRequest",
            self.http
                .simulate_request(sender, Bytes(borsh::to_vec(body)?)),
        )
        .await
    }

    /// The access list `body` needs when `keypair`'s owner sends it now: recorded by a
    /// simulation; `None` if the simulated call fails or its accesses do not fit a list.
    ///
    /// # Errors
    /// If the node cannot be reached or returns a malformed list.
    pub async fn observed_access_list(
        &self,
        keypair: &secp256k1::Keypair,
        body: &RequestBody,
    ) -> Result<Option<wisp_core::AccessList>> {
        let simulation = self.simulate(keypair, body).await?;
        if simulation.receipt.error.is_some() {
            return Ok(None);
        }
        simulation
            .access_list
            .as_ref()
            .map(|l| {
                wisp_core::AccessList::try_from(l)
                    .map_err(|e| anyhow!("the node's access list: {e}"))
            })
            .transpose()
    }

    /// The request body for a call on this node's chain.
    async fn request_body(
        &self,
        target: Hname,
        function: &str,
        args: Vec<u8>,
        options: &CallOptions,
    ) -> Result<RequestBody> {
        let time_lock = match (options.not_before, options.expires_at) {
            (None, None) => None,
            (not_before, expires_at) => {
                let info = self.chain_info().await?;
                let daa = info.l1_followed_daa_score.0.max(info.head.l1_daa_score.0);
                // The CLI's clock only places a relative moment; the chain judges by Kaspa's.
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default()
                    .max(info.head.timestamp_ms.0);
                let lock = wisp_core::TimeLock {
                    not_before: not_before.map(|w| w.resolve(daa, now_ms)),
                    expires_at: expires_at.map(|w| w.resolve(daa, now_ms)),
                };
                lock.validate()
                    .map_err(|why| anyhow!("--not-before/--expires-at: {why}"))?;
                Some(lock)
            }
        };
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
            time_lock,
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
        let mut body = self.request_body(target, function, args, options).await?;
        if options.declare_access && !options.on_ledger {
            body.access_list = self.observed_access_list(keypair, &body).await?;
        }
        let request_id = if options.on_ledger {
            self.send_on_ledger(keypair, vec![body], options.deposit_sompi)
                .await?
        } else {
            let sender = wisp_core::AgentId::Address(keypair.x_only_public_key().0.serialize());
            let nonce = self
                .typed("wisp_getNonce", self.http.get_nonce(sender.to_raw_string()))
                .await?;
            let signed = wisp_chain::sign_request(body, keypair, nonce.next.0 + nonce.pending);
            let sent = self
                .typed(
                    "wisp_sendRequest",
                    self.http.send_request(Bytes(borsh::to_vec(&signed)?)),
                )
                .await?;
            sent.request_id.into()
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
        let maturity = info.l1_coinbase_maturity;
        let address = kaspa_addresses::Address::try_from(info.deposit_address.as_str())
            .map_err(|e| anyhow!("deposit address {}: {e}", info.deposit_address))?;
        let l1 = wisp_l1::L1Client::connect(&info.l1_rpc_url, Duration::from_secs(10)).await?;
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
    ///
    /// While the request waits in the chain's time-lock queue the timeout does not run: it
    /// says so once on stderr and waits until the request is due (Ctrl-C leaves it waiting on
    /// the chain; `wisp receipt <id>` later).
    pub async fn wait_receipt(&self, id: &Hash32, timeout: Duration) -> Result<Value> {
        let mut deadline = tokio::time::Instant::now() + timeout;
        let mut told = false;
        let mut polls = 0u64;
        loop {
            let receipt = self
                .typed("wisp_getReceipt", self.http.get_receipt((*id).into()))
                .await?;
            if let Some(receipt) = receipt {
                return Ok(serde_json::to_value(receipt)?);
            }
            polls += 1;
            if polls % 10 == 1 {
                if let Some(waiting) = self.time_locked(id).await? {
                    if !told {
                        eprintln!("request 0x{id} waits in the chain's time-lock queue until {waiting}; waiting for it (Ctrl-C leaves it queued; `wisp receipt 0x{id}` later)");
                        told = true;
                    }
                    deadline = tokio::time::Instant::now() + timeout;
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no receipt for request 0x{} after {timeout:?}; the node may be stuck (see its log)", id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// When request `id` comes due, if it waits in the chain's time-lock queue
    /// (`blocklog.time_locked`), as text: `DAA score 1234` or `L1 time 1700000000000 ms`.
    ///
    /// # Errors
    /// If the node cannot be reached.
    pub async fn time_locked(&self, id: &Hash32) -> Result<Option<String>> {
        let answer = self
            .view(
                "blocklog",
                "time_locked",
                &serde_json::json!([format!("0x{id}")]),
            )
            .await?;
        let value = &answer["value"];
        if value.is_null() {
            return Ok(None);
        }
        let clock = value[0].as_str().unwrap_or_default();
        let due = value[1]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value[1].to_string());
        Ok(Some(match clock {
            "daa_score" => format!("DAA score {due}"),
            _ => format!("L1 time {due} ms"),
        }))
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
        let init = self
            .special_args(
                code,
                "init",
                init_args,
                "the module has no embedded interface; pass no init args",
            )
            .await?;
        let args = borsh::to_vec(&(name.to_string(), code.to_vec(), init))?;
        self.send_call(keypair, Hname::of("root"), "deploy", args, options)
            .await
    }

    /// The borsh arguments of `code`'s own `entry` (`init` or `migrate`) from JSON `args`, by
    /// its embedded interface; without that entry in the interface, only no arguments are
    /// accepted (else `missing` is the error).
    async fn special_args(
        &self,
        code: &[u8],
        entry: &str,
        args: &Value,
        missing: &str,
    ) -> Result<Vec<u8>> {
        let validated = wisp_vm::validate(code, &wisp_vm::ValidationLimits::default())
            .map_err(|e| anyhow!("{e}"))?;
        match validated
            .interface()
            .and_then(|i| i.function(entry, wisp_core::CallKind::Entry))
        {
            Some(f) => {
                let agents = LocalAgents {
                    prefix: self.prefix().await?,
                };
                wisp_core::json::encode_args(&f.params, args, &agents)
                    .map_err(|e| anyhow!("{entry} args: {e}"))
            }
            None if args.is_null() || args.as_array().is_some_and(Vec::is_empty) => Ok(Vec::new()),
            None => bail!("{missing}"),
        }
    }

    /// Replaces `contract`'s code with `code` (`root.upgrade`, the contract's admin only),
    /// encoding `migrate_args` JSON with the new module's own interface; its `migrate` runs in
    /// the same request. `contract` is a name or an hname (`0x` + 8 hex digits). Returns the
    /// receipt.
    ///
    /// # Errors
    /// If the module is invalid, arguments are given for code without `migrate` or do not fit
    /// it, or the node refuses the request.
    pub async fn upgrade(
        &self,
        keypair: &secp256k1::Keypair,
        contract: &str,
        code: &[u8],
        migrate_args: &Value,
        options: &CallOptions,
    ) -> Result<Value> {
        let target = Hname::from_hex(contract).unwrap_or_else(|| Hname::of(contract));
        let migrate = self
            .special_args(
                code,
                "migrate",
                migrate_args,
                "the new code has no `migrate` entry point in its interface; pass no migrate args",
            )
            .await?;
        let args = borsh::to_vec(&(target, code.to_vec(), migrate))?;
        self.send_call(keypair, Hname::of("root"), "upgrade", args, options)
            .await
    }

    /// The address prefix of the node's Kaspa network (from its deposit address).
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn prefix(&self) -> Result<kaspa_addresses::Prefix> {
        let info = self.chain_info().await?;
        kaspa_addresses::Address::try_from(info.deposit_address.as_str())
            .map(|a| a.prefix)
            .map_err(|e| anyhow!("the node's deposit address {}: {e}", info.deposit_address))
    }

    /// Calls a view; returns `{value, data, gasUsed}`.
    ///
    /// # Errors
    /// As [`Client::rpc`].
    pub async fn view(&self, contract: &str, function: &str, args: &Value) -> Result<Value> {
        let result = self
            .typed(
                "wisp_callView",
                self.http.call_view(
                    contract.to_string(),
                    function.to_string(),
                    Some(args.clone()),
                ),
            )
            .await?;
        Ok(serde_json::to_value(result)?)
    }

    /// Fetches a proof of the state key `key` at `block` (head if `None`) and verifies it
    /// locally ([`verify_proof`]); returns the proof and its checked block header.
    ///
    /// # Errors
    /// If the node cannot be reached, or the proof does not verify (the message says which
    /// check failed).
    pub async fn verified_proof(
        &self,
        key: &[u8],
        block: Option<u64>,
    ) -> Result<(wisp_api::Proof, wisp_core::BlockHeader)> {
        let proof = self
            .typed(
                "wisp_getProof",
                self.http.get_proof(Bytes(key.to_vec()), block),
            )
            .await?;
        let header = verify_proof(&proof)?;
        Ok((proof, header))
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
        let info = self.chain_info().await?;
        let a = &info.anchor;
        if header.chain.0 != info.chain_id.0 {
            bail!("the header belongs to another chain");
        }
        let anchored = a
            .anchored_block
            .filter(|b| *b > 0)
            .ok_or_else(|| anyhow!("the chain has not anchored a block on Kaspa yet"))?;
        if header.index > anchored {
            bail!(
                "block {} is newer than the block anchored on Kaspa ({anchored}); use --block {anchored} or wait for the next anchor",
                header.index
            );
        }
        let (anchored_hash, outbox) = match (a.anchored_header_hash, a.outbox) {
            (Some(h), Some(o)) => (h.0, o.0),
            _ => bail!("the node reported no anchored header hash or outbox"),
        };
        // Link the header to the anchored one through the headers in between.
        let mut expected_prev = None;
        for index in (header.index + 1..=anchored).rev() {
            let block = self
                .typed(
                    "wisp_getBlock",
                    self.http
                        .get_block(Some(wisp_api::BlockId::Index(index.into()))),
                )
                .await?
                .ok_or_else(|| anyhow!("the node has no block {index}"))?;
            let h = header_of(&block)?;
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
            max_fee_sompi: a.max_fee_sompi.0,
        };
        let state = wisp_settlement::AnchorState {
            block_index: anchored,
            header_hash: anchored_hash,
            outbox,
            committee_key: a.committee_key.0,
        };
        let prefix = kaspa_addresses::Address::try_from(info.deposit_address.as_str())
            .map(|a| a.prefix)
            .map_err(|e| anyhow!("the node's deposit address {}: {e}", info.deposit_address))?;
        let address = rules.address(&state, prefix)?;
        let l1 = wisp_l1::L1Client::connect(&info.l1_rpc_url, std::time::Duration::from_secs(10))
            .await?;
        let utxos = l1.spendable_utxos(&address, 0).await;
        l1.disconnect().await;
        let covenant = kaspa_hashes::Hash::from_bytes(info.chain_id.0);
        if !utxos?.iter().any(|(_, e)| e.covenant_id == Some(covenant)) {
            bail!("Kaspa holds no anchor of this chain committing block {anchored} (at {address})");
        }
        Ok(anchored)
    }
}

/// The block header a node reported (`wisp_getBlock`, `wisp_getProof`), checked to hash to the
/// `hash` it reported with it.
///
/// # Errors
/// A header that does not hash to the reported hash.
pub fn header_of(b: &wisp_api::Block) -> Result<wisp_core::BlockHeader> {
    let header = wisp_core::BlockHeader {
        chain: ChainId(b.chain_id.0),
        index: b.index,
        prev_hash: b.prev_hash.into(),
        l1_block: b.l1_block.into(),
        l1_daa_score: b.l1_daa_score.0,
        timestamp_ms: b.timestamp_ms.0,
        state_root: b.state_root.into(),
        receipts_root: b.receipts_root.into(),
        events_root: b.events_root.into(),
        request_count: b.request_count,
        gas_used: b.gas_used.0,
        protocol_version: b.protocol_version,
    };
    if header.hash() != b.hash.into() {
        bail!("the block header does not hash to the block hash the node reported");
    }
    Ok(header)
}

/// Verifies a `wisp_getProof` answer locally, trusting nothing the node says: the header in
/// it hashes to the reported block hash (recomputed from its fields), names the proof's block
/// and state root, and the sparse Merkle proof leads from the key and value (or absence) to
/// that state root. Returns the header (see [`Client::anchored_on_kaspa`] to check it against
/// Kaspa).
///
/// # Errors
/// Which check failed.
pub fn verify_proof(proof: &wisp_api::Proof) -> Result<wisp_core::BlockHeader> {
    let header = header_of(&proof.block)?;
    if proof.state_root != header.state_root.into() || proof.block_index != header.index {
        bail!("the proof names another block than the header it carries");
    }
    wisp_state::verify_proof(
        header.state_root,
        &proof.key.0,
        proof.value.as_ref().map(|v| v.0.as_slice()),
        &wisp_state::StateProof(proof.proof.0.clone()),
    )?;
    Ok(header)
}

/// Checks an event proof from `wisp_getEventProof` on this machine: the proof decodes, its
/// event is the one the answer shows, it leads to the events root of the header it carries,
/// and that header hashes to what it claims. Returns the checked proof and header.
///
/// # Errors
/// Which check failed.
pub fn verify_event_proof(
    answer: &wisp_api::EventProof,
) -> Result<(wisp_core::events::EventProof, wisp_core::BlockHeader)> {
    let header = header_of(&answer.block)?;
    let proof: wisp_core::events::EventProof = borsh::from_slice(&answer.proof.0)
        .map_err(|e| anyhow!("the event proof does not decode: {e}"))?;
    if answer.events_root != header.events_root.into() || answer.block_index != header.index {
        bail!("the proof names another block than the header it carries");
    }
    if answer.event.data.0 != proof.event.data || answer.event.topic != proof.event.topic {
        bail!("the event shown is not the event proven");
    }
    if !proof.verify(&header.events_root) {
        bail!("the event proof does not lead to the block's events root");
    }
    Ok((proof, header))
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
