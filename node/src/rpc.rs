//! JSON-RPC 2.0 over HTTP and WebSocket on one loopback port (jsonrpsee). Methods use the
//! `wisp_` namespace in camelCase; devnet controls use `dev_` (as anvil's `anvil_*`/`evm_*`).
//! Amounts and gas are decimal strings; bytes are `0x` hex; agents are Kaspa addresses or
//! `contract:<name>`.
//!
//! Errors: a request the runtime refuses is a JSON-RPC error with code [`rpc_error_code`]
//! (`-32000 - code` request level, `-32100 - code` VM level, `-32200` contract level) and
//! `data = {level, code, name, message}`; invalid parameters are `-32602`.

use crate::Node;
use jsonrpsee::server::{
    PendingSubscriptionSink, RpcModule, Server, ServerHandle, SubscriptionMessage,
};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use wisp_core::hash::{from_hex, to_hex};
use wisp_core::interface::ContractInterface;
use wisp_core::json::{decode_fields, AgentFormat};
use wisp_core::{
    BlockHeader, CallKind, ErrorLevel, Event, Hash32, Hname, OffLedgerRequest, Receipt,
    ReceiptError, RequestBody,
};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Invalid parameters.
fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, message.into(), None::<()>)
}

/// Node trouble (storage, Kaspa).
fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32603, e.to_string(), None::<()>)
}

/// The JSON-RPC error code of a refusal: `-32000 - code` at the request level, `-32100 - code`
/// at the VM level, `-32200` for any contract error (its own code is in `data.code`); a code
/// above 99 is reported as 99 there. Clients decide by `data.level` and `data.code`.
pub fn rpc_error_code(e: &ReceiptError) -> i32 {
    let code = e.code.min(99) as i32;
    match e.level {
        ErrorLevel::Request => -32000 - code,
        ErrorLevel::Vm => -32100 - code,
        ErrorLevel::Contract => -32200,
    }
}

/// A runtime refusal as an RPC error.
pub fn receipt_error(e: &ReceiptError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        rpc_error_code(e),
        e.message.clone(),
        Some(error_json(e, None)),
    )
}

fn error_json(e: &ReceiptError, interface: Option<&ContractInterface>) -> Value {
    let name = match e.level {
        ErrorLevel::Contract => interface
            .and_then(|i| i.error_name(e.code))
            .map(str::to_string)
            .unwrap_or_else(|| match e.code {
                wisp_core::CONTRACT_PANIC_CODE => "panic".into(),
                wisp_core::CONTRACT_BAD_ARGUMENTS_CODE => "bad_arguments".into(),
                _ => String::new(),
            }),
        _ => e.code_name().to_string(),
    };
    let level = match e.level {
        ErrorLevel::Request => "request",
        ErrorLevel::Vm => "vm",
        ErrorLevel::Contract => "contract",
    };
    json!({ "level": level, "code": e.code, "name": name, "message": e.message })
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", to_hex(bytes))
}

fn parse_hash(text: &str) -> RpcResult<Hash32> {
    Hash32::from_hex(text).ok_or_else(|| invalid(format!("`{text}` is not a 32-byte hex hash")))
}

/// Refuses `dev_` methods on a node that is not a devnet.
fn devnet_only(node: &Node) -> RpcResult<()> {
    if node.is_devnet() {
        Ok(())
    } else {
        Err(ErrorObjectOwned::owned(
            -32601,
            "dev_ methods exist only on a devnet",
            None::<()>,
        ))
    }
}

/// The JSON form of a block header.
pub fn block_json(h: &BlockHeader) -> Value {
    json!({
        "index": h.index,
        "hash": hex0x(&h.hash().0),
        "prevHash": hex0x(&h.prev_hash.0),
        "chainId": hex0x(&h.chain.0),
        "l1Block": hex0x(&h.l1_block.0),
        "l1DaaScore": h.l1_daa_score.to_string(),
        "timestampMs": h.timestamp_ms.to_string(),
        "stateRoot": hex0x(&h.state_root.0),
        "receiptsRoot": hex0x(&h.receipts_root.0),
        "eventsRoot": hex0x(&h.events_root.0),
        "requestCount": h.request_count,
        "gasUsed": h.gas_used.to_string(),
        "protocolVersion": h.protocol_version,
    })
}

