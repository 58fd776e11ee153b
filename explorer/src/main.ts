// The Wisp explorer: one page, hash routes (#/, #/block/N, #/request/<id>, #/contract/<name>,
// #/account/<address>), reading a node with @wisp/client and checking what it can in the page
// (block hashes and receipts roots from raw bytes, balance and event proofs, code hashes).
import { h, render } from "preact";
import { useEffect, useErrorBoundary, useRef, useState } from "preact/hooks";
import htm from "htm";
import {
  codeHash,
  createPublicClient,
  createWalletClient,
  decodeAddress,
  decodeReceipt,
  equalBytes,
  fromHex,
  getContract,
  LocalSigner,
  readInterface,
  receiptsRoot,
  eventsRoot,
  toHex,
  type Block,
  type CallView,
  type ChainInfo,
  type ContractEntry,
  type ContractInterface,
  type ErrorInfo,
  type EventEntry,
  type FunctionDef,
  type Hex,
  type Receipt,
  type RequestView,
  type Withdrawal,
} from "../../sdk/ts/src/index.ts";
import {
  agentLink,
  fmtClock,
  fmtHex,
  fmtInt,
  fmtSompi,
  fmtTime,
  parseInput,
  searchRoute,
  shortAgent,
  shortHex,
  show,
  showTyped,
} from "./format.ts";

const html = htm.bind(h);
type Node = ReturnType<typeof html>;

// ---------------------------------------------------------------------------------------------
// The node

/** The node's RPC address: `?rpc=` or the page's own origin (when the node serves the page). */
const RPC_URL = (() => {
  const q = new URLSearchParams(location.search).get("rpc");
  return (q ?? location.origin).replace(/\/+$/, "");
})();
const client = createPublicClient({ url: RPC_URL });
type Client = typeof client;

let chainInfoCache: Promise<ChainInfo> | undefined;
/** Chain info, fetched once per page load (for the devnet flag and the chain's name). */
function chainInfoOnce(): Promise<ChainInfo> {
  chainInfoCache ??= client.chainInfo();
  chainInfoCache.catch(() => (chainInfoCache = undefined));
  return chainInfoCache;
}

/** `contract:token` → `token`. */
const contractName = (c: string) => (c.startsWith("contract:") ? c.slice(9) : c);

/** A contract's interface, or null with the reason it could not be had. */
async function interfaceOf(name: string): Promise<{ iface: ContractInterface | null; error?: unknown }> {
  try {
    return { iface: await client.getInterface(name) };
  } catch (error) {
    return { iface: null, error };
  }
}

type Ifaces = Map<string, { iface: ContractInterface | null; error?: unknown }>;

/** The interfaces of the contracts that calls and events name. */
async function interfacesFor(names: Iterable<string>): Promise<Ifaces> {
  const unique = [...new Set([...names].map(contractName))].filter((n) => n && !n.includes("@"));
  const found = await Promise.all(unique.map(async (n) => [n, await interfaceOf(n)] as const));
  return new Map(found);
}

function namesOfReceipt(r: { call?: CallView; events?: EventEntry[] }): string[] {
  return [...(r.call ? [r.call.contract] : []), ...(r.events ?? []).map((e) => e.contract)];
}

// ---------------------------------------------------------------------------------------------
// Hooks

interface Loaded<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
}

