/**
 * JSON-RPC 2.0 transports: HTTP (`fetch`) for calls, WebSocket for subscriptions (the browser's
 * `WebSocket`, or the `ws` package under Node.js, which has none before version 22).
 * @module
 */
import { TransportError, fromRpcError } from "./errors.js";

/** A JSON-RPC error object. */
interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** Sends JSON-RPC calls. */
export interface Transport {
  /** Calls `method` with positional `params`; resolves with `result`. */
  request<T>(method: string, params?: unknown[]): Promise<T>;
}

/** Options of {@link http}. */
export interface HttpOptions {
  /** Give up on a call after this many ms (default 30,000). */
  timeoutMs?: number;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

/** A transport over HTTP POST to `url` (the node's RPC address, e.g. `http://127.0.0.1:8645`). */
export function http(url: string, options: HttpOptions = {}): Transport {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  let nextId = 1;
  return {
    async request<T>(method: string, params: unknown[] = []): Promise<T> {
      const id = nextId++;
      let response: Response;
      try {
        response = await doFetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
          signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
        });
      } catch (e) {
        throw new TransportError(`cannot reach the Wisp node at ${url} (${(e as Error).message}); is it running?`);
      }
      const text = await response.text();
      let body: { result?: T; error?: RpcErrorObject };
      try {
        body = JSON.parse(text);
      } catch {
        throw new TransportError(`${url} answered HTTP ${response.status} with something that is not JSON-RPC: ${text.slice(0, 200)}`);
      }
      if (body.error) throw fromRpcError(body.error);
      if (!("result" in body)) throw new TransportError(`${url} answered without a result`);
      return body.result as T;
    },
  };
}

/** The minimal WebSocket surface used (the DOM's and the `ws` package's both have it). */
interface Socket {
  readyState: number;
  send(data: string): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
type SocketConstructor = new (url: string) => Socket;

async function socketConstructor(): Promise<SocketConstructor> {
  const global = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (global) return global;
  const mod = (await import("ws")) as unknown as { default: SocketConstructor };
  return mod.default;
}

/** A live subscription. */
export interface Subscription {
  /** Stops it (and tells the node). */
  unsubscribe(): Promise<void>;
}

/** Handlers of one subscription. */
export interface SubscriptionHandlers<T> {
  /** Each item the node sends. */
  onItem(item: T): void;
  /** The subscription ended: the node closed it (e.g. the client fell behind) or the socket closed. */
  onClose(reason: Error): void;
}

/**
 * One WebSocket connection carrying calls and subscriptions. When the socket closes, pending
 * calls fail and every subscription's `onClose` runs; it does not reconnect by itself (the
 * public client's `watch*` methods do).
 */
export class WebSocketConnection implements Transport {
  private socket?: Socket;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly subscriptions = new Map<string, SubscriptionHandlers<unknown>>();
  private closed = false;

  private constructor(readonly url: string) {}

  /** Opens a connection to `url` (`ws://…`). @throws {TransportError} if it cannot connect. */
  static async connect(url: string): Promise<WebSocketConnection> {
    const c = new WebSocketConnection(url);
    const Ws = await socketConstructor();
    await new Promise<void>((resolve, reject) => {
      const socket = new Ws(url);
      c.socket = socket;
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new TransportError(`cannot open a WebSocket to ${url}; is the node running?`));
      socket.onclose = () => c.onClosed(new TransportError(`the WebSocket to ${url} closed`));
      socket.onmessage = (ev) => c.onMessage(String(ev.data));
    });
    return c;
  }

  /** Whether the socket is closed (calls fail; open a new connection). */
  get isClosed(): boolean {
    return this.closed;
  }

  private onClosed(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
    const subs = [...this.subscriptions.values()];
    this.subscriptions.clear();
    for (const s of subs) s.onClose(reason);
  }

  private onMessage(text: string): void {
    let msg: { id?: number; result?: unknown; error?: RpcErrorObject; method?: string; params?: { subscription: string; result?: unknown; error?: unknown } };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.id !== undefined && msg.id !== null) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(fromRpcError(msg.error));
      else p.resolve(msg.result);
      return;
    }
    const sub = msg.params ? this.subscriptions.get(String(msg.params.subscription)) : undefined;
    if (!sub || !msg.params) return;
    if ("error" in msg.params && msg.params.error !== undefined) {
      this.subscriptions.delete(String(msg.params.subscription));
      const detail = typeof msg.params.error === "string" ? msg.params.error : JSON.stringify(msg.params.error);
      sub.onClose(new TransportError(`the node ended the subscription: ${detail}`));
      return;
    }
    sub.onItem(msg.params.result);
  }

  request<T>(method: string, params: unknown[] = []): Promise<T> {
    if (this.closed || !this.socket) return Promise.reject(new TransportError(`the WebSocket to ${this.url} is closed`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket!.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /**
   * Subscribes with `method` (e.g. `wisp_subscribeBlocks`) and `params`; `unsubscribeMethod`
   * ends it.
   */
  async subscribe<T>(method: string, params: unknown[], unsubscribeMethod: string, handlers: SubscriptionHandlers<T>): Promise<Subscription> {
    const id = String(await this.request<string | number>(method, params));
    this.subscriptions.set(id, handlers as SubscriptionHandlers<unknown>);
    return {
      unsubscribe: async () => {
        if (!this.subscriptions.delete(id) || this.closed) return;
        await this.request(unsubscribeMethod, [id]).catch(() => undefined);
      },
    };
  }

  /** Closes the socket (subscriptions get `onClose`). */
  close(): void {
    this.socket?.close();
    this.onClosed(new TransportError("closed by the client"));
  }
}
