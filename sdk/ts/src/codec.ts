/**
 * Contract values ⇄ borsh, driven by a contract's interface: the same rules as the node's
 * `wisp_core::json` codec, so what this encodes the node decodes and the reverse.
 *
 * Values you pass in: integers as `bigint`, safe-integer `number`s or decimal strings; bytes and
 * hashes as `0x` hex or `Uint8Array` (bytes also as an array of numbers); hnames as a name
 * (hashed) or `0x` + 8 hex digits; agents as the {@link AgentFormat} reads them (Kaspa addresses,
 * `contract:<name>`) or as {@link AgentId} objects; options as `null`/`undefined` or the value;
 * vecs and tuples as arrays.
 *
 * Values you get back: `u8`/`u16`/`u32` as `number`, `u64`/`u128`/`i64`/`i128` as `bigint`,
 * bytes and hashes as `0x` hex, hnames as `0x` + 8 hex digits, agents as text.
 * @module
 */
import { DecodeError, Reader, concat, fromHex, toHex, tryFromHex, uintLE, utf8 } from "./bytes.js";
import { encodeAgent, hname, hnameHex, parseHname, type AgentFormat, type AgentId } from "./ids.js";
import { parseType, typeToString, type Field, type Type } from "./types.js";

/** An integer argument: a bigint, a safe-integer number, or a decimal string. */
export type IntInput = bigint | number | string;
/** A bytes argument: bytes, `0x` hex, or an array of byte values. */
export type BytesInput = Uint8Array | string | number[];
/** A 32-byte hash argument: bytes or `0x` hex. */
export type HashInput = Uint8Array | string;
/** An agent argument: a Kaspa address, `contract:<name>`, a raw form, or an {@link AgentId}. */
export type AgentInput = string | AgentId;
/** An hname argument: a name (hashed), `0x` + 8 hex digits, or the u32. */
export type HnameInput = string | number;

/** A value that does not fit its declared type, or bytes that do not decode as it. */
export class CodecError extends Error {
  override name = "CodecError";
  constructor(
    /** Where in the arguments (`amount`, `path[2]`, `pair.1`). */
    readonly path: string,
    /** The declared type. */
    readonly expected: string,
    /** What was found. */
    readonly got: string,
  ) {
    super(`${path}: expected ${expected}, got ${got}`);
  }
}

