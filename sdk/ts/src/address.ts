/**
 * Kaspa addresses (`kaspa:…`, `kaspatest:…`, `kaspasim:…`, `kaspadev:…`): a version byte and a
 * payload in Kaspa's bech32 variant (CashAddr's 40-bit checksum over the 5-bit prefix, a zero
 * separator and the 5-bit payload), as rusty-kaspa's `kaspa-addresses` writes them.
 * @module
 */

/** The address networks Kaspa knows. */
export const ADDRESS_PREFIXES = ["kaspa", "kaspatest", "kaspasim", "kaspadev"] as const;
/** One of {@link ADDRESS_PREFIXES}. */
export type AddressPrefix = (typeof ADDRESS_PREFIXES)[number];

/** Address versions and their payload lengths (bytes). */
export const AddressVersion = {
  /** A BIP340 (Schnorr) x-only public key: 32 bytes. Wisp accounts are this kind. */
  PubKey: 0,
  /** A compressed ECDSA public key: 33 bytes. */
  PubKeyECDSA: 1,
  /** A script hash (P2SH): 32 bytes. */
  ScriptHash: 8,
} as const;

const PAYLOAD_LENGTH: Record<number, number> = { 0: 32, 1: 33, 8: 32 };
const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/** A decoded address. */
export interface Address {
  prefix: AddressPrefix;
  /** 0, 1 or 8 ({@link AddressVersion}). */
  version: number;
  payload: Uint8Array;
}

/** Why text is not a Kaspa address. */
export class AddressError extends Error {
  override name = "AddressError";
}

function polymod(values: number[]): bigint {
  let c = 1n;
  for (const d of values) {
    const c0 = c >> 35n;
    c = ((c & 0x07ffffffffn) << 5n) ^ BigInt(d);
    if (c0 & 0x01n) c ^= 0x98f2bc8e61n;
    if (c0 & 0x02n) c ^= 0x79b76d99e2n;
    if (c0 & 0x04n) c ^= 0xf33e5fb3c4n;
    if (c0 & 0x08n) c ^= 0xae2eabe2a8n;
    if (c0 & 0x10n) c ^= 0x1e4f43e470n;
  }
  return c ^ 1n;
}

function checksum(payload5: number[], prefix: string): bigint {
  const p = [...prefix].map((ch) => ch.charCodeAt(0) & 0x1f);
  return polymod([...p, 0, ...payload5, 0, 0, 0, 0, 0, 0, 0, 0]);
}

function conv8to5(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let buff = 0;
  let bits = 0;
  for (const b of bytes) {
    buff = (buff << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push((buff >> bits) & 0x1f);
      buff &= (1 << bits) - 1;
    }
  }
  if (bits > 0) out.push((buff << (5 - bits)) & 0x1f);
  return out;
}

function conv5to8(values: number[]): Uint8Array {
  const out: number[] = [];
  let buff = 0;
  let bits = 0;
  for (const v of values) {
    buff = (buff << 5) | v;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      out.push((buff >> bits) & 0xff);
      buff &= (1 << bits) - 1;
    }
  }
  return Uint8Array.from(out);
}

/**
 * The address text of `payload` under `version` on network `prefix`.
 * @throws {AddressError} if the payload length does not fit the version.
 */
export function encodeAddress(prefix: AddressPrefix, version: number, payload: Uint8Array): string {
  if (PAYLOAD_LENGTH[version] !== payload.length) {
    throw new AddressError(`version ${version} takes ${PAYLOAD_LENGTH[version] ?? "no"} bytes, got ${payload.length}`);
  }
  const data = Uint8Array.of(version, ...payload);
  const five = conv8to5(data);
  const sum = checksum(five, prefix);
  const sumBytes = new Uint8Array(5);
  for (let i = 0; i < 5; i++) sumBytes[4 - i] = Number((sum >> BigInt(8 * i)) & 0xffn);
  const chars = [...five, ...conv8to5(sumBytes)].map((v) => CHARSET[v]).join("");
  return `${prefix}:${chars}`;
}

/**
 * Decodes address text.
 * @throws {AddressError} naming what is wrong: the prefix, a character, the checksum, the version
 *   or the payload length.
 */
export function decodeAddress(text: string): Address {
  const colon = text.indexOf(":");
  if (colon < 0) throw new AddressError(`\`${text.slice(0, 80)}\` has no network prefix (kaspa:, kaspatest:, kaspasim:)`);
  const prefix = text.slice(0, colon);
  if (!(ADDRESS_PREFIXES as readonly string[]).includes(prefix)) {
    throw new AddressError(`unknown address prefix \`${prefix.slice(0, 20)}\``);
  }
  const body = text.slice(colon + 1);
  const values: number[] = [];
  for (const ch of body) {
    const v = CHARSET.indexOf(ch);
    if (v < 0) throw new AddressError(`character \`${ch}\` is not in the address alphabet`);
    values.push(v);
  }
  if (values.length < 8) throw new AddressError("address too short");
  const payload5 = values.slice(0, values.length - 8);
  const sum = conv5to8(values.slice(values.length - 8));
  let given = 0n;
  for (const b of sum) given = (given << 8n) | BigInt(b);
  if (checksum(payload5, prefix) !== given) throw new AddressError("address checksum does not match");
  const data = conv5to8(payload5);
  const version = data[0];
  if (version === undefined || PAYLOAD_LENGTH[version] === undefined) {
    throw new AddressError(`unknown address version ${version}`);
  }
  const payload = data.subarray(1);
  if (payload.length !== PAYLOAD_LENGTH[version]) {
    throw new AddressError(`version ${version} takes ${PAYLOAD_LENGTH[version]} bytes, got ${payload.length}`);
  }
  return { prefix: prefix as AddressPrefix, version, payload: Uint8Array.from(payload) };
}