/** Runs `load` when `deps` change; results of superseded runs are dropped. */
function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ loading: true });
  useEffect(() => {
    let current = true;
    setState({ loading: true });
    load().then(
      (data) => current && setState({ data, loading: false }),
      (error) => current && setState({ error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, deps);
  return state;
}

// ---------------------------------------------------------------------------------------------
// Small components

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name && e.name !== "Error" ? `${e.name}: ` : ""}${e.message}`;
  return show(e);
}

function ErrorBox({ error, title }: { error: unknown; title?: string }): Node {
  return html`<div class="error-box" role="alert"><strong>${title ?? "Error"}</strong><div>${errorText(error)}</div></div>`;
}

function Loading({ what }: { what?: string }): Node {
  return html`<p class="loading">Loading${what ? ` ${what}` : ""}…</p>`;
}

/** A section's load state: the error box, "Loading…", or the content. */
function Section<T>({ state, what, children }: { state: Loaded<T>; what?: string; children: (data: T) => Node }): Node {
  if (state.error !== undefined) return html`<${ErrorBox} error=${state.error} title=${what ? `Cannot load ${what}` : undefined} />`;
  if (state.loading || state.data === undefined) return html`<${Loading} what=${what} />`;
  return children(state.data);
}

function Badge({ ok, children, title }: { ok: boolean | null; children: unknown; title?: string }): Node {
  const cls = ok === null ? "badge pending" : ok ? "badge ok" : "badge bad";
  return html`<span class=${cls} title=${title ?? ""}>${ok === null ? "" : ok ? "✓ " : "✗ "}${children}</span>`;
}

/** An agent as a link to its account or contract page (shortened in tables). */
function Agent({ a, short }: { a: string | null | undefined; short?: boolean }): Node {
  if (!a) return html`<span class="muted">—</span>`;
  const link = agentLink(a);
  const text = short ? shortAgent(a) : a;
  return link ? html`<a class="mono agent" href=${link} title=${a}>${text}</a>` : html`<span class="mono">${text}</span>`;
}

function BlockLink({ index }: { index: number | bigint | null | undefined }): Node {
  if (index === null || index === undefined) return html`<span class="muted">—</span>`;
  return html`<a href=${`#/block/${index}`}>#${fmtInt(index)}</a>`;
}

function RequestLink({ id, short = true }: { id: string | null | undefined; short?: boolean }): Node {
  if (!id) return html`<span class="muted">—</span>`;
  return html`<a class="mono" href=${`#/request/${id}`} title=${id}>${short ? shortHex(id) : id}</a>`;
}

function Mono({ v }: { v: string | null | undefined }): Node {
  return v ? html`<span class="mono break">${v}</span>` : html`<span class="muted">—</span>`;
}

/** A decoded value: agents linked, integers grouped, the rest printed by `show`. */
function Value({ v, type }: { v: unknown; type?: string | null }): Node {
  if (typeof v === "string" && agentLink(v)) return html`<${Agent} a=${v} />`;
  const text = showTyped(v, type);
  return html`<span class="mono break">${text}</span>`;
}

/** Rows of a definition list. */
function Fields({ rows }: { rows: [string, unknown][] }): Node {
  return html`<dl class="fields">
    ${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v === undefined || v === null ? html`<span class="muted">—</span>` : v}</dd>`)}
  </dl>`;
}

/** Doc comment text with its `code` spans. */
function Docs({ text }: { text: string | null | undefined }): Node | null {
  if (!text) return null;
  return html`<span class="docs">${text.split("`").map((part, i) => (i % 2 === 1 ? html`<code>${part}</code>` : part))}</span>`;
}

function Card({ title, children, extra }: { title: unknown; children: unknown; extra?: unknown }): Node {
  return html`<section class="card"><header class="card-head"><h2>${title}</h2>${extra ?? null}</header>${children}</section>`;
}

// ---------------------------------------------------------------------------------------------
// Calls, events, errors, receipts

/** The parameter names of a call, in the interface's order (else the args' own order). */
function callParams(call: CallView, iface: ContractInterface | null): { name: string; type: string | null }[] {
  const f = iface?.functions.find((x) => x.name === call.function && x.kind === "entry");
  if (f) return f.params.map((p) => ({ name: p.name, type: p.type }));
  return Object.keys(call.args ?? {}).map((name) => ({ name, type: null }));
}

function Call({ call, ifaces }: { call: CallView; ifaces: Ifaces }): Node {
  const name = contractName(call.contract);
  const iface = ifaces.get(name)?.iface ?? null;
  const params = callParams(call, iface);
  const sig = `${call.function}(${params.map((p) => p.name).join(", ")})`;
  const args = call.args;
  return html`<div class="call">
    <div><code class="sig">${sig}</code> <span class="muted">on</span> <${Agent} a=${call.contract} /></div>
    ${args
      ? params.length > 0 &&
        html`<dl class="args">
          ${params.map((p) => html`<dt>${p.name}${p.type ? html` <span class="type">${p.type}</span>` : null}</dt><dd><${Value} v=${args[p.name]} type=${p.type} /></dd>`)}
        </dl>`
      : html`<div class="muted">arguments not decoded (no interface): <span class="mono">${fmtHex(call.argsRaw)}</span></div>`}
    ${call.transferSompi > 0n ? html`<div>attached: ${fmtSompi(call.transferSompi)}</div>` : null}
  </div>`;
}

function eventDef(e: EventEntry, ifaces: Ifaces) {
  return ifaces.get(contractName(e.contract))?.iface?.events.find((d) => d.name === e.topic);
}

function Event({ e, ifaces, proof }: { e: EventEntry; ifaces: Ifaces; proof?: Node }): Node {
  const def = eventDef(e, ifaces);
  const names = def ? def.fields.map((f) => f.name) : Object.keys(e.fields ?? {});
  const types = new Map(def?.fields.map((f) => [f.name, f.type]) ?? []);
  const indexed = def?.indexed ?? 0;
  return html`<div class="event">
    <div class="event-head"><span class="topic">${e.topic}</span> <span class="muted">from</span> <${Agent} a=${e.contract} />${proof ? html` ${proof}` : null}</div>
    ${e.fields
      ? html`<dl class="args">
          ${names.map(
            (n, i) =>
              html`<dt>${n}${i < indexed ? html` <span class="tag">indexed</span>` : null}</dt><dd><${Value} v=${e.fields![n]} type=${types.get(n)} /></dd>`,
          )}
        </dl>`
      : html`<div class="muted">not decoded (no interface): <span class="mono">${fmtHex(e.data)}</span></div>`}
  </div>`;
}

function ChainErrorView({ error, contract, ifaces }: { error: ErrorInfo; contract?: string; ifaces: Ifaces }): Node {
  const def =
    error.level === "contract" && contract ? ifaces.get(contractName(contract))?.iface?.errors.find((x) => x.code === error.code) : undefined;
  const name = error.name || def?.name || "";
  return html`<div class="chain-error">
    <div><span class="badge bad">${error.level} error ${fmtInt(error.code)}</span>${name ? html` <strong>${name}</strong>` : null}</div>
    <div>${error.message}</div>
    ${def?.docs && def.docs !== error.message ? html`<div class="error-docs"><${Docs} text=${def.docs} /></div>` : null}
  </div>`;
}

function Withdrawals({ list }: { list: Withdrawal[] }): Node {
  return html`<table class="table">
    <thead><tr><th>seq</th><th>from</th><th>to</th><th>amount</th><th>status</th></tr></thead>
    <tbody>${list.map(
      (w) => html`<tr><td>${fmtInt(w.seq)}</td><td><${Agent} a=${w.from} short /></td><td><span class="mono">${shortAgent(w.to)}</span></td><td>${fmtSompi(w.amountSompi)}</td><td>${w.status}</td></tr>`,
    )}</tbody>
  </table>`;
}

/** The rows describing how a request came: kind and nonce or L1 transaction. */
function originRows(r: { kind?: string; nonce?: bigint; l1TxId?: Hex; depositSompi?: bigint }): [string, unknown][] {
  const rows: [string, unknown][] = [["kind", r.kind === "onLedger" ? "on-ledger (Kaspa transaction)" : r.kind === "offLedger" ? "off-ledger (signed)" : r.kind]];
  if (r.nonce !== undefined) rows.push(["nonce", fmtInt(r.nonce)]);
  if (r.l1TxId !== undefined) rows.push(["L1 transaction", html`<${Mono} v=${r.l1TxId} />`]);
  if (r.depositSompi !== undefined) rows.push(["deposit", fmtSompi(r.depositSompi)]);
  return rows;
}

function ReceiptView({ r, ifaces, check }: { r: Receipt; ifaces: Ifaces; check?: boolean | string }): Node {
  const rows: [string, unknown][] = [
    ["request", html`<${RequestLink} id=${r.requestId} short=${false} />`],
    ...originRows(r),
    ["sender", html`<${Agent} a=${r.sender} />`],
    ["call", r.call ? html`<${Call} call=${r.call} ifaces=${ifaces} />` : html`<span class="muted">none (a deposit)</span>`],
    ["gas used", `${fmtInt(r.gasUsed)}${r.call ? ` of ${fmtInt(r.call.gasBudget)} budgeted` : ""}`],
    ["fee", fmtSompi(r.feeSompi)],
  ];
  if (r.storageLockedSompi > 0n) rows.push(["storage locked", fmtSompi(r.storageLockedSompi)]);
  if (r.storageRefundedSompi > 0n) rows.push(["storage refunded", fmtSompi(r.storageRefundedSompi)]);
  if (r.returnData && r.returnData !== "0x") rows.push(["return data", html`<${Mono} v=${fmtHex(r.returnData)} />`]);
  if (r.error) rows.push(["error", html`<${ChainErrorView} error=${r.error} contract=${r.call?.contract} ifaces=${ifaces} />`]);
  if (r.withdrawals?.length) rows.push(["withdrawals", html`<${Withdrawals} list=${r.withdrawals} />`]);
  return html`<article class="receipt">
    <header class="receipt-head">
      <span>Request ${fmtInt(r.requestIndex)}</span>
      <${Badge} ok=${r.status === "success"}>${r.status}<//>
      ${check === true ? html`<${Badge} ok=${true} title="decoded from the receipt's raw bytes">raw bytes match<//>` : typeof check === "string" ? html`<${Badge} ok=${false} title=${check}>raw bytes differ<//>` : null}
    </header>
    <${Fields} rows=${rows} />
    ${r.events.length
      ? html`<h3>Events (${fmtInt(r.events.length)})</h3>${r.events.map((e) => html`<${Event} e=${e} ifaces=${ifaces} />`)}`
      : null}
  </article>`;
}

/** A contract's interface for a component (null while loading, without one, or on failure). */
function useInterface(name: string | undefined): { iface: ContractInterface | null; error?: unknown } {
  const [state, setState] = useState<{ iface: ContractInterface | null; error?: unknown }>({ iface: null });
  useEffect(() => {
    let current = true;
    if (name) void interfaceOf(name).then((r) => current && setState(r));
    return () => {
      current = false;
    };
  }, [name]);
  return state;
}

/** A compact call text for tables: `transfer(to, amount)` on `token`. */
function CallCell({ call }: { call?: CallView }): Node {
  const { iface, error } = useInterface(call ? contractName(call.contract) : undefined);
  if (!call) return html`<span class="muted">deposit</span>`;
  const names = callParams(call, iface).map((p) => p.name);
  return html`<code class="sig">${call.function}(${call.args ? names.join(", ") : "…"})</code> <span class="muted">on</span> <${Agent} a=${call.contract} />${
    error !== undefined ? html` <span class="badge bad" title=${errorText(error)}>no interface</span>` : null
  }`;
}

function RequestTable({ list, hideSender }: { list: RequestView[]; hideSender?: boolean }): Node {
  if (!list.length) return html`<p class="muted">No requests.</p>`;
  return html`<table class="table">
    <thead><tr><th>request</th><th>block</th><th>kind</th>${hideSender ? null : html`<th>sender</th>`}<th>call</th></tr></thead>
    <tbody>${list.map(
      (r) => html`<tr>
        <td><${RequestLink} id=${r.requestId} /></td>
        <td><${BlockLink} index=${r.blockIndex} /></td>
        <td>${r.kind === "onLedger" ? "on-ledger" : "off-ledger"}</td>
        ${hideSender ? null : html`<td><${Agent} a=${r.sender} short /></td>`}
        <td><${CallCell} call=${r.call} /></td>
      </tr>`,
    )}</tbody>
  </table>`;
}

// ---------------------------------------------------------------------------------------------
// Home

function BlockRows({ blocks, fresh }: { blocks: Block[]; fresh: Set<string> }): Node {
  return html`<table class="table blocks">
    <thead><tr><th>block</th><th>hash</th><th>time (UTC)</th><th class="num">requests</th><th class="num">gas used</th><th class="num">L1 DAA score</th></tr></thead>
    <tbody>${blocks.map(
      (b) => html`<tr key=${b.hash} class=${fresh.has(b.hash) ? "fresh" : ""} data-block=${b.index}>
        <td><${BlockLink} index=${b.index} /></td>
        <td class="mono" title=${b.hash}>${shortHex(b.hash)}</td>
        <td>${fmtClock(b.timestampMs)}</td>
        <td class="num">${fmtInt(b.requestCount)}</td>
        <td class="num">${fmtInt(b.gasUsed)}</td>
        <td class="num">${fmtInt(b.l1DaaScore)}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

const LATEST = 20;

function LatestBlocks({ head, onHead }: { head: Block; onHead: (b: Block) => void }): Node {
  const [blocks, setBlocks] = useState<Block[]>([]);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [loadError, setLoadError] = useState<unknown>();
  const [liveError, setLiveError] = useState<unknown>();
  const [live, setLive] = useState(false);
  useEffect(() => {
    let active = true;
    const merge = (prev: Block[], add: Block[]) => {
      const byIndex = new Map(prev.map((b) => [b.index, b]));
      for (const b of add) byIndex.set(b.index, b);
      return [...byIndex.values()].sort((a, b) => b.index - a.index).slice(0, LATEST);
    };
    const from = Math.max(0, head.index - LATEST + 1);
    const initial: Promise<(Block | null)[]> = Promise.all(
      Array.from({ length: head.index - from }, (_, i) => client.getBlock(from + i)),
    );
    initial.then(
      (list) => {
        if (!active) return;
        const got = [...list.filter((b): b is Block => b !== null), head].reverse();
        setBlocks((prev) => merge(prev, got));
      },
      (e) => active && setLoadError(e),
    );
    const unwatch = client.watchBlocks({
      afterIndex: head.index,
      onBlock: (b) => {
        if (!active) return;
        setLive(true);
        setLiveError(undefined);
        setBlocks((prev) => merge(prev, [b]));
        setFresh((prev) => new Set([...prev, b.hash]));
        onHead(b);
      },
      onReorg: ({ fromIndex }) => active && setBlocks((prev) => prev.filter((b) => b.index < fromIndex)),
      onError: (e) => active && setLiveError(e),
    });
    // Live once the subscription is up (the first block may take a while on a quiet chain).
    const liveTimer = setTimeout(() => active && setLive(true), 800);
    return () => {
      active = false;
      clearTimeout(liveTimer);
      stopWatch(unwatch);
    };
  }, [head.chainId]);
  return html`<${Card}
    title="Latest blocks"
    extra=${html`<span class=${live && !liveError ? "live on" : "live"}>${live && !liveError ? "live" : "connecting…"}</span>`}
  >
    ${loadError !== undefined ? html`<${ErrorBox} error=${loadError} title="Cannot load the latest blocks" />` : null}
    ${liveError !== undefined ? html`<${ErrorBox} error=${liveError} title="Live updates interrupted (reconnecting)" />` : null}
    ${blocks.length ? html`<${BlockRows} blocks=${blocks} fresh=${fresh} />` : html`<${Loading} what="blocks" />`}
  <//>`;
}

/** Stops a watch (errors on the way out are of no interest to a page being left). */
function stopWatch(unwatch: { (): Promise<void> }): void {
  void unwatch().catch(() => undefined);
}

function Home(): Node {
  const info = useLoad(() => client.chainInfo(), []);
  const [head, setHead] = useState<Block | undefined>();
  return html`<${Section} state=${info} what="chain info">${(c: ChainInfo) => {
    const h = head ?? c.head;
    const a = c.anchor;
    return html`<div class="grid2">
      <${Card} title=${html`Chain <span class="muted">${c.name}</span> ${c.devnet ? html`<span class="badge warn">devnet</span>` : null}`}>
        <${Fields}
          rows=${[
            ["chain id", html`<${Mono} v=${c.chainId} />`],
            ["head", html`<${BlockLink} index=${h.index} /> <span class="muted">${fmtTime(h.timestampMs)}</span>`],
            ["head hash", html`<${Mono} v=${h.hash} />`],
            ["state root", html`<${Mono} v=${h.stateRoot} />`],
            ["gas price", fmtSompi(c.gasPriceSompi)],
            ["max gas", `${fmtInt(c.maxRequestGas)} per request, ${fmtInt(c.maxBlockGas)} per block`],
            ["mempool", `${fmtInt(c.mempool)} waiting`],
            ["deposit address", html`<${Mono} v=${c.depositAddress} />`],
            ["L1 followed to", `DAA score ${fmtInt(c.l1FollowedDaaScore)}`],
            ["API version", fmtInt(c.apiVersion)],
          ]}
        />
      <//>
      <${Card} title="Anchor on Kaspa">
        <${Fields}
          rows=${[
            ["covenant id", html`<${Mono} v=${a.covenantId} />`],
            ["committee key", html`<${Mono} v=${a.committeeKey} />`],
            ["anchored block", a.anchoredBlock === null ? null : html`<${BlockLink} index=${a.anchoredBlock} />`],
            ["anchored header", a.anchoredHeaderHash === null ? null : html`<${Mono} v=${a.anchoredHeaderHash} />`],
            ["outpoint", html`<${Mono} v=${a.outpoint} />`],
            ["value", a.valueSompi === null ? null : fmtSompi(a.valueSompi)],
            ["outbox", a.outbox === null ? null : html`<${Mono} v=${a.outbox} />`],
            ["fees spent", a.feesSpentSompi === null ? null : fmtSompi(a.feesSpentSompi)],
            ["max fee", fmtSompi(a.maxFeeSompi)],
            ["in flight", a.inFlight === null ? "nothing" : html`<${Mono} v=${a.inFlight} />`],
          ]}
        />
      <//>
    </div>
    <${LatestBlocks} head=${c.head} onHead=${setHead} />`;
  }}<//>`;
}

// ---------------------------------------------------------------------------------------------
// Block

interface BlockCheck {
  header: { ok: boolean; detail: string };
  receipts: { ok: boolean; detail: string } | null;
  events: { ok: boolean; detail: string } | null;
  raws: (true | string)[];
}

function checkBlock(b: Block): BlockCheck {
  let header: BlockCheck["header"];
  let decoded: ReturnType<Client["verifyBlockHeader"]> | undefined;
  try {
    decoded = client.verifyBlockHeader(b);
    const differs = [
      ["index", decoded.index === BigInt(b.index)],
      ["prevHash", toHex(decoded.prevHash) === b.prevHash],
      ["stateRoot", toHex(decoded.stateRoot) === b.stateRoot],
      ["receiptsRoot", toHex(decoded.receiptsRoot) === b.receiptsRoot],
      ["eventsRoot", toHex(decoded.eventsRoot) === b.eventsRoot],
      ["timestampMs", decoded.timestampMs === b.timestampMs],
      ["gasUsed", decoded.gasUsed === b.gasUsed],
      ["requestCount", decoded.requestCount === b.requestCount],
    ].filter(([, same]) => !same);
    header = differs.length
      ? { ok: false, detail: `the raw header hashes to the block hash, but these fields differ from it: ${differs.map(([k]) => k).join(", ")}` }
      : { ok: true, detail: "blake2b-256 of the raw header is the block hash, and every field shown is decoded from it" };
  } catch (e) {
    header = { ok: false, detail: errorText(e) };
  }
  let receipts: BlockCheck["receipts"] = null;
  let events: BlockCheck["events"] = null;
  const raws: (true | string)[] = [];
  if (b.receipts && decoded) {
    try {
      const bytes = b.receipts.map((r) => fromHex(r.raw));
      const root = receiptsRoot(bytes);
      receipts = equalBytes(root, decoded.receiptsRoot)
        ? { ok: true, detail: `recomputed from the raw bytes of ${b.receipts.length === 1 ? "the receipt" : `the ${b.receipts.length} receipts`}: ${toHex(root)}` }
        : { ok: false, detail: `the receipts' raw bytes give ${toHex(root)}, the header says ${toHex(decoded.receiptsRoot)}` };
    } catch (e) {
      receipts = { ok: false, detail: errorText(e) };
    }
    try {
      const root = eventsRoot(b.receipts.map((r) => decodeReceipt(fromHex(r.raw))));
      events = equalBytes(root, decoded.eventsRoot)
        ? { ok: true, detail: `recomputed from the events of the raw receipts: ${toHex(root)}` }
        : { ok: false, detail: `the receipts' events give ${toHex(root)}, the header says ${toHex(decoded.eventsRoot)}` };
    } catch (e) {
      events = { ok: false, detail: errorText(e) };
    }
    for (const r of b.receipts) {
      try {
        const d = decodeReceipt(fromHex(r.raw));
        const same =
          toHex(d.requestId) === r.requestId &&
          d.status === r.status &&
          d.gasUsed === r.gasUsed &&
          d.feeSompi === r.feeSompi &&
          d.events.length === r.events.length &&
          d.events.every((e, i) => e.topic === r.events[i]!.topic && toHex(e.data) === r.events[i]!.data) &&
          (d.error?.code ?? null) === (r.error?.code ?? null);
        raws.push(same ? true : "the receipt's raw bytes decode to other values than those shown");
      } catch (e) {
        raws.push(errorText(e));
      }
    }
  }
  return { header, receipts, events, raws };
}

function BlockPage({ n }: { n: string }): Node {
  const state = useLoad(async () => {
    if (!/^\d+$/.test(n)) throw new Error(`"${n}" is not a block number`);
    const index = Number(n);
    const b = await client.getBlock(index);
    if (!b) throw new Error(`there is no block ${fmtInt(index)} (yet)`);
    const ifaces = await interfacesFor((b.receipts ?? []).flatMap(namesOfReceipt));
    return { b, check: checkBlock(b), ifaces };
  }, [n]);
  return html`<${Section} state=${state} what=${`block ${n}`}>${({ b, check, ifaces }: { b: Block; check: BlockCheck; ifaces: Ifaces }) => html`
    <h1>Block ${fmtInt(b.index)}</h1>
    <nav class="pager">
      ${b.index > 0 ? html`<a href=${`#/block/${b.index - 1}`}>← block ${fmtInt(b.index - 1)}</a>` : html`<span class="muted">genesis</span>`}
      <a href=${`#/block/${b.index + 1}`}>block ${fmtInt(b.index + 1)} →</a>
    </nav>
    <${Card}
      title="Header"
      extra=${html`<span class="badges">
        <${Badge} ok=${check.header.ok} title=${check.header.detail}>${check.header.ok ? "header hash verified" : "header hash NOT verified"}<//>
        ${check.receipts ? html`<${Badge} ok=${check.receipts.ok} title=${check.receipts.detail}>${check.receipts.ok ? "receipts root recomputed" : "receipts root mismatch"}<//>` : null}
        ${check.events ? html`<${Badge} ok=${check.events.ok} title=${check.events.detail}>${check.events.ok ? "events root recomputed" : "events root mismatch"}<//>` : null}
      </span>`}
    >
      <${Fields}
        rows=${[
          ["hash", html`<${Mono} v=${b.hash} />`],
          ["previous", b.index > 0 ? html`<a class="mono break" href=${`#/block/${b.index - 1}`}>${b.prevHash}</a>` : html`<${Mono} v=${b.prevHash} />`],
          ["time", fmtTime(b.timestampMs)],
          ["chain id", html`<${Mono} v=${b.chainId} />`],
          ["L1 block", html`<${Mono} v=${b.l1Block} />`],
          ["L1 DAA score", fmtInt(b.l1DaaScore)],
          ["state root", html`<${Mono} v=${b.stateRoot} />`],
          ["receipts root", html`<${Mono} v=${b.receiptsRoot} />`],
          ["events root", html`<${Mono} v=${b.eventsRoot} />`],
          ["requests", fmtInt(b.requestCount)],
          ["gas used", fmtInt(b.gasUsed)],
          ["protocol version", fmtInt(b.protocolVersion)],
        ]}
      />
      <p class=${check.header.ok ? "check-detail" : "check-detail bad-text"}>${check.header.detail}.</p>
      ${check.receipts ? html`<p class=${check.receipts.ok ? "check-detail" : "check-detail bad-text"}>Receipts root ${check.receipts.detail}.</p>` : null}
    <//>
    ${[...ifaces].filter(([, v]) => v.error !== undefined).map(([name, v]) => html`<${ErrorBox} error=${v.error} title=${`Cannot load the interface of ${name}`} />`)}
    <${Card} title=${`Receipts (${fmtInt(b.receipts?.length ?? 0)})`}>
      ${b.receipts?.length
        ? b.receipts.map((r, i) => html`<${ReceiptView} r=${r} ifaces=${ifaces} check=${check.raws[i]} />`)
        : html`<p class="muted">No requests in this block.</p>`}
    <//>
  `}<//>`;
}

// ---------------------------------------------------------------------------------------------
// Request

function EventProofBadge({ id, index }: { id: Hex; index: number }): Node {
  const state = useLoad(() => client.getVerifiedEvent(id, index), [id, index]);
  if (state.loading) return html`<${Badge} ok=${null}>checking proof…<//>`;
  if (state.error !== undefined) return html`<${Badge} ok=${false} title=${errorText(state.error)}>proof NOT verified: ${errorText(state.error)}<//>`;
  if (!state.data) return html`<${Badge} ok=${false}>no proof for this event<//>`;
  const b = state.data.block;
  return html`<${Badge} ok=${true} title=${`Merkle proof checked against the events root ${b.eventsRoot} of block ${b.index}, whose header hashes to ${b.hash}`}>proof verified against block ${fmtInt(b.index)} events root<//>`;
}

function RequestPage({ id }: { id: string }): Node {
  const state = useLoad(async () => {
    if (!/^0x[0-9a-fA-F]{64}$/.test(id)) throw new Error(`"${id}" is not a request id (0x and 64 hex digits)`);
    const rid = id.toLowerCase() as Hex;
    const [req, rec] = await Promise.all([client.getRequest(rid), client.getReceipt(rid)]);
    if (!req && !rec) throw new Error(`no processed request ${rid} on this chain (it may still be waiting in the mempool)`);
    const ifaces = await interfacesFor([...(req ? namesOfReceipt(req) : []), ...(rec ? namesOfReceipt(rec) : [])]);
    return { rid, req, rec, ifaces };
  }, [id]);
  return html`<${Section} state=${state} what="the request">${({ rid, req, rec, ifaces }: { rid: Hex; req: RequestView | null; rec: Receipt | null; ifaces: Ifaces }) => {
    const call = req?.call ?? rec?.call;
    const rows: [string, unknown][] = [
      ["id", html`<${Mono} v=${rid} />`],
      ...originRows(req ?? rec ?? {}),
      ["sender", html`<${Agent} a=${req?.sender ?? rec?.sender} />`],
      ["block", html`<${BlockLink} index=${req?.blockIndex ?? rec?.blockIndex} /> <span class="muted">request ${fmtInt(req?.requestIndex ?? rec?.requestIndex)}</span>`],
      ["call", call ? html`<${Call} call=${call} ifaces=${ifaces} />` : html`<span class="muted">none (a deposit)</span>`],
    ];
    if (req?.timeLock !== undefined && req.timeLock !== null) rows.push(["time lock", show(req.timeLock)]);
    return html`
      <h1>Request <span class="mono small">${shortHex(rid)}</span></h1>
      <${Card} title="Request">
        <${Fields} rows=${rows} />
      <//>
      ${rec
        ? html`<${Card} title=${html`Receipt <${Badge} ok=${rec.status === "success"}>${rec.status}<//>`}>
            <${Fields}
              rows=${[
                ["status", rec.status],
                ["gas used", `${fmtInt(rec.gasUsed)}${call ? ` of ${fmtInt(call.gasBudget)} budgeted` : ""}`],
                ["fee", fmtSompi(rec.feeSompi)],
                ...(rec.storageLockedSompi > 0n ? [["storage locked", fmtSompi(rec.storageLockedSompi)] as [string, unknown]] : []),
                ...(rec.storageRefundedSompi > 0n ? [["storage refunded", fmtSompi(rec.storageRefundedSompi)] as [string, unknown]] : []),
                ...(rec.returnData && rec.returnData !== "0x" ? [["return data", html`<${Mono} v=${fmtHex(rec.returnData)} />`] as [string, unknown]] : []),
                ...(rec.error ? [["error", html`<${ChainErrorView} error=${rec.error} contract=${call?.contract} ifaces=${ifaces} />`] as [string, unknown]] : []),
                ...(rec.withdrawals?.length ? [["withdrawals", html`<${Withdrawals} list=${rec.withdrawals} />`] as [string, unknown]] : []),
              ]}
            />
          <//>
          <${Card} title=${`Events (${fmtInt(rec.events.length)})`}>
            ${rec.events.length
              ? rec.events.map((e, i) => html`<${Event} e=${e} ifaces=${ifaces} proof=${html`<${EventProofBadge} id=${rid} index=${e.eventIndex ?? i} />`} />`)
              : html`<p class="muted">No events.</p>`}
          <//>`
        : html`<${Card} title="Receipt"><p class="muted">No receipt yet.</p><//>`}
    `;
  }}<//>`;
}

// ---------------------------------------------------------------------------------------------
// Contract

function InterfaceView({ iface }: { iface: ContractInterface }): Node {
  const fns = [...iface.functions].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "entry" ? -1 : 1));
  return html`
    <h3>Functions</h3>
    <table class="table iface">
      <thead><tr><th>function</th><th>kind</th><th>parameters</th><th>returns</th><th>docs</th></tr></thead>
      <tbody>${fns.map(
        (f) => html`<tr>
          <td><code class="sig">${f.name}</code></td>
          <td><span class=${`tag ${f.kind}`}>${f.kind}</span></td>
          <td class="mono">${f.params.length ? f.params.map((p) => html`<span class="field">${p.name}: ${p.type}</span>`) : html`<span class="muted">none</span>`}</td>
          <td class="mono">${f.returns ?? html`<span class="muted">()</span>`}</td>
          <td><${Docs} text=${f.docs} /></td>
        </tr>`,
      )}</tbody>
    </table>
    <h3>Events</h3>
    ${iface.events.length
      ? html`<table class="table iface">
          <thead><tr><th>event</th><th>fields</th><th>docs</th></tr></thead>
          <tbody>${iface.events.map(
            (e) => html`<tr>
              <td><code class="sig">${e.name}</code></td>
              <td class="mono">${e.fields.map(
                (f, i) => html`<span class="field">${f.name}: ${f.type}${i < (e.indexed ?? 0) ? html` <span class="tag">indexed</span>` : null}</span>`,
              )}</td>
              <td><${Docs} text=${e.docs} /></td>
            </tr>`,
          )}</tbody>
        </table>`
      : html`<p class="muted">No events.</p>`}
    <h3>Errors</h3>
    ${iface.errors.length
      ? html`<table class="table iface">
          <thead><tr><th class="num">code</th><th>error</th><th>docs</th></tr></thead>
          <tbody>${iface.errors.map(
            (e) => html`<tr><td class="num">${fmtInt(e.code)}</td><td><code class="sig">${e.name}</code></td><td><${Docs} text=${e.docs} /></td></tr>`,
          )}</tbody>
        </table>`
      : html`<p class="muted">No errors.</p>`}
  `;
}

