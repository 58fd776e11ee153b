//! The node's JSON-RPC 2.0 server over HTTP and WebSocket on one loopback port (jsonrpsee):
//! the node's side of the API that `wisp-api` declares ([`WispApiServer`], [`DevApiServer`]),
//! with the wire conventions and error codes documented there.

use crate::Node;
use jsonrpsee::core::{async_trait, SubscriptionResult};
use jsonrpsee::server::{
    PendingSubscriptionSink, RpcModule, Server, ServerHandle, SubscriptionMessage,
};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use wisp_api::{
    AnchorInfo, Block, BlockId, Bytes, CallView, ChainInfo, CommitteeBlocks, ContractEntry,
    DevApiServer, EncodedArgs, ErrorInfo, EventEntry, EventProof, Mined, Nonce, Proof,
    Receipt as ReceiptView, RequestView, RpcResult, SentRequest, SnapshotBase, StateChunk,
    StateKey, ViewResult, WispApiServer, Withdrawal, H256, U64,
};
use wisp_core::interface::ContractInterface;
use wisp_core::json::{decode_fields, AgentFormat};
use wisp_core::{
    BlockHeader, CallKind, ErrorLevel, Event, Hname, OffLedgerRequest, Receipt, ReceiptError,
    RequestBody,
};

/// Invalid parameters.
/// Most bytes of blocks in one `wisp_getCommitteeBlocks` answer (more than one block only if
/// they fit): 8 MiB, 16 MiB as hex, inside an access node's 32 MiB response limit.
pub const COMMITTEE_BLOCKS_BYTES: usize = 8 << 20;

/// Most committee blocks between a snapshot's height and the certified block attesting it
/// that `wisp_getSnapshotBase` serves (a proposer attests the newest state it executed, a few
/// blocks back).
pub const SNAPSHOT_BASE_BLOCKS: u64 = 256;

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, message.into(), None::<()>)
}

/// The certificate of the first committee handover at or after committee height `from` this
/// node executed, if any.
fn handover_from(
    chain: &wisp_chain::Chain,
    from: u64,
) -> RpcResult<Option<wisp_consensus::follow::StoredFinalization>> {
    let epochs = chain.committee_epoch().map_err(internal)?;
    for epoch in 1..=epochs {
        if let Some(handover) =
            wisp_consensus::follow::stored_handover(chain, epoch).map_err(internal)?
        {
            if handover.height >= from {
                return Ok(Some(handover));
            }
        }
    }
    Ok(None)
}

/// Node trouble (storage, Kaspa).
fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32603, e.to_string(), None::<()>)
}

/// A failed read of the node's indexes: a query reaching blocks this node did not index
/// (`wisp node --no-index`) is the caller's to redirect (-32602, saying why), anything else
/// is the node's fault.
fn index_error(e: wisp_state::StateError) -> ErrorObjectOwned {
    match e {
        wisp_state::StateError::Unindexed { .. } => invalid(e.to_string()),
        e => internal(e),
    }
}

/// Most events one `wisp_getEvents` answers.
pub const MAX_EVENTS_PER_QUERY: usize = 10_000;

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
    ErrorObjectOwned::owned(rpc_error_code(e), e.message.clone(), Some(error_info(e)))
}

