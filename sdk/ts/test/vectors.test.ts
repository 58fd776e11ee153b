// Golden vectors written by the node's Rust test (node/tests/ts_vectors.rs): the client must
// encode, sign, hash and verify exactly as the node does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  CodecError, Reader, LocalSigner, NodeAgentFormat, decodeAddress, decodeHeader, decodeValue, encodeAddress,
  encodeLanePayload, encodeOffLedgerRequest, encodeRequestBody, encodeUnsignedRequest, encodeHeader, encodeValue,
  fromHex, hname, hnameHex, headerHash, isValidStateProof, offLedgerRequestId, parseHname, parseType, signingHash,
  toHex, typeToString, verifyRequestSignature, verifyStateProof, ProofError, decodeReceipt, receiptsRoot,
  blake2b256, verifyEventProof, encodeAgent, concat, uintLE, eventsRoot,
  type AccessList, type L1Time, type RequestBody, type TimeLock, type AddressPrefix,
} from "../src/index.js";

const v = JSON.parse(readFileSync(new URL("../../test/vectors.json", import.meta.url), "utf8"));
const agents = new NodeAgentFormat(
  v.addressPrefix,
  fromHex(v.chainId),
  new Map(v.contracts.map((c: { name: string; hname: string }) => [parseHname(c.hname)!, c.name])),
);
/** JSON text with bigints as decimal strings: the form the node's decoder prints. */
const normalise = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, y) => (typeof y === "bigint" ? y.toString() : y)));

test("at least the promised number of vectors", () => {
  assert.ok(v.args.length >= 50, `${v.args.length} argument vectors`);
  assert.equal(v.requests.length, 10);
  assert.equal(v.headers.length, 5);
  assert.equal(v.proofs.filter((p: { valid: boolean }) => p.valid).length, 5);
  assert.equal(v.proofs.filter((p: { valid: boolean; value: unknown }) => p.valid && p.value === null).length, 2);
  assert.equal(v.proofs.filter((p: { valid: boolean }) => !p.valid).length, 5);
});

test("hnames", () => {
  for (const h of v.hnames) assert.equal(hnameHex(hname(h.name)), h.hname, h.name);
});

test("Kaspa addresses encode and decode", () => {
  for (const a of v.addresses) {
    assert.equal(encodeAddress(a.prefix as AddressPrefix, a.version, fromHex(a.payload)), a.address);
    const d = decodeAddress(a.address);
    assert.equal(d.prefix, a.prefix);
    assert.equal(d.version, a.version);
    assert.equal(toHex(d.payload), a.payload);
  }
  const good = v.addresses[0].address as string;
  const flipped = good.slice(0, -1) + (good.endsWith("q") ? "p" : "q");
  assert.throws(() => decodeAddress(flipped), /checksum/);
});

test("argument encodings match the node's codec byte for byte, and decode back", () => {
  for (const a of v.args) {
    const ty = parseType(a.type);
    assert.equal(typeToString(ty), typeToString(parseType(typeToString(ty))), a.type);
    const bytes = encodeValue(ty, a.value, "value", agents);
    assert.equal(toHex(bytes), a.borsh, `${a.type} ${JSON.stringify(a.value)}`);
    const r = new Reader(bytes);
    const decoded = decodeValue(ty, r, "value", agents);
    r.end();
    assert.deepEqual(normalise(decoded), a.decoded, `decode ${a.type}`);
  }
});

test("values the node refuses are refused with the same message", () => {
  for (const b of v.badArgs) {
    assert.throws(
      () => encodeValue(parseType(b.type), b.value, "value", agents),
      (e: unknown) => e instanceof CodecError && e.message === b.error,
      `${b.type} ${JSON.stringify(b.value)} should fail with ${b.error}`,
    );
  }
});

type Wire = Record<string, any>;
const time = (t: Wire | null): L1Time | null =>
  t === null ? null : "daaScore" in t ? { daaScore: BigInt(t.daaScore) } : { timestampMs: BigInt(t.timestampMs) };
const access = (l: Wire | null): AccessList | null =>
  l === null
    ? null
    : {
        reads: l.reads.map((a: Wire) => ({ contract: parseHname(a.contract)!, keyPrefix: a.keyPrefix === null ? null : fromHex(a.keyPrefix) })),
        writes: l.writes.map((a: Wire) => ({ contract: parseHname(a.contract)!, keyPrefix: a.keyPrefix === null ? null : fromHex(a.keyPrefix) })),
      };
const body = (b: Wire): RequestBody => ({
  chain: fromHex(b.chain),
  call: {
    target: parseHname(b.call.target)!,
    entryPoint: parseHname(b.call.entryPoint)!,
    args: fromHex(b.call.args),
    transferSompi: BigInt(b.call.transferSompi),
  },
  gasBudget: BigInt(b.gasBudget),
  accessList: access(b.accessList),
  timeLock: b.timeLock === null ? null : ({ notBefore: time(b.timeLock.notBefore), expiresAt: time(b.timeLock.expiresAt) } as TimeLock),
});

