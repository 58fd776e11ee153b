/**
 * Signers of off-ledger requests. A {@link Signer} receives the whole unsigned request (its
 * borsh and its decoded body) so a wallet can show what it signs, and returns a BIP340
 * signature over {@link signingHash} of it.
 * @module
 */
import { schnorr } from "@noble/curves/secp256k1.js";
import { toBytes, type BytesLike } from "./bytes.js";
import { signingHash, type RequestBody } from "./structs.js";

/** What a signer is asked to sign. */
export interface UnsignedRequest {
  /** borsh(body) ‖ sender key ‖ nonce (u64 LE): what the signature commits to, after the domain. */
  bytes: Uint8Array;
  /** The body those bytes encode. */
  body: RequestBody;
  /** The nonce they encode. */
  nonce: bigint;
}

/** Signs requests as one account. */
export interface Signer {
  /** The x-only secp256k1 public key (32 bytes): the account is this key's Kaspa address. */
  readonly publicKey: Uint8Array;
  /** A BIP340 signature (64 bytes) over `signingHash(request.bytes)`. */
  signRequest(request: UnsignedRequest): Promise<Uint8Array>;
}

/**
 * A signer holding its secret key in memory. Signs deterministically: BIP340 with 32 zero bytes
 * of auxiliary randomness, as the Rust signer (`wisp` and the node's tests) does, so the same
 * request gives the same signature and id in both.
 */
export class LocalSigner implements Signer {
  readonly publicKey: Uint8Array;
  private readonly secretKey: Uint8Array;

  /** @param secretKey 32 bytes (or 64 hex digits). @throws if it is not a valid secp256k1 key. */
  constructor(secretKey: BytesLike) {
    this.secretKey = toBytes(secretKey);
    this.publicKey = schnorr.getPublicKey(this.secretKey);
  }

  /** A signer with a fresh random key (from the platform's CSPRNG). */
  static random(): LocalSigner {
    return new LocalSigner(schnorr.utils.randomSecretKey());
  }

  async signRequest(request: UnsignedRequest): Promise<Uint8Array> {
    return schnorr.sign(signingHash(request.bytes), this.secretKey, new Uint8Array(32));
  }
}

/** Whether `signature` is `publicKey`'s BIP340 signature of the request `unsignedBytes`. */
export function verifyRequestSignature(unsignedBytes: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean {
  return schnorr.verify(signature, signingHash(unsignedBytes), publicKey);
}