/** Inputs for a function's parameters; returns the values parsed per type. */
function ParamInputs({ f, values, set }: { f: FunctionDef; values: Record<string, string>; set: (name: string, v: string) => void }): Node {
  return html`${f.params.map(
    (p) => html`<label class="param">
      <span>${p.name} <span class="type">${p.type}</span></span>
      <input type="text" name=${p.name} placeholder=${placeholderFor(p.type)} value=${values[p.name] ?? ""} onInput=${(e: Event) => set(p.name, (e.target as HTMLInputElement).value)} />
    </label>`,
  )}`;
}

function placeholderFor(type: string): string {
  if (/^(u|i)\d+$/.test(type)) return "integer";
  if (type === "AgentId") return "kaspa…: address or contract:<name>";
  if (type === "bool") return "true or false";
  if (type.startsWith("Option")) return "empty for None";
  if (type.startsWith("Vec<u8>") || type === "Hash32") return "0x hex";
  if (type.startsWith("Vec") || type.startsWith("(")) return "JSON array";
  return type;
}

function parseArgs(f: FunctionDef, values: Record<string, string>): unknown[] {
  return f.params.map((p) => {
    try {
      return parseInput(values[p.name] ?? "", p.type);
    } catch (e) {
      throw new Error(`${p.name}: ${(e as Error).message}`);
    }
  });
}

