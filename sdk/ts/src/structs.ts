/**
 * The protocol's borsh structures: request bodies, signed off-ledger requests, lane payloads,
 * block headers, receipts and event proofs, with their hashes and ids. Encodings are the node's
 * byte for byte (golden vectors written by the Rust side check it).
 * @module
 */
import { serialize, type Schema } from "borsh";
import { DecodeError, Reader, concat, utf8 } from "./bytes.js";
import { blake2b256 } from "./hash.js";
import { encodeAgent, offLedgerRequestId, type AgentId } from "./ids.js";

/** One call of a contract's entry point. */
export interface Call {
  /** The contract's hname. */
  target: number;
  /** The hname of the entry point's name. */
  entryPoint: number;
  /** borsh of the entry point's parameters, in order. */
  args: Uint8Array;
  /** Base tokens moved from the sender's on-chain account to the contract, sompi. */
  transferSompi: bigint;
}

/** One declared access: a contract's whole storage, or its keys starting with `keyPrefix`. */
export interface Access {
  contract: number;
  keyPrefix: Uint8Array | null;
}

/** Declared read and write sets (a write grants the read); at most 64 entries. */
export interface AccessList {
  reads: Access[];
  writes: Access[];
}

/** A moment on Kaspa's clock: a DAA score, or an L1 block timestamp in ms since the epoch. */
export type L1Time = { daaScore: bigint } | { timestampMs: bigint };

/** When a request may run: not before `notBefore`, not at or after `expiresAt`. */
export interface TimeLock {
  notBefore: L1Time | null;
  expiresAt: L1Time | null;
}

/** What a sender asks a chain to do. */
export interface RequestBody {
  /** The chain id (32 bytes). */
  chain: Uint8Array;
  call: Call;
  /** Most gas the request may use; the fee is gas used × gas price, sompi. */
  gasBudget: bigint;
  /** Declared read/write sets; null: undeclared (runs sequentially). */
  accessList: AccessList | null;
  /** When it may run; null: as soon as it arrives. */
  timeLock: TimeLock | null;
}

/** A request signed by its sender, for `wisp_sendRequest`. */
export interface OffLedgerRequest {
  body: RequestBody;
  /** The sender's x-only secp256k1 public key (32 bytes); the sender is that address. */
  senderKey: Uint8Array;
  /** The sender's next nonce on the chain. */
  nonce: bigint;
  /** BIP340 signature (64 bytes) over {@link signingHash}. */
  signature: Uint8Array;
}

const bytes32: Schema = { array: { type: "u8", len: 32 } };
const bytesVec: Schema = { array: { type: "u8" } };
const accessSchema: Schema = { struct: { contract: "u32", keyPrefix: { option: bytesVec } } };
const l1TimeSchema: Schema = { enum: [{ struct: { daaScore: "u64" } }, { struct: { timestampMs: "u64" } }] };
const bodySchema: Schema = {
  struct: {
    chain: bytes32,
    call: { struct: { target: "u32", entryPoint: "u32", args: bytesVec, transferSompi: "u64" } },
    gasBudget: "u64",
    accessList: { option: { struct: { reads: { array: { type: accessSchema } }, writes: { array: { type: accessSchema } } } } },
    timeLock: { option: { struct: { notBefore: { option: l1TimeSchema }, expiresAt: { option: l1TimeSchema } } } },
  },
};

/** borsh of a request body. */
export function encodeRequestBody(body: RequestBody): Uint8Array {
  return serialize(bodySchema, body);
}

/** Domain separator of the message a sender signs. */
export const SIGNING_DOMAIN = "wisp/off-ledger-request/v1";

/**
 * The unsigned request as a signer sees it: borsh(body) ‖ sender key ‖ nonce (u64 LE), which is
 * the signed request's borsh without its signature.
 */
export function encodeUnsignedRequest(body: RequestBody, senderKey: Uint8Array, nonce: bigint): Uint8Array {
  return concat(encodeRequestBody(body), senderKey, serialize("u64", nonce));
}

