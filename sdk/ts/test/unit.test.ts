// Unit tests of the client's own logic: type limits, codec errors, error classes, event proofs,
// module sections, transports' error paths. (Byte compatibility with the node is vectors.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CodecError, ContractError, DecodeError, ModuleError, NodeAgentFormat, ProofError, Reader, RequestError, RpcError, VmError,
  TypeError_, blake2b256, eventsRoot, concat, decodeFields, decodeReturn, decodeValue, encodeArgs, encodeEvent, eventLeaf, fromHex,
  fromRpcError, http, parseType, readInterface, toHex, uintLE, utf8, verifyEventProof, TransportError, type RawEvent,
} from "../src/index.js";

const agents = new NodeAgentFormat("kaspasim", new Uint8Array(32).fill(1));

test("type texts are bounded like the node's parser", () => {
  assert.throws(() => parseType("Vec<".repeat(17) + "u8" + ">".repeat(17)), /deeper than 16/);
  assert.doesNotThrow(() => parseType("Vec<".repeat(15) + "u64" + ">".repeat(15)));
  assert.throws(() => parseType("()"), /no encoding/);
  assert.throws(() => parseType("Option<Option<u8>>"), /Option<Option/);
  assert.throws(() => parseType("HashMap<u8, u8>"), /unsupported/);
  assert.throws(() => parseType("f64"), /unsupported/);
  assert.throws(() => parseType(`(${"u8,".repeat(33)})`), /more than 32 fields/);
  assert.throws(() => parseType("u8".padEnd(600, " ")), /limit of 512/);
  assert.throws(() => parseType("Vec<u8"), TypeError_);
  assert.deepEqual(parseType(" wisp_sdk :: AgentId "), { kind: "AgentId" });
  assert.deepEqual(parseType("Vec<u8>"), { kind: "Bytes" });
});

test("bytes that do not decode are refused, never read past", () => {
  const vecU64 = parseType("Vec<u64>");
  assert.throws(() => decodeValue(vecU64, new Reader(Uint8Array.of(255, 255, 255, 255, 1)), "v", agents), /longer than the data/);
  assert.throws(() => decodeValue(parseType("Option<u8>"), new Reader(Uint8Array.of(2, 1)), "v", agents), /option tag/);
  assert.throws(() => decodeValue(parseType("bool"), new Reader(Uint8Array.of(2)), "v", agents), CodecError);
  assert.throws(() => decodeValue(parseType("String"), new Reader(Uint8Array.of(1, 0, 0, 0, 0xff)), "v", agents), /UTF-8/);
  assert.throws(() => decodeValue(parseType("AgentId"), new Reader(Uint8Array.of(7)), "v", agents), CodecError);
  assert.throws(() => decodeReturn("u8", Uint8Array.of(1, 2), agents), /trailing/);
  assert.throws(() => decodeReturn(null, Uint8Array.of(1), agents), /trailing/);
  assert.throws(() => decodeFields([{ name: "a", type: "u64" }], Uint8Array.of(1, 2), agents), (e: unknown) => e instanceof CodecError && e.path === "a");
  assert.throws(() => new Reader(Uint8Array.of(1)).take(2), DecodeError);
});

test("argument errors name the parameter", () => {
  const params = [{ name: "to", type: "AgentId" }, { name: "amount", type: "u128" }];
  assert.throws(() => encodeArgs(params, [1], agents), (e: unknown) => e instanceof CodecError && e.path === "args" && e.expected === "2 arguments");
  assert.throws(() => encodeArgs(params, { to: "contract:1234abcd" }, agents), (e: unknown) => e instanceof CodecError && e.path === "amount" && e.got === "nothing");
  assert.throws(() => encodeArgs(params, { to: "contract:1234abcd", amount: 1, memo: "x" }, agents), (e: unknown) => e instanceof CodecError && e.path === "memo");
  assert.throws(() => encodeArgs(params, { to: "nobody", amount: 1 }, agents), (e: unknown) => e instanceof CodecError && e.path === "to");
  assert.throws(() => encodeArgs(params, { to: "contract:1234abcd", amount: -1n }, agents), (e: unknown) => e instanceof CodecError && e.path === "amount");
  assert.throws(() => encodeArgs(params, { to: "contract:1234abcd", amount: 2 ** 60 }, agents), /amount/, "unsafe JS numbers are refused");
  assert.equal(encodeArgs([], undefined, agents).length, 0);
  // bigint, safe number and decimal string give the same bytes
  const a = encodeArgs(params, ["contract:1234abcd", 5n], agents);
  assert.deepEqual(a, encodeArgs(params, ["contract:1234abcd", "5"], agents));
  assert.deepEqual(a, encodeArgs(params, { amount: 5, to: "contract:1234abcd" }, agents));
});

