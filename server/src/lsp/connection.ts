/**
 * The server's end of LSP: JSON-RPC 2.0 messages framed by `Content-Length` headers on standard
 * input and output (`--stdio`), or Node's IPC channel (`--node-ipc`), with the lifecycle LSP asks
 * of a server (`shutdown`, `exit`, the client process watched). Nothing else: no sockets, no pipes,
 * no network module. The server's bundle carries no LSP library; loading one took ~20 ms of every
 * start (its protocol tables, and the network and child-process modules Node then loads).
 *
 * What a client sends is never trusted: a frame with a bad header costs its own message (see
 * {@link MessageFramer}), a message that is not JSON, not an object or not JSON-RPC is logged and
 * dropped, a request to a method the server does not serve is answered with MethodNotFound, one
 * after `shutdown` (or a second `initialize`) with InvalidRequest, and a handler that throws
 * answers its request with the error (a notification's is logged).
 */
import { encodeMessage } from './wire';

/** JSON-RPC's and LSP's error codes the server answers with (LSP 3.17, "Response Message"). */
export const ErrorCodes = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  RequestFailed: -32803,
  RequestCancelled: -32800,
} as const;

/** An error a request is answered with: its code, message and data go to the client as they are. */
export class ResponseError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** Whether the client cancelled a request (`$/cancelRequest`); looked at by long handlers. */
export interface CancellationToken {
  readonly isCancellationRequested: boolean;
}

export type RequestHandler = (params: unknown, token: CancellationToken) => unknown;
export type NotificationHandler = (params: unknown) => void;

/** The editor's progress for one long piece of work (`window/workDoneProgress/create`, `$/progress`). */
export interface WorkDoneProgress {
  begin(title: string, percentage?: number, message?: string): void;
  report(percentage: number): void;
  done(): void;
}

/** A JSON-RPC message as it arrives: not yet known to be anything. */
type Incoming = Record<string, unknown>;

/** How messages come and go: a byte stream with LSP's headers, or Node's IPC channel. */
interface Transport {
  /** Starts delivering messages (and transport faults, said in words). */
  listen(onMessage: (m: unknown) => void, onFault: (why: string) => void, onClose: () => void): void;
  /** Sends one message; settles once it is handed to the operating system. */
  send(m: object): Promise<void>;
}

/** The largest header block read (a client's headers are two short lines). */
const MAX_HEADER_BYTES = 8 * 1024;
/**
 * The largest message read: a document the server analyses is at most 20 MB (a larger one is
 * refused with a message), which its `didOpen` carries as JSON. A larger message is dropped as
 * its bytes arrive, never held.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const CONTENT_LENGTH = /content-length:/i;
const CONTENT_LENGTH_CHARS = 'content-length:'.length;

/**
 * Splits a byte stream into LSP messages: headers up to an empty line, then `Content-Length`
 * bytes of UTF-8 JSON. A message's bytes are joined once, when the last of them arrives, so a
 * 20 MB `didOpen` in 64 KB chunks costs one copy, not one per chunk.
 *
 * A fault costs the message it is in: a header block that gives a length but something else
 * wrong (a charset, a malformed line, a length past {@link MAX_MESSAGE_BYTES}) has its body
 * skipped; one without a usable length, or bytes that are no header at all, are dropped up to the
 * next `Content-Length:`. Line breaks between messages are skipped.
 */
