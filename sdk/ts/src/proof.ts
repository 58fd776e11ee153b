/**
 * Proof verification a light client does with only a block header: a state value (or its
 * absence) against the header's state root (a Jellyfish Merkle proof in Wisp's compact encoding,
 * hashed as the `jmt` crate hashes, with blake2b-256), and an event against the header's events
 * root.
 * @module
 */
import { DecodeError, Reader, equalBytes, toHex, utf8 } from "./bytes.js";
import { blake2b256 } from "./hash.js";
import { decodeEventProof, encodeEvent, type EventProof } from "./structs.js";
import { uintLE } from "./bytes.js";

/** Why a proof was rejected. */
export class ProofError extends Error {
  override name = "ProofError";
}

const LEAF_DOMAIN = utf8("JMT::LeafNode");
const INTERNAL_DOMAIN = utf8("JMT::IntrnalNode");
const PLACEHOLDER = utf8("SPARSE_MERKLE_PLACEHOLDER_HASH__");

/** Most siblings a state proof may carry: one per bit of a 256-bit key hash. */
export const MAX_STATE_PROOF_SIBLINGS = 256;
/** Longest valid state proof, bytes: a leaf and {@link MAX_STATE_PROOF_SIBLINGS} hashes. */
export const MAX_STATE_PROOF_BYTES = 1 + 64 + 4 + MAX_STATE_PROOF_SIBLINGS * 33;

/**
 * A decoded state proof: the leaf its key's path ends at (if any) and the hash of each sibling
 * on the path, bottom first (`null`: an empty subtree).
 */
export interface StateProof {
  leaf: { keyHash: Uint8Array; valueHash: Uint8Array } | null;
  siblings: (Uint8Array | null)[];
}

/**
 * Decodes a state proof as `wisp_getProof` returns it: the borsh of
 * `{ leaf: Option<([u8; 32], [u8; 32])>, siblings: Vec<Option<[u8; 32]>> }`.
 * @throws {DecodeError} if malformed or longer than {@link MAX_STATE_PROOF_BYTES}.
 */
export function decodeStateProof(raw: Uint8Array): StateProof {
  if (raw.length > MAX_STATE_PROOF_BYTES) throw new DecodeError(`a state proof of ${raw.length} bytes`);
  const r = new Reader(raw);
  const leaf = r.option() ? { keyHash: Uint8Array.from(r.take(32)), valueHash: Uint8Array.from(r.take(32)) } : null;
  const siblings: (Uint8Array | null)[] = [];
  const n = r.length(1);
  if (n > MAX_STATE_PROOF_SIBLINGS) throw new DecodeError(`${n} siblings`);
  for (let i = 0; i < n; i++) siblings.push(r.option() ? Uint8Array.from(r.take(32)) : null);
  r.end();
  return { leaf, siblings };
}

const internal = (left: Uint8Array, right: Uint8Array) => blake2b256(INTERNAL_DOMAIN, left, right);
const leafHash = (key: Uint8Array, value: Uint8Array) => blake2b256(LEAF_DOMAIN, key, value);
const bit = (h: Uint8Array, i: number) => ((h[i >> 3]! >> (7 - (i & 7))) & 1) === 1;

function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  while (n < 256 && bit(a, n) === bit(b, n)) n++;
  return n;
}

/**
 * Checks that state key `key` holds `value` (`null`: is absent) in the state whose root is
 * `root`, by the state proof `proof` (as `wisp_getProof` returns it).
 * @throws {ProofError} saying why the proof does not show that.
 */