/** The 32-byte message a sender signs: blake2b-256(domain ‖ unsigned request). */
export function signingHash(unsignedRequest: Uint8Array): Uint8Array {
  return blake2b256(SIGNING_DOMAIN, unsignedRequest);
}

/** borsh of a signed request (what `wisp_sendRequest` takes). */
export function encodeOffLedgerRequest(r: OffLedgerRequest): Uint8Array {
  return concat(encodeUnsignedRequest(r.body, r.senderKey, r.nonce), r.signature);
}

/** A signed request's id (what `wisp_getReceipt` takes). */
export function requestId(r: OffLedgerRequest): Uint8Array {
  return offLedgerRequestId(encodeOffLedgerRequest(r));
}

/** The first bytes of every Wisp lane payload (`WSP` and payload version 1). */
export const LANE_PAYLOAD_MAGIC = Uint8Array.of(0x57, 0x53, 0x50, 0x01);
/** The Kaspa subnetwork id Wisp's lane transactions use: `wisp` and 16 zero bytes. */
export const LANE_ID = concat(utf8("wisp"), new Uint8Array(16));
/** Most requests one lane payload may carry. */
export const MAX_LANE_REQUESTS = 64;

/**
 * The payload of a Kaspa transaction on {@link LANE_ID} carrying `requests` (on-ledger requests,
 * each run atomically in order); what the transaction pays to the chain's deposit address is
 * credited to `beneficiary`, or to the sender (the owner of its first input). Building and
 * signing the Kaspa transaction itself is up to a Kaspa wallet.
 * @throws {RangeError} for more than 64 requests.
 */
export function encodeLanePayload(requests: RequestBody[], beneficiary: AgentId | null = null): Uint8Array {
  if (requests.length > MAX_LANE_REQUESTS) throw new RangeError(`a lane payload carries at most ${MAX_LANE_REQUESTS} requests`);
  return concat(
    LANE_PAYLOAD_MAGIC,
    serialize("u32", requests.length),
    ...requests.map(encodeRequestBody),
    beneficiary ? concat(Uint8Array.of(1), encodeAgent(beneficiary)) : Uint8Array.of(0),
  );
}

/** A block header, as committed by the block hash. */
export interface BlockHeader {
  chain: Uint8Array;
  index: bigint;
  prevHash: Uint8Array;
  l1Block: Uint8Array;
  l1DaaScore: bigint;
  timestampMs: bigint;
  stateRoot: Uint8Array;
  receiptsRoot: Uint8Array;
  eventsRoot: Uint8Array;
  requestCount: number;
  gasUsed: bigint;
  protocolVersion: number;
}

const headerSchema: Schema = {
  struct: {
    chain: bytes32,
    index: "u64",
    prevHash: bytes32,
    l1Block: bytes32,
    l1DaaScore: "u64",
    timestampMs: "u64",
    stateRoot: bytes32,
    receiptsRoot: bytes32,
    eventsRoot: bytes32,
    requestCount: "u32",
    gasUsed: "u64",
    protocolVersion: "u32",
  },
};

/** borsh of a header. */
export function encodeHeader(h: BlockHeader): Uint8Array {
  return serialize(headerSchema, h);
}

/** Decodes a header's borsh (a block's `raw`). @throws {DecodeError} if it is not exactly one. */
export function decodeHeader(raw: Uint8Array): BlockHeader {
  const r = new Reader(raw);
  const h: BlockHeader = {
    chain: Uint8Array.from(r.take(32)),
    index: r.u64(),
    prevHash: Uint8Array.from(r.take(32)),
    l1Block: Uint8Array.from(r.take(32)),
    l1DaaScore: r.u64(),
    timestampMs: r.u64(),
    stateRoot: Uint8Array.from(r.take(32)),
    receiptsRoot: Uint8Array.from(r.take(32)),
    eventsRoot: Uint8Array.from(r.take(32)),
    requestCount: r.u32(),
    gasUsed: r.u64(),
    protocolVersion: r.u32(),
  };
  r.end();
  return h;
}

