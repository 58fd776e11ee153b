// The explorer in a real browser against a real devnet: deploys the example token and transfers
// with @wisp/client, then opens each page in headless Chromium and checks what a person sees
// (decoded calls and events, proofs verified in the page, the view form, "verify a build", live
// blocks), that no page prints `undefined`, `NaN` or `[object Object]`, and that nothing is
// logged as an error. Screenshots go to test-results/.
//
// WISP_EXPLORER_SERVED_BY_NODE=0 serves dist/ from this test (with `?rpc=` and `--cors`) instead
// of opening the node's own /explorer/ (which embeds dist/ as it was when `wisp` was built).
// WISP_BIN: the `wisp` binary; WISP_TOKEN_WASM: a built token module (else the one in the
// cargo target directory, else `wisp build contracts/token`); CHROMIUM_PATH: the browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const EXPLORER = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = resolve(EXPLORER, "..");
const SDK_DIST = join(REPO, "sdk", "ts", "dist");
const DIST = join(EXPLORER, "dist");
const RESULTS = join(EXPLORER, "test-results");
const SERVED_BY_NODE = process.env.WISP_EXPLORER_SERVED_BY_NODE !== "0";
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// The `wisp` binary: $WISP_BIN, else the shared cargo target directory CI uses when it has one.
const sharedTarget = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache", "wisp", "target");
if (!process.env.WISP_BIN && existsSync(join(sharedTarget, "debug", "wisp"))) {
  process.env.WISP_BIN = join(sharedTarget, "debug", "wisp");
}

if (!existsSync(join(SDK_DIST, "test", "devnet.js"))) {
  throw new Error("sdk/ts is not built: run `cd sdk/ts && npm ci && npx tsc -p .` first");
}
const wisp = await import(pathToFileURL(join(SDK_DIST, "src", "index.js")).href);
const { startDevnet, buildContract, wispBin } = await import(pathToFileURL(join(SDK_DIST, "test", "devnet.js")).href);

/** The token module: $WISP_TOKEN_WASM, one already built in a target directory, or a fresh build. */
function tokenWasm(home) {
  if (process.env.WISP_TOKEN_WASM) return process.env.WISP_TOKEN_WASM;
  const rel = join("wisp-wasm", "wasm32-unknown-unknown", "release", "wisp_token.wasm");
  for (const target of [sharedTarget, dirname(dirname(wispBin())), join(REPO, "target")]) {
    if (existsSync(join(target, rel))) return join(target, rel);
  }
  return buildContract("contracts/token", home);
}

// The Content-Security-Policy the node serves the explorer with (node/src/explorer.rs), so a
// page that would break under it fails here too (violations are logged as console errors).
// Less its `http://[::1]:*` and `ws://[::1]:*` sources, which Chromium rejects as invalid with
// a console error on every page load (CSP host sources cannot be IPv6 literals).
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self' http://127.0.0.1:* ws://127.0.0.1:* http://localhost:* ws://localhost:*; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