impl Node {
    fn interface_of(&self, contract: Hname) -> Option<ContractInterface> {
        self.chain().interface(contract).ok().flatten()
    }

    /// The JSON form of an event, decoded with the emitting contract's interface when it has one.
    pub fn event_json(&self, e: &Event, agents: &dyn AgentFormat) -> Value {
        self.event_json_with(e, agents, self.interface_of(e.contract).as_ref())
    }

    /// [`Node::event_json`] with the emitter's interface already looked up (queries over many
    /// events look each contract up once).
    fn event_json_with(
        &self,
        e: &Event,
        agents: &dyn AgentFormat,
        interface: Option<&ContractInterface>,
    ) -> Value {
        let fields = interface
            .and_then(|i| i.event(&e.topic))
            .and_then(|def| decode_fields(&def.fields, &e.data, agents).ok());
        json!({
            "contract": agents.format(&wisp_core::AgentId::Contract(wisp_core::ContractId { chain: self.chain().chain_id(), hname: e.contract })),
            "topic": e.topic,
            "fields": fields,
            "data": hex0x(&e.data),
        })
    }

    /// The JSON form of a receipt.
    pub fn receipt_json(&self, r: &Receipt) -> Value {
        let agents = self.agents();
        let mut interfaces: std::collections::BTreeMap<Hname, Option<ContractInterface>> =
            std::collections::BTreeMap::new();
        let events: Vec<Value> = r
            .events
            .iter()
            .map(|e| {
                let interface = interfaces
                    .entry(e.contract)
                    .or_insert_with(|| self.interface_of(e.contract));
                self.event_json_with(e, &agents, interface.as_ref())
            })
            .collect();
        json!({
            "requestId": hex0x(&r.request_id.0),
            "blockIndex": r.block_index,
            "requestIndex": r.request_index,
            "sender": agents.format(&r.sender),
            "status": match r.status { wisp_core::ReceiptStatus::Success => "success", wisp_core::ReceiptStatus::Failed => "failed" },
            "error": r.error.as_ref().map(|e| error_json(e, None)),
            "gasUsed": r.gas_used.to_string(),
            "feeSompi": r.fee_sompi.to_string(),
            "events": events,
            "returnData": hex0x(&r.return_data),
        })
    }

    fn resolve(&self, contract: &str) -> RpcResult<Hname> {
        self.chain()
            .resolve_contract(contract)
            .map_err(internal)?
            .ok_or_else(|| {
                ErrorObjectOwned::owned(
                    -32005,
                    format!(
                        "no contract `{contract}` on this chain (wisp_listContracts lists them)"
                    ),
                    None::<()>,
                )
            })
    }

    /// Encodes `args` for `function` of `contract`: a `0x` hex string is taken as raw borsh,
    /// anything else as JSON for the function's declared parameters.
    fn encode_args(
        &self,
        contract: Hname,
        function: &str,
        kind: CallKind,
        args: &Value,
    ) -> RpcResult<Vec<u8>> {
        if let Some(hex) = args.as_str().and_then(|s| s.strip_prefix("0x")) {
            return from_hex(hex).ok_or_else(|| invalid("args: bad hex"));
        }
        let interface = self.interface_of(contract).ok_or_else(|| {
            invalid(format!(
                "contract {contract} has no interface; pass args as 0x-hex borsh"
            ))
        })?;
        let f = interface.function(function, kind).ok_or_else(|| {
            let kind = if kind == CallKind::View {
                "view"
            } else {
                "entry point"
            };
            ErrorObjectOwned::owned(
                -32006,
                format!("`{}` has no {kind} `{function}`", interface.name),
                None::<()>,
            )
        })?;
        wisp_core::json::encode_args(&f.params, args, &self.agents())
            .map_err(|e| invalid(format!("args: {e}")))
    }
}

