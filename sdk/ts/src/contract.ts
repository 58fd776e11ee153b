/**
 * Contract instances from interfaces: `read` (views, free), `simulate` (what an entry point
 * would do now) and `write` (simulate → budget × 1.2 → sign → send → receipt), with arguments
 * encoded and results, events and errors decoded locally from the contract's interface.
 * `wisp bindings ts` writes the types of one contract's methods for `getContract<T>`.
 * @module
 */
import { fromHex, toHex } from "./bytes.js";
import { decodeFields, decodeReturn, encodeArgs, type Value } from "./codec.js";
import { chainError, ChainError, ContractError, WispError, type ErrorInfo } from "./errors.js";
import type { EventEntry, Hex, PublicClient, Receipt, Simulation } from "./public.js";
import type { ContractInterface, FunctionDef } from "./types.js";
import { contractName } from "./ids.js";
import type { CallParameters, WalletClient } from "./wallet.js";

/** A decoded event of the contract. */
export interface DecodedEvent {
  topic: string;
  /** Fields decoded locally (u64 and wider as bigint). */
  args: Record<string, Value>;
  /** The event as the node gave it. */
  entry: EventEntry;
}

/** What a `write` gives back once the request ran. */
export interface WriteResult<R = Value> {
  requestId: Hex;
  receipt: Receipt;
  /** The entry point's return value, decoded. */
  value: R;
  /** The contract's events of this request, decoded. */
  events: DecodedEvent[];
}

/** What a `simulate` gives back. */
export interface SimulateResult<R = Value> {
  value: R;
  gasUsed: bigint;
  events: DecodedEvent[];
  simulation: Simulation;
}

/** Options of one `write`/`simulate` call. */
export type WriteOptions = Omit<CallParameters, "contract" | "function" | "args">;

/** Method types of one contract: what `wisp bindings ts` writes for `getContract<T>`. */
export interface ContractTypes {
  read: object;
  simulate: object;
  write: object;
}

/** Methods of a contract without bindings: any name, any arguments, untyped results. */
export interface UntypedContract {
  read: any;
  simulate: any;
  write: any;
}

/** A contract instance. */
export interface Contract<T extends ContractTypes = UntypedContract> {
  /** The contract's name on the chain. */
  name: string;
  /** Its interface (fetched from the node once, unless given). */
  getInterface(): Promise<ContractInterface>;
  /** Views: `contract.read.balance_of({ owner })` or positional `[owner]`. */
  read: T["read"];
  /** Entry points run against the head without committing. */
  simulate: T["simulate"];
  /** Entry points sent as signed requests (needs a wallet client). */
  write: T["write"];
  /** Decodes this contract's events of a receipt. */
  decodeEvents(receipt: Receipt): Promise<DecodedEvent[]>;
}

/** Options of {@link getContract}. */
export interface GetContractOptions {
  /** The contract's name on the chain (or `contract:<name>`). */
  contract: string;
  publicClient: PublicClient;
  /** Needed for `write`. */
  walletClient?: WalletClient;
  /** The interface, if the caller has it (else read from the node). */
  interface?: ContractInterface;
}

/**
 * A contract instance; method names come from the interface at call time.
 * @throws (from its methods) {@link CodecError} for arguments that do not fit;
 *   {@link ContractError} with the interface's error `name` and `docs` when the contract fails;
 *   {@link RequestError}/{@link VmError} for the other failures.
 */
