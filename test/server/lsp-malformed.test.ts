/**
 * Malformed messages over real LSP, as a client with a bug sends them: documents without a URI,
 * versions that are not numbers, positions of -1, changes whose text is not a string, params of
 * the wrong type for every request the server answers. The server drops each malformed
 * notification (the output channel says so once per method), answers each malformed request
 * with InvalidParams, and keeps serving: a document opened afterwards gets its diagnostics. A
 * `didSave` or `didClose` whose document had no string URI ended the process before (an exception
 * in an asynchronous step). A malformed change to an open document loses its text, so the document
 * is closed until the editor opens it again. What older clients send (a null version, a null
 * range for the whole text, `only: null`) is served. Then a seeded storm of 1,500 random messages,
 * well formed and not, with the same outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng } from '../kernel-db/helpers';
import { TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');
const INVALID_PARAMS = -32602;

/** Runs `body` against a fresh server (no object pass), stopped afterwards. */
async function withServer(body: (c: TestClient) => Promise<void>): Promise<void> {
  const c = await TestClient.start();
  try {
    c.settings = { compile: 'off' };
    await body(c);
  } finally {
    await c.stop();
  }
}

/** The error code a request is answered with, or 'ok'. */
async function answer(c: TestClient, method: string, params: unknown): Promise<number | 'ok'> {
  try {
    await c.conn.sendRequest(method, params);
    return 'ok';
  } catch (e) {
    return (e as { code: number }).code;
  }
}

/** Whether the server still analyses: a document opened now gets its diagnostics. */
async function stillServing(c: TestClient, name: string): Promise<void> {
  const uri = `file:///work/malformed/${name}.bpf.c`;
  c.open(uri, example);
  const d = await c.diagnostics(uri, (x) => x.length > 0, 1, 60_000);
  assert.ok(d.some((x) => x.code === 'unsafe-kernel-deref'));
  assert.equal(c.proc.exitCode, null, `the server is running; stderr: ${c.stderr.slice(-2000)}`);
}

