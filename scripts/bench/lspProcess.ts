/**
 * The bench's language-server driver: spawns any LSP server over stdio (ours or clangd), sends the
 * same documents and the same edit script to both, and times what the user waits for: spawn →
 * first `publishDiagnostics` of a document, and edit → the diagnostics of that version.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';

interface Published {
  readonly version?: number;
  readonly count: number;
}

/** One running server and the client end of its connection. */
export class LspProcess {
  private readonly conn: MessageConnection;
  private readonly proc: ChildProcess;
  private readonly published = new Map<string, Published>();
  private readonly waiters: (() => void)[] = [];
  private stderr = '';
  /** What the server showed the user (warnings, errors). */
  readonly messages: string[] = [];

  private constructor(cmd: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv) {
    this.proc = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    this.proc.stderr!.on('data', (d) => {
      if (this.stderr.length < 20000) this.stderr += String(d);
    });
    this.conn = createMessageConnection(new StreamMessageReader(this.proc.stdout!), new StreamMessageWriter(this.proc.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: { uri: string; version?: number; diagnostics: unknown[] }) => {
      this.published.set(p.uri, { version: p.version, count: p.diagnostics.length });
      this.waiters.splice(0).forEach((w) => w());
    });
    // Our server asks for settings (defaults) and registers for configuration changes.
    this.conn.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => ({})));
    this.conn.onRequest('client/registerCapability', () => null);
    this.conn.onRequest('window/workDoneProgress/create', () => null);
    this.conn.onRequest('window/showMessageRequest', (p: { message: string }) => {
      this.messages.push(p.message);
      return null;
    });
    this.conn.onNotification('window/showMessage', (p: { message: string }) => this.messages.push(p.message));
    this.conn.onNotification(() => undefined);
    this.conn.listen();
  }

  /** Spawns `cmd args` in `cwd` (with `env`, else this process's) and initialises it with `rootUri`. */
  static async start(cmd: string, args: readonly string[], cwd: string, rootUri: string, env?: NodeJS.ProcessEnv): Promise<LspProcess> {
    const s = new LspProcess(cmd, args, cwd, env);
    await s.conn.sendRequest('initialize', {
      processId: process.pid,
      rootUri,
      capabilities: {
        workspace: { configuration: true },
        textDocument: { publishDiagnostics: { versionSupport: true }, synchronization: { didSave: true } },
      },
    });
    await s.conn.sendNotification('initialized', {});
    return s;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  open(uri: string, text: string): void {
    void this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
  }

  change(uri: string, version: number, changes: unknown[]): void {
    void this.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: changes });
  }

  /** Waits for diagnostics of `uri` (of `version`, when given); resolves with how many there are. */
  async diagnostics(uri: string, version?: number, timeoutMs = 120000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.published.get(uri);
      if (d && (version === undefined || d.version === version)) return d.count;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for diagnostics of ${uri} (version ${version}); messages: ${this.messages.join(' | ')}; stderr: ${this.stderr}`,
        );
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** The process's peak resident set (VmHWM of /proc/<pid>/status) in MiB, or undefined off Linux. */
  peakRssMiB(): number | undefined {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 2000))]);
      void this.conn.sendNotification('exit');
    } catch {
      // Already gone: the kill below handles it.
    }
    await new Promise((r) => setTimeout(r, 100));
    this.proc.kill();
    this.conn.dispose();
  }
}

/** The `p`th percentile of `xs`. */
export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One scripted edit: a digit written at `line`:`character`, over the digit there or before it. */
export interface ScriptedEdit {
  readonly line: number;
  readonly character: number;
  readonly digit: string;
  /** Inserted before the character (typing), instead of replacing it. */
  readonly insert?: boolean;
}

/**
 * The bench's edit script on `text`: `n` edits, each replacing the digit before the `;` of a
 * `+ N;` line by the next digit (a change inside one function body; never the same text, which
 * clangd would not analyse again), spread over the file. `typing` inserts the digit before that
 * one instead, as typing does: the text after it moves (the number stays valid C).
 */
export function editScript(text: string, n: number, typing = false): ScriptedEdit[] {
  const lines = text.split('\n');
  const targets = lines.map((l, i) => (/\+ \d+;$/.test(l) ? i : -1)).filter((i) => i >= 0);
  const digits = new Map<number, number>();
  return Array.from({ length: n }, (_, k) => {
    const line = targets[(k * 7) % targets.length];
    const character = lines[line].length - 2;
    const next = ((digits.get(line) ?? Number(lines[line][character])) + 1) % 10;
    digits.set(line, next);
    // Inserting keeps the last digit where it was: each insertion on a line goes before it.
    return typing ? { line, character, digit: String(next === 0 ? 1 : next), insert: true } : { line, character, digit: String(next) };
  });
}

/** Replays `script` on an open document (version 1), each edit waiting for its version's diagnostics; the latencies in ms. */
export async function timeEdits(s: LspProcess, uri: string, script: readonly ScriptedEdit[]): Promise<number[]> {
  const lat: number[] = [];
  for (let k = 0; k < script.length; k++) {
    const { line, character, digit, insert } = script[k];
    const version = k + 2;
    const t = performance.now();
    s.change(uri, version, [
      { range: { start: { line, character }, end: { line, character: insert ? character : character + 1 } }, text: digit },
    ]);
    await s.diagnostics(uri, version);
    lat.push(performance.now() - t);
  }
  return lat;
}
