/**
 * Contract interfaces as the node serves them (`wisp_getInterface`) and as `#[contract]` writes
 * them into a module's `wisp:interface` custom section, and the argument types they use.
 * @module
 */

/** An argument, return or event field type (each has a borsh encoding; see {@link parseType}). */
export type Type =
  | { kind: "bool" | "u8" | "u16" | "u32" | "u64" | "u128" | "i64" | "i128" }
  | { kind: "String" | "Bytes" | "AgentId" | "Hname" | "Hash32" }
  | { kind: "Option"; inner: Type }
  | { kind: "Vec"; inner: Type }
  | { kind: "Tuple"; items: Type[] };

/** A named, typed parameter or event field. */
export interface Field {
  name: string;
  /** The type as text (`u128`, `Vec<AgentId>`, `(u64, bool)`). */
  type: string;
}

/** An entry point or view. */
export interface FunctionDef {
  name: string;
  /** `entry` (may change state; sent as a request) or `view` (read-only, free). */
  kind: "entry" | "view";
  params: Field[];
  /** Return type text; absent or null for `()`. */
  returns?: string | null;
  /** The doc comment from the contract's source. */
  docs?: string;
}

/** An event type. */
export interface EventDef {
  /** The topic (its struct name). */
  name: string;
  fields: Field[];
  docs?: string;
  /** How many leading fields are indexed (`#[indexed]`, at most 3). */
  indexed?: number;
}

/** A contract error code. */
export interface ErrorDef {
  name: string;
  code: number;
  docs?: string;
}

/** Everything tools need to talk to a contract. */
export interface ContractInterface {
  name: string;
  functions: FunctionDef[];
  events: EventDef[];
  errors: ErrorDef[];
}

/** Longest type text parsed (bytes), deepest nesting and most tuple fields, as the node's. */
export const MAX_TYPE_TEXT_BYTES = 512;
export const MAX_TYPE_DEPTH = 16;
export const MAX_TUPLE_FIELDS = 32;

/** A type text the interface cannot describe or that is malformed. */
export class TypeError_ extends Error {
  override name = "TypeError";
}

const PRIMITIVES: Record<string, Type> = {
  bool: { kind: "bool" },
  u8: { kind: "u8" },
  u16: { kind: "u16" },
  u32: { kind: "u32" },
  u64: { kind: "u64" },
  u128: { kind: "u128" },
  i64: { kind: "i64" },
  i128: { kind: "i128" },
  String: { kind: "String" },
  AgentId: { kind: "AgentId" },
  Hname: { kind: "Hname" },
  Hash32: { kind: "Hash32" },
};

/**
 * Parses a Rust type as a contract writes it (`u128`, `Vec<AgentId>`, `Option<String>`,
 * `(u64, bool)`, `(u64,)`, `Hash32`, paths such as `wisp_sdk::AgentId`), ignoring whitespace;
 * `Vec<u8>` is `Bytes`. Same rules and limits as the node's parser.
 * @throws {TypeError_} on text over 512 bytes, nesting over 16, a tuple over 32 fields, `()`,
 *   `Option<Option<T>>`, an unsupported name, or bad syntax.
 */
export function parseType(text: string): Type {
  if (new TextEncoder().encode(text).length > MAX_TYPE_TEXT_BYTES) {
    throw new TypeError_(`type text exceeds the limit of ${MAX_TYPE_TEXT_BYTES} bytes`);
  }
  const s = text.replace(/\s+/g, "");
  let i = 0;
  const syntax = (): never => {
    throw new TypeError_(`malformed type at byte ${i}: ${text.slice(0, 64)}`);
  };
  const parse = (depth: number): Type => {
    if (s[i] === "(") {
      if (depth + 1 > MAX_TYPE_DEPTH) throw new TypeError_(`type nests deeper than ${MAX_TYPE_DEPTH} levels`);
      i++;
      if (s[i] === ")") throw new TypeError_("`()` has no encoding; leave the parameter out instead");
      const items: Type[] = [];
      for (;;) {
        items.push(parse(depth + 1));
        if (items.length > MAX_TUPLE_FIELDS) throw new TypeError_(`a tuple has more than ${MAX_TUPLE_FIELDS} fields`);
        if (s[i] === "," && s[i + 1] === ")") {
          i += 2;
          break;
        }
        if (s[i] === ",") {
          i++;
          continue;
        }
        if (s[i] === ")") {
          i++;
          break;
        }
        syntax();
      }
      return { kind: "Tuple", items };
    }
    const start = i;
    while (i < s.length && /[A-Za-z0-9_:]/.test(s[i]!)) i++;
    const path = s.slice(start, i);
    const name = path.split("::").pop() ?? "";
    if (!name) syntax();
    if (s[i] === "<") {
      if (name !== "Option" && name !== "Vec") throw new TypeError_(`unsupported type \`${path}\``);
      if (depth + 1 > MAX_TYPE_DEPTH) throw new TypeError_(`type nests deeper than ${MAX_TYPE_DEPTH} levels`);
      i++;
      const inner = parse(depth + 1);
      if (s[i] !== ">") syntax();
      i++;
      if (name === "Option") {
        if (inner.kind === "Option") {
          throw new TypeError_("`Option<Option<T>>` has no JSON form (null cannot tell None from Some(None))");
        }
        return { kind: "Option", inner };
      }
      return inner.kind === "u8" ? { kind: "Bytes" } : { kind: "Vec", inner };
    }
    const prim = PRIMITIVES[name];
    if (!prim) {
      throw new TypeError_(
        `unsupported type \`${path}\`; use bool, u8..u128, i64, i128, String, Vec<T>, Option<T>, tuples, AgentId, Hname or Hash32`,
      );
    }
    return prim;
  };
  const t = parse(0);
  if (i !== s.length) syntax();
  return t;
}

/** The type as the node prints it (`Vec<u8>` for bytes, `(A, B)` for tuples). */
export function typeToString(t: Type): string {
  switch (t.kind) {
    case "Bytes":
      return "Vec<u8>";
    case "Option":
      return `Option<${typeToString(t.inner)}>`;
    case "Vec":
      return `Vec<${typeToString(t.inner)}>`;
    case "Tuple":
      return `(${t.items.map(typeToString).join(", ")})`;
    default:
      return t.kind;
  }
}

/** The function `name` of `kind` in an interface. */
export function findFunction(
  iface: ContractInterface,
  name: string,
  kind?: "entry" | "view",
): FunctionDef | undefined {
  return iface.functions.find((f) => f.name === name && (kind === undefined || f.kind === kind));
}