export function verifyStateProof(root: Uint8Array, key: Uint8Array, value: Uint8Array | null, proof: Uint8Array): void {
  let p: StateProof;
  try {
    p = decodeStateProof(proof);
  } catch (e) {
    throw new ProofError(`the proof bytes do not decode as a Wisp state proof (${(e as Error).message})`);
  }
  const keyHash = blake2b256(key);
  if (value !== null) {
    if (!p.leaf) throw new ProofError("expected an inclusion proof, found a non-inclusion proof");
    if (!equalBytes(p.leaf.keyHash, keyHash)) throw new ProofError("the proof is for another key");
    if (!equalBytes(p.leaf.valueHash, blake2b256(value))) throw new ProofError("the value does not match the proof");
  } else if (p.leaf) {
    if (equalBytes(p.leaf.keyHash, keyHash)) throw new ProofError("the key exists: this is an inclusion proof");
    if (commonPrefixBits(keyHash, p.leaf.keyHash) < p.siblings.length) {
      throw new ProofError("the key would not be in the subtree this proof shows");
    }
  }
  let current = p.leaf ? leafHash(p.leaf.keyHash, p.leaf.valueHash) : PLACEHOLDER;
  const n = p.siblings.length;
  p.siblings.forEach((sibling, j) => {
    const s = sibling ?? PLACEHOLDER;
    current = bit(keyHash, n - 1 - j) ? internal(s, current) : internal(current, s);
  });
  if (!equalBytes(current, root)) {
    throw new ProofError(`the proof leads to root ${toHex(current)}, not ${toHex(root)}`);
  }
}

/** Whether {@link verifyStateProof} accepts the proof. */
export function isValidStateProof(root: Uint8Array, key: Uint8Array, value: Uint8Array | null, proof: Uint8Array): boolean {
  try {
    verifyStateProof(root, key, value, proof);
    return true;
  } catch {
    return false;
  }
}

/**
 * A block's events root from its receipts (decoded, in order): the root of the binary Merkle
 * tree over every event's leaf ({@link eventLeaf}), an odd node promoted unhashed, nodes
 * blake2b-256("wisp/events/node" ‖ left ‖ right); all zero for a block without events.
 */
export function eventsRoot(receipts: readonly { requestId: Uint8Array; events: readonly EventProof["event"][] }[]): Uint8Array {
  let level = receipts.flatMap((r) => r.events.map((e, i) => eventLeaf(r.requestId, i, e)));
  if (level.length === 0) return new Uint8Array(32);
  while (level.length > 1) {
    const up: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      up.push(i + 1 < level.length ? blake2b256("wisp/events/node", level[i]!, level[i + 1]!) : level[i]!);
    }
    level = up;
  }
  return level[0]!;
}

/** Most siblings an event proof may carry (a tree of up to 2^32 events). */
export const MAX_EVENT_PROOF_SIBLINGS = 32;

/** The events-root leaf of event `index` of request `requestId`. */
export function eventLeaf(requestId: Uint8Array, index: number, event: EventProof["event"]): Uint8Array {
  return blake2b256("wisp/events/leaf", requestId, uintLE(index, 4), encodeEvent(event));
}

/**
 * Checks an event proof (borsh, from `wisp_getEventProof`) against a block's events root: a
 * binary Merkle tree, an odd node promoted unhashed, nodes blake2b-256("wisp/events/node" ‖ l ‖ r).
 * Returns the decoded proof (its request id, index and event are what it proves).
 * @throws {ProofError} if it does not lead to `eventsRoot`.
 */
export function verifyEventProof(eventsRoot: Uint8Array, proof: Uint8Array): EventProof {
  let p: EventProof;
  try {
    p = decodeEventProof(proof);
  } catch (e) {
    throw new ProofError(`the event proof does not decode (${(e as Error).message})`);
  }
  if (p.leafIndex >= p.leafCount || p.siblings.length > MAX_EVENT_PROOF_SIBLINGS) {
    throw new ProofError("the event proof's position is out of range");
  }
  let current = eventLeaf(p.requestId, p.index, p.event);
  let i = p.leafIndex;
  let count = p.leafCount;
  let used = 0;
  while (count > 1) {
    const isRight = i % 2 === 1;
    const hasSibling = isRight || i + 1 < count;
    if (hasSibling) {
      const s = p.siblings[used++];
      if (!s) throw new ProofError("the event proof has too few siblings");
      current = isRight ? blake2b256("wisp/events/node", s, current) : blake2b256("wisp/events/node", current, s);
    }
    i = Math.floor(i / 2);
    count = Math.ceil(count / 2);
  }
  if (used !== p.siblings.length) throw new ProofError("the event proof has extra siblings");
  if (!equalBytes(current, eventsRoot)) throw new ProofError("the event proof does not lead to the block's events root");
  return p;
}
