/**
 * Reading a contract module's embedded interface (the `wisp:interface` custom section that the
 * SDK's `#[contract]` writes) and its code hash, without compiling the module.
 * @module
 */
import { Reader } from "./bytes.js";
import { blake2b256 } from "./hash.js";
import type { ContractInterface } from "./types.js";

/** Name of the custom section holding the interface JSON. */
export const INTERFACE_SECTION = "wisp:interface";

/** Bytes that are not a WebAssembly module. */
export class ModuleError extends Error {
  override name = "ModuleError";
}

function leb128(r: Reader): number {
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    const b = r.u8();
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
  }
  throw new ModuleError("a LEB128 number longer than 5 bytes");
}

/** The payloads of the custom sections named `name`, in order. @throws {ModuleError} */
export function customSections(module: Uint8Array, name: string): Uint8Array[] {
  const r = new Reader(module);
  try {
    const head = r.take(8);
    if (head[0] !== 0 || head[1] !== 0x61 || head[2] !== 0x73 || head[3] !== 0x6d) throw new ModuleError("not a WebAssembly module (bad magic)");
    const out: Uint8Array[] = [];
    while (r.remaining > 0) {
      const id = r.u8();
      const size = leb128(r);
      const body = new Reader(r.take(size));
      if (id !== 0) continue;
      const nameLen = leb128(body);
      const sectionName = new TextDecoder().decode(body.take(nameLen));
      if (sectionName === name) out.push(body.take(body.remaining));
    }
    return out;
  } catch (e) {
    if (e instanceof ModuleError) throw e;
    throw new ModuleError(`truncated WebAssembly module (${(e as Error).message})`);
  }
}

/** The module's embedded interface (null if it has none). @throws {ModuleError} if malformed. */
export function readInterface(module: Uint8Array): ContractInterface | null {
  const sections = customSections(module, INTERFACE_SECTION);
  if (sections.length === 0) return null;
  if (sections.length > 1) throw new ModuleError(`more than one ${INTERFACE_SECTION} section`);
  try {
    return JSON.parse(new TextDecoder().decode(sections[0])) as ContractInterface;
  } catch {
    throw new ModuleError(`the ${INTERFACE_SECTION} section is not JSON`);
  }
}

/** A module's code hash: blake2b-256 of its bytes (what `wisp_listContracts` shows). */
export function codeHash(module: Uint8Array): Uint8Array {
  return blake2b256(module);
}
