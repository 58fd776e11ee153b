// Starts a real `wisp devnet` (in-process Kaspa simnet, real storage, RPC on loopback) for the
// end-to-end tests, with a temporary WISP_HOME and data directory.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (sdk/ts/dist/test → ../../../..). */
export const REPO = resolve(fileURLToPath(new URL("../../../..", import.meta.url)));

/** The `wisp` binary: $WISP_BIN, or target/debug/wisp under $CARGO_TARGET_DIR or the repo. */
export function wispBin(): string {
  if (process.env.WISP_BIN) return process.env.WISP_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(REPO, "target");
  return join(target, "debug", "wisp");
}

export interface DevAccount {
  name: string;
  address: string;
  secretKey: string;
}

export interface Devnet {
  rpc: string;
  ws: string;
  accounts: DevAccount[];
  home: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `wisp --json devnet --fresh --port 0 --block-time 0` and waits for its summary. */
export async function startDevnet(extraArgs: string[] = []): Promise<Devnet> {
  const home = mkdtempSync(join(tmpdir(), "wisp-ts-"));
  const child = spawn(
    wispBin(),
    ["--json", "devnet", "--fresh", "--port", "0", "--block-time", "0", "--data-dir", join(home, "devnet"), ...extraArgs],
    { env: { ...process.env, WISP_HOME: home, RUST_LOG: process.env.RUST_LOG ?? "warn" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const summary = await new Promise<{ rpc: string; ws: string; accounts: DevAccount[] }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`devnet did not start in 180 s:\n${err.slice(-2000)}`)), 180_000);
    child.stdout!.on("data", (d) => {
      out += d;
      try {
        const s = JSON.parse(out);
        clearTimeout(timer);
        res(s);
      } catch {
        /* not complete yet */
      }
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot start ${wispBin()} (${e.message}); build it with \`cargo build -p wisp-cli\` or set WISP_BIN`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`devnet exited with ${code}:\n${err.slice(-2000)}`));
    });
  });
  return {
    ...summary,
    home,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Builds a contract crate with `wisp build` and returns the module's path. */
export function buildContract(dir: string, home: string): string {
  const r = spawnSync(wispBin(), ["--json", "build", join(REPO, dir)], { env: { ...process.env, WISP_HOME: home }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`wisp build ${dir} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout).path;
}