/** JSON text of a value, with bigints as numbers (what the node's error messages show). */
function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v instanceof Uint8Array) return JSON.stringify(toHex(v));
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}` : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

const RANGES: Record<string, [bigint, bigint]> = {
  u8: [0n, 0xffn],
  u16: [0n, 0xffffn],
  u32: [0n, 0xffffffffn],
  u64: [0n, (1n << 64n) - 1n],
  u128: [0n, (1n << 128n) - 1n],
  i64: [-(1n << 63n), (1n << 63n) - 1n],
  i128: [-(1n << 127n), (1n << 127n) - 1n],
};
const SIZES: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, u128: 16, i64: 8, i128: 16 };

function integer(v: unknown, signed: boolean): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") return Number.isSafeInteger(v) && (signed || v >= 0) ? BigInt(v) : undefined;
  if (typeof v === "string" && (signed ? /^[+-]?[0-9]+$/ : /^\+?[0-9]+$/).test(v)) return BigInt(v);
  return undefined;
}

function bytesOf(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return tryFromHex(v);
  if (Array.isArray(v)) {
    const out = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const b = integer(v[i], false);
      if (b === undefined || b > 255n) return undefined;
      out[i] = Number(b);
    }
    return out;
  }
  return undefined;
}

function isAgent(v: unknown): v is AgentId {
  return typeof v === "object" && v !== null && "kind" in v && (v.kind === "address" || v.kind === "contract");
}

/**
 * Encodes one value of type `ty` (see the module doc for the forms accepted).
 * @throws {CodecError} at `path` if the value does not fit.
 */
export function encodeValue(ty: Type, v: unknown, path: string, agents: AgentFormat): Uint8Array {
  const bad = () => new CodecError(path, typeToString(ty), show(v));
  switch (ty.kind) {
    case "bool":
      if (typeof v !== "boolean") throw bad();
      return Uint8Array.of(v ? 1 : 0);
    case "u8":
    case "u16":
    case "u32":
    case "u64":
    case "u128":
    case "i64":
    case "i128": {
      const n = integer(v, ty.kind.startsWith("i"));
      const [lo, hi] = RANGES[ty.kind]!;
      if (n === undefined || n < lo || n > hi) throw bad();
      return uintLE(BigInt.asUintN(SIZES[ty.kind]! * 8, n), SIZES[ty.kind]!);
    }
    case "String": {
      if (typeof v !== "string") throw bad();
      const b = utf8(v);
      return concat(uintLE(b.length, 4), b);
    }
    case "Bytes": {
      const b = bytesOf(v);
      if (!b) throw bad();
      return concat(uintLE(b.length, 4), b);
    }
    case "Hash32": {
      const b = v instanceof Uint8Array ? v : typeof v === "string" ? tryFromHex(v) : undefined;
      if (b?.length !== 32) throw bad();
      return b;
    }
    case "AgentId": {
      const a = isAgent(v) ? v : typeof v === "string" ? agents.parse(v) : undefined;
      if (!a) throw bad();
      return encodeAgent(a);
    }
    case "Hname": {
      let h: number | undefined;
      if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) h = v;
      else if (typeof v === "string") h = v.startsWith("0x") ? parseHname(v) : hname(v);
      if (h === undefined) throw bad();
      return uintLE(h, 4);
    }
    case "Option":
      return v === null || v === undefined
        ? Uint8Array.of(0)
        : concat(Uint8Array.of(1), encodeValue(ty.inner, v, path, agents));
    case "Vec": {
      if (!Array.isArray(v)) throw bad();
      return concat(uintLE(v.length, 4), ...v.map((item, i) => encodeValue(ty.inner, item, `${path}[${i}]`, agents)));
    }
    case "Tuple": {
      if (!Array.isArray(v) || v.length !== ty.items.length) throw bad();
      return concat(...ty.items.map((t, i) => encodeValue(t, v[i], `${path}.${i}`, agents)));
    }
  }
}

/**
 * Encodes `args` (an array in parameter order, or an object keyed by parameter name) as the
 * borsh tuple of `params`.
 * @throws {CodecError} naming the parameter whose value is missing or does not fit its type.
 */
export function encodeArgs(params: readonly Field[], args: unknown, agents: AgentFormat): Uint8Array {
  if (Array.isArray(args)) {
    if (args.length !== params.length) {
      throw new CodecError("args", `${params.length} arguments`, `${args.length}`);
    }
    return concat(...params.map((p, i) => encodeValue(parseType(p.type), args[i], p.name, agents)));
  }
  if ((args === null || args === undefined) && params.length === 0) return new Uint8Array();
  if (typeof args === "object" && args !== null && !(args instanceof Uint8Array)) {
    const map = args as Record<string, unknown>;
    const parts = params.map((p) => {
      if (!(p.name in map)) throw new CodecError(p.name, p.type, "nothing");
      return encodeValue(parseType(p.type), map[p.name], p.name, agents);
    });
    const extra = Object.keys(map).find((k) => !params.some((p) => p.name === k));
    if (extra !== undefined) throw new CodecError(extra, "no such parameter", "a value");
    return concat(...parts);
  }
  throw new CodecError("args", "a JSON array or object", show(args));
}

/** A decoded contract value (see the module doc). */
export type Value = null | boolean | number | bigint | string | Value[] | { [field: string]: Value };

/**
 * Decodes one value of type `ty` from `reader`, consuming exactly its bytes.
 * @throws {CodecError} if the bytes end early or are not valid for the type.
 */
export function decodeValue(ty: Type, reader: Reader, path: string, agents: AgentFormat): Value {
  try {
    switch (ty.kind) {
      case "bool":
        return reader.bool();
      case "u8":
        return reader.u8();
      case "u16":
        return reader.u16();
      case "u32":
        return reader.u32();
      case "u64":
      case "u128":
        return reader.uint(SIZES[ty.kind]!);
      case "i64":
      case "i128":
        return reader.int(SIZES[ty.kind]!);
      case "String":
        return reader.string();
      case "Bytes":
        return toHex(reader.bytesVec());
      case "Hash32":
        return toHex(reader.take(32));
      case "AgentId": {
        const tag = reader.u8();
        if (tag === 0) return agents.format({ kind: "address", key: Uint8Array.from(reader.take(32)) });
        if (tag === 1) {
          const chain = Uint8Array.from(reader.take(32));
          return agents.format({ kind: "contract", chain, hname: reader.u32() });
        }
        throw new DecodeError(`agent tag ${tag}`);
      }
      case "Hname":
        return hnameHex(reader.u32());
      case "Option":
        return reader.option() ? decodeValue(ty.inner, reader, path, agents) : null;
      case "Vec": {
        const n = reader.length();
        const items: Value[] = [];
        for (let i = 0; i < n; i++) items.push(decodeValue(ty.inner, reader, `${path}[${i}]`, agents));
        return items;
      }
      case "Tuple":
        return ty.items.map((t, i) => decodeValue(t, reader, `${path}.${i}`, agents));
    }
  } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError(path, typeToString(ty), e instanceof Error ? e.message : String(e));
  }
}

/**
 * Decodes an event's data to an object keyed by field name.
 * @throws {CodecError} if the data does not match the fields exactly.
 */
export function decodeFields(fields: readonly Field[], data: Uint8Array, agents: AgentFormat): Record<string, Value> {
  const reader = new Reader(data);
  const out: Record<string, Value> = {};
  for (const f of fields) out[f.name] = decodeValue(parseType(f.type), reader, f.name, agents);
  if (reader.remaining) throw new CodecError("data", "end of data", `${reader.remaining} trailing bytes`);
  return out;
}

/**
 * Decodes a whole return value (`returns` absent or null: unit, the data must be empty).
 * @throws {CodecError} if the data does not match the type exactly.
 */
export function decodeReturn(returns: string | null | undefined, data: Uint8Array, agents: AgentFormat): Value {
  const reader = new Reader(data);
  const value = returns ? decodeValue(parseType(returns), reader, "return", agents) : null;
  if (reader.remaining) throw new CodecError("return", "end of data", `${reader.remaining} trailing bytes`);
  return value;
}

/** Decodes `0x` hex of a type's borsh (a convenience over {@link decodeValue}). */
export function decodeHex(typeText: string, hex: string, agents: AgentFormat): Value {
  const reader = new Reader(fromHex(hex));
  const v = decodeValue(parseType(typeText), reader, "value", agents);
  reader.end();
  return v;
}
