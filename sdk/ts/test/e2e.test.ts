// End to end against a real devnet: deploy the example token from TypeScript, transfer, read,
// get a named contract error, watch events across a dropped socket, verify proofs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  ContractError, LocalSigner, RequestError, createPublicClient, createWalletClient, decodeReceipt, fromHex, getContract,
  receiptsRoot, toHex, equalBytes, codeHash, encodeAddress, type AddressPrefix, type Block, type EventEntry, type PublicClient, type WalletClient,
} from "../src/index.js";
import { buildContract, startDevnet, wispBin, REPO, type Devnet } from "./devnet.js";
import { tokenContract, TokenErrors } from "./bindings/token.js";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

let devnet: Devnet;
let pub: PublicClient;
let wallet: WalletClient;
let code: Uint8Array;

before(async () => {
  devnet = await startDevnet();
  code = new Uint8Array(readFileSync(buildContract("contracts/token", devnet.home)));
  pub = createPublicClient({ url: devnet.rpc });
  wallet = createWalletClient({ publicClient: pub, signer: new LocalSigner(devnet.accounts[0]!.secretKey) });
});

after(async () => {
  await devnet?.stop();
});

test("the token end to end from TypeScript", async (t) => {
  const info = await pub.chainInfo();
  assert.ok(info.apiVersion >= 2, "node API version");
  assert.equal(await wallet.address(), devnet.accounts[0]!.address);
  const dev1 = devnet.accounts[1]!.address;

  const deployed = await (await wallet.deploy({ name: "tok", code, initArgs: ["Test Token", "TST", 8, 1_000_000n] })).wait();
  assert.equal(deployed.status, "success");
  const entry = (await pub.listContracts()).find((c) => c.name === "tok");
  assert.equal(entry?.codeHash, toHex(codeHash(code)), "the deployed code hash is the module's blake2b");
  assert.ok(equalBytes((await pub.getCode(entry!.codeHash!))!, code));

  // Typed by the bindings `wisp bindings ts` generated (test/bindings/token.ts, checked fresh below).
  const token = tokenContract({ publicClient: pub, walletClient: wallet });
  const untyped = getContract({ contract: "tok", publicClient: pub });

  await t.test("the committed bindings are what `wisp bindings ts` generates now", () => {
    const r = spawnSync(wispBin(), ["bindings", "ts", join(REPO, "contracts/token"), "--name", "tok", "--import", "../../src/index.js"], {
      env: { ...process.env, WISP_HOME: devnet.home },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(join(REPO, "sdk/ts/test/bindings/token.ts"), "utf8"), "regenerate sdk/ts/test/bindings/token.ts (see sdk/ts/README.md)");
  });

  await t.test("transfer, then read the balance", async () => {
    const sim = await token.simulate.transfer({ to: dev1, amount: 250n });
    assert.ok(sim.gasUsed > 0n);
    const w = await token.write.transfer({ to: dev1, amount: 250n });
    assert.equal(w.receipt.status, "success");
    assert.equal(w.receipt.call?.function, "transfer");
    assert.equal(w.receipt.call?.args?.to, dev1);
    assert.equal(w.events.length, 1);
    assert.equal(w.events[0]!.topic, "Transfer");
    assert.equal(w.events[0]!.args.amount, 250n);
    assert.equal(w.events[0]!.args.to, dev1);
    assert.equal(await token.read.balance_of([dev1]), 250n);
    assert.equal(await untyped.read.balance_of({ owner: dev1 }), 250n, "without bindings too");
    assert.equal(await token.read.balance_of({ owner: devnet.accounts[0]!.address }), 1_000_000n - 250n);
    assert.equal(await token.read.symbol(), "TST");
    assert.equal(await token.read.decimals(), 8);
  });

  await t.test("a contract error comes back by name, with its docs", async () => {
    await assert.rejects(token.write.transfer({ to: dev1, amount: 10n ** 30n }), (e: unknown) => {
      assert.ok(e instanceof ContractError, `got ${e}`);
      assert.equal(e.level, "contract");
      assert.equal(e.code, TokenErrors.InsufficientBalance);
      assert.equal(e.name, "InsufficientBalance");
      assert.match(e.detail, /./);
      assert.match(e.docs, /balance is lower/);
      return true;
    });
  });

  await t.test("devnet snapshots revert a transfer", async () => {
    const id = await pub.dev.snapshot();
    await token.write.transfer({ to: dev1, amount: 5n });
    assert.equal(await token.read.balance_of([dev1]), 255n);
    assert.equal(await pub.dev.revert(id), true);
    assert.equal(await token.read.balance_of([dev1]), 250n);
    const encoded = await pub.encodeArgs("tok", "balance_of", "view", [dev1]);
    assert.equal(encoded.args.length, 2 + 2 * 33);
  });

  await t.test("watchBlocks reports blocks rolled back and delivers their replacements", async () => {
    const blocks: Block[] = [];
    const reorgs: { fromIndex: number; removed: Block[] }[] = [];
    const unwatch = pub.watchBlocks({ onBlock: (b) => blocks.push(b), onReorg: (r) => reorgs.push(r) });
    await unwatch.ready;
    const id = await pub.dev.snapshot();
    const first = await token.write.transfer({ to: dev1, amount: 3n });
    const until = async (ok: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(ok());
    };
    await until(() => blocks.some((b) => b.index === first.receipt.blockIndex));
    const replaced = blocks.find((b) => b.index === first.receipt.blockIndex)!;
    assert.equal(await pub.dev.revert(id), true);
    const second = await token.write.transfer({ to: dev1, amount: 4n });
    assert.equal(second.receipt.blockIndex, first.receipt.blockIndex, "the same height again");
    await until(() => blocks.filter((b) => b.index === second.receipt.blockIndex).length === 2);
    await unwatch();
    assert.equal(reorgs.length, 1);
    assert.equal(reorgs[0]!.fromIndex, first.receipt.blockIndex);
    assert.deepEqual(reorgs[0]!.removed.map((b) => b.hash), [replaced.hash]);
    const last = blocks[blocks.length - 1]!;
    assert.notEqual(last.hash, replaced.hash);
    const before = (await pub.getBlock(first.receipt.blockIndex - 1))!;
    assert.equal(last.prevHash, before.hash, "the replacement follows the block before the rolled-back one");
    assert.equal(replaced.prevHash, before.hash);
  });

  await t.test("a watch stopped while its socket opens delivers nothing", async () => {
    let delivered = 0;
    const unwatch = pub.watchBlocks({ onBlock: () => delivered++ });
    await unwatch();
    await token.write.transfer({ to: dev1, amount: 1n });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(delivered, 0);
  });

  await t.test("the quickstart example runs as the README says", () => {
    const wasm = buildContract("contracts/token", devnet.home);
    const r = spawnSync(process.execPath, [join(REPO, "sdk/ts/dist/examples/quickstart.js"), devnet.rpc, devnet.accounts[2]!.secretKey, wasm, dev1], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^deployed quickstart_\w+ in block \d+/m);
    assert.match(r.stdout, /^transfer: success/m);
    assert.match(r.stdout, /^balance_of\(recipient\) = 250$/m);
    assert.match(r.stdout, /^event Transfer .*"amount":"250"/m);
    assert.match(r.stdout, /^refused: InsufficientBalance \(code 1\): the sender's balance is lower than the amount$/m);
    assert.match(r.stdout, /^verified balance \d+ sompi at block \d+$/m);
  });

  await t.test("a refused request is a RequestError decided by data.level", async () => {
    const body = await wallet.buildBody({ contract: "tok", function: "transfer", args: new Uint8Array(), gasBudget: 10n ** 15n });
    const signed = await wallet.signRequest(body);
    await assert.rejects(pub.sendRawRequest(signed), (e: unknown) => e instanceof RequestError && e.level === "request" && e.name !== "RequestError");
  });

  await t.test("a Transfer arrives on watchEvents within 5 s", async () => {
    let resolveSeen!: (e: EventEntry) => void;
    const seen = new Promise<EventEntry>((r) => (resolveSeen = r));
    const unwatch = pub.watchEvents({ contract: "tok", topic: "Transfer", onEvent: (e) => resolveSeen(e) });
    await unwatch.ready;
    const started = Date.now();
    await token.write.transfer({ to: dev1, amount: 7n });
    const e = await Promise.race([seen, new Promise<never>((_, rej) => setTimeout(() => rej(new Error("no event in 5 s")), 5000))]);
    assert.ok(Date.now() - started < 5000);
    assert.equal((e.fields as Record<string, unknown>).amount, "7");
    await unwatch();
  });

  await t.test("none of 20 events is missed or repeated across a dropped socket", async () => {
    const got: EventEntry[] = [];
    const errors: Error[] = [];
    const unwatch = pub.watchEvents({ contract: "tok", topic: "Transfer", onEvent: (e) => got.push(e), onError: (e) => errors.push(e) });
    await unwatch.ready;
    for (let i = 1; i <= 20; i++) {
      if (i === 11) unwatch.dropConnection();
      await token.write.transfer({ to: dev1, amount: BigInt(1000 + i) });
    }
    const deadline = Date.now() + 15_000;
    while (got.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // any duplicate would arrive by now
    await unwatch();
    assert.deepEqual(
      got.map((e) => (e.fields as Record<string, string>).amount),
      Array.from({ length: 20 }, (_, i) => String(1001 + i)),
    );
    assert.ok(errors.length >= 1, "the dropped socket was reported");
  });

  await t.test("a balance proof verifies against the block header", async () => {
    const { balance, block } = await pub.getVerifiedBalance(dev1);
    assert.equal(balance, await pub.getBalance(dev1));
    assert.ok(balance > 0n);
    // An absent account is proven absent.
    const prefix = info.depositAddress.split(":")[0] as AddressPrefix;
    const nobody = await pub.getVerifiedBalance(encodeAddress(prefix, 0, new Uint8Array(32).fill(7)));
    assert.equal(nobody.balance, 0n, "an account never funded is proven absent");
    assert.ok(block.index >= 1);
  });

  await t.test("a block's receipts root and an event proof verify from raw bytes", async () => {
    const w = await token.write.transfer({ to: dev1, amount: 1n });
    const block = (await pub.getBlock(w.receipt.blockIndex))!;
    const header = pub.verifyBlockHeader(block);
    const raws = block.receipts!.map((r) => fromHex(r.raw));
    assert.ok(equalBytes(receiptsRoot(raws), header.receiptsRoot));
    assert.equal(decodeReceipt(raws[w.receipt.requestIndex]!).gasUsed, w.receipt.gasUsed);
    const proven = await pub.getVerifiedEvent(w.requestId, 0);
    assert.equal(proven?.event.topic, "Transfer");
  });
});