/** The block hash: blake2b-256 of the header's borsh. */
export function headerHash(raw: Uint8Array): Uint8Array {
  return blake2b256(raw);
}

/** An event as committed in a receipt. */
export interface RawEvent {
  contract: number;
  topic: string;
  data: Uint8Array;
}

/** A receipt as committed by a block's receipts root. */
export interface RawReceipt {
  requestId: Uint8Array;
  blockIndex: bigint;
  requestIndex: number;
  sender: AgentId;
  status: "success" | "failed";
  error: { level: "request" | "vm" | "contract"; code: number; message: string } | null;
  gasUsed: bigint;
  feeSompi: bigint;
  storageLockedSompi: bigint;
  storageRefundedSompi: bigint;
  events: RawEvent[];
  returnData: Uint8Array;
}

function readAgent(r: Reader): AgentId {
  const tag = r.u8();
  if (tag === 0) return { kind: "address", key: Uint8Array.from(r.take(32)) };
  if (tag === 1) return { kind: "contract", chain: Uint8Array.from(r.take(32)), hname: r.u32() };
  throw new DecodeError(`agent tag ${tag}`);
}

function readEvent(r: Reader): RawEvent {
  return { contract: r.u32(), topic: r.string(), data: Uint8Array.from(r.bytesVec()) };
}

/** Decodes a receipt's borsh (a receipt's `raw`). @throws {DecodeError} if it is not exactly one. */
export function decodeReceipt(raw: Uint8Array): RawReceipt {
  const r = new Reader(raw);
  const requestId = Uint8Array.from(r.take(32));
  const blockIndex = r.u64();
  const requestIndex = r.u32();
  const sender = readAgent(r);
  const s = r.u8();
  if (s > 1) throw new DecodeError(`receipt status ${s}`);
  let error: RawReceipt["error"] = null;
  if (r.option()) {
    const level = (["request", "vm", "contract"] as const)[r.u8()];
    if (!level) throw new DecodeError("error level");
    error = { level, code: r.u32(), message: r.string() };
  }
  const gasUsed = r.u64();
  const feeSompi = r.u64();
  const storageLockedSompi = r.u64();
  const storageRefundedSompi = r.u64();
  const events: RawEvent[] = [];
  for (let n = r.length(9); n > 0; n--) events.push(readEvent(r));
  const returnData = Uint8Array.from(r.bytesVec());
  r.end();
  return {
    requestId, blockIndex, requestIndex, sender, status: s === 0 ? "success" : "failed", error,
    gasUsed, feeSompi, storageLockedSompi, storageRefundedSompi, events, returnData,
  };
}

/** A block's receipts root from its receipts' borsh, in order: blake2b-256 of their hashes. */
export function receiptsRoot(rawReceipts: Uint8Array[]): Uint8Array {
  return blake2b256(...rawReceipts.map((r) => blake2b256(r)));
}

/** borsh of an event (as its events-root leaf hashes it). */
export function encodeEvent(e: RawEvent): Uint8Array {
  return concat(serialize("u32", e.contract), serialize("string", e.topic), serialize("u32", e.data.length), e.data);
}

/** A decoded `wisp_getEventProof` proof. */
export interface EventProof {
  requestId: Uint8Array;
  index: number;
  event: RawEvent;
  leafIndex: number;
  leafCount: number;
  siblings: Uint8Array[];
}

/** Decodes an event proof's borsh. @throws {DecodeError} if it is not exactly one. */
export function decodeEventProof(raw: Uint8Array): EventProof {
  const r = new Reader(raw);
  const requestId = Uint8Array.from(r.take(32));
  const index = r.u32();
  const event = readEvent(r);
  const leafIndex = r.u32();
  const leafCount = r.u32();
  const siblings: Uint8Array[] = [];
  for (let n = r.length(32); n > 0; n--) siblings.push(Uint8Array.from(r.take(32)));
  r.end();
  return { requestId, index, event, leafIndex, leafCount, siblings };
}
