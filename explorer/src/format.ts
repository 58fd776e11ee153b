// Text for values: integers with thousands separators, sompi also as KAS (string math, never
// floats), any JSON value printed properly (never `undefined`, `NaN` or `[object Object]`), and
// the parsing of what people type into forms and the search box.
import { parseType, toHex, type Type } from "../../sdk/ts/src/index.ts";

/** Sompi per KAS. */
export const SOMPI_PER_KAS = 100_000_000n;

/** Groups the digits of a decimal integer text: `-1234567` → `-1,234,567`. */
export function groupDigits(text: string): string {
  const m = /^([+-]?)(\d+)$/.exec(text);
  if (!m) return text;
  return m[1] + m[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** An integer (bigint, safe number or decimal text) with thousands separators. */
export function fmtInt(v: bigint | number | string | null | undefined): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? groupDigits(v.toFixed(0)) : Number.isFinite(v) ? String(v) : "—";
  return groupDigits(String(v));
}

function toBig(v: bigint | number | string): bigint | undefined {
  try {
    if (typeof v === "number") return Number.isSafeInteger(v) ? BigInt(v) : undefined;
    return BigInt(v);
  } catch {
    return undefined;
  }
}

/** Sompi as KAS text (`1610844` → `0.01610844`), exact. */
export function sompiToKas(v: bigint | number | string): string {
  const n = toBig(v);
  if (n === undefined) return "—";
  const neg = n < 0n;
  const a = neg ? -n : n;
  const whole = groupDigits((a / SOMPI_PER_KAS).toString());
  const frac = (a % SOMPI_PER_KAS).toString().padStart(8, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${whole}${frac ? `.${frac}` : ""}`;
}

/** `1,610,844 sompi (0.01610844 KAS)`. */
export function fmtSompi(v: bigint | number | string | null | undefined): string {
  if (v === null || v === undefined) return "—";
  return `${fmtInt(v)} sompi (${sompiToKas(v)} KAS)`;
}

/** `0x1234abcd…9876` for long hex, as is otherwise. */
export function shortHex(h: string | null | undefined, keep = 8): string {
  if (!h) return "—";
  const body = h.startsWith("0x") ? h.slice(2) : h;
  if (body.length <= keep * 2 + 2) return h;
  return `${h.startsWith("0x") ? "0x" : ""}${body.slice(0, keep)}…${body.slice(-keep)}`;
}

/** A Kaspa address or agent shortened for tables: `kaspasim:qzt0xu…c8`. */
export function shortAgent(a: string | null | undefined): string {
  if (!a) return "—";
  const i = a.indexOf(":");
  if (i < 0 || a.startsWith("contract:") || a.length < i + 20) return a;
  return `${a.slice(0, i + 9)}…${a.slice(-6)}`;
}

/** A block timestamp (ms since the epoch) as UTC text; 0 is the genesis. */
export function fmtTime(ms: bigint | number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const n = Number(ms);
  if (n === 0) return "0 (genesis)";
  const d = new Date(n);
  if (Number.isNaN(d.getTime())) return fmtInt(ms);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** The time of day of a timestamp, for tables. */
export function fmtClock(ms: bigint | number): string {
  const n = Number(ms);
  if (n === 0) return "genesis";
  const d = new Date(n);
  return Number.isNaN(d.getTime()) ? "—" : d.toISOString().slice(11, 19);
}

/** Hex longer than this many characters is shown shortened with its byte count. */
const LONG_HEX = 80;

function isHex(s: string): boolean {
  return /^0x[0-9a-fA-F]*$/.test(s);
}

/** A long `0x` hex value as `0x0061736d…  (35,099 bytes)`. */
export function fmtHex(s: string): string {
  if (!isHex(s) || s.length <= LONG_HEX) return s;
  return `${s.slice(0, 34)}… (${fmtInt((s.length - 2) / 2)} bytes)`;
}

/**
 * Any value as text: bigints and integers grouped, long hex shortened, arrays and objects
 * recursively, `null` as `null`, and nothing that prints as `undefined`, `NaN` or
 * `[object Object]`.
 */
export function show(v: unknown, depth = 0): string {
  if (depth > 12) return "…";
  switch (typeof v) {
    case "undefined":
      return "—";
    case "bigint":
      return fmtInt(v);
    case "number":
      return fmtInt(v);
    case "boolean":
      return v ? "true" : "false";
    case "string":
      return fmtHex(v);
    case "function":
    case "symbol":
      return "—";
  }
  if (v === null) return "null";
  if (v instanceof Uint8Array) return fmtHex(toHex(v));
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (Array.isArray(v)) return `[${v.map((x) => show(x, depth + 1)).join(", ")}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${show(k, depth + 1)}: ${show(x, depth + 1)}`).join(", ")}}`;
  const entries = Object.entries(v as Record<string, unknown>);
  return `{${entries.map(([k, x]) => `${k}: ${show(x, depth + 1)}`).join(", ")}}`;
}

const INTEGER_KINDS = new Set(["u8", "u16", "u32", "u64", "u128", "i64", "i128"]);

function parseTypeOrNull(text: string | null | undefined): Type | null {
  if (!text) return null;
  try {
    return parseType(text);
  } catch {
    return null;
  }
}

function showType(v: unknown, t: Type | null): string {
  if (t === null) return show(v);
  if (INTEGER_KINDS.has(t.kind) && (typeof v === "bigint" || typeof v === "number" || (typeof v === "string" && /^[+-]?\d+$/.test(v)))) {
    return fmtInt(v as string);
  }
  if (t.kind === "Option") return v === null || v === undefined ? "None" : showType(v, t.inner);
  if (t.kind === "Vec" && Array.isArray(v)) return `[${v.map((x) => showType(x, t.inner)).join(", ")}]`;
  if (t.kind === "Tuple" && Array.isArray(v)) return `(${v.map((x, i) => showType(x, t.items[i] ?? null)).join(", ")})`;
  return show(v);
}

/** A value of a contract type (`u128`, `Vec<AgentId>`…) as text; integers grouped. */
export function showTyped(v: unknown, typeText: string | null | undefined): string {
  return showType(v, parseTypeOrNull(typeText));
}

/** Whether a string is an agent the explorer links to (`kaspa…:` or `contract:`). */
export function agentLink(s: string): string | null {
  if (/^kaspa[a-z]*:[a-z0-9]+$/.test(s)) return `#/account/${s}`;
  const m = /^contract:([^@\s]+)$/.exec(s);
  if (m) return `#/contract/${encodeURIComponent(m[1]!)}`;
  return null;
}

/** JSON text parsed with every integer kept as decimal text (no precision lost to floats). */
export function parseJsonExact(text: string): unknown {
  // Quote the bare integers outside string literals; the codec takes integers as decimal text.
  const parts = text.split(/("(?:[^"\\]|\\.)*")/);
  const quoted = parts
    .map((p, i) => (i % 2 === 1 ? p : p.replace(/(^|[[,:\s])(-?\d+)(?=\s*(?:[\],}]|$))/g, '$1"$2"')))
    .join("");
  return JSON.parse(quoted);
}

/**
 * A form field's text as a value of `typeText`: integers as decimal text (`1,000` and `1_000`
 * allowed), `true`/`false`, strings as typed (or JSON-quoted), agents, hex, hnames as typed,
 * options empty or `null` for none, vecs and tuples as JSON arrays.
 * @throws {Error} saying what was expected.
 */
export function parseInput(text: string, typeText: string): unknown {
  const t = parseType(typeText);
  return parseFor(text, t, typeText);
}

function parseFor(text: string, t: Type, typeText: string): unknown {
  const s = text.trim();
  if (INTEGER_KINDS.has(t.kind)) {
    const n = s.replace(/[,_\s]/g, "");
    if (!/^[+-]?\d+$/.test(n)) throw new Error(`expected an integer (${typeText}), got ${JSON.stringify(text)}`);
    return n;
  }
  switch (t.kind) {
    case "bool":
      if (s === "true" || s === "false") return s === "true";
      throw new Error(`expected true or false, got ${JSON.stringify(text)}`);
    case "String":
      if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) return JSON.parse(s) as string;
      return text;
    case "Option":
      if (s === "" || s === "null" || s === "None") return null;
      return parseFor(text, t.inner, typeText);
    case "Vec":
    case "Tuple": {
      let v: unknown;
      try {
        v = parseJsonExact(s);
      } catch {
        throw new Error(`expected a JSON array for ${typeText}, got ${JSON.stringify(text)}`);
      }
      if (!Array.isArray(v)) throw new Error(`expected a JSON array for ${typeText}`);
      return v;
    }
    default:
      // AgentId, Hname, Hash32, Bytes: as typed (addresses, contract:<name>, 0x hex, names).
      if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) return JSON.parse(s) as string;
      if (t.kind === "Bytes" && s.startsWith("[")) return parseJsonExact(s);
      return s;
  }
}

/** Where the search box takes a query: a block, a request, an account or a contract. */
export function searchRoute(q: string): string | null {
  const s = q.trim();
  if (!s) return null;
  const n = s.replace(/[,_]/g, "");
  if (/^#?\d+$/.test(n)) return `#/block/${BigInt(n.replace("#", "")).toString()}`;
  if (/^0x[0-9a-fA-F]{64}$/.test(s)) return `#/request/${s.toLowerCase()}`;
  if (/^kaspa[a-z]*:/.test(s)) return `#/account/${s}`;
  if (s.startsWith("contract:")) return `#/contract/${encodeURIComponent(s.slice(9))}`;
  return `#/contract/${encodeURIComponent(s)}`;
}
