/**
 * Identifiers: hnames (32-bit name hashes of contracts, entry points and views), agents (who owns
 * an account or sends a request) and how the node writes agents in JSON.
 * @module
 */
import { decodeAddress, encodeAddress, type AddressPrefix, AddressVersion } from "./address.js";
import { concat, equalBytes, fromHex, toHex, tryFromHex, uintLE } from "./bytes.js";
import { blake2b256 } from "./hash.js";

/**
 * The hname of `name` (any UTF-8 text): the first 4 bytes of blake2b-256(name), read
 * little-endian, as a u32. `0` and `0xffffffff` are reserved.
 */
export function hname(name: string): number {
  const h = blake2b256(name);
  return (h[0]! | (h[1]! << 8) | (h[2]! << 16)) + h[3]! * 0x1000000;
}

/** An hname as the node prints it: `0x` and 8 lower-case hex digits. */
export function hnameHex(h: number): `0x${string}` {
  return `0x${h.toString(16).padStart(8, "0")}`;
}

/** Parses `0x` + exactly 8 hex digits (or 8 without the prefix); `undefined` otherwise. */
export function parseHname(text: string): number | undefined {
  const hex = text.startsWith("0x") ? text.slice(2) : text;
  return /^[0-9a-fA-F]{8}$/.test(hex) ? parseInt(hex, 16) : undefined;
}

/** A contract's name as the node's methods take it: `contract:token` → `token`. */
export function contractName(text: string): string {
  return text.startsWith("contract:") ? text.slice(9) : text;
}

/** A chain's id: 32 bytes (the anchor's covenant id). */
export type ChainId = Uint8Array;

/**
 * Who owns an on-chain account or sends a request. Borsh: tag 0 then the 32-byte x-only key, or
 * tag 1 then the chain id and the u32 hname (these bytes are account keys in state).
 */
export type AgentId =
  | { kind: "address"; key: Uint8Array }
  | { kind: "contract"; chain: ChainId; hname: number };

/** The borsh bytes of an agent. */
export function encodeAgent(agent: AgentId): Uint8Array {
  return agent.kind === "address"
    ? concat(Uint8Array.of(0), agent.key)
    : concat(Uint8Array.of(1), agent.chain, uintLE(agent.hname, 4));
}

/** `addr:<64 hex>` or `contract:<8 hex>@<64 hex chain>`: the raw form, without network prefix. */
export function agentToRawString(agent: AgentId): string {
  return agent.kind === "address"
    ? `addr:${toHex(agent.key).slice(2)}`
    : `contract:${hnameHex(agent.hname).slice(2)}@${toHex(agent.chain).slice(2)}`;
}

/** Parses the raw form of {@link agentToRawString}; `undefined` if it is not one. */
export function agentFromRawString(text: string): AgentId | undefined {
  if (text.startsWith("addr:")) {
    const key = tryFromHex(text.slice(5));
    return key?.length === 32 ? { kind: "address", key } : undefined;
  }
  if (!text.startsWith("contract:")) return undefined;
  const [h, chain, ...rest] = text.slice(9).split("@");
  const hn = h === undefined ? undefined : parseHname(h);
  const chainBytes = chain === undefined ? undefined : tryFromHex(chain);
  if (rest.length || hn === undefined || chainBytes?.length !== 32) return undefined;
  return { kind: "contract", chain: chainBytes, hname: hn };
}

/** How agents are written in JSON. */
export interface AgentFormat {
  /** Parses an agent; `undefined` if the text is not one. */
  parse(text: string): AgentId | undefined;
  /** Prints an agent. */
  format(agent: AgentId): string;
}

/**
 * The node's agent format: Kaspa addresses (`kaspasim:…`) for accounts, `contract:<name>` for
 * named contracts of this chain, `contract:<8 hex>` for other contracts of this chain, and the
 * raw forms for anything else (contracts of other chains; `addr:<hex>` is also read).
 */
export class NodeAgentFormat implements AgentFormat {
  /**
   * @param prefix the L1 network's address prefix (`wisp_chainInfo().depositAddress` shows it).
   * @param chain this chain's id.
   * @param names known contract names (from `wisp_listContracts`).
   */
  constructor(
    readonly prefix: AddressPrefix,
    readonly chain: ChainId,
    readonly names: ReadonlyMap<number, string> = new Map(),
  ) {}

  parse(text: string): AgentId | undefined {
    if (text.startsWith("contract:")) {
      const rest = text.slice(9);
      if (rest.includes("@")) return agentFromRawString(text);
      for (const [h, n] of this.names) if (n === rest) return { kind: "contract", chain: this.chain, hname: h };
      const h = parseHname(rest);
      return h === undefined ? undefined : { kind: "contract", chain: this.chain, hname: h };
    }
    if (text.startsWith("addr:")) return agentFromRawString(text);
    try {
      const a = decodeAddress(text);
      return a.version === AddressVersion.PubKey ? { kind: "address", key: a.payload } : undefined;
    } catch {
      return undefined;
    }
  }

  format(agent: AgentId): string {
    if (agent.kind === "address") return encodeAddress(this.prefix, AddressVersion.PubKey, agent.key);
    if (equalBytes(agent.chain, this.chain)) {
      return `contract:${this.names.get(agent.hname) ?? hnameHex(agent.hname).slice(2)}`;
    }
    return agentToRawString(agent);
  }
}

/** The id of the `index`-th request in the payload of Kaspa transaction `l1TxId`. */
export function onLedgerRequestId(l1TxId: Uint8Array, index: number): Uint8Array {
  return blake2b256("wisp/request-id/on", l1TxId, uintLE(index, 4));
}

/** The id of a signed off-ledger request: blake2b-256 of a domain and its whole borsh. */
export function offLedgerRequestId(signedRequest: Uint8Array): Uint8Array {
  return blake2b256("wisp/request-id/off", signedRequest);
}

/** A 32-byte value from `0x` hex. @throws {TypeError} if it is not 32 bytes. */
export function hash32(text: string): Uint8Array {
  const b = fromHex(text);
  if (b.length !== 32) throw new TypeError(`expected 32 bytes, got ${b.length}`);
  return b;
}