function ViewForm({ name, iface, f }: { name: string; iface: ContractInterface; f: FunctionDef }): Node {
  const [values, setValues] = useState<Record<string, string>>({});
  const [result, setResult] = useState<Loaded<unknown> | undefined>();
  const submit = async (ev: Event) => {
    ev.preventDefault();
    setResult({ loading: true });
    try {
      const args = parseArgs(f, values);
      const value = await getContract({ contract: name, publicClient: client, interface: iface }).read[f.name](args);
      setResult({ data: value, loading: false });
    } catch (error) {
      setResult({ error, loading: false });
    }
  };
  return html`<form class="fn-form" data-fn=${f.name} onSubmit=${submit}>
    <div class="fn-title"><code class="sig">${f.name}(${f.params.map((p) => p.name).join(", ")})</code>${f.returns ? html` <span class="muted">→ ${f.returns}</span>` : null}</div>
    <${ParamInputs} f=${f} values=${values} set=${(k: string, v: string) => setValues({ ...values, [k]: v })} />
    <button type="submit">Call</button>
    ${result?.loading ? html`<span class="muted"> calling…</span>` : null}
    ${result?.error !== undefined ? html`<${ErrorBox} error=${result.error} title=${`${f.name} failed`} />` : null}
    ${result && !result.loading && result.error === undefined ? html`<div class="result">result: <${Value} v=${result.data} type=${f.returns} /></div>` : null}
  </form>`;
}

