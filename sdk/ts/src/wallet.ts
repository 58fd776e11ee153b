/**
 * The wallet client: builds, simulates, signs and sends off-ledger requests as one account.
 * @module
 */
import { concat, fromHex, uintLE, utf8 } from "./bytes.js";
import { chainError, WispError } from "./errors.js";
import { contractName, encodeAgent, hname, parseHname } from "./ids.js";
import { encodeArgs } from "./codec.js";
import { createPublicClient, type Hex, type PublicClient, type Receipt, type Simulation, type AccessListView } from "./public.js";
import type { Signer } from "./signer.js";
import { encodeOffLedgerRequest, encodeRequestBody, encodeUnsignedRequest, type AccessList, type RequestBody, type TimeLock } from "./structs.js";
import { readInterface } from "./wasm.js";
import { encodeAddress } from "./address.js";
import { findFunction } from "./types.js";

/** A call to send. */
export interface CallParameters {
  /** The contract (`token`, `contract:token`, or its hname as `0x` + 8 hex). */
  contract: string;
  /** The entry point's name. */
  function: string;
  /** borsh arguments (see `getContract` or `encodeArgs` to make them from values). */
  args?: Uint8Array;
  /** Base tokens attached, sompi. */
  transferSompi?: bigint;
  /** Gas budget; default: simulated gas × 1.2, at least 10,000 more. */
  gasBudget?: bigint;
  /** Access list; default: the one the simulation observed (so the request can run in parallel). */
  accessList?: AccessList | null;
  /** When it may run. */
  timeLock?: TimeLock | null;
  /** Nonce; default: the account's next nonce plus its requests pending in the node's mempool. */
  nonce?: bigint;
}

/** A sent request: its id, and a way to wait for its receipt. */
export interface SentRequest {
  requestId: Hex;
  /** The signed request's borsh. */
  signed: Uint8Array;
  /**
   * Resolves with the receipt once executed.
   * @throws {ChainError} if the request failed (the receipt is on the error).
   */
  wait(opts?: { timeoutMs?: number }): Promise<Receipt>;
}

/** Options of {@link createWalletClient}. */
export interface WalletClientOptions {
  /** The node's RPC address. */
  url?: string;
  /** A public client to read through (default: one for `url`). */
  publicClient?: PublicClient;
  /** Who signs. */
  signer: Signer;
}

/** The wallet client's methods; see {@link createWalletClient}. */
export type WalletClient = ReturnType<typeof createWalletClient>;

function toAccessList(v: AccessListView): AccessList {
  const entries = (list: AccessListView["reads"]) =>
    list.map((e) => ({ contract: parseInt(e.contract, 16), keyPrefix: e.keyPrefix === undefined ? null : fromHex(e.keyPrefix) }));
  return { reads: entries(v.reads), writes: entries(v.writes) };
}

/**
 * A client that sends requests signed by `signer`.
 * @example
 * const wallet = createWalletClient({ url, signer: new LocalSigner(secretKeyHex) });
 * const sent = await wallet.sendCall({ contract: "token", function: "transfer", args });
 * const receipt = await sent.wait();
 */