/// Builds the RPC module for `node`.
///
/// # Errors
/// Never in practice (method names are unique); jsonrpsee's registration error otherwise.
pub fn module(
    node: Arc<Node>,
) -> Result<RpcModule<Arc<Node>>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(node);

    m.register_method("wisp_chainInfo", |_, node, _| -> RpcResult<Value> {
        let head = node.chain().head().map_err(internal)?;
        let anchor = node.anchor_status().ok();
        let params = node.chain().params().map_err(internal)?;
        Ok(json!({
            "chainId": hex0x(&node.chain().chain_id().0),
            "name": node.chain_name(),
            "head": block_json(&head),
            "gasPriceSompi": params.gas_price_sompi.to_string(),
            "maxRequestGas": params.max_request_gas.to_string(),
            "maxBlockGas": params.max_block_gas.to_string(),
            "depositAddress": node.deposit_address().to_string(),
            "anchor": {
                "covenantId": hex0x(&node.anchor().covenant_id().as_bytes()),
                "genesisOutpoint": format!(
                    "{}:{}",
                    node.anchor().genesis.outpoint.transaction_id,
                    node.anchor().genesis.outpoint.index
                ),
                "committeeKey": hex0x(&node.anchor().rules.committee_key),
                "maxFeeSompi": node.anchor().rules.max_fee_sompi.to_string(),
                "outpoint": anchor.as_ref().map(|a| format!("{}:{}", a.outpoint.transaction_id, a.outpoint.index)),
                "valueSompi": anchor.as_ref().map(|a| a.amount_sompi.to_string()),
                "anchoredBlock": anchor.as_ref().map(|a| a.block_index),
                "anchoredHeaderHash": anchor.as_ref().map(|a| hex0x(&a.header_hash)),
                "outbox": anchor.as_ref().map(|a| hex0x(&a.outbox)),
                "feesSpentSompi": anchor.as_ref().map(|a| a.fees_spent_sompi.to_string()),
                "inFlight": anchor.as_ref().and_then(|a| a.in_flight).map(|id| id.to_string()),
            },
            "l1RpcUrl": node.l1().url(),
            "l1CoinbaseMaturity": node.l1_params().coinbase_maturity(),
            "mempool": node.mempool_len(),
            "devnet": node.is_devnet(),
        }))
    })?;

    m.register_async_method(
        "wisp_sendRequest",
        |params: Params<'static>, node, _| async move {
            let hex: String = params.one()?;
            let bytes = from_hex(&hex)
                .ok_or_else(|| invalid("expected the borsh-encoded signed request as 0x-hex"))?;
            let request: OffLedgerRequest = borsh::from_slice(&bytes)
                .map_err(|e| invalid(format!("the bytes are not a signed request: {e}")))?;
            // Admission checks signatures and writes the request to disk: off the async workers.
            let submitter = node.clone();
            let id = tokio::task::spawn_blocking(move || submitter.submit(request))
                .await
                .map_err(internal)?
                .map_err(|e| receipt_error(&e))?;
            // Automine: order it into a block right away (a committee of one).
            node.produce_block().await.map_err(internal)?;
            Ok::<_, ErrorObjectOwned>(json!({ "requestId": hex0x(&id.0) }))
        },
    )?;

    m.register_blocking_method("wisp_estimateGas", |params, node, _| -> RpcResult<Value> {
        let (sender, hex): (String, String) = params.parse()?;
        let sender = node
            .agents()
            .parse(&sender)
            .ok_or_else(|| invalid(format!("`{sender}` is not an agent")))?;
        let bytes = from_hex(&hex)
            .ok_or_else(|| invalid("expected the borsh-encoded request body as 0x-hex"))?;
        let body: RequestBody =
            borsh::from_slice(&bytes).map_err(|e| invalid(format!("not a request body: {e}")))?;
        let receipt = node.chain().simulate(sender, &body).map_err(internal)?;
        Ok(node.receipt_json(&receipt))
    })?;

    m.register_blocking_method("wisp_callView", |params, node, _| -> RpcResult<Value> {
        let (contract, function, args): (String, String, Option<Value>) = params.parse()?;
        let hname = node.resolve(&contract)?;
        let args = node.encode_args(
            hname,
            &function,
            CallKind::View,
            &args.unwrap_or(Value::Array(vec![])),
        )?;
        let owner = node.committee_key();
        let (data, gas) = node
            .chain()
            .view(
                wisp_core::AgentId::Address(owner),
                hname,
                Hname::of(&function),
                args,
                wisp_chain::VIEW_GAS_LIMIT,
            )
            .map_err(|e| receipt_error(&e))?;
        let value = node
            .interface_of(hname)
            .and_then(|i| i.function(&function, CallKind::View).cloned())
            .and_then(|f| {
                wisp_core::json::decode_return(f.returns.as_ref(), &data, &node.agents()).ok()
            });
        Ok(json!({ "value": value, "data": hex0x(&data), "gasUsed": gas.to_string() }))
    })?;

    m.register_method("wisp_encodeArgs", |params, node, _| -> RpcResult<Value> {
        let (contract, function, kind, args): (String, String, String, Value) = params.parse()?;
        let hname = node.resolve(&contract)?;
        let kind = if kind == "view" {
            CallKind::View
        } else {
            CallKind::Entry
        };
        let bytes = node.encode_args(hname, &function, kind, &args)?;
        Ok(json!({ "contract": hname.to_string(), "args": hex0x(&bytes) }))
    })?;

    m.register_method("wisp_getReceipt", |params, node, _| -> RpcResult<Value> {
        let id: String = params.one()?;
        let receipt = node
            .chain()
            .db()
            .receipt(&parse_hash(&id)?)
            .map_err(internal)?;
        Ok(receipt
            .map(|r| node.receipt_json(&r))
            .unwrap_or(Value::Null))
    })?;

    m.register_method("wisp_getBlock", |params, node, _| -> RpcResult<Value> {
        let which: Option<Value> = params
            .parse::<(Option<Value>,)>()
            .map(|(v,)| v)
            .unwrap_or(None);
        let index = match which {
            None => node.chain().head().map_err(internal)?.index,
            Some(Value::String(s)) if s == "latest" => node.chain().head().map_err(internal)?.index,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| invalid("block: a number or \"latest\""))?,
        };
        let header = match node.chain().db().block(index) {
            Ok(h) => h,
            Err(wisp_state::StateError::UnknownBlock(_)) => return Ok(Value::Null),
            Err(e) => return Err(internal(e)),
        };
        let receipts = node.chain().db().block_receipts(index).map_err(internal)?;
        let mut out = block_json(&header);
        out["receipts"] = Value::Array(receipts.iter().map(|r| node.receipt_json(r)).collect());
        Ok(out)
    })?;

    m.register_blocking_method("wisp_getEvents", |params, node, _| -> RpcResult<Value> {
        let (from, to, contract): (Option<u64>, Option<u64>, Option<String>) =
            params.parse().unwrap_or((None, None, None));
        let head = node.chain().head().map_err(internal)?.index;
        let to = to.unwrap_or(head).min(head);
        let from = from.unwrap_or(to.saturating_sub(99));
        if to.saturating_sub(from) > 10_000 {
            return Err(invalid("at most 10000 blocks per query"));
        }
        let filter = contract.map(|c| node.resolve(&c)).transpose()?;
        let agents = node.agents();
        let mut interfaces: std::collections::BTreeMap<Hname, Option<ContractInterface>> =
            std::collections::BTreeMap::new();
        let mut events = Vec::new();
        for index in from..=to {
            for r in node.chain().db().block_receipts(index).map_err(internal)? {
                for e in r
                    .events
                    .iter()
                    .filter(|e| filter.is_none_or(|f| f == e.contract))
                {
                    let interface = interfaces
                        .entry(e.contract)
                        .or_insert_with(|| node.interface_of(e.contract));
                    let mut v = node.event_json_with(e, &agents, interface.as_ref());
                    v["blockIndex"] = json!(index);
                    v["requestId"] = json!(hex0x(&r.request_id.0));
                    events.push(v);
                }
            }
        }
        Ok(Value::Array(events))
    })?;

    m.register_blocking_method("wisp_getProof", |params, node, _| -> RpcResult<Value> {
        let (key, block): (String, Option<u64>) = params.parse()?;
        let key =
            from_hex(&key).ok_or_else(|| invalid("key: 0x-hex state key (see wisp_stateKey)"))?;
        let index = match block {
            Some(b) => b,
            None => node.chain().head().map_err(internal)?.index,
        };
        let (value, proof, header) = node.chain().prove(&key, index).map_err(internal)?;
        Ok(json!({
            "key": hex0x(&key),
            "value": value.as_deref().map(hex0x),
            "proof": hex0x(&proof.0),
            "blockIndex": index,
            "stateRoot": hex0x(&header.state_root.0),
            "block": block_json(&header),
        }))
    })?;

    m.register_method("wisp_stateKey", |params, node, _| -> RpcResult<Value> {
        let (kind, subject): (String, Value) = params.parse()?;
        let key = match kind.as_str() {
            "balance" | "nonce" => {
                let agent = subject
                    .as_str()
                    .and_then(|s| node.agents().parse(s))
                    .ok_or_else(|| {
                        invalid(format!(
                            "{kind}: an agent (Kaspa address or contract:<name>)"
                        ))
                    })?;
                if kind == "balance" {
                    wisp_chain::keys::balance(&agent)
                } else {
                    wisp_chain::keys::nonce(&agent)
                }
            }
            "contract" => {
                // [contract, "0x" contract-relative key]
                let arr = subject
                    .as_array()
                    .ok_or_else(|| invalid("contract: [contract, 0x-key]"))?;
                let c = node.resolve(arr.first().and_then(Value::as_str).unwrap_or_default())?;
                let rel = arr
                    .get(1)
                    .and_then(Value::as_str)
                    .and_then(from_hex)
                    .ok_or_else(|| invalid("contract key: 0x-hex"))?;
                wisp_chain::keys::contract_key(c, &rel)
            }
            other => {
                return Err(invalid(format!(
                    "unknown key kind `{other}` (balance, nonce, contract)"
                )))
            }
        };
        Ok(json!({ "key": hex0x(&key) }))
    })?;

    m.register_method("wisp_getBalance", |params, node, _| -> RpcResult<Value> {
        let agent: String = params.one()?;
        let agent = node.agents().parse(&agent).ok_or_else(|| {
            invalid(format!(
                "`{agent}` is not a Kaspa address or contract:<name>"
            ))
        })?;
        Ok(json!(node
            .chain()
            .balance(&agent)
            .map_err(internal)?
            .to_string()))
    })?;

    m.register_method("wisp_getNonce", |params, node, _| -> RpcResult<Value> {
        let agent: String = params.one()?;
        let agent = node
            .agents()
            .parse(&agent)
            .ok_or_else(|| invalid(format!("`{agent}` is not an agent")))?;
        let chain_nonce = node.chain().nonce(&agent).map_err(internal)?;
        let pending = node
            .mempool
            .lock()
            .map(|m| m.pending_from(&agent, chain_nonce))
            .unwrap_or(0);
        Ok(json!({ "next": chain_nonce.to_string(), "pending": pending }))
    })?;

    m.register_method(
        "wisp_getWithdrawals",
        |params, node, _| -> RpcResult<Value> {
            let (from, limit): (Option<u64>, Option<u32>) = params.parse().unwrap_or((None, None));
            let limit = limit.unwrap_or(100).min(1_000) as usize;
            let entries = node
                .chain()
                .outbox(from.unwrap_or(0), limit)
                .map_err(internal)?;
            let status = node.anchor_status().map_err(internal)?;
            let agents = node.agents();
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                let paid_by = node.withdrawal_paid_by(e.seq).map_err(internal)?;
                let state = if paid_by.is_some() {
                    "paid"
                } else if status.committed_withdrawals.contains(&e.seq) {
                    "committed"
                } else {
                    "queued"
                };
                out.push(json!({
                    "seq": e.seq,
                    "from": agents.format(&e.from),
                    "to": agents.format(&wisp_core::AgentId::Address(e.to)),
                    "amountSompi": e.amount_sompi.to_string(),
                    "blockIndex": e.block_index,
                    "status": state,
                    "paidBy": paid_by.map(|h| h.to_string()),
                }));
            }
            Ok(Value::Array(out))
        },
    )?;

    m.register_method("wisp_listContracts", |_, node, _| -> RpcResult<Value> {
        let agents = node.agents();
        let list = node.chain().contracts().map_err(internal)?;
        Ok(Value::Array(
            list.into_iter()
                .map(|(h, name, record)| {
                    json!({
                        "hname": h.to_string(),
                        "name": name,
                        "core": record.is_none(),
                        "codeHash": record.as_ref().map(|r| hex0x(&r.code_hash.0)),
                        "deployer": record.as_ref().map(|r| agents.format(&r.deployer)),
                        "deployedAtBlock": record.as_ref().map(|r| r.deployed_at_block),
                    })
                })
                .collect(),
        ))
    })?;

    m.register_method("wisp_getInterface", |params, node, _| -> RpcResult<Value> {
        let contract: String = params.one()?;
        let hname = node.resolve(&contract)?;
        Ok(node
            .interface_of(hname)
            .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
            .unwrap_or(Value::Null))
    })?;

    m.register_async_method("dev_mine", |params: Params<'static>, node, _| async move {
        devnet_only(&node)?;
        let n: u32 = params
            .one::<Option<u32>>()
            .ok()
            .flatten()
            .unwrap_or(1)
            .clamp(1, 1000);
        let block = node.mine(n).await.map_err(internal)?;
        Ok::<_, ErrorObjectOwned>(
            json!({ "l1Blocks": n, "block": block.map(|b| block_json(&b.header)) }),
        )
    })?;

    m.register_method("dev_snapshot", |_, node, _| -> RpcResult<Value> {
        devnet_only(node)?;
        Ok(json!(node.snapshot().map_err(internal)?.to_string()))
    })?;

    m.register_async_method(
        "dev_revert",
        |params: Params<'static>, node, _| async move {
            devnet_only(&node)?;
            let id: String = params.one()?;
            let id: u64 = id
                .parse()
                .map_err(|_| invalid("snapshot id: a decimal string from dev_snapshot"))?;
            Ok::<_, ErrorObjectOwned>(json!(node.revert(id).await.map_err(internal)?))
        },
    )?;

    m.register_subscription("wisp_subscribeBlocks", "wisp_block", "wisp_unsubscribeBlocks", |_, pending: PendingSubscriptionSink, node, _| async move {
        let mut blocks = node.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => break,
                block = blocks.recv() => {
                    let block = match block {
                        Ok(block) => block,
                        Err(e) => return lagged(e),
                    };
                    let mut value = block_json(&block.header);
                    value["receipts"] = Value::Array(block.receipts.iter().map(|r| node.receipt_json(r)).collect());
                    let message = SubscriptionMessage::from(serde_json::value::to_raw_value(&value)?);
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    })?;

    m.register_subscription("wisp_subscribeEvents", "wisp_event", "wisp_unsubscribeEvents", |params, pending: PendingSubscriptionSink, node, _| async move {
        let filter: Option<String> = params.one::<Option<String>>().ok().flatten();
        let filter = match filter {
            Some(c) => match node.chain().resolve_contract(&c) {
                Ok(Some(h)) => Some(h),
                _ => {
                    pending.reject(invalid(format!("no contract `{c}`"))).await;
                    return Ok(());
                }
            },
            None => None,
        };
        let mut blocks = node.subscribe();
        let sink = pending.accept().await?;
        loop {
            tokio::select! {
                _ = sink.closed() => break,
                block = blocks.recv() => {
                    let block = match block {
                        Ok(block) => block,
                        Err(e) => return lagged(e),
                    };
                    let agents = node.agents();
                    for r in &block.receipts {
                        for e in r.events.iter().filter(|e| filter.is_none_or(|f| f == e.contract)) {
                            let mut v = node.event_json(e, &agents);
                            v["blockIndex"] = json!(block.header.index);
                            v["requestId"] = json!(hex0x(&r.request_id.0));
                            let message = SubscriptionMessage::from(serde_json::value::to_raw_value(&v)?);
                            if sink.send(message).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    })?;

    Ok(m)
}

/// How a subscription ends when its block feed fails: a subscriber that fell behind the
/// node's buffer gets an error saying so, never a silent end (defect 26 of the hardening
/// review); a node shutting down ends it normally.
fn lagged(e: tokio::sync::broadcast::error::RecvError) -> jsonrpsee::core::SubscriptionResult {
    match e {
        tokio::sync::broadcast::error::RecvError::Lagged(missed) => Err(format!(
            "the subscriber fell {missed} blocks behind and was dropped; subscribe again and fetch the missed blocks with wisp_getBlock"
        )
        .into()),
        tokio::sync::broadcast::error::RecvError::Closed => Ok(()),
    }
}

/// Largest JSON-RPC request body, bytes (a deploy of the largest module, hex-encoded, fits).
pub const MAX_REQUEST_BODY_BYTES: u32 = 4 * 1024 * 1024;
/// Largest response body, bytes.
pub const MAX_RESPONSE_BODY_BYTES: u32 = 32 * 1024 * 1024;
/// Most simultaneous connections.
pub const MAX_CONNECTIONS: u32 = 128;
/// Most subscriptions one WebSocket connection may hold.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 16;
/// Most calls in one JSON-RPC batch.
pub const MAX_BATCH: u32 = 16;

/// Starts the RPC server on `addr` (loopback in every configuration Wisp ships). Requests
/// whose `Host` is not a loopback name or whose `Origin` is a web page elsewhere are refused
/// with 403; bodies, connections, subscriptions and batches are capped (the constants above).
///
/// # Errors
/// The bind error if the port is taken.
pub async fn serve(
    node: Arc<Node>,
    addr: SocketAddr,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let config = jsonrpsee::server::ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BODY_BYTES)
        .max_response_body_size(MAX_RESPONSE_BODY_BYTES)
        .max_connections(MAX_CONNECTIONS)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(MAX_BATCH))
        .build();
    let hosts = jsonrpsee::server::middleware::http::HostFilterLayer::new([
        "127.0.0.1:*",
        "localhost:*",
        "[::1]:*",
    ])
    .map_err(std::io::Error::other)?;
    let http = tower::ServiceBuilder::new()
        .layer(hosts)
        .layer(crate::guard::LocalOriginLayer)
        .layer(crate::metrics::MetricsLayer(Arc::downgrade(&node)));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(http)
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    let module = module(node).map_err(std::io::Error::other)?;
    Ok((server.start(module), local))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards defect 20 of the hardening review: `-32000 - code as i32` collided across levels
    /// and overflowed for large contract codes.
    #[test]
    fn error_codes_are_separated_by_level_and_cannot_overflow() {
        let e = |level, code| ReceiptError {
            level,
            code,
            message: String::new(),
        };
        assert_eq!(rpc_error_code(&e(ErrorLevel::Request, 5)), -32005);
        assert_eq!(rpc_error_code(&e(ErrorLevel::Vm, 5)), -32105);
        assert_eq!(rpc_error_code(&e(ErrorLevel::Contract, 5)), -32200);
        assert_eq!(rpc_error_code(&e(ErrorLevel::Contract, u32::MAX)), -32200);
        assert_eq!(rpc_error_code(&e(ErrorLevel::Request, u32::MAX)), -32099);
    }
}