function WriteForm({ name, iface, f, secretKey, onSent }: { name: string; iface: ContractInterface; f: FunctionDef; secretKey: string; onSent: () => void }): Node {
  const [values, setValues] = useState<Record<string, string>>({});
  const [attach, setAttach] = useState("");
  const [result, setResult] = useState<Loaded<{ requestId: Hex; receipt: Receipt; events: { topic: string; args: Record<string, unknown> }[] }> | undefined>();
  const submit = async (ev: Event) => {
    ev.preventDefault();
    setResult({ loading: true });
    try {
      if (!secretKey.trim()) throw new Error("type a devnet account's secret key above first");
      const args = parseArgs(f, values);
      const transfer = attach.trim() ? BigInt(attach.replace(/[,_\s]/g, "")) : 0n;
      const wallet = createWalletClient({ publicClient: client, signer: new LocalSigner(secretKey.trim()) });
      const w = await getContract({ contract: name, publicClient: client, walletClient: wallet, interface: iface }).write[f.name](args, { transferSompi: transfer });
      setResult({ data: w, loading: false });
      onSent();
    } catch (error) {
      setResult({ error, loading: false });
    }
  };
  const w = result?.data;
  return html`<form class="fn-form" data-fn=${f.name} onSubmit=${submit}>
    <div class="fn-title"><code class="sig">${f.name}(${f.params.map((p) => p.name).join(", ")})</code></div>
    <${ParamInputs} f=${f} values=${values} set=${(k: string, v: string) => setValues({ ...values, [k]: v })} />
    <label class="param"><span>attach <span class="type">sompi</span></span><input type="text" placeholder="0" value=${attach} onInput=${(e: Event) => setAttach((e.target as HTMLInputElement).value)} /></label>
    <button type="submit">Sign and send</button>
    ${result?.loading ? html`<span class="muted"> sending…</span>` : null}
    ${result?.error !== undefined ? html`<${ErrorBox} error=${result.error} title=${`${f.name} failed`} />` : null}
    ${w
      ? html`<div class="result">
          <${Badge} ok=${w.receipt.status === "success"}>${w.receipt.status}<//> request <${RequestLink} id=${w.requestId} /> in <${BlockLink} index=${w.receipt.blockIndex} />,
          gas ${fmtInt(w.receipt.gasUsed)}, fee ${fmtSompi(w.receipt.feeSompi)}
          ${w.events.map((e) => html`<div>event <span class="topic">${e.topic}</span> ${show(e.args)}</div>`)}
        </div>`
      : null}
  </form>`;
}