export class MessageFramer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** The body's length once its headers are read; -1 while they are awaited. */
  private need = -1;
  /** Bytes still to be dropped: the body of a message refused by its headers. */
  private skip = 0;
  /** After bytes that are no message: looking for the next `Content-Length:`. */
  private lost = false;

  constructor(
    private readonly onBody: (body: Buffer) => void,
    private readonly onFault: (why: string) => void,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.size);
        this.take(n, false);
        this.skip -= n;
        if (this.skip > 0) return;
        continue;
      }
      if (this.need >= 0) {
        if (this.size < this.need) return;
        const body = this.take(this.need, true);
        this.need = -1;
        this.onBody(body);
        continue;
      }
      if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
      const head = this.chunks[0];
      if (!head) return;
      if (this.lost) {
        const text = head.toString('latin1');
        const at = text.search(CONTENT_LENGTH);
        if (at < 0) {
          // All but what may be the start of one, cut by the chunk.
          this.take(Math.max(0, text.length - CONTENT_LENGTH_CHARS), false);
          return;
        }
        this.take(at, false);
        this.lost = false;
        continue;
      }
      let blank = 0;
      while (blank < head.length && (head[blank] === 13 || head[blank] === 10)) blank++;
      if (blank > 0) {
        this.take(blank, false);
        continue;
      }
      const end = head.indexOf(HEADER_END);
      if (end < 0) {
        if (this.size <= MAX_HEADER_BYTES) return;
        this.onFault(`dropped bytes that carry no LSP header`);
        this.resync();
        continue;
      }
      const { length, fault } = parseHeaders(head.toString('latin1', 0, end));
      if (length === undefined) {
        this.onFault(fault ?? 'dropped a message without a Content-Length header');
        this.resync();
        continue;
      }
      this.take(end + HEADER_END.length, false);
      if (fault !== undefined || length > MAX_MESSAGE_BYTES) {
        this.onFault(fault ?? `dropped a message of ${length} bytes: more than ${MAX_MESSAGE_BYTES / 1024 / 1024} MiB`);
        this.skip = length;
      } else this.need = length;
    }
  }

  /** After bytes that are no message: drops them up to the next `Content-Length:`, past the first byte. */
  private resync(): void {
    this.take(1, false);
    this.lost = true;
  }

  /** Removes the first `n` bytes, and returns them when `keep`. */
  private take(n: number, keep: boolean): Buffer {
    const empty = Buffer.alloc(0);
    if (n === 0) return empty;
    this.size -= n;
    const first = this.chunks[0];
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return keep ? first.subarray(0, n) : empty;
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0];
      if (c.length <= left) {
        if (keep) parts.push(c);
        this.chunks.shift();
        left -= c.length;
      } else {
        if (keep) parts.push(c.subarray(0, left));
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    return keep ? Buffer.concat(parts, n) : empty;
  }
}

/** The body length a header block gives, and what else is wrong with it. */
function parseHeaders(headers: string): { length?: number; fault?: string } {
  let length: number | undefined;
  let fault: string | undefined;
  for (const line of headers.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) {
      fault ??= `dropped a message with a malformed header line ${JSON.stringify(line.slice(0, 80))}`;
      continue;
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (/^\d{1,15}$/.test(value)) length = Number(value);
      else return { fault: `dropped a message whose Content-Length is ${JSON.stringify(value.slice(0, 40))}` };
    } else if (name === 'content-type') {
      const charset = /charset\s*=\s*"?([\w-]+)/i.exec(value)?.[1]?.toLowerCase();
      if (charset && charset !== 'utf-8' && charset !== 'utf8')
        fault ??= `dropped a message in ${charset}: this server reads UTF-8 (LSP's only charset)`;
    }
  }
  return { length, fault };
}

/** LSP over a byte stream pair (`--stdio`): the bytes out are {@link encodeMessage}'s. */
export function streamTransport(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Transport {
  return {
    listen(onMessage, onFault, onClose) {
      const framer = new MessageFramer((body) => {
        let m: unknown;
        try {
          m = JSON.parse(body.toString('utf8'));
        } catch (e) {
          onFault(`dropped a message that is not JSON (${(e as Error).message})`);
          return;
        }
        onMessage(m);
      }, onFault);
      input.on('data', (chunk: Buffer | string) => framer.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk));
      input.on('end', onClose);
      input.on('close', onClose);
      // A client gone mid-write (EPIPE): nobody reads what the server says any more.
      output.on('error', onClose);
    },
    send(m) {
      let body: Buffer;
      try {
        body = encodeMessage(m);
      } catch (e) {
        return Promise.reject(e);
      }
      // The header and the body as two writes: a publish's body is ~200 KB, not copied again.
      return new Promise((resolve, reject) => {
        output.write(`Content-Length: ${body.length}\r\n\r\n`, 'latin1');
        output.write(body, (e) => (e ? reject(e) : resolve()));
      });
    },
  };
}

/** LSP over Node's IPC channel (`--node-ipc`): messages are the channel's own objects. */
export function ipcTransport(): Transport {
  return {
    listen(onMessage, _onFault, onClose) {
      process.on('message', onMessage);
      process.on('disconnect', onClose);
    },
    send(m) {
      return new Promise((resolve, reject) => {
        if (!process.send) return reject(new Error('no IPC channel'));
        process.send(m, undefined, undefined, (e: Error | null) => (e ? reject(e) : resolve()));
      });
    },
  };
}

