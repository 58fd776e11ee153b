/**
 * The public client: every `wisp_*` read of a node, typed, with amounts, gas and scores as
 * `bigint`; live blocks and events that survive reconnects; and proofs checked locally.
 * @module
 */
import { equalBytes, fromHex, toHex } from "./bytes.js";
import { WispError } from "./errors.js";
import { NodeAgentFormat, contractName } from "./ids.js";
import { verifyEventProof, verifyStateProof } from "./proof.js";
import { decodeHeader, headerHash, type EventProof as DecodedEventProof } from "./structs.js";
import { http, WebSocketConnection, type Subscription, type Transport } from "./transport.js";
import type { ContractInterface } from "./types.js";
import type { ErrorInfo } from "./errors.js";
import type { AddressPrefix } from "./address.js";

/** `0x`-prefixed hex. */
export type Hex = `0x${string}`;

/** A block header, with its receipts where the method says so. */
export interface Block {
  index: number;
  hash: Hex;
  prevHash: Hex;
  chainId: Hex;
  l1Block: Hex;
  l1DaaScore: bigint;
  timestampMs: bigint;
  stateRoot: Hex;
  receiptsRoot: Hex;
  eventsRoot: Hex;
  requestCount: number;
  gasUsed: bigint;
  protocolVersion: number;
  receipts?: Receipt[];
  /** borsh of the header; its blake2b-256 is `hash`. */
  raw: Hex;
}

/** An event a contract emitted. */
export interface EventEntry {
  /** `contract:<name>` or its id. */
  contract: string;
  topic: string;
  /** Decoded with the contract's interface (u64 and wider as decimal strings); null without one. */
  fields: Record<string, unknown> | null;
  data: Hex;
  blockIndex?: number;
  requestId?: Hex;
  /** Position among its request's events (what `getEventProof` takes). */
  eventIndex?: number;
}

/** A request's call, arguments decoded where the contract has an interface. */
export interface CallView {
  contract: string;
  function: string;
  args: Record<string, unknown> | null;
  argsRaw: Hex;
  transferSompi: bigint;
  gasBudget: bigint;
}

/** A withdrawal (peg-out) in the chain's outbox. */
export interface Withdrawal {
  seq: number;
  from: string;
  to: string;
  amountSompi: bigint;
  blockIndex: number;
  status: "queued" | "committed" | "paid";
  paidBy: string | null;
}

/** What executing a request did. */
export interface Receipt {
  requestId: Hex;
  blockIndex: number;
  requestIndex: number;
  sender: string;
  status: "success" | "failed";
  error: ErrorInfo | null;
  gasUsed: bigint;
  feeSompi: bigint;
  storageLockedSompi: bigint;
  storageRefundedSompi: bigint;
  events: EventEntry[];
  returnData: Hex;
  withdrawals?: Withdrawal[];
  kind?: "onLedger" | "offLedger";
  nonce?: bigint;
  l1TxId?: Hex;
  call?: CallView;
  /** borsh of the receipt; the block's receipts root commits to its blake2b-256. */
  raw: Hex;
}

/** A request as it reached the chain. */
export interface RequestView {
  requestId: Hex;
  kind: "onLedger" | "offLedger";
  sender: string;
  blockIndex: number;
  requestIndex: number;
  nonce?: bigint;
  l1TxId?: Hex;
  depositSompi?: bigint;
  call?: CallView;
  timeLock?: unknown;
}

/** The chain's anchor on Kaspa. */
export interface AnchorInfo {
  covenantId: Hex;
  genesisOutpoint: string;
  committeeKey: Hex;
  maxFeeSompi: bigint;
  outpoint: string | null;
  valueSompi: bigint | null;
  anchoredBlock: number | null;
  anchoredHeaderHash: Hex | null;
  outbox: Hex | null;
  feesSpentSompi: bigint | null;
  inFlight: string | null;
}

