/**
 * Byte helpers: `0x` hex, UTF-8, concatenation, and a strict little-endian reader for borsh.
 * @module
 */

/** Bytes, or `0x`-prefixed hex text of them. */
export type BytesLike = Uint8Array | `0x${string}` | string;

/** Lower-case hex of `bytes` with a `0x` prefix. */
export function toHex(bytes: Uint8Array): `0x${string}` {
  let out = "0x";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out as `0x${string}`;
}

/**
 * Decodes hex text (either case, optional `0x` prefix).
 * @throws {TypeError} on an odd length or a non-hex character.
 */
export function fromHex(text: string): Uint8Array {
  const hex = text.startsWith("0x") ? text.slice(2) : text;
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`not hex bytes: ${JSON.stringify(text.slice(0, 80))}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Hex text (`0x…`) if it is hex, `undefined` otherwise. */
export function tryFromHex(text: string): Uint8Array | undefined {
  try {
    return fromHex(text);
  } catch {
    return undefined;
  }
}

/** `bytes` as a `Uint8Array`, decoding hex text. */
export function toBytes(bytes: BytesLike): Uint8Array {
  return typeof bytes === "string" ? fromHex(bytes) : bytes;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether two byte strings are equal. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** `n` as `size` little-endian bytes (`n` must fit). */
export function uintLE(n: bigint | number, size: number): Uint8Array {
  let v = BigInt(n);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** A borsh value that does not decode: truncated, a bad tag, bad UTF-8, trailing bytes. */
export class DecodeError extends Error {
  override name = "DecodeError";
}

/**
 * A strict reader of borsh bytes: every read checks the bytes are there, tags are 0/1, lengths
 * do not exceed what is left, and text is valid UTF-8.
 */
export class Reader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  /** Bytes not yet read. */
  get remaining(): number {
    return this.bytes.length - this.at;
  }

  /** The next `n` bytes. @throws {DecodeError} if fewer are left. */
  take(n: number): Uint8Array {
    if (n > this.remaining) throw new DecodeError(`needs ${n} bytes, ${this.remaining} left`);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    const b = this.take(2);
    return b[0]! | (b[1]! << 8);
  }
  u32(): number {
    const b = this.take(4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + b[3]! * 0x1000000;
  }
  /** An unsigned little-endian integer of `size` bytes as a bigint. */
  uint(size: number): bigint {
    const b = this.take(size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  }
  /** A two's-complement little-endian integer of `size` bytes. */
  int(size: number): bigint {
    return BigInt.asIntN(size * 8, this.uint(size));
  }
  u64(): bigint {
    return this.uint(8);
  }
  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new DecodeError(`bool byte ${b}`);
    return b === 1;
  }
  /** `Option` tag: true for `Some`. */
  option(): boolean {
    const b = this.u8();
    if (b > 1) throw new DecodeError(`an option tag other than 0 or 1 (${b})`);
    return b === 1;
  }
  /** A u32 length, checked against the bytes left (each item is at least `minItem` bytes). */
  length(minItem = 1): number {
    const n = this.u32();
    if (n * minItem > this.remaining) throw new DecodeError("a length longer than the data");
    return n;
  }
  /** `Vec<u8>`. */
  bytesVec(): Uint8Array {
    return this.take(this.length());
  }
  string(): string {
    const raw = this.bytesVec();
    try {
      return decoder.decode(raw);
    } catch {
      throw new DecodeError("text that is not UTF-8");
    }
  }
  /** Throws unless every byte was read. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes`);
  }
}