/** A static server of dist/ on 127.0.0.1 (the fallback until the node serves /explorer/). */
async function serveDist() {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = normalize(join(DIST, path === "/" ? "index.html" : path));
    if (!file.startsWith(DIST + sep) || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store", "content-security-policy": CSP });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

let devnet;
let static_;
let browser;
let started;

before(async () => {
  mkdirSync(RESULTS, { recursive: true });
  if (SERVED_BY_NODE) {
    devnet = await startDevnet();
  } else {
    static_ = await serveDist();
    devnet = await startDevnet(["--cors", static_.origin]);
  }
  started = Date.now();
});

after(async () => {
  await browser?.close();
  await devnet?.stop();
  await new Promise((r) => (static_ ? static_.server.close(r) : r()));
});

test("the explorer shows and verifies a devnet's blocks, requests, contracts and accounts", { timeout: 180_000 }, async (t) => {
  const [dev0, dev1, dev2] = devnet.accounts;
  const pub = wisp.createPublicClient({ url: devnet.rpc });
  const wallet = wisp.createWalletClient({ publicClient: pub, signer: new wisp.LocalSigner(dev0.secretKey) });
  const wasmPath = tokenWasm(devnet.home);
  const code = new Uint8Array(readFileSync(wasmPath));
  await (await wallet.deploy({ name: "token", code, initArgs: ["Test Token", "TST", 8, 1_000_000n] })).wait();
  const token = wisp.getContract({ contract: "token", publicClient: pub, walletClient: wallet });
  const sent = await token.write.transfer({ to: dev1.address, amount: 250n });
  assert.equal(sent.receipt.status, "success");
  const blockIndex = sent.receipt.blockIndex;

  let base;
  if (SERVED_BY_NODE) {
    base = `${devnet.rpc}/explorer/`;
    const res = await fetch(`${base}app.js`);
    assert.equal(
      res.status,
      200,
      `${wispBin()} does not serve /explorer/ (HTTP ${res.status}); rebuild it, or run with WISP_EXPLORER_SERVED_BY_NODE=0`,
    );
    assert.ok(
      Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(DIST, "app.js"))),
      `${wispBin()} serves another explorer than dist/ (it embeds dist/ as it was when it was built): rebuild it, or run with WISP_EXPLORER_SERVED_BY_NODE=0`,
    );
  } else {
    base = `${static_.origin}/?rpc=${encodeURIComponent(devnet.rpc)}`;
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  /** Opens a route, waits for `ready` text, checks the page's text, and takes a screenshot. */
  const visit = async (hash, name, ready) => {
    await page.goto(`${base}${hash}`);
    await page.getByText(ready).first().waitFor();
    await page.waitForFunction(() => !document.querySelector(".loading, .badge.pending"), null, { timeout: 15_000 });
    return settle(name);
  };
  const settle = async (name) => {
    // The text is read at a moment when no section is loading, in one step in the page: a
    // section can start loading again right after a separate check saw none (the contract
    // page reloads its requests and events once a write has gone through, which failed this
    // check in CI). A section that never finishes loading still fails, by the timeout.
    const quiet = await page.waitForFunction(
      () => (document.querySelector(".loading") ? null : document.body.innerText),
      null,
      { timeout: 15_000 },
    );
    const text = await quiet.jsonValue();
    for (const bad of ["undefined", "NaN", "[object Object]", "Loading"]) {
      assert.ok(!text.includes(bad), `${name}: the page shows "${bad}":\n${text.slice(0, 3000)}`);
    }
    assert.deepEqual(problems, [], `${name}: errors logged`);
    if (name !== "error") {
      const boxes = await page.locator(".error-box").allInnerTexts();
      assert.deepEqual(boxes, [], `${name}: error boxes shown`);
    }
    await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
    return text;
  };

  await t.test("block page: the decoded transfer, its event, hashes verified", async () => {
    const text = await visit(`#/block/${blockIndex}`, "block", "transfer(to, amount)");
    assert.match(text, new RegExp(`Block ${blockIndex}`));
    assert.ok(text.includes(dev1.address), "the decoded `to` is dev1");
    assert.match(text, /amount\s+u128\s+250\b/, "the decoded amount");
    assert.ok(text.includes("header hash verified"));
    assert.ok(text.includes("receipts root recomputed"));
    assert.ok(text.includes("events root recomputed"), "the events root is recomputed in the page");
    assert.ok(!text.includes("root mismatch"));
    const event = await page.locator(".event").first().innerText();
    assert.match(event, /Transfer/);
    assert.match(event, /from\s+indexed\s+kaspa/);
    assert.ok(event.includes(`to indexed\n${dev1.address}`) || event.includes(dev1.address), "the event's `to`");
    assert.match(event, /amount\s+250/);
    assert.equal(await page.locator(".badge.bad").count(), 0, "no failed check");
  });

  await t.test("request page: call, receipt, and the event proof verified", async () => {
    const text = await visit(`#/request/${sent.requestId}`, "request", /proof verified against block \d+ events root/);
    assert.ok(text.includes("transfer(to, amount)"));
    assert.match(text, /off-ledger/);
    assert.match(text, /nonce\s+1\b/);
    assert.match(text, /fee\s+[\d,]+ sompi \(0\.\d+ KAS\)/);
    assert.ok(text.includes(`proof verified against block ${blockIndex} events root`));
    assert.equal(await page.locator(".badge.bad").count(), 0);
  });

  await t.test("account page: dev1's balance with its proof verified", async () => {
    const text = await visit(`#/account/${dev1.address}`, "account", /proof verified against block \d+ state root/);
    const balance = await pub.getBalance(dev1.address);
    const grouped = balance.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    assert.ok(text.includes(`${grouped} sompi`), `the balance ${grouped} sompi is shown`);
    assert.match(text, /KAS\)/);
    assert.match(text, /next nonce\s+0/);
  });

  await t.test("contract page: interface, a view called from its form, a devnet write, verify a build", async () => {
    const text = await visit("#/contract/token", "contract", "balance_of");
    assert.ok(text.includes("InsufficientBalance"), "the errors with their names");
    assert.ok(text.includes("the sender's balance is lower than the amount"), "and docs");
    assert.ok(text.includes(dev0.address), "the deployer");
    const view = page.locator('form[data-fn="balance_of"]');
    await view.locator('input[name="owner"]').fill(dev1.address);
    await view.getByRole("button", { name: "Call" }).click();
    await view.locator(".result").waitFor();
    assert.match(await view.locator(".result").innerText(), /result:\s*250$/);

    await page.locator('input[type="file"]#verify-wasm').setInputFiles(wasmPath);
    await page.getByText("matches the deployed code hash").waitFor();
    assert.equal(await page.getByText("does not match the deployed code hash").count(), 0);

    await page.locator('input[type="password"]').fill(dev0.secretKey);
    const write = page.locator('form[data-fn="transfer"]');
    await write.locator('input[name="to"]').fill(dev2.address);
    await write.locator('input[name="amount"]').fill("1,000");
    await write.getByRole("button", { name: "Sign and send" }).click();
    await write.locator(".result").waitFor();
    assert.match(await write.locator(".result").innerText(), /success/);
    assert.equal(await token.read.balance_of([dev2.address]), 1000n);
    await page.waitForFunction(() => !document.querySelector(".loading"));
    await settle("contract");
  });

  await t.test("home page: chain info and live blocks", async () => {
    const text = await visit("#/", "home", "Latest blocks");
    assert.match(text, /chain id\s+0x[0-9a-f]{64}/);
    assert.match(text, /covenant id/);
    await page.locator(".live.on").waitFor();
    const shown = await page.locator("tr[data-block]").evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-block"))));
    assert.ok(shown.length >= 5, `blocks are listed: ${shown}`);
    const next = await token.write.transfer({ to: dev1.address, amount: 7n });
    assert.ok(!shown.includes(next.receipt.blockIndex));
    await page.locator(`tr[data-block="${next.receipt.blockIndex}"]`).waitFor({ timeout: 10_000 });
    const first = await page.locator("tr[data-block]").first().getAttribute("data-block");
    assert.equal(Number(first), next.receipt.blockIndex, "the new block is on top");
    await settle("home");
  });

  await t.test("search box: a number opens the block", async () => {
    await page.locator('input[type="search"]').fill(String(blockIndex));
    await page.locator('input[type="search"]').press("Enter");
    await page.getByText("transfer(to, amount)").first().waitFor();
    assert.ok(page.url().endsWith(`#/block/${blockIndex}`));
    await page.waitForFunction(() => !document.querySelector(".loading"));
    await settle("search");
  });

  await t.test("errors from the node are shown in an error box", async () => {
    for (const [hash, message] of [
      ["#/contract/nosuch", /no contract named "nosuch"/],
      [`#/block/${10 ** 9}`, /there is no block 1,000,000,000/],
      [`#/request/0x${"ab".repeat(32)}`, /no processed request/],
      ["#/account/kaspasim:nonsense", /is not a Kaspa address/],
    ]) {
      await page.goto(`${base}${hash}`);
      await page.locator(".error-box").first().waitFor();
      assert.match(await page.locator(".error-box").first().innerText(), message);
    }
    await settle("error");
  });

  const seconds = (Date.now() - started) / 1000;
  t.diagnostic(`${SERVED_BY_NODE ? "served by the node" : "served from dist/ by the test"}; ${seconds.toFixed(1)} s after the devnet started`);
  assert.ok(seconds < 90, `took ${seconds.toFixed(1)} s after the devnet started (limit 90 s)`);
});