/** `wisp_chainInfo`. */
export interface ChainInfo {
  chainId: Hex;
  name: string;
  head: Block;
  gasPriceSompi: bigint;
  maxRequestGas: bigint;
  maxBlockGas: bigint;
  depositAddress: string;
  anchor: AnchorInfo;
  l1RpcUrl: string;
  l1CoinbaseMaturity: number;
  l1FollowedDaaScore: bigint;
  mempool: number;
  devnet: boolean;
  apiVersion: number;
}

/** A contract on the chain. */
export interface ContractEntry {
  hname: string;
  name: string;
  core: boolean;
  codeHash: Hex | null;
  deployer: string | null;
  deployedAtBlock: number | null;
}

/** An access list as the node writes it (hnames as 8 hex digits). */
export interface AccessListView {
  reads: { contract: string; keyPrefix?: Hex }[];
  writes: { contract: string; keyPrefix?: Hex }[];
}

/** `wisp_simulateRequest`: the receipt a request would get now and the accesses it needs. */
export interface Simulation extends Receipt {
  accessList: AccessListView | null;
}

/** `wisp_callView`. */
export interface ViewResult {
  value: unknown;
  data: Hex;
  gasUsed: bigint;
}

/** `wisp_getProof`. */
export interface Proof {
  key: Hex;
  value: Hex | null;
  proof: Hex;
  blockIndex: number;
  stateRoot: Hex;
  block: Block;
}

/** `wisp_getEventProof`. */
export interface EventProofResponse {
  event: EventEntry;
  proof: Hex;
  blockIndex: number;
  eventsRoot: Hex;
  block: Block;
}

const big = (v: unknown): bigint => BigInt(v as string);
const bigOpt = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(v as string));

function toBlock(b: Record<string, unknown>): Block {
  return {
    ...(b as unknown as Block),
    l1DaaScore: big(b.l1DaaScore),
    timestampMs: big(b.timestampMs),
    gasUsed: big(b.gasUsed),
    ...(b.receipts ? { receipts: (b.receipts as Record<string, unknown>[]).map(toReceipt) } : {}),
  };
}

function toCall(c: Record<string, unknown>): CallView {
  return { ...(c as unknown as CallView), transferSompi: big(c.transferSompi), gasBudget: big(c.gasBudget) };
}

function toWithdrawal(w: Record<string, unknown>): Withdrawal {
  return { ...(w as unknown as Withdrawal), amountSompi: big(w.amountSompi) };
}

function toReceipt(r: Record<string, unknown>): Receipt {
  const out: Receipt = {
    ...(r as unknown as Receipt),
    gasUsed: big(r.gasUsed),
    feeSompi: big(r.feeSompi),
    storageLockedSompi: big(r.storageLockedSompi ?? "0"),
    storageRefundedSompi: big(r.storageRefundedSompi ?? "0"),
  };
  if (r.nonce !== undefined) out.nonce = big(r.nonce);
  if (r.call) out.call = toCall(r.call as Record<string, unknown>);
  if (r.withdrawals) out.withdrawals = (r.withdrawals as Record<string, unknown>[]).map(toWithdrawal);
  return out;
}

function toRequestView(r: Record<string, unknown>): RequestView {
  const out = { ...(r as unknown as RequestView) };
  if (r.nonce !== undefined) out.nonce = big(r.nonce);
  if (r.depositSompi !== undefined) out.depositSompi = big(r.depositSompi);
  if (r.call) out.call = toCall(r.call as Record<string, unknown>);
  return out;
}

function toChainInfo(c: Record<string, unknown>): ChainInfo {
  const a = c.anchor as Record<string, unknown>;
  return {
    ...(c as unknown as ChainInfo),
    head: toBlock(c.head as Record<string, unknown>),
    gasPriceSompi: big(c.gasPriceSompi),
    maxRequestGas: big(c.maxRequestGas),
    maxBlockGas: big(c.maxBlockGas),
    l1FollowedDaaScore: big(c.l1FollowedDaaScore),
    anchor: {
      ...(a as unknown as AnchorInfo),
      maxFeeSompi: big(a.maxFeeSompi),
      valueSompi: bigOpt(a.valueSompi),
      feesSpentSompi: bigOpt(a.feesSpentSompi),
    },
  };
}