test('malformed notifications are dropped and said once per method; malformed requests get InvalidParams; the server keeps serving', {
  timeout: 180_000,
}, async () => {
  await withServer(async (c) => {
    const uri = 'file:///work/malformed/a.bpf.c';
    c.open(uri, example);
    await c.diagnostics(uri, (d) => d.length > 0, 1, 60_000);
    const send = (method: string, params: unknown) => void c.conn.sendNotification(method, params);
    // Those that ended the process: a save or a close whose document has no string URI.
    send('textDocument/didSave', { textDocument: {} });
    send('textDocument/didSave', { textDocument: { uri: 5 } });
    send('textDocument/didSave', {});
    send('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 'one', text: example } });
    send('textDocument/didOpen', { textDocument: { uri: 'file:///work/malformed/b.bpf.c', version: 1, text: 42 } });
    send('textDocument/didChange', { textDocument: { uri: 5, version: 2 }, contentChanges: [] });
    send('textDocument/didChange', { textDocument: { uri: 'file:///work/malformed/x.bpf.c', version: 2 }, contentChanges: 'x' });
    send('textDocument/didChange', { textDocument: { uri: 'file:///work/malformed/never-opened.bpf.c', version: 2 }, contentChanges: [] });
    send('textDocument/didClose', { textDocument: null });
    send('workspace/didChangeConfiguration', null);
    send('workspace/didChangeWatchedFiles', 'x');

    const requests: Array<[string, unknown]> = [
      ['textDocument/hover', { textDocument: { uri }, position: { line: -1, character: 0 } }],
      ['textDocument/hover', { textDocument: { uri }, position: { line: 0.5, character: 'a' } }],
      ['textDocument/hover', null],
      ['textDocument/codeAction', { textDocument: { uri }, range: { start: { line: 0, character: 0 } }, context: { diagnostics: [] } }],
      [
        'textDocument/codeAction',
        { textDocument: { uri }, range: { start: { line: 0, character: 0 }, end: { line: 1, character: 0 } }, context: { only: 3 } },
      ],
      ['textDocument/codeLens', { textDocument: {} }],
      ['ebpfPortability/report', { uri: { toString: 1 } }],
      ['ebpfPortability/report', { uri, path: 7 }],
      ['ebpfPortability/convertBcc', 'x'],
      ['ebpfPortability/importDefaults', null],
      ['ebpfPortability/importKernel', { path: '/nonexistent', force: 'yes' }],
    ];
    for (const [method, params] of requests)
      assert.equal(await answer(c, method, params), INVALID_PARAMS, `${method} ${JSON.stringify(params)}`);

    await stillServing(c, 'after');
    assert.ok((await c.diagnostics(uri, () => true, 1)).length > 0, 'the document malformed messages named keeps its diagnostics');
    const logs = c.logs.map((l) => l.message);
    for (const method of [
      'textDocument/didSave',
      'textDocument/didOpen',
      'textDocument/didChange',
      'textDocument/didClose',
      'workspace/didChangeConfiguration',
      'textDocument/didChange of a document that is not open',
    ])
      assert.equal(logs.filter((l) => l.includes(`ignored a malformed ${method} (`)).length, 1, `${method}: ${logs.join('\n')}`);
    assert.ok(!c.stderr.includes('unhandled') && !c.stderr.includes('uncaught'), c.stderr);

    // The near miss: the same messages well formed are served, and say nothing about themselves.
    const before = c.logs.length;
    send('textDocument/didSave', { textDocument: { uri } });
    assert.equal(await answer(c, 'textDocument/hover', { textDocument: { uri }, position: { line: 0, character: 0 } }), 'ok');
    assert.equal(await answer(c, 'ebpfPortability/report', { uri }), 'ok');
    assert.equal(await answer(c, 'ebpfPortability/importDefaults', { path: '/tmp/vmlinux-6.1.btf' }), 'ok');
    assert.deepEqual(
      c.logs.slice(before).filter((l) => l.message.includes('malformed')),
      [],
    );
  });
});

test('a malformed change to an open document: its text is lost, so it is closed (diagnostics cleared, a warning) until it is opened again', {
  timeout: 180_000,
}, async () => {
  await withServer(async (c) => {
    const uri = 'file:///work/malformed/lost.bpf.c';
    const other = 'file:///work/malformed/other.bpf.c';
    c.open(uri, example);
    c.open(other, example);
    await c.diagnostics(uri, (d) => d.length > 0, 1, 60_000);
    await c.diagnostics(other, (d) => d.length > 0, 1, 60_000);
    // A position of -1: where the change goes cannot be known.
    void c.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 },
      contentChanges: [{ range: { start: { line: -1, character: 0 }, end: { line: 0, character: 0 } }, text: 'x' }],
    });
    assert.deepEqual(await c.diagnostics(uri, (d) => d.length === 0), []);
    for (let i = 0; i < 100 && !c.messages.some((m) => m.message.includes('lost.bpf.c')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      c.messages.some((m) => /lost\.bpf\.c: the editor sent a change this server cannot read.*close and reopen/.test(m.message)),
      JSON.stringify(c.messages),
    );
    // Later changes to it are changes to a document that is not open; the other document is untouched.
    c.change(uri, 3, [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '// x\n' }]);
    assert.ok((await c.diagnostics(other, () => true, 1)).length > 0);
    // Opened again, it is checked again.
    c.open(uri, example, 4);
    assert.ok((await c.diagnostics(uri, (d) => d.length > 0, 4, 60_000)).length > 0);
  });
});

test('what older clients send is served: a null version, a null range for the whole text, only: null', { timeout: 180_000 }, async () => {
  await withServer(async (c) => {
    const uri = 'file:///work/malformed/old.bpf.c';
    c.open(uri, example);
    const before = await c.diagnostics(uri, (d) => d.length > 0, 1, 60_000);
    const lines = (d: { range: { start: { line: number } } }[]) => d.map((x) => x.range.start.line);
    // Three lines inserted at the top under a null version: every finding moves down by three.
    void c.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: null },
      contentChanges: [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '//\n//\n//\n' }],
    });
    const moved = await c.diagnostics(uri, (d) => d.length > 0 && d[0].range.start.line === before[0].range.start.line + 3);
    assert.deepEqual(
      lines(moved),
      lines(before).map((l) => l + 3),
    );
    // A null range replaces the whole text: back to the example.
    void c.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 10 },
      contentChanges: [{ range: null, text: example }],
    });
    assert.deepEqual(lines(await c.diagnostics(uri, () => true, 10)), lines(before));
    const actions = await c.conn.sendRequest<unknown[]>('textDocument/codeAction', {
      textDocument: { uri },
      range: before[0].range,
      context: { diagnostics: [], only: null },
    });
    assert.ok(actions.length > 0);
    assert.deepEqual(
      c.logs.filter((l) => l.message.includes('malformed')),
      [],
    );
  });
});