fn error_info(e: &ReceiptError) -> ErrorInfo {
    let name = match e.level {
        ErrorLevel::Contract => match e.code {
            wisp_core::CONTRACT_PANIC_CODE => "panic".into(),
            wisp_core::CONTRACT_BAD_ARGUMENTS_CODE => "bad_arguments".into(),
            _ => String::new(),
        },
        _ => e.code_name().to_string(),
    };
    let level = match e.level {
        ErrorLevel::Request => "request",
        ErrorLevel::Vm => "vm",
        ErrorLevel::Contract => "contract",
    };
    ErrorInfo {
        level: level.into(),
        code: e.code,
        name,
        message: e.message.clone(),
    }
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

/// The API form of a block header (without receipts).
pub fn block_view(h: &BlockHeader) -> Block {
    Block {
        index: h.index,
        hash: h.hash().into(),
        prev_hash: h.prev_hash.into(),
        chain_id: h.chain.into(),
        l1_block: h.l1_block.into(),
        l1_daa_score: h.l1_daa_score.into(),
        timestamp_ms: h.timestamp_ms.into(),
        state_root: h.state_root.into(),
        receipts_root: h.receipts_root.into(),
        events_root: h.events_root.into(),
        request_count: h.request_count,
        gas_used: h.gas_used.into(),
        protocol_version: h.protocol_version,
        receipts: None,
        raw: Bytes(borsh::to_vec(h).unwrap_or_default()),
    }
}

/// How a request reached the chain: its kind, and its nonce or Kaspa transaction.
fn origin(record: &wisp_chain::RequestRecord) -> (&'static str, Option<U64>, Option<H256>) {
    match record {
        wisp_chain::RequestRecord::OnLedger(on) => ("onLedger", None, Some(on.l1_tx_id.into())),
        wisp_chain::RequestRecord::OffLedger(off) => ("offLedger", Some(off.nonce.into()), None),
    }
}

/// Looks each contract's interface up once per query.
type Interfaces = BTreeMap<Hname, Option<ContractInterface>>;

impl Node {
    fn interface_of(&self, contract: Hname) -> Option<ContractInterface> {
        self.chain().interface(contract).ok().flatten()
    }

    /// The API form of an event, its fields decoded with the emitter's interface (looked up
    /// in, or added to, `interfaces`).
    fn event_view(
        &self,
        e: &Event,
        agents: &dyn AgentFormat,
        interfaces: &mut Interfaces,
    ) -> EventEntry {
        let interface = interfaces
            .entry(e.contract)
            .or_insert_with(|| self.interface_of(e.contract));
        let fields = interface
            .as_ref()
            .and_then(|i| i.event(&e.topic))
            .and_then(|def| decode_fields(&def.fields, &e.data, agents).ok());
        EventEntry {
            contract: agents.format(&wisp_core::AgentId::Contract(wisp_core::ContractId {
                chain: self.chain().chain_id(),
                hname: e.contract,
            })),
            topic: e.topic.clone(),
            fields,
            data: Bytes(e.data.clone()),
            block_index: None,
            request_id: None,
            event_index: None,
        }
    }

    /// The API form of a call, its arguments decoded with the target's interface (looked up
    /// in, or added to, `interfaces`).
    fn decoded_call(
        &self,
        body: &wisp_core::RequestBody,
        agents: &dyn AgentFormat,
        interfaces: &mut Interfaces,
    ) -> CallView {
        let interface = interfaces
            .entry(body.call.target)
            .or_insert_with(|| self.interface_of(body.call.target));
        let function = interface.as_ref().and_then(|i| {
            i.functions
                .iter()
                .find(|f| Hname::of(&f.name) == body.call.entry_point)
        });
        CallView {
            contract: agents.format(&wisp_core::AgentId::Contract(wisp_core::ContractId {
                chain: self.chain().chain_id(),
                hname: body.call.target,
            })),
            function: function
                .map(|f| f.name.clone())
                .unwrap_or_else(|| body.call.entry_point.to_string()),
            args: function.and_then(|f| decode_fields(&f.params, &body.call.args, agents).ok()),
            args_raw: Bytes(body.call.args.clone()),
            transfer_sompi: body.call.transfer_sompi.into(),
            gas_budget: body.gas_budget.into(),
        }
    }

    /// The API form of a request the node keeps: kind, sender, nonce or Kaspa transaction,
    /// and its call decoded with the target's interface.
    ///
    /// # Errors
    /// A record that does not decode, or no receipt for it (storage corruption).
    pub fn request_view(
        &self,
        entry: &wisp_state::RequestEntry,
        interfaces: &mut Interfaces,
    ) -> RpcResult<RequestView> {
        let agents = self.agents();
        let record: wisp_chain::RequestRecord =
            borsh::from_slice(&entry.record).map_err(internal)?;
        let receipt = self
            .chain()
            .db()
            .receipt(&entry.id)
            .map_err(internal)?
            .ok_or_else(|| internal("a kept request has no receipt"))?;
        let call = record
            .body()
            .map(|body| self.decoded_call(body, &agents, interfaces));
        let (kind, nonce, l1_tx_id) = origin(&record);
        let deposit = match &record {
            wisp_chain::RequestRecord::OnLedger(on) => Some(on.deposit_sompi.into()),
            wisp_chain::RequestRecord::OffLedger(_) => None,
        };
        Ok(RequestView {
            request_id: entry.id.into(),
            kind: kind.into(),
            sender: agents.format(&receipt.sender),
            block_index: receipt.block_index,
            request_index: receipt.request_index,
            nonce,
            l1_tx_id,
            deposit_sompi: deposit,
            call,
            time_lock: record.body().and_then(|b| b.time_lock),
        })
    }

    /// The API form of a receipt: events decoded, and the withdrawals it queued with the
    /// Kaspa transaction that paid each (from `accounts`' `Withdrawal` events).
    ///
    /// # Errors
    /// Storage errors reading the withdrawals' payment records.
    pub fn receipt_view(&self, r: &Receipt) -> RpcResult<ReceiptView> {
        let agents = self.agents();
        let mut interfaces = Interfaces::new();
        let events = r
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut v = self.event_view(e, &agents, &mut interfaces);
                v.event_index = Some(i as u32);
                v
            })
            .collect();
        // Outbox positions of the withdrawals the request queued (`accounts.Withdrawal`).
        let queued: Vec<u64> = r
            .events
            .iter()
            .filter(|e| {
                e.contract == wisp_chain::keys::hnames::accounts()
                    && e.topic == wisp_chain::WITHDRAWAL_EVENT
            })
            .filter_map(|e| {
                borsh::from_slice::<(u64, wisp_core::AgentId, u64)>(&e.data)
                    .ok()
                    .map(|(seq, _, _)| seq)
            })
            .collect();
        let status = if queued.is_empty() {
            None
        } else {
            self.anchor_status().ok()
        };
        let mut withdrawals = Vec::with_capacity(queued.len());
        for seq in queued {
            // The outbox entry itself, not the event's copy: it names who was debited (the
            // contract, for a payout) and is what the anchor pays.
            let entry = self.chain().outbox(seq, 1).map_err(internal)?;
            if let Some(entry) = entry.iter().find(|entry| entry.seq == seq) {
                withdrawals.push(self.withdrawal_view(entry, status.as_ref(), &agents)?);
            }
        }
        // The request as it arrived, when the node keeps it (not for a simulation).
        let entry = self
            .chain()
            .db()
            .request_entry(&r.request_id)
            .ok()
            .flatten();
        let record: Option<wisp_chain::RequestRecord> = entry
            .as_ref()
            .and_then(|e| borsh::from_slice(&e.record).ok());
        let (kind, nonce, l1_tx_id) = match &record {
            Some(record) => {
                let (kind, nonce, l1) = origin(record);
                (Some(kind.to_string()), nonce, l1)
            }
            None => (None, None, None),
        };
        let call = record
            .as_ref()
            .and_then(|rec| rec.body())
            .map(|b| self.decoded_call(b, &agents, &mut interfaces));
        Ok(ReceiptView {
            request_id: r.request_id.into(),
            block_index: r.block_index,
            request_index: r.request_index,
            sender: agents.format(&r.sender),
            status: match r.status {
                wisp_core::ReceiptStatus::Success => "success",
                wisp_core::ReceiptStatus::Failed => "failed",
            }
            .into(),
            error: r.error.as_ref().map(|e| {
                let mut info = error_info(e);
                // A contract's own error, named by the called contract's interface.
                if e.level == ErrorLevel::Contract && info.name.is_empty() {
                    let target = entry.as_ref().and_then(|entry| entry.contract);
                    if let Some(name) = target
                        .and_then(|c| {
                            interfaces
                                .entry(c)
                                .or_insert_with(|| self.interface_of(c))
                                .as_ref()
                        })
                        .and_then(|i| i.error_name(e.code).map(str::to_string))
                    {
                        info.name = name;
                    }
                }
                info
            }),
            gas_used: r.gas_used.into(),
            fee_sompi: r.fee_sompi.into(),
            storage_locked_sompi: r.storage_locked_sompi.into(),
            storage_refunded_sompi: r.storage_refunded_sompi.into(),
            events,
            return_data: Bytes(r.return_data.clone()),
            return_value: None,
            withdrawals,
            kind,
            nonce,
            l1_tx_id,
            call,
            raw: Bytes(borsh::to_vec(r).map_err(internal)?),
        })
    }

    /// The API form of an outbox entry, with its status against the anchor.
    fn withdrawal_view(
        &self,
        e: &wisp_chain::OutboxEntry,
        status: Option<&crate::AnchorStatus>,
        agents: &dyn AgentFormat,
    ) -> RpcResult<Withdrawal> {
        let paid_by = self.withdrawal_paid_by(e.seq).map_err(internal)?;
        let state = if paid_by.is_some() {
            "paid"
        } else if status.is_some_and(|s| s.committed_withdrawals.contains(&e.seq)) {
            "committed"
        } else if status.is_some_and(|s| e.seq < s.next_withdrawal) {
            // Committed by an anchor Kaspa has since spent: its successor paid it (a node that
            // took the anchor over from another, after a rotation, has no record of which
            // transaction did).
            "paid"
        } else {
            "queued"
        };
        Ok(Withdrawal {
            seq: e.seq,
            from: agents.format(&e.from),
            to: agents.format(&wisp_core::AgentId::Address(e.to)),
            amount_sompi: e.amount_sompi.into(),
            block_index: e.block_index,
            status: state.into(),
            paid_by: paid_by.map(|h| h.to_string()),
        })
    }

    /// A block with its receipts.
    fn block_with_receipts(&self, header: &BlockHeader, receipts: &[Receipt]) -> RpcResult<Block> {
        let mut block = block_view(header);
        block.receipts = Some(
            receipts
                .iter()
                .map(|r| self.receipt_view(r))
                .collect::<RpcResult<_>>()?,
        );
        Ok(block)
    }

    fn resolve(&self, contract: &str) -> RpcResult<Hname> {
        self.chain()
            .resolve_contract(contract)
            .map_err(internal)?
            .ok_or_else(|| {
                ErrorObjectOwned::owned(
                    wisp_api::UNKNOWN_CONTRACT,
                    format!(
                        "no contract `{contract}` on this chain (wisp_listContracts lists them)"
                    ),
                    None::<()>,
                )
            })
    }

    fn parse_agent(&self, text: &str) -> RpcResult<wisp_core::AgentId> {
        self.agents().parse(text).ok_or_else(|| {
            invalid(format!(
                "`{text}` is not an agent (a Kaspa address or contract:<name>)"
            ))
        })
    }

    /// Encodes `args` for `function` of `contract`: a `0x` hex string is taken as raw borsh,
    /// anything else as JSON for the function's declared parameters.
    fn encode_call_args(
        &self,
        contract: Hname,
        function: &str,
        kind: CallKind,
        args: &Value,
    ) -> RpcResult<Vec<u8>> {
        if let Some(hex) = args.as_str().and_then(|s| s.strip_prefix("0x")) {
            return wisp_core::hash::from_hex(hex).ok_or_else(|| invalid("args: bad hex"));
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
                wisp_api::UNKNOWN_FUNCTION,
                format!("`{}` has no {kind} `{function}`", interface.name),
                None::<()>,
            )
        })?;
        wisp_core::json::encode_args(&f.params, args, &self.agents())
            .map_err(|e| invalid(format!("args: {e}")))
    }
}