export function getContract<T extends ContractTypes = UntypedContract>(options: GetContractOptions): Contract<T> {
  const pub = options.publicClient;
  const name = contractName(options.contract);
  let ifacePromise: Promise<ContractInterface> | undefined = options.interface && Promise.resolve(options.interface);
  const getInterface = () =>
    (ifacePromise ??= pub.getInterface(name).then((i) => {
      if (!i) throw new WispError(`contract \`${name}\` has no interface; call it with raw arguments through the wallet client`);
      return i;
    }));

  const fn = async (fnName: string, kind: "entry" | "view"): Promise<FunctionDef> => {
    const iface = await getInterface();
    const f = iface.functions.find((x) => x.name === fnName && x.kind === kind);
    if (!f) {
      const names = iface.functions.filter((x) => x.kind === kind).map((x) => x.name).join(", ");
      throw new WispError(`contract \`${name}\` has no ${kind === "view" ? "view" : "entry point"} \`${fnName}\` (it has: ${names || "none"})`);
    }
    return f;
  };
  const named = async (info: ErrorInfo, receipt: unknown): Promise<ChainError> => {
    if (info.level !== "contract") return chainError(info, receipt);
    const def = (await getInterface()).errors.find((e) => e.code === info.code);
    return chainError({ ...info, name: info.name || def?.name || "" }, receipt, def?.docs ?? "");
  };
  const decodeEvents = async (receipt: Receipt): Promise<DecodedEvent[]> => {
    const iface = await getInterface();
    const agents = await pub.agentFormat();
    return receipt.events
      .filter((e) => e.contract === `contract:${name}`)
      .map((e) => {
        const def = iface.events.find((d) => d.name === e.topic);
        return { topic: e.topic, args: def ? decodeFields(def.fields, fromHex(e.data), agents) : {}, entry: e };
      });
  };
  const encode = async (f: FunctionDef, args: unknown) => encodeArgs(f.params, args ?? [], await pub.agentFormat());

  const proxy = <F>(make: (fnName: string) => F) =>
    new Proxy({} as Record<string, F>, {
      get: (_t, prop) => (typeof prop === "string" && prop !== "then" ? make(prop) : undefined),
    });

  const read = proxy((fnName) => async (args?: unknown) => {
    const f = await fn(fnName, "view");
    const encoded = await encode(f, args);
    let v;
    try {
      v = await pub.callView(name, fnName, toHex(encoded));
    } catch (e) {
      if (e instanceof ContractError) throw await named({ level: "contract", code: e.code, name: e.name === "ContractError" ? "" : e.name, message: e.detail }, undefined);
      throw e;
    }
    return decodeReturn(f.returns, fromHex(v.data), await pub.agentFormat());
  });

  const simulate = proxy((fnName) => async (args?: unknown, opts: WriteOptions = {}) => {
    const wallet = options.walletClient;
    if (!wallet) throw new WispError("simulate needs a walletClient (the sender) in getContract's options");
    const f = await fn(fnName, "entry");
    const sim = await wallet.simulateCall({ ...opts, contract: name, function: fnName, args: await encode(f, args) });
    if (sim.status === "failed" && sim.error) throw await named(sim.error, sim);
    return { value: decodeReturn(f.returns, fromHex(sim.returnData), await pub.agentFormat()), gasUsed: sim.gasUsed, events: await decodeEvents(sim), simulation: sim };
  });

  const write = proxy((fnName) => async (args?: unknown, opts: WriteOptions = {}) => {
    const wallet = options.walletClient;
    if (!wallet) throw new WispError("write needs a walletClient in getContract's options");
    const f = await fn(fnName, "entry");
    let sent;
    try {
      sent = await wallet.sendCall({ ...opts, contract: name, function: fnName, args: await encode(f, args) });
    } catch (e) {
      if (e instanceof ContractError) throw await named({ level: "contract", code: e.code, name: e.name === "ContractError" ? "" : e.name, message: e.detail }, e.receipt);
      throw e;
    }
    const receipt = await pub.waitForReceipt(sent.requestId);
    if (receipt.status === "failed" && receipt.error) throw await named(receipt.error, receipt);
    return {
      requestId: sent.requestId,
      receipt,
      value: decodeReturn(f.returns, fromHex(receipt.returnData), await pub.agentFormat()),
      events: await decodeEvents(receipt),
    };
  });

  return { name, getInterface, read, simulate, write, decodeEvents } as unknown as Contract<T>;
}