function VerifyBuild({ entry }: { entry: ContractEntry }): Node {
  const [result, setResult] = useState<Loaded<{ file: string; size: number; hash: Hex; ifaceName: string | null; ifaceError?: string }> | undefined>();
  const [over, setOver] = useState(false);
  const onFile = async (file: File | undefined | null) => {
    if (!file) return;
    setResult({ loading: true });
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const hash = toHex(codeHash(bytes));
      let ifaceName: string | null = null;
      let ifaceError: string | undefined;
      try {
        ifaceName = readInterface(bytes)?.name ?? null;
      } catch (e) {
        ifaceError = errorText(e);
      }
      setResult({ data: { file: file.name, size: bytes.length, hash, ifaceName, ifaceError }, loading: false });
    } catch (error) {
      setResult({ error, loading: false });
    }
  };
  const r = result?.data;
  const match = r && entry.codeHash !== null && r.hash === entry.codeHash;
  return html`<div>
    <label
      class=${`drop ${over ? "over" : ""}`}
      onDragOver=${(e: DragEvent) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e: DragEvent) => {
        e.preventDefault();
        setOver(false);
        void onFile(e.dataTransfer?.files[0]);
      }}
    >
      <span>Drop a <code>.wasm</code> built from the source here, or choose one:</span>
      <input type="file" accept=".wasm,application/wasm" id="verify-wasm" onChange=${(e: Event) => void onFile((e.target as HTMLInputElement).files?.[0])} />
    </label>
    ${result?.loading ? html`<${Loading} what="the module" />` : null}
    ${result?.error !== undefined ? html`<${ErrorBox} error=${result.error} title="Cannot read the file" />` : null}
    ${r
      ? html`<div class=${`verify-result ${match ? "ok" : "bad"}`}>
          ${match
            ? html`<${Badge} ok=${true}>matches the deployed code hash<//>`
            : html`<${Badge} ok=${false}>${entry.codeHash === null ? "this contract has no code hash (a core contract)" : "does not match the deployed code hash"}<//>`}
          <${Fields}
            rows=${[
              ["file", `${r.file} (${fmtInt(r.size)} bytes)`],
              ["its code hash", html`<${Mono} v=${r.hash} />`],
              ["deployed code hash", html`<${Mono} v=${entry.codeHash} />`],
              ["embedded interface", r.ifaceError ?? r.ifaceName ?? "none"],
            ]}
          />
        </div>`
      : null}
  </div>`;
}