/** Which block: an index, or `latest` (also the default). */
export type BlockTag = number | bigint | "latest";

/** Filter of {@link PublicClient.getEvents}. */
export interface EventFilter {
  fromBlock?: number;
  toBlock?: number;
  contract?: string;
  topic?: string;
  /** With a topic: `[field, value]` keeps events whose `#[indexed]` field has that value. */
  where?: [string, unknown];
}

/** Options of {@link createPublicClient}. */
export interface PublicClientOptions {
  /** The node's RPC address (`http://127.0.0.1:8645`); WebSockets go to the same host and port. */
  url: string;
  /** A transport for calls instead of HTTP to `url`. */
  transport?: Transport;
  /** Where `watch*` subscribe (default: `url` with `ws:`/`wss:`). */
  wsUrl?: string;
}

/** Handlers of {@link PublicClient.watchBlocks}. */
export interface WatchBlocksOptions {
  /** Each new block, in order, once (with receipts). */
  onBlock(block: Block): void;
  /** Blocks from `fromIndex` on were replaced (the chain rolled back after a Kaspa reorg). */
  onReorg?(info: { fromIndex: number; removed: Block[] }): void;
  /** A connection problem; watching goes on, reconnecting with backoff. */
  onError?(error: Error): void;
  /** Start after this block (default: the head when watching starts); earlier ones are backfilled. */
  afterIndex?: number;
  /** Most blocks fetched to fill a gap after a reconnect (default 1,000); a longer gap is an error. */
  maxBackfill?: number;
}

/** Handlers of {@link PublicClient.watchEvents}. */
export interface WatchEventsOptions {
  /** Each new event, once, in chain order (with `blockIndex`, `requestId`, `eventIndex`). */
  onEvent(event: EventEntry): void;
  /** Only events of this contract (`token`, `contract:token`). */
  contract?: string;
  /** Only events of this topic. */
  topic?: string;
  onReorg?: WatchBlocksOptions["onReorg"];
  onError?: WatchBlocksOptions["onError"];
  afterIndex?: number;
}

/** A running watch. */
export interface Unwatch {
  /** Stops watching. */
  (): Promise<void>;
  /**
   * Resolves once the subscription is live and the blocks since the start point have been
   * delivered: what happens on the chain after that is delivered without a gap.
   */
  ready: Promise<void>;
  /** Closes the current socket as a network failure would (for tests of reconnects). */
  dropConnection(): void;
}

/** A verified state value. */
export interface VerifiedValue {
  key: Hex;
  /** The proven value (null: proven absent). */
  value: Hex | null;
  block: Block;
}

/** The public client's methods; see {@link createPublicClient}. */
export type PublicClient = ReturnType<typeof createPublicClient>;

/**
 * A client for a node's public reads. Methods map to `wisp_*` methods of the same name.
 * @example
 * const client = createPublicClient({ url: "http://127.0.0.1:8645" });
 * const info = await client.chainInfo();
 */