test("failures are classified by data.level, not by the JSON-RPC code", () => {
  const contract = fromRpcError({ code: -32005, message: "m", data: { level: "contract", code: 5, name: "X", message: "m" } });
  assert.ok(contract instanceof ContractError && contract.code === 5 && contract.name === "X");
  assert.ok(fromRpcError({ code: -32200, message: "m", data: { level: "contract", code: 9, name: "", message: "m" } }).name === "ContractError", "no name: the class name");
  const request = fromRpcError({ code: -32200, message: "m", data: { level: "request", code: 4, name: "bad_nonce", message: "m" } });
  assert.ok(request instanceof RequestError && request.level === "request");
  assert.ok(fromRpcError({ code: -32105, message: "m", data: { level: "vm", code: 5, name: "out_of_gas", message: "m" } }) instanceof VmError);
  const plain = fromRpcError({ code: -32005, message: "no contract" });
  assert.ok(plain instanceof RpcError && plain.code === -32005);
});

/** A reference events tree: rs_merkle's shape (odd node promoted), Wisp's node hash. */
function tree(leaves: Uint8Array[]): { root: Uint8Array; proof(i: number): Uint8Array[] } {
  const levels: Uint8Array[][] = [leaves];
  while (levels[levels.length - 1]!.length > 1) {
    const l = levels[levels.length - 1]!;
    const up: Uint8Array[] = [];
    for (let i = 0; i < l.length; i += 2) up.push(i + 1 < l.length ? blake2b256("wisp/events/node", l[i]!, l[i + 1]!) : l[i]!);
    levels.push(up);
  }
  return {
    root: levels[levels.length - 1]![0]!,
    proof(i) {
      const out: Uint8Array[] = [];
      for (const l of levels.slice(0, -1)) {
        const s = i % 2 ? i - 1 : i + 1;
        if (s < l.length) out.push(l[s]!);
        i >>= 1;
      }
      return out;
    },
  };
}

function encodeProof(requestId: Uint8Array, index: number, event: RawEvent, leafIndex: number, leafCount: number, siblings: Uint8Array[]) {
  return concat(requestId, uintLE(index, 4), encodeEvent(event), uintLE(leafIndex, 4), uintLE(leafCount, 4), uintLE(siblings.length, 4), ...siblings);
}

test("event proofs verify at every position of trees of 1 to 9 events, and tampering is caught", () => {
  for (let n = 1; n <= 9; n++) {
    const events = Array.from({ length: n }, (_, i) => ({ requestId: blake2b256(`r${i}`), event: { contract: 7, topic: "T", data: Uint8Array.of(i) } }));
    const leaves = events.map((e) => eventLeaf(e.requestId, 0, e.event));
    const t = tree(leaves);
    assert.deepEqual(eventsRoot(events.map((e) => ({ requestId: e.requestId, events: [e.event] }))), t.root);
    for (let i = 0; i < n; i++) {
      const proof = encodeProof(events[i]!.requestId, 0, events[i]!.event, i, n, t.proof(i));
      const p = verifyEventProof(t.root, proof);
      assert.equal(toHex(p.requestId), toHex(events[i]!.requestId));
      const other = { ...events[i]!.event, data: Uint8Array.of(99) };
      assert.throws(() => verifyEventProof(t.root, encodeProof(events[i]!.requestId, 0, other, i, n, t.proof(i))), ProofError);
      if (n > 1) {
        assert.throws(() => verifyEventProof(t.root, encodeProof(events[i]!.requestId, 0, events[i]!.event, (i + 1) % n, n, t.proof(i))), ProofError);
      }
      assert.throws(() => verifyEventProof(t.root, encodeProof(events[i]!.requestId, 0, events[i]!.event, i, n, [...t.proof(i), t.root])), ProofError);
    }
  }
  assert.throws(() => verifyEventProof(new Uint8Array(32), Uint8Array.of(1, 2, 3)), /does not decode/);
});

test("a module's interface is read from its custom section", () => {
  const json = utf8(JSON.stringify({ name: "x", functions: [], events: [], errors: [] }));
  const name = utf8("wisp:interface");
  const payload = concat(Uint8Array.of(name.length), name, json);
  const section = concat(Uint8Array.of(0, payload.length), payload); // payload < 128: 1-byte LEB128
  const header = fromHex("0x0061736d01000000");
  assert.equal(readInterface(concat(header, section))?.name, "x");
  assert.equal(readInterface(header), null);
  assert.throws(() => readInterface(concat(header, section.subarray(0, 10))), ModuleError);
  assert.throws(() => readInterface(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), /not a WebAssembly module/);
});

test("an unreachable node is a TransportError that says so", async () => {
  const t = http("http://127.0.0.1:9", { timeoutMs: 2000 });
  await assert.rejects(t.request("wisp_chainInfo"), (e: unknown) => e instanceof TransportError && /cannot reach/.test(e.message));
});

test("agents: names, hnames, raw forms", () => {
  const chain = new Uint8Array(32).fill(1);
  const f = new NodeAgentFormat("kaspasim", chain, new Map([[0x0afc3e7b, "token"]]));
  assert.deepEqual(f.parse("contract:token"), { kind: "contract", chain, hname: 0x0afc3e7b });
  assert.equal(f.format({ kind: "contract", chain, hname: 0x0afc3e7b }), "contract:token");
  assert.equal(f.format({ kind: "contract", chain, hname: 5 }), "contract:00000005");
  assert.equal(f.parse("contract:nonesuch"), undefined);
  assert.equal(f.parse("kaspasim:nonsense"), undefined);
});