test("signed requests are byte-identical, with the same ids", async () => {
  for (const r of v.requests) {
    const signer = new LocalSigner(r.secretKey);
    assert.equal(toHex(signer.publicKey), r.publicKey);
    assert.equal(agents.format({ kind: "address", key: signer.publicKey }), r.sender);
    const b = body(r.body);
    assert.equal(toHex(encodeRequestBody(b)), r.bodyBorsh);
    const nonce = BigInt(r.nonce);
    const unsigned = encodeUnsignedRequest(b, signer.publicKey, nonce);
    assert.equal(toHex(signingHash(unsigned)), r.signingHash);
    const signature = await signer.signRequest({ bytes: unsigned, body: b, nonce });
    assert.equal(toHex(signature), r.signature, "deterministic BIP340, zero aux");
    assert.ok(verifyRequestSignature(unsigned, signer.publicKey, signature));
    const signed = encodeOffLedgerRequest({ body: b, senderKey: signer.publicKey, nonce, signature });
    assert.equal(toHex(signed), r.signed);
    assert.equal(toHex(offLedgerRequestId(signed)), r.id);
  }
});

test("lane payloads", () => {
  for (const p of v.lanePayloads) {
    const beneficiary = p.beneficiary === null ? null : agents.parse(p.beneficiary)!;
    assert.equal(toHex(encodeLanePayload(p.requests.map(body), beneficiary)), p.encoded);
  }
});

test("header hashes", () => {
  for (const h of v.headers) {
    const header = {
      chain: fromHex(h.chainId), index: BigInt(h.index), prevHash: fromHex(h.prevHash), l1Block: fromHex(h.l1Block),
      l1DaaScore: BigInt(h.l1DaaScore), timestampMs: BigInt(h.timestampMs), stateRoot: fromHex(h.stateRoot),
      receiptsRoot: fromHex(h.receiptsRoot), eventsRoot: fromHex(h.eventsRoot), requestCount: h.requestCount,
      gasUsed: BigInt(h.gasUsed), protocolVersion: h.protocolVersion,
    };
    assert.equal(toHex(encodeHeader(header)), h.raw);
    assert.equal(toHex(headerHash(fromHex(h.raw))), h.hash);
    assert.deepEqual(decodeHeader(fromHex(h.raw)), header);
  }
});

test("state proofs verify, tampered ones are rejected", () => {
  for (const p of v.proofs) {
    const args = [fromHex(p.root), fromHex(p.key), p.value === null ? null : fromHex(p.value), fromHex(p.proof)] as const;
    assert.equal(isValidStateProof(...args), p.valid, p.why ?? `valid proof of ${p.key}`);
    if (!p.valid) assert.throws(() => verifyStateProof(...args), ProofError);
  }
});

test("receipts decode and hash as the node's; event proofs verify, tampered ones are rejected", () => {
  const e = v.eventProofs;
  const raws = e.receipts.map((r: { raw: string }) => fromHex(r.raw));
  for (const [i, r] of e.receipts.entries()) {
    assert.equal(toHex(blake2b256(raws[i])), r.hash);
    const d = decodeReceipt(raws[i]);
    // Re-encoding the decoded receipt gives the same bytes: every field was read.
    const str = (t: string) => concat(uintLE(new TextEncoder().encode(t).length, 4), new TextEncoder().encode(t));
    const bytes = concat(
      d.requestId, uintLE(d.blockIndex, 8), uintLE(d.requestIndex, 4), encodeAgent(d.sender),
      Uint8Array.of(d.status === "success" ? 0 : 1),
      d.error ? concat(Uint8Array.of(1, ["request", "vm", "contract"].indexOf(d.error.level)), uintLE(d.error.code, 4), str(d.error.message)) : Uint8Array.of(0),
      uintLE(d.gasUsed, 8), uintLE(d.feeSompi, 8), uintLE(d.storageLockedSompi, 8), uintLE(d.storageRefundedSompi, 8),
      uintLE(d.events.length, 4),
      ...d.events.map((ev) => concat(uintLE(ev.contract, 4), str(ev.topic), uintLE(ev.data.length, 4), ev.data)),
      uintLE(d.returnData.length, 4), d.returnData,
    );
    assert.equal(toHex(bytes), r.raw);
  }
  assert.equal(toHex(receiptsRoot(raws)), e.receiptsRoot);
  assert.equal(toHex(eventsRoot(raws.map(decodeReceipt))), e.eventsRoot, "events root recomputed from the receipts");
  assert.equal(toHex(eventsRoot([])), "0x" + "00".repeat(32));
  let valid = 0;
  for (const p of e.proofs) {
    if (p.valid) {
      const proven = verifyEventProof(fromHex(e.eventsRoot), fromHex(p.proof));
      assert.equal(toHex(proven.requestId), p.requestId);
      assert.equal(proven.index, p.index);
      valid++;
    } else {
      assert.throws(() => verifyEventProof(fromHex(e.eventsRoot), fromHex(p.proof)), ProofError, p.why);
    }
  }
  assert.equal(valid, 7, "every event of the block");
  assert.equal(e.proofs.length - valid, 5);
});