/** How often the client process the server was started for is looked for (LSP's `processId`). */
const CLIENT_WATCH_MS = 3000;

/**
 * One client's connection: handlers by method, requests to the client, the client's log.
 * Messages are handled in the order they arrive, each as soon as it is read.
 */
export class Connection {
  private readonly requests = new Map<string, RequestHandler>();
  private readonly notifications = new Map<string, NotificationHandler>();
  /** The server's requests awaiting the client's answer, by id. */
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  /** The client's requests being handled, by id: their cancellation. */
  private readonly running = new Map<string | number, { isCancellationRequested: boolean }>();
  private nextId = 0;
  private shutdownReceived = false;
  private initialized = false;
  private watching = false;
  private onShutdownHandler: (() => void) | undefined;

  constructor(private readonly transport: Transport) {}

  /** The client's log (`window/logMessage`), shown in the editor's output for the server. */
  readonly console = {
    error: (message: string) => this.log(1, message),
    warn: (message: string) => this.log(2, message),
    info: (message: string) => this.log(3, message),
    log: (message: string) => this.log(4, message),
  };

  /** `P` is what the handler expects, not what it is given: a handler checks its params. */
  onRequest<P = unknown>(method: string, handler: (params: P, token: CancellationToken) => unknown): void {
    this.requests.set(method, handler as RequestHandler);
  }

  /** `P` is what the handler expects, not what it is given: a handler checks its params. */
  onNotification<P = unknown>(method: string, handler: (params: P) => void): void {
    this.notifications.set(method, handler as NotificationHandler);
  }

  /** Runs before `shutdown` is answered. */
  onShutdown(handler: () => void): void {
    this.onShutdownHandler = handler;
  }

  sendNotification(method: string, params?: unknown): Promise<void> {
    return this.transport.send(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  /** A request to the client; rejected with a {@link ResponseError} when the client answers with one. */
  sendRequest<T = unknown>(method: string, params?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const m = params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
      this.transport.send(m).catch((e) => {
        this.pending.delete(id);
        reject(e);
      });
    });
  }

  /**
   * A message the editor shows (`window/showMessageRequest`, as a request: a client may answer it
   * with an error, which rejects).
   */
  showMessage(kind: 'error' | 'warning', message: string): Promise<unknown> {
    return this.sendRequest('window/showMessageRequest', { type: kind === 'error' ? 1 : 2, message });
  }

  /** The editor's progress for a long piece of work, once the client has made it. */
  async createWorkDoneProgress(): Promise<WorkDoneProgress> {
    const token = `ebpf-portability-${process.pid}-${this.nextId}`;
    await this.sendRequest('window/workDoneProgress/create', { token });
    const progress = (value: object) => void this.sendNotification('$/progress', { token, value }).catch(() => undefined);
    return {
      begin: (title, percentage, message) => progress({ kind: 'begin', title, cancellable: false, message, percentage }),
      report: (percentage) => progress({ kind: 'report', percentage }),
      done: () => progress({ kind: 'end' }),
    };
  }

  /** Starts reading the client's messages; ends the process when the client goes. */
  listen(): void {
    const clientArg = process.argv.find((a) => a.startsWith('--clientProcessId='))?.split('=')[1];
    const i = process.argv.indexOf('--clientProcessId');
    this.watchClient(Number(clientArg ?? (i >= 0 ? process.argv[i + 1] : undefined)));
    this.transport.listen(
      (m) => this.handle(m),
      (why) => this.console.warn(`eBPF portability: ${why}`),
      () => this.exit(),
    );
  }

  private log(type: number, message: string): void {
    void this.sendNotification('window/logMessage', { type, message }).catch(() => undefined);
  }

  private exit(): never {
    process.exit(this.shutdownReceived ? 0 : 1);
  }

