/**
 * blake2b-256, the one hash Wisp uses (ids, code hashes, request ids, block hashes, proofs).
 * @module
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { utf8 } from "./bytes.js";

/** blake2b with a 32-byte digest (RFC 7693), unkeyed, of the concatenation of `parts`. */
export function blake2b256(...parts: (Uint8Array | string)[]): Uint8Array {
  const h = blake2b.create({ dkLen: 32 });
  for (const p of parts) h.update(typeof p === "string" ? utf8(p) : p);
  return h.digest();
}