/// The API served for one node.
struct Api(Arc<Node>);

#[async_trait]
impl WispApiServer for Api {
    fn chain_info(&self) -> RpcResult<ChainInfo> {
        let node = &self.0;
        let head = node.chain().head().map_err(internal)?;
        let anchor = node.anchor_status().ok();
        let params = node.chain().params().map_err(internal)?;
        let outpoint = |o: &kaspa_consensus_core::tx::TransactionOutpoint| {
            format!("{}:{}", o.transaction_id, o.index)
        };
        Ok(ChainInfo {
            chain_id: node.chain().chain_id().into(),
            name: node.chain_name().to_string(),
            head: block_view(&head),
            gas_price_sompi: params.gas_price_sompi.into(),
            max_request_gas: params.max_request_gas.into(),
            max_block_gas: params.max_block_gas.into(),
            deposit_address: node.deposit_address().to_string(),
            anchor: AnchorInfo {
                covenant_id: H256(node.anchor().covenant_id().as_bytes()),
                genesis_outpoint: outpoint(&node.anchor().genesis.outpoint),
                committee_key: H256(
                    anchor
                        .as_ref()
                        .and_then(|a| node.anchor_key_after(a.block_index).ok())
                        .unwrap_or(node.anchor().committee_key),
                ),
                max_fee_sompi: node.anchor().rules.max_fee_sompi.into(),
                outpoint: anchor.as_ref().map(|a| outpoint(&a.outpoint)),
                value_sompi: anchor.as_ref().map(|a| a.amount_sompi.into()),
                anchored_block: anchor.as_ref().map(|a| a.block_index),
                anchored_header_hash: anchor.as_ref().map(|a| H256(a.header_hash)),
                outbox: anchor.as_ref().map(|a| H256(a.outbox)),
                fees_spent_sompi: anchor.as_ref().map(|a| a.fees_spent_sompi.into()),
                in_flight: anchor
                    .as_ref()
                    .and_then(|a| a.in_flight)
                    .map(|id| id.to_string()),
                committed_withdrawals: anchor
                    .as_ref()
                    .map(|a| a.committed_withdrawals.clone())
                    .unwrap_or_default(),
                next_withdrawal: anchor.as_ref().map(|a| a.next_withdrawal),
            },
            l1_rpc_url: node.l1().url().to_string(),
            l1_coinbase_maturity: node.l1_params().coinbase_maturity(),
            l1_followed_daa_score: node.l1_followed_daa_score().map_err(internal)?.into(),
            mempool: node.mempool_len(),
            devnet: node.is_devnet(),
            api_version: wisp_api::API_VERSION,
        })
    }