function ContractPage({ name }: { name: string }): Node {
  const [reload, setReload] = useState(0);
  const [secretKey, setSecretKey] = useState("");
  const main = useLoad(async () => {
    const [list, info] = await Promise.all([client.listContracts(), chainInfoOnce()]);
    const bare = name.replace(/^0x/, "").toLowerCase();
    const entry = list.find((c) => c.name === name) ?? list.find((c) => c.hname === bare);
    if (!entry) throw new Error(`no contract named "${name}" on this chain (it has: ${list.map((c) => c.name).join(", ")})`);
    const iface = await client.getInterface(entry.name);
    return { entry, iface, devnet: info.devnet };
  }, [name]);
  const cname = main.data?.entry.name;
  const requests = useLoad(async () => (cname ? client.getRequests({ contract: cname, limit: 20 }) : []), [cname, reload]);
  const events = useLoad(async () => (cname ? (await client.getEvents({ contract: cname })).reverse().slice(0, 20) : []), [cname, reload]);
  return html`<${Section} state=${main} what=${`contract ${name}`}>${({ entry, iface, devnet }: { entry: ContractEntry; iface: ContractInterface | null; devnet: boolean }) => {
    const ifaces: Ifaces = new Map([[entry.name, { iface }]]);
    const views = iface?.functions.filter((f) => f.kind === "view") ?? [];
    const entries = iface?.functions.filter((f) => f.kind === "entry" && f.name !== "init") ?? [];
    return html`
      <h1>Contract <span class="mono">${entry.name}</span> ${entry.core ? html`<span class="badge">core</span>` : null}</h1>
      <${Card} title="Contract">
        <${Fields}
          rows=${[
            ["name", entry.name],
            ["hname", html`<span class="mono">0x${entry.hname}</span>`],
            ["agent", html`<span class="mono">contract:${entry.name}</span>`],
            ["code hash", entry.codeHash ? html`<${Mono} v=${entry.codeHash} />` : html`<span class="muted">none (built into the node)</span>`],
            ["deployer", entry.deployer ? html`<${Agent} a=${entry.deployer} />` : null],
            ["deployed at", entry.deployedAtBlock === null ? null : html`<${BlockLink} index=${entry.deployedAtBlock} />`],
          ]}
        />
      <//>
      <${Card} title="Interface">
        ${iface ? html`<${InterfaceView} iface=${iface} />` : html`<p class="muted">This contract publishes no interface.</p>`}
      <//>
      ${iface && views.length
        ? html`<${Card} title="Read (views)">
            <p class="muted">Free calls against the head. Integers as digits, agents as addresses or <code>contract:name</code>, vectors and tuples as JSON arrays.</p>
            <div class="forms">${views.map((f) => html`<${ViewForm} key=${f.name} name=${entry.name} iface=${iface} f=${f} />`)}</div>
          <//>`
        : null}
      ${iface && devnet && entries.length
        ? html`<${Card} title=${html`Write (entry points) <span class="badge warn">devnet only</span>`}>
            <div class="devnet-warning">
              <strong>Devnet only.</strong> The secret key you type here signs requests in this page. Use only a devnet account's key
              (<code>wisp devnet</code> prints them); never a key that holds real funds.
            </div>
            <label class="param wide"><span>secret key <span class="type">64 hex digits</span></span>
              <input type="password" autocomplete="off" placeholder="devnet secret key" value=${secretKey} onInput=${(e: Event) => setSecretKey((e.target as HTMLInputElement).value)} />
            </label>
            <div class="forms">${entries.map(
              (f) => html`<${WriteForm} key=${f.name} name=${entry.name} iface=${iface} f=${f} secretKey=${secretKey} onSent=${() => setReload((x) => x + 1)} />`,
            )}</div>
          <//>`
        : null}
      ${entry.codeHash !== null ? html`<${Card} title="Verify a build"><${VerifyBuild} entry=${entry} /><//>` : null}
      <${Card} title="Recent requests">
        <${Section} state=${requests} what="requests">${(list: RequestView[]) => html`<${RequestTable} list=${list} />`}<//>
      <//>
      <${Card} title="Recent events" extra=${html`<span class="muted">last 100 blocks</span>`}>
        <${Section} state=${events} what="events">${(list: EventEntry[]) =>
          list.length
            ? html`<table class="table">
                <thead><tr><th>block</th><th>request</th><th>event</th><th>fields</th></tr></thead>
                <tbody>${list.map(
                  (e) => html`<tr>
                    <td><${BlockLink} index=${e.blockIndex} /></td>
                    <td><${RequestLink} id=${e.requestId} /></td>
                    <td><span class="topic">${e.topic}</span></td>
                    <td><${EventFieldsInline} e=${e} ifaces=${ifaces} /></td>
                  </tr>`,
                )}</tbody>
              </table>`
            : html`<p class="muted">No events in the last 100 blocks.</p>`}<//>
      <//>
    `;
  }}<//>`;
}