test('a seeded storm of 1,500 random messages, well formed and not: every request answered, the server keeps serving', {
  timeout: 180_000,
}, async () => {
  await withServer(async (c) => {
    const rand = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const uris = [
      'file:///work/storm/a.bpf.c',
      'file:///work/storm/b.bpf.c',
      'untitled:Untitled-1',
      'file://',
      '',
      'file:///%E0%A4%A',
      'http://x/y.bpf.c',
      'file:///work/storm/c.py',
      'file:///work/storm/x.h',
    ];
    const odd = (): unknown =>
      pick<unknown>([null, undefined, -1, 1.5, 2 ** 31, 'x', '', [], {}, true, 'x'.repeat(10_000), { line: -1 }, { toString: 1 }]);
    const pos = () => (rand() < 0.7 ? { line: Math.floor(rand() * 60), character: Math.floor(rand() * 40) } : odd());
    const range = () => (rand() < 0.7 ? { start: pos(), end: pos() } : odd());
    const doc = () => (rand() < 0.9 ? { uri: pick(uris), version: rand() < 0.8 ? Math.floor(rand() * 100) : odd() } : odd());
    const change = () =>
      rand() < 0.8
        ? { range: range(), text: rand() < 0.9 ? pick(['x', '', '\n', '😀', '\ud800', '{', '}', '/*', '"']) : odd() }
        : { text: rand() < 0.7 ? example : odd() };
    const requests: Promise<unknown>[] = [];
    for (let i = 0; i < 1500; i++) {
      const req = (method: string, params: unknown) => requests.push(c.conn.sendRequest(method, params).catch(() => undefined));
      const notify = (method: string, params: unknown) => void c.conn.sendNotification(method, params);
      switch (Math.floor(rand() * 11)) {
        case 0:
          notify('textDocument/didOpen', {
            textDocument:
              rand() < 0.85
                ? { uri: pick(uris), languageId: 'c', version: Math.floor(rand() * 5), text: rand() < 0.8 ? example : odd() }
                : odd(),
          });
          break;
        case 1:
        case 2:
          notify('textDocument/didChange', {
            textDocument: doc(),
            contentChanges: rand() < 0.9 ? Array.from({ length: 1 + Math.floor(rand() * 3) }, change) : odd(),
          });
          break;
        case 3:
          notify('textDocument/didClose', { textDocument: doc() });
          break;
        case 4:
          notify('textDocument/didSave', rand() < 0.5 ? { textDocument: doc() } : odd());
          break;
        case 5:
          req('textDocument/hover', { textDocument: doc(), position: pos() });
          break;
        case 6:
          req('textDocument/codeAction', { textDocument: doc(), range: range(), context: rand() < 0.8 ? { diagnostics: [] } : odd() });
          break;
        case 7:
          req('textDocument/codeLens', { textDocument: doc() });
          break;
        case 8:
          req('ebpfPortability/report', rand() < 0.7 ? { uri: pick(uris) } : odd());
          break;
        case 9:
          notify('workspace/didChangeConfiguration', { settings: rand() < 0.5 ? { ebpfPortability: odd() } : odd() });
          break;
        case 10:
          req(
            pick(['ebpfPortability/convertBcc', 'ebpfPortability/stats', 'ebpfPortability/importDefaults']),
            rand() < 0.5 ? { uri: pick(uris), path: odd() } : odd(),
          );
          break;
      }
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 10));
    }
    // Every request is answered (with a result or an error).
    await Promise.all(requests);
    await stillServing(c, 'after-storm');
    assert.ok(!c.stderr.includes('unhandled') && !c.stderr.includes('uncaught'), c.stderr.slice(-3000));
  });
});