  /** Ends the server when the process `pid` is gone (the editor crashed, or was killed). */
  private watchClient(pid: number): void {
    if (!Number.isSafeInteger(pid) || pid <= 0 || this.watching) return;
    this.watching = true;
    setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch (e) {
        // EPERM: it is there, run by another user.
        if ((e as NodeJS.ErrnoException).code !== 'EPERM') this.exit();
      }
    }, CLIENT_WATCH_MS).unref();
  }

  private handle(raw: unknown): void {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.console.warn(`eBPF portability: dropped a message that is not a JSON-RPC object`);
      return;
    }
    const m = raw as Incoming;
    const { id, method } = m;
    if (typeof method === 'string') {
      // Parameters by position: LSP's methods take one, which JSON-RPC libraries send as a list
      // of one when it is not an object (vscode-jsonrpc sends `null` as `[null]`).
      const params = Array.isArray(m.params) && m.params.length === 1 ? m.params[0] : m.params;
      if (typeof id === 'number' || typeof id === 'string') this.request(id, method, params);
      else if (id === undefined) this.notification(method, params);
      else this.console.warn(`eBPF portability: dropped a ${method} message whose id is ${JSON.stringify(id)}`);
    } else if (typeof id === 'number' && this.pending.has(id)) {
      const p = this.pending.get(id)!;
      this.pending.delete(id);
      const error = m.error as { code?: unknown; message?: unknown; data?: unknown } | undefined;
      if (error && typeof error === 'object')
        p.reject(
          new ResponseError(typeof error.code === 'number' ? error.code : ErrorCodes.InternalError, String(error.message), error.data),
        );
      else p.resolve(m.result);
    } else if (!('result' in m || 'error' in m))
      this.console.warn(`eBPF portability: dropped a message that is neither a request, a notification nor a response`);
  }

  private request(id: string | number, method: string, params: unknown): void {
    const answer = (m: object) =>
      void this.transport.send({ jsonrpc: '2.0', id, ...m }).catch((e: unknown) => {
        // A result that cannot be written (a cycle, a BigInt): the client still gets an answer.
        if ('result' in m)
          void this.transport
            .send({ jsonrpc: '2.0', id, error: { code: ErrorCodes.InternalError, message: `${method}: ${(e as Error)?.message ?? e}` } })
            .catch(() => undefined);
      });
    const fail = (e: unknown) => {
      this.running.delete(id);
      if (e instanceof ResponseError)
        answer({ error: { code: e.code, message: e.message, ...(e.data !== undefined ? { data: e.data } : {}) } });
      else answer({ error: { code: ErrorCodes.InternalError, message: `${method} failed: ${(e as Error)?.message ?? String(e)}` } });
    };
    const done = (result: unknown) => {
      this.running.delete(id);
      answer({ result: result === undefined ? null : result });
    };
    let handler = this.requests.get(method);
    // LSP: nothing but `exit` after `shutdown`, and one `initialize`.
    if (this.shutdownReceived)
      handler = () => {
        throw new ResponseError(ErrorCodes.InvalidRequest, `${method} after shutdown`);
      };
    else if (method === 'initialize' && this.initialized)
      handler = () => {
        throw new ResponseError(ErrorCodes.InvalidRequest, 'the server is initialized already');
      };
    else if (method === 'initialize') {
      this.initialized = true;
      const pid = (params as { processId?: unknown } | null)?.processId;
      if (typeof pid === 'number') this.watchClient(pid);
    } else if (method === 'shutdown') {
      this.shutdownReceived = true;
      handler = () => {
        this.onShutdownHandler?.();
        return null;
      };
    }
    if (!handler) {
      fail(new ResponseError(ErrorCodes.MethodNotFound, `unhandled method ${method}`));
      return;
    }
    const token = { isCancellationRequested: false };
    this.running.set(id, token);
    try {
      const r = handler(params, token);
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(done, fail);
      else done(r);
    } catch (e) {
      fail(e);
    }
  }

  private notification(method: string, params: unknown): void {
    if (method === 'exit') this.exit();
    if (method === '$/cancelRequest') {
      const id = (params as { id?: unknown } | null)?.id;
      const token = typeof id === 'number' || typeof id === 'string' ? this.running.get(id) : undefined;
      if (token) token.isCancellationRequested = true;
      return;
    }
    const handler = this.notifications.get(method);
    if (!handler) return;
    try {
      handler(params);
    } catch (e) {
      this.console.error(`eBPF portability: ${method}: ${(e as Error)?.stack ?? e}`);
    }
  }
}