function EventFieldsInline({ e, ifaces }: { e: EventEntry; ifaces: Ifaces }): Node {
  if (!e.fields) return html`<span class="mono">${fmtHex(e.data)}</span>`;
  const def = eventDef(e, ifaces);
  const names = def ? def.fields.map((f) => f.name) : Object.keys(e.fields);
  const types = new Map(def?.fields.map((f) => [f.name, f.type]) ?? []);
  return html`<span class="inline-fields">${names.map(
    (n) => html`<span class="kv"><span class="k">${n}</span> <${Value} v=${e.fields![n]} type=${types.get(n)} /></span>`,
  )}</span>`;
}

// ---------------------------------------------------------------------------------------------
// Account

function AccountPage({ address }: { address: string }): Node {
  const valid = useLoad(async () => {
    decodeAddress(address); // throws with the reason if it is not a Kaspa address
    return true;
  }, [address]);
  const balance = useLoad(() => client.getVerifiedBalance(address), [address]);
  const nonce = useLoad(() => client.getNonce(address), [address]);
  const requests = useLoad(() => client.getRequests({ sender: address, limit: 50 }), [address]);
  if (valid.error !== undefined) return html`<h1>Account</h1><${ErrorBox} error=${valid.error} title=${`"${address}" is not a Kaspa address`} />`;
  return html`
    <h1>Account</h1>
    <p class="mono break big">${address}</p>
    <div class="grid2">
      <${Card} title="Balance">
        <${Section} state=${balance} what="the balance">${({ balance: bal, block }: { balance: bigint; block: Block }) => html`
          <p class="amount">${fmtSompi(bal)}</p>
          <${Badge} ok=${true} title=${`Merkle proof of the balance checked against the state root ${block.stateRoot} of block ${block.index}, whose header hashes to ${block.hash}`}>
            proof verified against block ${fmtInt(block.index)} state root
          <//>
          <p class="check-detail">State root <span class="mono">${shortHex(block.stateRoot)}</span> of <${BlockLink} index=${block.index} />.</p>
        `}<//>
      <//>
      <${Card} title="Nonce">
        <${Section} state=${nonce} what="the nonce">${(n: { next: bigint; pending: number }) => html`
          <${Fields} rows=${[
            ["next nonce", fmtInt(n.next)],
            ["in mempool", fmtInt(n.pending)],
          ]} />
        `}<//>
      <//>
    </div>
    <${Card} title="Requests sent">
      <${Section} state=${requests} what="requests">${(list: RequestView[]) => html`<${RequestTable} list=${list} hideSender />`}<//>
    <//>
  `;
}

// ---------------------------------------------------------------------------------------------
// Shell

type Route =
  | { page: "home" }
  | { page: "block"; arg: string }
  | { page: "request"; arg: string }
  | { page: "contract"; arg: string }
  | { page: "account"; arg: string }
  | { page: "unknown"; arg: string };

function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, "");
  if (path === "") return { page: "home" };
  const slash = path.indexOf("/");
  const head = slash < 0 ? path : path.slice(0, slash);
  let arg = slash < 0 ? "" : path.slice(slash + 1);
  try {
    arg = decodeURIComponent(arg);
  } catch {
    /* keep it as typed */
  }
  if (head === "block" || head === "request" || head === "contract" || head === "account") {
    if (head === "account" && arg.startsWith("contract:")) return { page: "contract", arg: arg.slice(9) };
    return { page: head, arg };
  }
  return { page: "unknown", arg: hash };
}

function Search(): Node {
  const [q, setQ] = useState("");
  const [err, setErr] = useState("");
  const submit = (e: Event) => {
    e.preventDefault();
    const r = searchRoute(q);
    if (!r) {
      setErr("type a block number, a request id, an address or a contract name");
      return;
    }
    setErr("");
    setQ("");
    location.hash = r;
  };
  return html`<form class="search" role="search" onSubmit=${submit}>
    <input
      type="search"
      name="q"
      aria-label="Search"
      placeholder="Block number, request id (0x…), kaspa… address or contract name"
      value=${q}
      onInput=${(e: Event) => setQ((e.target as HTMLInputElement).value)}
    />
    <button type="submit">Search</button>
    ${err ? html`<span class="search-error">${err}</span>` : null}
  </form>`;
}

function PageBody({ route }: { route: Route }): Node {
  const [error, reset] = useErrorBoundary();
  const key = JSON.stringify(route);
  const last = useRef(key);
  useEffect(() => {
    if (last.current !== key && error) reset();
    last.current = key;
  }, [key]);
  if (error) return html`<${ErrorBox} error=${error} title="This page failed to render" />`;
  switch (route.page) {
    case "home":
      return html`<${Home} />`;
    case "block":
      return html`<${BlockPage} key=${key} n=${route.arg} />`;
    case "request":
      return html`<${RequestPage} key=${key} id=${route.arg} />`;
    case "contract":
      return html`<${ContractPage} key=${key} name=${route.arg} />`;
    case "account":
      return html`<${AccountPage} key=${key} address=${route.arg} />`;
    default:
      return html`<${ErrorBox} error=${new Error(`no page ${route.arg}; try the search box`)} title="Not found" />`;
  }
}

function App(): Node {
  const [route, setRoute] = useState<Route>(parseRoute(location.hash));
  useEffect(() => {
    const on = () => {
      setRoute(parseRoute(location.hash));
      window.scrollTo(0, 0);
    };
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const info = useLoad(() => chainInfoOnce(), []);
  return html`
    <header class="top">
      <div class="top-inner">
        <a class="brand" href="#/">Wisp <span>explorer</span></a>
        ${info.data ? html`<span class="chain-name">${info.data.name}${info.data.devnet && info.data.name !== "devnet" ? " · devnet" : ""}</span>` : null}
        <${Search} />
      </div>
    </header>
    <main class="main">
      ${info.error !== undefined ? html`<${ErrorBox} error=${info.error} title=${`Cannot reach the node at ${RPC_URL}`} />` : null}
      <${PageBody} route=${route} />
    </main>
    <footer class="foot">Node <span class="mono">${RPC_URL}</span> · proofs and hashes are checked in this page with @wisp/client</footer>
  `;
}

// An error no component caught is shown, not only logged.
function showFatal(e: unknown): void {
  const box = document.createElement("div");
  box.className = "error-box fatal";
  box.textContent = `Unexpected error: ${errorText(e)}`;
  document.body.prepend(box);
}
addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  showFatal(e.reason);
});

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading…" shown before the script ran
render(html`<${App} />`, root);