export function createWalletClient(options: WalletClientOptions) {
  const pub = options.publicClient ?? createPublicClient({ url: options.url ?? "http://127.0.0.1:8645" });
  const signer = options.signer;
  // Chain id, address prefix and contract names come from the public client's cached agent
  // format; the gas ceiling is asked for once.
  let maxRequestGas: bigint | undefined;
  const resolveContract = async (contract: string): Promise<number> => {
    const name = contractName(contract);
    const h = name.startsWith("0x") ? parseHname(name) : undefined;
    if (h !== undefined) return h;
    const find = async () => [...(await pub.agentFormat()).names].find(([, n]) => n === name)?.[0];
    let found = await find();
    if (found === undefined) {
      pub.refreshAgentFormat(); // deployed since the names were read?
      found = await find();
    }
    if (found === undefined) throw new WispError(`no contract \`${name}\` on this chain (listContracts shows them)`);
    return found;
  };

  const wallet = {
    /** The public client reads go through. */
    publicClient: pub,
    /** The signer. */
    signer,
    /** The account's Kaspa address on this chain's network. */
    async address(): Promise<string> {
      return encodeAddress((await pub.agentFormat()).prefix, 0, signer.publicKey);
    },
    /** The body of a call, without budget decisions (`gasBudget` default: the chain's maximum). */
    async buildBody(p: CallParameters): Promise<RequestBody> {
      const target = await resolveContract(p.contract);
      const gasBudget = p.gasBudget ?? (maxRequestGas ??= (await pub.chainInfo()).maxRequestGas);
      return {
        chain: (await pub.agentFormat()).chain,
        call: { target, entryPoint: hname(p.function), args: p.args ?? new Uint8Array(), transferSompi: p.transferSompi ?? 0n },
        gasBudget,
        accessList: p.accessList ?? null,
        timeLock: p.timeLock ?? null,
      };
    },
    /** What the call would do now, with its gas and the access list it needs. */
    async simulateCall(p: CallParameters): Promise<Simulation> {
      const body = await wallet.buildBody({ ...p, gasBudget: p.gasBudget, accessList: null });
      return pub.simulateRequest(await wallet.address(), encodeRequestBody(body));
    },
    /** Signs `body` with `nonce` (default: next + pending); returns the signed borsh. */
    async signRequest(body: RequestBody, nonce?: bigint): Promise<Uint8Array> {
      const n = nonce ?? (await wallet.nextNonce());
      const bytes = encodeUnsignedRequest(body, signer.publicKey, n);
      const signature = await signer.signRequest({ bytes, body, nonce: n });
      return encodeOffLedgerRequest({ body, senderKey: signer.publicKey, nonce: n, signature });
    },
    /** The nonce the next request should use: the chain's next plus requests waiting in the mempool. */
    async nextNonce(): Promise<bigint> {
      const n = await pub.getNonce(await wallet.address());
      return n.next + BigInt(n.pending);
    },
    /** Sends a signed request. */
    async sendSigned(signed: Uint8Array): Promise<SentRequest> {
      const requestId = await pub.sendRawRequest(signed);
      return {
        requestId,
        signed,
        async wait(opts = {}) {
          const receipt = await pub.waitForReceipt(requestId, opts);
          if (receipt.status === "failed" && receipt.error) throw chainError(receipt.error, receipt);
          return receipt;
        },
      };
    },
    /**
     * Sends a call: simulates it (failing early with the simulated error), sets the budget to
     * the simulated gas × 1.2 and the observed access list unless given, signs and sends.
     * @throws {ChainError} if the simulation fails; {@link RpcError} if the node refuses it.
     */
    async sendCall(p: CallParameters): Promise<SentRequest> {
      let gasBudget = p.gasBudget;
      let accessList = p.accessList;
      if (gasBudget === undefined || accessList === undefined) {
        const sim = await wallet.simulateCall(p);
        if (sim.status === "failed" && sim.error) throw chainError(sim.error, sim);
        gasBudget ??= (sim.gasUsed * 12n) / 10n + 10_000n;
        if (accessList === undefined) accessList = sim.accessList ? toAccessList(sim.accessList) : null;
      }
      const body = await wallet.buildBody({ ...p, gasBudget, accessList });
      return wallet.sendSigned(await wallet.signRequest(body, p.nonce));
    },
    /**
     * Deploys a module as contract `name`, running its `init` with `initArgs` (values for the
     * `init` parameters of the module's embedded interface).
     */
    async deploy(p: { name: string; code: Uint8Array; initArgs?: unknown; gasBudget?: bigint }): Promise<SentRequest> {
      const iface = readInterface(p.code);
      const init = iface && findFunction(iface, "init", "entry");
      const agents = await pub.agentFormat();
      const initArgs = init ? encodeArgs(init.params, p.initArgs ?? [], agents) : new Uint8Array();
      if (!init && p.initArgs !== undefined && !(Array.isArray(p.initArgs) && p.initArgs.length === 0)) {
        throw new WispError("the module has no init entry point in its interface; pass no init arguments");
      }
      const name = utf8(p.name);
      const args = concat(uintLE(name.length, 4), name, uintLE(p.code.length, 4), p.code, uintLE(initArgs.length, 4), initArgs);
      const sent = await wallet.sendCall({ contract: "root", function: "deploy", args, gasBudget: p.gasBudget });
      const wait = sent.wait;
      return {
        ...sent,
        wait: async (opts) => {
          const r = await wait(opts);
          pub.refreshAgentFormat();
          return r;
        },
      };
    },
    /** The account as an agent (for arguments). */
    agent() {
      return { kind: "address" as const, key: signer.publicKey };
    },
    /** borsh of the account's agent id. */
    agentBytes(): Uint8Array {
      return encodeAgent(wallet.agent());
    },
  };
  return wallet;
}

