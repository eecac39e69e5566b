/**
 * A minimal LSP client for tests: spawns the bundled server over stdio and speaks real JSON-RPC.
 * Helpers find positions by searching text, so tests do not hard-code coordinates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';

const root = join(__dirname, '..', '..');

/** A published diagnostic, as the protocol carries it. */
export interface WireDiagnostic {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  severity?: number;
  code?: string;
  source?: string;
  message: string;
  codeDescription?: { href: string };
  /** How many target kernels fail (their names are in the report). */
  data?: { failing: number; basis?: string };
}

/** A running server and the client end of its connection. */
export class TestClient {
  readonly conn: MessageConnection;
  readonly proc: ChildProcess;
  private readonly diags = new Map<string, { version?: number; diagnostics: WireDiagnostic[] }>();
  /** Work-done progress the server reported (`$/progress` values), in order. */
  readonly progress: { kind: string; title?: string; message?: string; percentage?: number }[] = [];
  /** Every publishDiagnostics in the order it arrived. */
  readonly published: { uri: string; version?: number; codes: string[] }[] = [];
  private readonly waiters: (() => void)[] = [];
  /** Settings answered to `workspace/configuration`. */
  settings: unknown = {};
  readonly messages: { type: number; message: string }[] = [];
  /** Hold `workspace/configuration` unanswered until {@link releaseConfiguration}, as a stuck client would. */
  holdConfiguration = false;
  private readonly held: (() => void)[] = [];
  /** Answers the held `workspace/configuration` requests with {@link settings}. */
  releaseConfiguration(): void {
    this.holdConfiguration = false;
    this.held.splice(0).forEach((answer) => answer());
  }
  /** Answer `window/showMessageRequest` with an error, as a client may. */
  refuseMessages = false;
  /** What the server wrote to its output channel (`window/logMessage`). */
  readonly logs: { type: number; message: string }[] = [];
  /** `ebpfPortability/status` notifications (sent when the client asks for them). */
  readonly statuses: { uri: string; target: string; architectures: string[]; kernels: number; problems: string[] }[] = [];
  stderr = '';

  private constructor(command: string[], env?: NodeJS.ProcessEnv) {
    this.proc = spawn(process.execPath, command, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    this.proc.stderr!.on('data', (d) => (this.stderr += String(d)));
    this.conn = createMessageConnection(new StreamMessageReader(this.proc.stdout!), new StreamMessageWriter(this.proc.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: { uri: string; version?: number; diagnostics: WireDiagnostic[] }) => {
      this.diags.set(p.uri, p);
      this.published.push({ uri: p.uri, version: p.version, codes: p.diagnostics.map((d) => String(d.code)) });
      this.waiters.splice(0).forEach((w) => w());
    });
    this.conn.onNotification('window/showMessage', (p: { type: number; message: string }) => this.messages.push(p));
    this.conn.onNotification('window/logMessage', (p: { type: number; message: string }) => this.logs.push(p));
    this.conn.onNotification('ebpfPortability/status', (p: TestClient['statuses'][number]) => {
      this.statuses.push(p);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.conn.onRequest('workspace/configuration', (p: { items: unknown[] }) => {
      const answer = () => p.items.map(() => this.settings);
      if (!this.holdConfiguration) return answer();
      return new Promise((resolve) => this.held.push(() => resolve(answer())));
    });
    this.conn.onRequest('client/registerCapability', () => null);
    this.conn.onRequest('window/workDoneProgress/create', () => null);
    this.conn.onNotification(
      '$/progress',
      (p: { token: unknown; value: { kind: string; title?: string; message?: string; percentage?: number } }) =>
        this.progress.push(p.value),
    );
    this.conn.onRequest('window/showMessageRequest', (p: { type: number; message: string }) => {
      this.messages.push(p);
      if (this.refuseMessages) return new ResponseError(-32603, 'this client shows no messages');
      return null;
    });
    this.conn.listen();
  }

  /** Starts `dist/server.js --stdio` (or another command) and initialises it. */
  static async start(
    command = [join(root, 'dist', 'server.js'), '--stdio'],
    configuration = true,
    env?: NodeJS.ProcessEnv,
    initializationOptions?: unknown,
    /** Client capabilities beyond the defaults (e.g. `{ window: { workDoneProgress: true } }`). */
    extraCapabilities: Record<string, unknown> = {},
  ): Promise<TestClient> {
    assert.ok(existsSync(join(root, 'dist', 'server.js')), 'dist/server.js is missing: run `npm run build` (npm test does)');
    const c = new TestClient(command, env);
    await c.conn.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      ...(initializationOptions ? { initializationOptions } : {}),
      capabilities: {
        workspace: { configuration },
        textDocument: {
          publishDiagnostics: { versionSupport: true },
          codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'source.fixAll'] } } },
        },
        ...extraCapabilities,
      },
    });
    await c.conn.sendNotification('initialized', {});
    return c;
  }

  /** Waits until a status notification satisfies `pred`. */
  async status(pred: (s: TestClient['statuses'][number]) => boolean, timeoutMs = 20000): Promise<TestClient['statuses'][number]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.statuses.find(pred);
      if (s) return s;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a status; got ${JSON.stringify(this.statuses)}; stderr: ${this.stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  open(uri: string, text: string, version = 1): void {
    void this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version, text } });
  }

  change(uri: string, version: number, changes: unknown[]): void {
    void this.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: changes });
  }

  /** Waits until diagnostics for `uri` (at `version`, when given) satisfy `pred`. */
  async diagnostics(
    uri: string,
    pred: (d: WireDiagnostic[]) => boolean = () => true,
    version?: number,
    timeoutMs = 20000,
  ): Promise<WireDiagnostic[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.diags.get(uri);
      if (d && (version === undefined || d.version === version) && pred(d.diagnostics)) return d.diagnostics;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for diagnostics of ${uri} (last: ${JSON.stringify(d)}); server stderr: ${this.stderr}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 2000))]);
      void this.conn.sendNotification('exit');
    } catch {
      // The server may already be gone; the kill below handles it.
    }
    await new Promise((r) => setTimeout(r, 100));
    this.proc.kill();
    this.conn.dispose();
    // The server logs a fault no handler caught and goes on (server/src/main.ts): a test that
    // would once have seen it die sees it here.
    const fault = /eBPF portability: (unhandled rejection|uncaught exception): .*/.exec(this.stderr);
    assert.equal(fault, null, `the server logged a fault no handler caught: ${fault?.[0]}`);
  }
}

/** The position of the `nth` occurrence of `needle` in `text` (plus `delta` characters). */
export function position(text: string, needle: string, delta = 0, nth = 0): { line: number; character: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    assert.ok(at >= 0, `"${needle}" occurs ${nth + 1} times`);
  }
  at += delta;
  const before = text.slice(0, at);
  const line = before.split('\n').length - 1;
  return { line, character: at - (before.lastIndexOf('\n') + 1) };
}