    async fn send_request(&self, request: Bytes) -> RpcResult<SentRequest> {
        if let (None, Some(upstream)) = (self.0.committee_member(), self.0.upstream()) {
            // An access node (or a next committee's member that has not taken over yet): the
            // committee it follows takes requests.
            return wisp_api::WispApiClient::send_request(upstream, request)
                .await
                .map_err(|e| match e {
                    jsonrpsee::core::client::Error::Call(answer) => answer,
                    other => internal(format!("passing the request on: {other}")),
                });
        }
        let request: OffLedgerRequest = borsh::from_slice(&request.0)
            .map_err(|e| invalid(format!("the bytes are not a signed request: {e}")))?;
        let (sender, nonce) = (request.sender(), request.nonce);
        if let Some(member) = self.0.committee_member() {
            // A committee member: the committee's mempool takes it (checked as below, then
            // gossiped to every member); whichever member leads proposes it.
            let node = self.0.clone();
            let (verified, _) = tokio::task::spawn_blocking(move || node.check_request(request))
                .await
                .map_err(internal)?
                .map_err(|e| receipt_error(&e))?;
            let id = verified.id();
            return match member.submit(verified).await {
                Ok(true) => Ok(SentRequest {
                    request_id: id.into(),
                }),
                Ok(false) => Err(receipt_error(&crate::request_error(
                    wisp_core::RequestErrorCode::BadNonce,
                    format!(
                        "a request with nonce {nonce} from this sender is already pending, or its nonce has passed"
                    ),
                ))),
                Err(wisp_consensus::ConsensusError::Refused(e)) => Err(receipt_error(&e)),
                Err(wisp_consensus::ConsensusError::MempoolFull) => {
                    Err(receipt_error(&crate::request_error(
                        wisp_core::RequestErrorCode::MempoolFull,
                        "the committee's mempool is full; retry in a few blocks".into(),
                    )))
                }
                Err(e @ wisp_consensus::ConsensusError::HandedOver(_)) => Err(invalid(e.to_string())),
                Err(e) => Err(internal(e)),
            };
        }
        // Admission checks signatures and writes the request to disk: off the async workers.
        let submitter = self.0.clone();
        let id = tokio::task::spawn_blocking(move || submitter.submit(request))
            .await
            .map_err(internal)?
            .map_err(|e| receipt_error(&e))?;
        // Automine: order it into a block right away (a committee of one), or into the block
        // that requests arriving meanwhile share.
        self.0
            .produce_block_for(&sender, nonce)
            .await
            .map_err(internal)?;
        Ok(SentRequest {
            request_id: id.into(),
        })
    }

    fn simulate_request(&self, sender: String, body: Bytes) -> RpcResult<wisp_api::Simulation> {
        let node = &self.0;
        let sender = node.parse_agent(&sender)?;
        let body: RequestBody =
            borsh::from_slice(&body.0).map_err(|e| invalid(format!("not a request body: {e}")))?;
        let simulation = node
            .chain()
            .simulate_request(sender, &body)
            .map_err(internal)?;
        Ok(wisp_api::Simulation {
            receipt: node.receipt_view(&simulation.receipt)?,
            access_list: simulation.access_list.as_ref().map(Into::into),
        })
    }

