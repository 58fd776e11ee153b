/**
 * Errors a Wisp node answers with. A request the chain refuses or that fails is a
 * {@link RequestError}, {@link VmError} or {@link ContractError}, decided by the error's
 * `data.level` (never by the JSON-RPC code, whose ranges are only a hint); anything else the
 * node answers with is an {@link RpcError}; a node that cannot be reached is a
 * {@link TransportError}.
 * @module
 */

/** Base class of every error the client throws for a node's answer. */
export class WispError extends Error {
  override name = "WispError";
}

/** The node answered a JSON-RPC error that is not a refusal of the request itself. */
export class RpcError extends WispError {
  override name = "RpcError";
  constructor(
    /** The JSON-RPC error code (`-32602` invalid parameters, `-32603` node trouble, …). */
    readonly code: number,
    message: string,
    /** The error's `data`, if any. */
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** The node could not be reached, or answered something that is not JSON-RPC. */
export class TransportError extends WispError {
  override name = "TransportError";
}

/** What every failure of a request carries (a failed receipt's `error`, a refusal's `data`). */
export interface ErrorInfo {
  /** `request`, `vm` or `contract`. */
  level: "request" | "vm" | "contract";
  /** Stable code within the level (a contract's own code at `contract` level). */
  code: number;
  /** The code's name (`insufficient_funds`, `out_of_gas`, a contract error's variant name). */
  name: string;
  /** What went wrong, for people. */
  message: string;
}

/**
 * A request failure at some level. Its `name` is the failure's own name as the node or the
 * contract's interface gives it (`insufficient_funds`, `out_of_gas`, a contract's
 * `InsufficientBalance`), or the class name when there is none; `instanceof` tells the level.
 */
export abstract class ChainError extends WispError {
  abstract readonly level: ErrorInfo["level"];
  /** The stable code at its level (a contract's own code at `contract` level). */
  readonly code: number;
  /** The node's explanation, for people. */
  readonly detail: string;
  constructor(
    info: ErrorInfo,
    fallbackName: string,
    /** The request's receipt, when the failure came from one. */
    readonly receipt?: unknown,
  ) {
    super(`${info.level} error ${info.code}${info.name ? ` (${info.name})` : ""}: ${info.message}`);
    this.code = info.code;
    this.detail = info.message;
    this.name = info.name || fallbackName;
  }
}

/** The chain runtime refused or failed the request (signature, nonce, funds, gas budget…). */
export class RequestError extends ChainError {
  readonly level = "request" as const;
  constructor(info: ErrorInfo, receipt?: unknown) {
    super(info, "RequestError", receipt);
  }
}

/** The VM stopped the call (out of gas, trap, memory or stack limit, host ABI misuse). */
export class VmError extends ChainError {
  readonly level = "vm" as const;
  constructor(info: ErrorInfo, receipt?: unknown) {
    super(info, "VmError", receipt);
  }
}

/** The contract failed with one of its own error codes (see its interface's `errors`). */
export class ContractError extends ChainError {
  readonly level = "contract" as const;
  constructor(
    info: ErrorInfo,
    receipt?: unknown,
    /** What the code means: the doc comment of the contract's error variant. */
    readonly docs: string = "",
  ) {
    super(info, "ContractError", receipt);
  }
}

/** The error for a failure described by `info` (a receipt's `error` or a refusal's `data`). */
export function chainError(info: ErrorInfo, receipt?: unknown, docs = ""): ChainError {
  switch (info.level) {
    case "request":
      return new RequestError(info, receipt);
    case "vm":
      return new VmError(info, receipt);
    default:
      return new ContractError(info, receipt, docs);
  }
}

function isErrorInfo(d: unknown): d is ErrorInfo {
  if (typeof d !== "object" || d === null) return false;
  const o = d as Record<string, unknown>;
  return (o.level === "request" || o.level === "vm" || o.level === "contract") && typeof o.code === "number";
}

/** The error for a JSON-RPC error object: a {@link ChainError} when `data.level` says so. */
export function fromRpcError(e: { code: number; message: string; data?: unknown }): WispError {
  if (isErrorInfo(e.data)) {
    return chainError({ ...e.data, name: e.data.name ?? "", message: e.data.message ?? e.message });
  }
  return new RpcError(e.code, e.message, e.data);
}