export function createPublicClient(options: PublicClientOptions) {
  const transport = options.transport ?? http(options.url);
  const wsUrl = options.wsUrl ?? options.url.replace(/^http/, "ws");
  const call = <T>(method: string, ...params: unknown[]) => transport.request<T>(method, params);
  const interfaces = new Map<string, Promise<ContractInterface | null>>();
  let agentFormat: Promise<NodeAgentFormat> | undefined;

  const client = {
    /** The transport calls go through. */
    transport,
    /** The chain id, head, gas parameters, deposit address and anchor. */
    async chainInfo(): Promise<ChainInfo> {
      return toChainInfo(await call("wisp_chainInfo"));
    },
    /** A block with its receipts (null if there is none). */
    async getBlock(block: BlockTag = "latest"): Promise<Block | null> {
      const b = await call<Record<string, unknown> | null>("wisp_getBlock", typeof block === "bigint" ? Number(block) : block);
      return b && toBlock(b);
    },
    /** A request's receipt (null until it is executed). */
    async getReceipt(requestId: Hex): Promise<Receipt | null> {
      const r = await call<Record<string, unknown> | null>("wisp_getReceipt", requestId);
      return r && toReceipt(r);
    },
    /** A processed request as it reached the chain (null until processed). */
    async getRequest(requestId: Hex): Promise<RequestView | null> {
      const r = await call<Record<string, unknown> | null>("wisp_getRequest", requestId);
      return r && toRequestView(r);
    },
    /** Processed requests of a sender or to a contract, newest first (at most 100 per page). */
    async getRequests(q: { sender?: string; contract?: string; before?: Hex; limit?: number }): Promise<RequestView[]> {
      const list = await call<Record<string, unknown>[]>("wisp_getRequests", q.sender ?? null, q.contract ?? null, q.before ?? null, q.limit ?? null);
      return list.map(toRequestView);
    },
    /** Events of blocks `fromBlock..=toBlock` (default: the last 100 blocks). */
    getEvents(f: EventFilter = {}): Promise<EventEntry[]> {
      return call("wisp_getEvents", f.fromBlock ?? null, f.toBlock ?? null, f.contract ?? null, f.topic ?? null, f.where ?? null);
    },
    /** Event `index` of a request with its Merkle proof (null if there is no such event). */
    async getEventProof(requestId: Hex, index: number): Promise<EventProofResponse | null> {
      const p = await call<Record<string, unknown> | null>("wisp_getEventProof", requestId, index);
      return p && { ...(p as unknown as EventProofResponse), block: toBlock(p.block as Record<string, unknown>) };
    },
    /** A state value at a block (default: the head) with its Merkle proof. */
    async getProof(key: Hex, block?: number): Promise<Proof> {
      const p = await call<Record<string, unknown>>("wisp_getProof", key, block ?? null);
      return { ...(p as unknown as Proof), block: toBlock(p.block as Record<string, unknown>) };
    },
    /** The state key of an agent's `balance` or `nonce`, or of a contract's own key. */
    async stateKey(kind: "balance" | "nonce" | "contract", subject: unknown): Promise<Hex> {
      return (await call<{ key: Hex }>("wisp_stateKey", kind, subject)).key;
    },
    /** An agent's on-chain balance, sompi. */
    async getBalance(agent: string): Promise<bigint> {
      return big(await call("wisp_getBalance", agent));
    },
    /** An agent's next nonce and its requests waiting in the mempool. */
    async getNonce(agent: string): Promise<{ next: bigint; pending: number }> {
      const n = await call<{ next: string; pending: number }>("wisp_getNonce", agent);
      return { next: big(n.next), pending: n.pending };
    },
    /** Withdrawals from outbox position `from`. */
    async getWithdrawals(from?: number, limit?: number): Promise<Withdrawal[]> {
      return (await call<Record<string, unknown>[]>("wisp_getWithdrawals", from ?? null, limit ?? null)).map(toWithdrawal);
    },
    /** The chain's contracts, core ones included. */
    listContracts(): Promise<ContractEntry[]> {
      return call("wisp_listContracts");
    },
    /** A contract's interface (null without one); cached per client. */
    getInterface(contract: string): Promise<ContractInterface | null> {
      const name = contractName(contract);
      let p = interfaces.get(name);
      if (!p) {
        p = call<ContractInterface | null>("wisp_getInterface", name);
        p.catch(() => interfaces.delete(name));
        interfaces.set(name, p);
      }
      return p;
    },
    /** The module stored under a code hash (null if none). */
    async getCode(codeHash: Hex): Promise<Uint8Array | null> {
      const code = await call<Hex | null>("wisp_getCode", codeHash);
      return code === null ? null : fromHex(code);
    },
    /** Calls a view with JSON `args` (the node encodes them; see `getContract` for typed calls). */
    async callView(contract: string, fn: string, args?: unknown): Promise<ViewResult> {
      const v = await call<Record<string, unknown>>("wisp_callView", contractName(contract), fn, args ?? null);
      return { ...(v as unknown as ViewResult), gasUsed: big(v.gasUsed) };
    },
    /** Encodes JSON `args` for a function on the node (the client's own `encodeArgs` needs no call). */
    async encodeArgs(contract: string, fn: string, kind: "entry" | "view", args: unknown): Promise<{ contract: string; args: Hex }> {
      return call("wisp_encodeArgs", contractName(contract), fn, kind, args);
    },
    /** Devnet controls (a node that is not a devnet answers `RpcError` -32601). */
    dev: {
      /** Mines `n` Kaspa blocks (default 1) and produces a chain block. */
      async mine(n?: number): Promise<{ l1Blocks: number; block: Block | null }> {
        const m = await call<{ l1Blocks: number; block: Record<string, unknown> | null }>("dev_mine", n ?? null);
        return { l1Blocks: m.l1Blocks, block: m.block && toBlock(m.block) };
      },
      /** Snapshots the chain; the id is for `revert`. */
      async snapshot(): Promise<bigint> {
        return big(await call("dev_snapshot"));
      },
      /** Reverts the chain to a snapshot; false if there is no such snapshot. */
      revert(id: bigint): Promise<boolean> {
        return call("dev_revert", id.toString());
      },
    },
    /** Runs a request body (borsh) as `sender` against the head without committing. */
    async simulateRequest(sender: string, body: Uint8Array): Promise<Simulation> {
      const s = await call<Record<string, unknown>>("wisp_simulateRequest", sender, toHex(body));
      return { ...toReceipt(s), accessList: (s.accessList as AccessListView | null) ?? null };
    },
    /** Admits a signed request (borsh) to the mempool; resolves with its id. */
    async sendRawRequest(signed: Uint8Array): Promise<Hex> {
      return (await call<{ requestId: Hex }>("wisp_sendRequest", toHex(signed))).requestId;
    },
    /**
     * Waits for a request's receipt, polling every `intervalMs` (default 100).
     * @throws {WispError} after `timeoutMs` (default 60,000).
     */
    async waitForReceipt(requestId: Hex, opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<Receipt> {
      const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
      for (;;) {
        const r = await client.getReceipt(requestId);
        if (r) return r;
        if (Date.now() > deadline) throw new WispError(`no receipt for request ${requestId} after ${opts.timeoutMs ?? 60_000} ms`);
        await new Promise((res) => setTimeout(res, opts.intervalMs ?? 100));
      }
    },
    /**
     * The node's agent format for this chain (Kaspa addresses, `contract:<name>`), with the
     * contract names known now; cached (call `refreshAgentFormat` after deploys).
     */
    agentFormat(): Promise<NodeAgentFormat> {
      agentFormat ??= (async () => {
        const [info, contracts] = await Promise.all([client.chainInfo(), client.listContracts()]);
        const prefix = info.depositAddress.slice(0, info.depositAddress.indexOf(":")) as AddressPrefix;
        return new NodeAgentFormat(prefix, fromHex(info.chainId), new Map(contracts.map((c) => [parseInt(c.hname, 16), c.name])));
      })();
      agentFormat.catch(() => (agentFormat = undefined));
      return agentFormat;
    },
    /** Forgets the cached agent format and interfaces (after deploys and upgrades). */
    refreshAgentFormat(): void {
      agentFormat = undefined;
      interfaces.clear();
    },
    /**
     * Checks a block's `raw` header hashes to its `hash` and decodes it.
     * @throws {WispError} if it does not.
     */
    verifyBlockHeader(block: Block) {
      const raw = fromHex(block.raw);
      if (!equalBytes(headerHash(raw), fromHex(block.hash))) throw new WispError(`block ${block.index}: its header does not hash to ${block.hash}`);
      return decodeHeader(raw);
    },
    /**
     * Reads a state key with its proof and verifies the proof locally against the state root in
     * the block header (itself checked against the block hash); trusts no field the node sent
     * beside that header.
     * @throws {ProofError} or {WispError} if anything does not verify.
     */
    async getVerifiedValue(key: Hex, block?: number): Promise<VerifiedValue> {
      const p = await client.getProof(key, block);
      const header = client.verifyBlockHeader(p.block);
      verifyStateProof(header.stateRoot, fromHex(key), p.value === null ? null : fromHex(p.value), fromHex(p.proof));
      return { key, value: p.value, block: p.block };
    },
    /** An agent's balance (sompi), proven against the head's state root. */
    async getVerifiedBalance(agent: string, block?: number): Promise<{ balance: bigint; block: Block }> {
      const key = await client.stateKey("balance", agent);
      const v = await client.getVerifiedValue(key, block);
      let balance = 0n;
      if (v.value !== null) {
        const b = fromHex(v.value);
        for (let i = b.length - 1; i >= 0; i--) balance = (balance << 8n) | BigInt(b[i]!);
      }
      return { balance, block: v.block };
    },
    /** An event with its proof, verified against its block's events root. */
    async getVerifiedEvent(requestId: Hex, index: number): Promise<{ event: EventEntry; proof: DecodedEventProof; block: Block } | null> {
      const p = await client.getEventProof(requestId, index);
      if (!p) return null;
      const header = client.verifyBlockHeader(p.block);
      const proof = verifyEventProof(header.eventsRoot, fromHex(p.proof));
      if (!equalBytes(proof.requestId, fromHex(requestId)) || proof.index !== index) throw new WispError("the event proof is for another event");
      return { event: p.event, proof, block: p.block };
    },
    /**
     * Calls `onBlock` for every new block, in order, exactly once: reconnects with backoff when
     * the socket drops or the node ends the subscription (a slow consumer), fills the gap from
     * `wisp_getBlock`, drops duplicates, and reports rollbacks (`onReorg`) when a block does not
     * follow the one before it.
     */
    watchBlocks(w: WatchBlocksOptions): Unwatch {
      const recent: Block[] = []; // the last blocks delivered, oldest first
      const KEEP = 64;
      let last: number | undefined = w.afterIndex;
      // The default start is the head when `watchBlocks` is called, asked for right away (not
      // when the socket has opened), so blocks made meanwhile are delivered too.
      const start: Promise<number | undefined> =
        last !== undefined ? Promise.resolve(last) : client.getBlock("latest").then((b) => b?.index, () => undefined);
      let markReady!: () => void;
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      let stopped = false;
      let conn: WebSocketConnection | undefined;
      let sub: Subscription | undefined;
      let chain: Promise<void> = Promise.resolve();
      const report = (e: unknown) => w.onError?.(e instanceof Error ? e : new Error(String(e)));

      const deliver = async (b: Block): Promise<void> => {
        if (last !== undefined && b.index <= last) {
          const known = recent.find((r) => r.index === b.index);
          // A duplicate, or older than the blocks kept to judge it by: not news either way.
          if (!known || known.hash === b.hash) return;
        }
        const prev = recent[recent.length - 1];
        if (prev && (b.index !== prev.index + 1 || b.prevHash !== prev.hash)) {
          // Not a successor: find where the delivered blocks and the node's chain agree.
          let fork = Math.min(b.index - 1, prev.index);
          while (fork >= 0 && recent.some((r) => r.index === fork)) {
            const theirs = await client.getBlock(fork);
            const ours = recent.find((r) => r.index === fork);
            if (theirs && ours && theirs.hash === ours.hash) break;
            fork--;
          }
          const removed = recent.filter((r) => r.index > fork);
          if (removed.length) {
            recent.splice(recent.length - removed.length);
            w.onReorg?.({ fromIndex: fork + 1, removed });
          }
          last = fork;
          for (let i = fork + 1; i < b.index; i++) {
            const missing = await client.getBlock(i);
            if (missing) push(missing);
          }
        }
        push(b);
      };
      const push = (b: Block) => {
        if (stopped) return;
        recent.push(b);
        if (recent.length > KEEP) recent.shift();
        last = b.index;
        w.onBlock(b);
      };

      // Consecutive failures (reset by a delivered block): the backoff before the next attempt.
      let failures = 0;
      const retry = () => {
        if (stopped) return;
        const delay = Math.min(5000, 100 * 2 ** Math.min(failures++, 6));
        setTimeout(() => void connect(), delay);
      };
      const connect = async (): Promise<void> => {
        if (stopped) return;
        let opened: WebSocketConnection;
        try {
          opened = await WebSocketConnection.connect(wsUrl);
        } catch (e) {
          report(e);
          return retry();
        }
        if (stopped) {
          opened.close(); // unwatched while it was opening
          return;
        }
        conn = opened;
        const buffered: Block[] = [];
        let live = false;
        // Any failure below closes the socket: its onClose reconnects, and the backfill that
        // follows fetches from the last block delivered, so nothing is lost.
        const fail = (e: unknown) => {
          report(e);
          opened.close();
        };
        let subscribed: Subscription;
        try {
          subscribed = await opened.subscribe<Record<string, unknown>>("wisp_subscribeBlocks", [], "wisp_unsubscribeBlocks", {
            onItem: (raw) => {
              const b = toBlock(raw);
              if (live) chain = chain.then(() => deliver(b)).catch(fail);
              else buffered.push(b);
            },
            onClose: (reason) => {
              if (stopped) return;
              report(reason);
              retry();
            },
          });
        } catch (e) {
          return fail(e);
        }
        if (stopped) {
          await subscribed.unsubscribe();
          opened.close();
          return;
        }
        sub = subscribed;
        // Backfill what was missed while disconnected, then what arrived meanwhile.
        await (chain = chain
          .then(async () => {
            if (last === undefined) last = await start;
            const head = (await client.getBlock("latest"))?.index ?? 0;
            if (last === undefined) last = head;
            const from = last + 1;
            if (head - from + 1 > (w.maxBackfill ?? 1000)) {
              report(new WispError(`missed ${head - from + 1} blocks, more than maxBackfill (${w.maxBackfill ?? 1000}); resuming at the head`));
              recent.length = 0;
              last = head;
            } else {
              for (let i = from; i <= head; i++) {
                const b = await client.getBlock(i);
                if (b) await deliver(b);
              }
            }
            for (const b of buffered) await deliver(b);
            live = true;
            failures = 0;
            markReady();
          })
          .catch(fail));
      };
      void connect();
      const unwatch = (async () => {
        stopped = true;
        await sub?.unsubscribe();
        conn?.close();
      }) as Unwatch;
      unwatch.dropConnection = () => conn?.close();
      unwatch.ready = ready;
      return unwatch;
    },
    /**
     * Calls `onEvent` for every new event (optionally of one contract and topic) exactly once,
     * in chain order; built on {@link watchBlocks}, so it reconnects, backfills and reports
     * rollbacks the same way.
     */
    watchEvents(w: WatchEventsOptions): Unwatch {
      const want = w.contract === undefined ? undefined : `contract:${contractName(w.contract)}`;
      return client.watchBlocks({
        afterIndex: w.afterIndex,
        onReorg: w.onReorg,
        onError: w.onError,
        onBlock: (b) => {
          for (const r of b.receipts ?? []) {
            r.events.forEach((e, i) => {
              if (want !== undefined && e.contract !== want) return;
              if (w.topic !== undefined && e.topic !== w.topic) return;
              w.onEvent({ ...e, blockIndex: b.index, requestId: r.requestId, eventIndex: i });
            });
          }
        },
      });
    },
  };
  return client;
}