    fn call_view(
        &self,
        contract: String,
        function: String,
        args: Option<Value>,
    ) -> RpcResult<ViewResult> {
        let node = &self.0;
        let hname = node.resolve(&contract)?;
        let args = node.encode_call_args(
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
        Ok(ViewResult {
            value,
            data: Bytes(data),
            gas_used: gas.into(),
        })
    }

    fn encode_args(
        &self,
        contract: String,
        function: String,
        kind: String,
        args: Value,
    ) -> RpcResult<EncodedArgs> {
        let node = &self.0;
        let hname = node.resolve(&contract)?;
        let kind = match kind.as_str() {
            "view" => CallKind::View,
            "entry" => CallKind::Entry,
            other => return Err(invalid(format!("kind `{other}`: `entry` or `view`"))),
        };
        let bytes = node.encode_call_args(hname, &function, kind, &args)?;
        Ok(EncodedArgs {
            contract: hname.to_string(),
            args: Bytes(bytes),
        })
    }

    fn get_receipt(&self, request_id: H256) -> RpcResult<Option<ReceiptView>> {
        let node = &self.0;
        let receipt = node
            .chain()
            .db()
            .receipt(&request_id.into())
            .map_err(internal)?;
        receipt.map(|r| node.receipt_view(&r)).transpose()
    }

    fn get_request(&self, request_id: H256) -> RpcResult<Option<RequestView>> {
        let node = &self.0;
        let entry = node
            .chain()
            .db()
            .request_entry(&request_id.into())
            .map_err(index_error)?;
        entry
            .map(|e| node.request_view(&e, &mut Interfaces::new()))
            .transpose()
    }

    fn get_requests(
        &self,
        sender: Option<String>,
        contract: Option<String>,
        before: Option<H256>,
        limit: Option<u32>,
    ) -> RpcResult<Vec<RequestView>> {
        let node = &self.0;
        let filter = match (sender, contract) {
            (Some(s), None) => {
                let agent = node.agents().parse(&s).ok_or_else(|| {
                    invalid(format!("sender `{s}`: a Kaspa address or contract:<name>"))
                })?;
                wisp_state::RequestFilter::Sender(borsh::to_vec(&agent).map_err(internal)?)
            }
            (None, Some(c)) => wisp_state::RequestFilter::Contract(node.resolve(&c)?),
            _ => return Err(invalid("give exactly one of sender and contract")),
        };
        let limit = limit.unwrap_or(20);
        if limit > 100 {
            return Err(invalid(
                "at most 100 requests per answer; page with `before`",
            ));
        }
        let db = node.chain().db();
        let before = match before {
            None => None,
            Some(id) => {
                let entry = db
                    .request_entry(&id.into())
                    .map_err(index_error)?
                    .ok_or_else(|| invalid("`before` names no processed request"))?;
                let receipt = db
                    .receipt(&entry.id)
                    .map_err(internal)?
                    .ok_or_else(|| invalid("`before` names no processed request"))?;
                Some((receipt.block_index, entry.request_index))
            }
        };
        let found = db
            .requests_by(&filter, before, limit as usize)
            .map_err(index_error)?;
        let mut views = Vec::with_capacity(found.len());
        let mut interfaces = Interfaces::new();
        for (_, _, id) in found {
            if let Some(entry) = db.request_entry(&id).map_err(index_error)? {
                views.push(node.request_view(&entry, &mut interfaces)?);
            }
        }
        Ok(views)
    }

    fn get_block(&self, block: Option<BlockId>) -> RpcResult<Option<Block>> {
        let node = &self.0;
        let index = match block {
            None => node.chain().head().map_err(internal)?.index,
            Some(BlockId::Tag(t)) if t == "latest" => node.chain().head().map_err(internal)?.index,
            Some(BlockId::Tag(t)) => {
                return Err(invalid(format!("block `{t}`: a number or \"latest\"")))
            }
            Some(BlockId::Index(i)) => i.0,
        };
        let header = match node.chain().db().block(index) {
            Ok(h) => h,
            Err(wisp_state::StateError::UnknownBlock(_)) => return Ok(None),
            Err(e) => return Err(internal(e)),
        };
        let receipts = node.chain().db().block_receipts(index).map_err(internal)?;
        node.block_with_receipts(&header, &receipts).map(Some)
    }

    fn get_events(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        contract: Option<String>,
        topic: Option<String>,
        indexed: Option<(String, Value)>,
    ) -> RpcResult<Vec<EventEntry>> {
        let node = &self.0;
        let head = node.chain().head().map_err(internal)?.index;
        let to = to.unwrap_or(head).min(head);
        let from = from.unwrap_or(to.saturating_sub(99));
        let too_many = || {
            invalid(format!(
                "more than {MAX_EVENTS_PER_QUERY} events match; narrow the block range"
            ))
        };
        let agents = node.agents();
        let mut interfaces = Interfaces::new();
        let mut events = Vec::new();
        // Adds event `at` of request `r` in block `index`, unless the answer is full.
        let mut push = |events: &mut Vec<EventEntry>,
                        (at, e): (u32, &wisp_core::Event),
                        index: u64,
                        r: &wisp_core::Receipt| {
            if events.len() == MAX_EVENTS_PER_QUERY {
                return Err(too_many());
            }
            let mut v = node.event_view(e, &agents, &mut interfaces);
            v.block_index = Some(index);
            v.request_id = Some(r.request_id.into());
            v.event_index = Some(at);
            events.push(v);
            Ok(())
        };
        let Some(contract) = contract else {
            if topic.is_some() {
                return Err(invalid(
                    "a topic filter needs a contract: topics are per contract",
                ));
            }
            if to.saturating_sub(from) > 10_000 {
                return Err(invalid(
                    "at most 10000 blocks per query without a contract (with one, the event index answers any range)",
                ));
            }
            for index in from..=to {
                for r in node.chain().db().block_receipts(index).map_err(internal)? {
                    for (at, e) in r.events.iter().enumerate() {
                        push(&mut events, (at as u32, e), index, &r)?;
                    }
                }
            }
            return Ok(events);
        };
        let contract = node.resolve(&contract)?;
        // An indexed field's value: its position and borsh bytes, by the contract's interface.
        let wanted = match (&indexed, &topic) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "an indexed field filter needs a topic: fields are per event",
                ))
            }
            (Some((name, value)), Some(topic)) => {
                let def = node
                    .interface_of(contract)
                    .and_then(|i| i.event(topic).cloned())
                    .ok_or_else(|| invalid(format!("the contract has no event `{topic}`")))?;
                let indexed_names: Vec<&str> = def
                    .fields
                    .iter()
                    .take(usize::from(def.indexed))
                    .map(|f| f.name.as_str())
                    .collect();
                let Some(at) = indexed_names.iter().position(|n| n == name) else {
                    return Err(invalid(format!(
                        "`{name}` is not an indexed field of `{topic}` (indexed: {})",
                        if indexed_names.is_empty() {
                            "none".to_string()
                        } else {
                            indexed_names.join(", ")
                        }
                    )));
                };
                let mut bytes = Vec::new();
                wisp_core::json::encode_value(&def.fields[at].ty, value, name, &agents, &mut bytes)
                    .map_err(|e| invalid(e.to_string()))?;
                Some((def, at, bytes))
            }
        };
        // From the index; one more than the cap tells that there are too many.
        let positions = node
            .chain()
            .db()
            .event_positions_where(
                contract,
                topic.as_deref(),
                wanted
                    .as_ref()
                    .map(|(_, at, bytes)| (*at as u8, bytes.as_slice())),
                (from, to),
                MAX_EVENTS_PER_QUERY + 1,
            )
            .map_err(index_error)?;
        // One receipt read per matching request, whatever else its block holds.
        let db = node.chain().db();
        let mut block: Option<(u64, Vec<wisp_core::RequestId>)> = None;
        let mut receipt: Option<wisp_core::Receipt> = None;
        for (index, request, event) in positions {
            if block.as_ref().is_none_or(|(b, _)| *b != index) {
                block = Some((index, db.block_request_ids(index).map_err(internal)?));
            }
            let ids = block
                .as_ref()
                .map(|(_, ids)| ids.as_slice())
                .unwrap_or_default();
            let Some(id) = ids.get(request as usize) else {
                continue;
            };
            if receipt.as_ref().is_none_or(|r| r.request_id != *id) {
                receipt = db.receipt(id).map_err(internal)?;
            }
            let Some(r) = receipt.as_ref() else {
                continue;
            };
            let Some(e) = r.events.get(event as usize) else {
                continue;
            };
            // The index keys topics and values by tags: two may share one.
            if e.contract != contract || topic.as_ref().is_some_and(|t| *t != e.topic) {
                continue;
            }
            if let Some((def, at, bytes)) = &wanted {
                let values = def.indexed_values(&e.data).unwrap_or_default();
                if values.get(*at).is_none_or(|v| *v != bytes.as_slice()) {
                    continue;
                }
            }
            push(&mut events, (event, e), index, r)?;
        }
        Ok(events)
    }

    fn get_event_proof(&self, request_id: H256, index: u32) -> RpcResult<Option<EventProof>> {
        let node = &self.0;
        let id = request_id.into();
        let Some(receipt) = node.chain().db().receipt(&id).map_err(internal)? else {
            return Ok(None);
        };
        let block = receipt.block_index;
        let receipts = node.chain().db().block_receipts(block).map_err(internal)?;
        let Some(proof) = wisp_core::events::EventProof::build(&receipts, &id, index) else {
            return Ok(None);
        };
        let header = node.chain().db().block(block).map_err(internal)?;
        let mut event = node.event_view(&proof.event, &node.agents(), &mut Interfaces::new());
        event.block_index = Some(block);
        event.request_id = Some(request_id);
        Ok(Some(EventProof {
            event,
            proof: Bytes(borsh::to_vec(&proof).map_err(internal)?),
            block_index: block,
            events_root: header.events_root.into(),
            block: block_view(&header),
        }))
    }

    fn get_proof(&self, key: Bytes, block: Option<u64>) -> RpcResult<Proof> {
        let node = &self.0;
        let index = match block {
            Some(b) => b,
            None => node.chain().head().map_err(internal)?.index,
        };
        let (value, proof, header) = node.chain().prove(&key.0, index).map_err(internal)?;
        Ok(Proof {
            key,
            value: value.map(Bytes),
            proof: Bytes(proof.0),
            block_index: index,
            state_root: header.state_root.into(),
            block: block_view(&header),
        })
    }

    fn state_key(&self, kind: String, subject: Value) -> RpcResult<StateKey> {
        let node = &self.0;
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
                    .and_then(wisp_core::hash::from_hex)
                    .ok_or_else(|| invalid("contract key: 0x-hex"))?;
                wisp_chain::keys::contract_key(c, &rel)
            }
            other => {
                return Err(invalid(format!(
                    "unknown key kind `{other}` (balance, nonce, contract)"
                )))
            }
        };
        Ok(StateKey { key: Bytes(key) })
    }

    fn get_balance(&self, agent: String) -> RpcResult<U64> {
        let node = &self.0;
        let agent = node.parse_agent(&agent)?;
        Ok(node.chain().balance(&agent).map_err(internal)?.into())
    }

    async fn get_nonce(&self, agent: String) -> RpcResult<Nonce> {
        let node = &self.0;
        let agent = node.parse_agent(&agent)?;
        let chain_nonce = node.chain().nonce(&agent).map_err(internal)?;
        let pending = match node.committee_member() {
            // A member: its requests wait in the committee's mempool.
            Some(member) => member
                .pending_from(agent, chain_nonce)
                .await
                .map_err(internal)?,
            None => node
                .mempool
                .lock()
                .map(|m| m.pending_from(&agent, chain_nonce))
                .unwrap_or(0),
        };
        Ok(Nonce {
            next: chain_nonce.into(),
            pending,
        })
    }

    fn get_withdrawals(&self, from: Option<u64>, limit: Option<u32>) -> RpcResult<Vec<Withdrawal>> {
        let node = &self.0;
        let limit = limit.unwrap_or(100).min(1_000) as usize;
        let entries = node
            .chain()
            .outbox(from.unwrap_or(0), limit)
            .map_err(internal)?;
        let status = node.anchor_status().map_err(internal)?;
        let agents = node.agents();
        entries
            .iter()
            .map(|e| node.withdrawal_view(e, Some(&status), &agents))
            .collect()
    }

    fn list_contracts(&self) -> RpcResult<Vec<ContractEntry>> {
        let node = &self.0;
        let agents = node.agents();
        let list = node.chain().contracts().map_err(internal)?;
        Ok(list
            .into_iter()
            .map(|(h, name, record)| ContractEntry {
                hname: h.to_string(),
                name,
                core: record.is_none(),
                code_hash: record.as_ref().map(|r| r.code_hash.into()),
                deployer: record.as_ref().map(|r| agents.format(&r.deployer)),
                deployed_at_block: record.as_ref().map(|r| r.deployed_at_block),
            })
            .collect())
    }

    fn get_committee_blocks(&self, from: u64, limit: Option<u32>) -> RpcResult<CommitteeBlocks> {
        let chain = self.0.chain();
        let Some(wisp_consensus::follow::StoredFinalization {
            height: certified_height,
            certificate,
            ..
        }) = wisp_consensus::follow::stored_finalization(chain).map_err(internal)?
        else {
            if !self.0.is_committee_chain() {
                return Err(invalid(
                    "this chain has no committee: there are no committee blocks to follow",
                ));
            }
            return Ok(CommitteeBlocks {
                certified_height: 0,
                blocks: Vec::new(),
                finalization: None,
            });
        };
        let limit = u64::from(limit.unwrap_or(256).clamp(1, 256));
        let from = from.max(1);
        // A batch never crosses a committee rotation: the blocks up to a handover come with
        // the outgoing committee's certificate of its last block, those after it with the
        // next committee's.
        let (certified_height, certificate) = match handover_from(chain, from)? {
            Some(handover) if handover.height < certified_height => {
                (handover.height, handover.certificate)
            }
            _ => (certified_height, certificate),
        };
        let last = certified_height.min(from.saturating_add(limit - 1));
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        let mut last = last;
        for height in from..=last {
            // At most COMMITTEE_BLOCKS_BYTES of blocks per answer (at least one block).
            if bytes >= COMMITTEE_BLOCKS_BYTES {
                last = height - 1;
                break;
            }
            match wisp_consensus::follow::stored_block_bytes(chain, height).map_err(internal)? {
                Some(encoded) => {
                    bytes += encoded.len();
                    blocks.push(Bytes(encoded));
                }
                None => {
                    return Err(invalid(format!(
                        "committee block {height} is not stored on this node (it joined later)"
                    )))
                }
            }
        }
        Ok(CommitteeBlocks {
            certified_height,
            finalization: (from <= certified_height && last == certified_height)
                .then_some(Bytes(certificate)),
            blocks,
        })
    }

    fn get_snapshot_base(&self) -> RpcResult<SnapshotBase> {
        let chain = self.0.chain();
        let Some(certified) =
            wisp_consensus::follow::stored_finalization(chain).map_err(internal)?
        else {
            return Err(invalid(match self.0.is_committee_chain() {
                true => "the committee has not certified a block this node executed yet; try again shortly",
                false => "this chain has no committee: start a node of it from its genesis",
            }));
        };
        let certified_bytes = wisp_consensus::follow::stored_block_bytes(chain, certified.height)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("committee block {} is missing", certified.height)))?;
        let block = wisp_consensus::Block::decode(&certified_bytes).map_err(internal)?;
        let Some(attested) = block.attests else {
            return Err(invalid(
                "no certified block attests a state yet (the chain has just started); try again shortly",
            ));
        };
        if certified.height.saturating_sub(attested.height) > SNAPSHOT_BASE_BLOCKS {
            return Err(internal(format!(
                "the certified block attests height {}, {} blocks back: more than a snapshot base carries",
                attested.height,
                certified.height - attested.height
            )));
        }
        let mut blocks = Vec::new();
        for height in attested.height..certified.height {
            match wisp_consensus::follow::stored_block_bytes(chain, height).map_err(internal)? {
                Some(encoded) => blocks.push(Bytes(encoded)),
                None => {
                    return Err(invalid(format!(
                        "committee block {height} is not stored on this node (it joined later)"
                    )))
                }
            }
        }
        blocks.push(Bytes(certified_bytes));
        let header = wisp_consensus::follow::attested_header(chain, &attested)
            .map_err(internal)?
            .ok_or_else(|| {
                invalid("this node is between two blocks or lacks the attested one; try again")
            })?;
        let receipts = chain.db().block_receipts(header.index).map_err(internal)?;
        Ok(SnapshotBase {
            height: attested.height,
            receipts: Bytes(borsh::to_vec(&receipts).map_err(internal)?),
            header: Bytes(borsh::to_vec(&header).map_err(internal)?),
            blocks,
            finalization: Bytes(certified.certificate),
        })
    }

    fn get_state_chunk(
        &self,
        height: u64,
        after: Option<H256>,
        limit: Option<u32>,
    ) -> RpcResult<StateChunk> {
        let limit = limit.map_or(wisp_state::MAX_CHUNK_ENTRIES, |l| l as usize);
        let chunk =
            self.0
                .chain()
                .db()
                .state_chunk(
                    height,
                    after.map(|h| h.0),
                    limit,
                    wisp_state::MAX_CHUNK_BYTES,
                )
                .map_err(|e| match e {
                    wisp_state::StateError::UnknownBlock(_)
                    | wisp_state::StateError::Pruned { .. } => invalid(e.to_string()),
                    e => internal(e),
                })?;
        Ok(StateChunk {
            entries: chunk
                .entries
                .into_iter()
                .map(|(k, v)| (H256(k), Bytes(v)))
                .collect(),
            proof: Bytes(chunk.proof),
            last: chunk.last,
        })
    }

    fn get_interface(&self, contract: String) -> RpcResult<Option<ContractInterface>> {
        let hname = self.0.resolve(&contract)?;
        Ok(self.0.interface_of(hname))
    }

    fn get_code(&self, code_hash: H256) -> RpcResult<Option<Bytes>> {
        let code = self
            .0
            .chain()
            .db()
            .get(&wisp_chain::keys::blob(&code_hash.into()))
            .map_err(internal)?;
        Ok(code.map(Bytes))
    }

    async fn subscribe_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let node = self.0.clone();
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
                    let view = node.block_with_receipts(&block.header, &block.receipts)?;
                    let message = SubscriptionMessage::from(serde_json::value::to_raw_value(&view)?);
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    async fn subscribe_events(
        &self,
        pending: PendingSubscriptionSink,
        contract: Option<String>,
    ) -> SubscriptionResult {
        let node = self.0.clone();
        let filter = match contract {
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
                    // Per block, as a query does: a long subscription holds no interfaces.
                    let mut interfaces = Interfaces::new();
                    for r in &block.receipts {
                        for (at, e) in r.events.iter().enumerate().filter(|(_, e)| filter.is_none_or(|f| f == e.contract)) {
                            let mut v = node.event_view(e, &agents, &mut interfaces);
                            v.block_index = Some(block.header.index);
                            v.request_id = Some(r.request_id.into());
                            v.event_index = Some(at as u32);
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
    }
}

#[async_trait]
impl DevApiServer for Api {
    async fn mine(&self, n: Option<u32>) -> RpcResult<Mined> {
        devnet_only(&self.0)?;
        let n = n.unwrap_or(1).clamp(1, 1000);
        let block = self.0.mine(n).await.map_err(internal)?;
        Ok(Mined {
            l1_blocks: n,
            block: block.map(|b| block_view(&b.header)),
        })
    }

    fn snapshot(&self) -> RpcResult<U64> {
        devnet_only(&self.0)?;
        Ok(self.0.snapshot().map_err(internal)?.into())
    }

    async fn revert(&self, id: U64) -> RpcResult<bool> {
        devnet_only(&self.0)?;
        self.0.revert(id.0).await.map_err(internal)
    }
}

/// Builds the RPC module for `node`: the `wisp_` and `dev_` methods.
///
/// # Errors
/// Never in practice (method names are unique); jsonrpsee's registration error otherwise.
pub fn module(node: Arc<Node>) -> Result<RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(());
    m.merge(WispApiServer::into_rpc(Api(node.clone())))?;
    m.merge(DevApiServer::into_rpc(Api(node)))?;
    Ok(m)
}

/// How a subscription ends when its block feed fails: a subscriber that fell behind the
/// node's buffer gets an error saying so, never a silent end (defect 26 of the hardening
/// review); a node shutting down ends it normally.
fn lagged(e: tokio::sync::broadcast::error::RecvError) -> SubscriptionResult {
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

/// Starts the RPC server on `addr` (loopback in every configuration Wisp ships), which also
/// serves `GET /metrics` and the explorer at `GET /explorer/` ([`crate::explorer`]). Requests
/// whose `Host` is not a loopback name or whose `Origin` is a web page elsewhere are refused
/// with 403; bodies, connections, subscriptions and batches are capped (the constants above).
///
/// # Errors
/// The bind error if the port is taken.
pub async fn serve(
    node: Arc<Node>,
    addr: SocketAddr,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    serve_with_cors(node, addr, &[]).await
}

/// [`serve`], also answering web pages of the origins `cors` (each `scheme://host[:port]`,
/// checked by [`crate::guard::check_cors_origin`]): they pass the origin guard and get CORS
/// headers, preflight included, so a dApp or explorer served elsewhere can call the node from
/// a browser. Opt-in: without it only local pages and non-browser clients are answered.
///
/// # Errors
/// A malformed origin, or the bind error if the port is taken.
pub async fn serve_with_cors(
    node: Arc<Node>,
    addr: SocketAddr,
    cors: &[String],
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let mut origins = Vec::with_capacity(cors.len());
    for origin in cors {
        crate::guard::check_cors_origin(origin).map_err(std::io::Error::other)?;
        origins.push(http::HeaderValue::from_str(origin).map_err(std::io::Error::other)?);
    }
    let cors_layer = (!origins.is_empty()).then(|| {
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins))
            .allow_methods([http::Method::POST, http::Method::GET, http::Method::OPTIONS])
            .allow_headers([http::header::CONTENT_TYPE])
    });
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
        .layer(crate::answer::AnswerLayer(crate::guard::LocalOriginGuard {
            allowed: cors.to_vec().into(),
        }))
        .option_layer(cors_layer)
        .layer(crate::answer::AnswerLayer(crate::metrics::MetricsAnswer(
            Arc::downgrade(&node),
        )))
        .layer(crate::answer::AnswerLayer(crate::explorer::ExplorerAnswer));
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
