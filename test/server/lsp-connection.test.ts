/**
 * The server's own LSP layer (server/src/lsp/connection.ts): framing of a byte stream into
 * messages however it is cut, what a malformed header or body costs (that message only), how
 * requests are dispatched and answered, and, against the bundled server, the lifecycle: exit codes,
 * the end of standard input, a client process that goes away, and Node's IPC channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Connection, ErrorCodes, MAX_MESSAGE_BYTES, MessageFramer, ResponseError } from '../../server/src/lsp/connection';

const root = join(__dirname, '..', '..');
const server = join(root, 'dist', 'server.js');

const frame = (body: string) => Buffer.from(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 'utf8');

function framer() {
  const bodies: string[] = [];
  const faults: string[] = [];
  const f = new MessageFramer(
    (b) => bodies.push(b.toString('utf8')),
    (why) => faults.push(why),
  );
  return { f, bodies, faults };
}

test('framing: messages come out whole however the stream is cut, multi-byte characters included', () => {
  const messages = ['{"a":1}', '{"text":"é😀\\u0000"}', '', '{"b":"' + 'x'.repeat(70_000) + '"}', '{"c":"ü"}'];
  const bytes = Buffer.concat(messages.map(frame));
  // Every cut point for a few chunk sizes, from one byte at a time to the whole stream at once.
  for (const size of [1, 2, 3, 7, 64, 1000, 65_536, bytes.length]) {
    const { f, bodies, faults } = framer();
    for (let i = 0; i < bytes.length; i += size) f.push(bytes.subarray(i, i + size));
    assert.deepEqual(bodies, messages, `chunks of ${size}`);
    assert.deepEqual(faults, []);
  }
});

test('framing: a fault costs its own message only; the frames after it are read', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    [
      'a header line without a colon, with its body',
      Buffer.from('Junk\r\nContent-Length: 7\r\n\r\n{"x":0}'),
      /malformed header line "Junk"/,
    ],
    ['a length that is no number, with its body', Buffer.from('Content-Length: abc\r\n\r\n{"x":0}'), /Content-Length is "abc"/],
    ['no length, with a body', Buffer.from('Content-Type: application/json\r\n\r\n{"x":0}'), /without a Content-Length/],
    [
      'a charset other than UTF-8',
      Buffer.from('Content-Length: 7\r\nContent-Type: application/json; charset=latin1\r\n\r\n{"x":0}'),
      /latin1: this server reads UTF-8/,
    ],
    ['a length one short (the last byte is left over)', Buffer.from('Content-Length: 6\r\n\r\n{"x":0}'), /.*/],
    ['bytes that are no message', Buffer.from('garbage without a header'), /.*/],
  ];
  for (const [what, bad, fault] of cases) {
    // Alone in its chunk, and in one chunk with the frames around it.
    for (const together of [false, true]) {
      const { f, bodies, faults } = framer();
      const parts = [frame('{"a":1}'), bad, frame('{"b":2}'), frame('{"c":3}')];
      if (together) f.push(Buffer.concat(parts));
      else for (const p of parts) f.push(p);
      const read = bodies.filter((b) => b !== '{"x":0}' && b !== '{"x":0');
      assert.deepEqual(read, ['{"a":1}', '{"b":2}', '{"c":3}'], `${what}${together ? ', one chunk' : ''}: ${faults.join('; ')}`);
      assert.ok(faults.length >= 1 && faults.length <= 2, `${what}: ${faults.join('; ')}`);
      assert.match(faults[0], fault);
    }
  }
  // Line breaks between messages are no fault; header names in any case, a charset spelt either way.
  const { f, bodies, faults } = framer();
  f.push(
    Buffer.from(
      `\r\n${frame('{"a":1}')}\r\n\r\ncontent-length: 7\r\ncontent-type: application/vscode-jsonrpc; charset=utf8\r\n\r\n{"d":4}`,
    ),
  );
  assert.deepEqual(bodies, ['{"a":1}', '{"d":4}']);
  assert.deepEqual(faults, []);
});

test('framing: bytes that never make a header are dropped once past 8 KiB, and reading goes on', () => {
  const { f, bodies, faults } = framer();
  f.push(Buffer.alloc(4096, 'x'));
  assert.deepEqual(faults, [], 'a header may still be on its way');
  f.push(Buffer.alloc(8192, 'y'));
  assert.equal(faults.length, 1);
  assert.match(faults[0], /no LSP header/);
  f.push(frame('{"after":true}'));
  assert.deepEqual(bodies, ['{"after":true}']);
});

test('framing: a message past 256 MiB is dropped as it arrives, never held, and the next one is read', () => {
  const { f, bodies, faults } = framer();
  const held = () => (f as unknown as { size: number }).size;
  f.push(Buffer.from(`Content-Length: ${MAX_MESSAGE_BYTES + 1}\r\n\r\n`));
  const mib = Buffer.alloc(1024 * 1024, 'z');
  for (let i = 0; i < MAX_MESSAGE_BYTES / mib.length; i++) {
    f.push(mib);
    assert.equal(held(), 0);
  }
  f.push(Buffer.concat([Buffer.from('z'), frame('{"after":true}')]));
  assert.deepEqual(bodies, ['{"after":true}']);
  assert.equal(faults.length, 1);
  assert.match(faults[0], /dropped a message of 268435457 bytes: more than 256 MiB/);
  // The near miss: a message of exactly the limit's size would be read (its length is accepted).
  const g = framer();
  g.f.push(Buffer.from(`Content-Length: ${MAX_MESSAGE_BYTES}\r\n\r\n`));
  assert.deepEqual(g.faults, []);
});

/** A connection over a transport held in memory: what the server sends, and a way to deliver. */
function memory() {
  const sent: Record<string, unknown>[] = [];
  let deliver: (m: unknown) => void = () => undefined;
  const c = new Connection({
    listen(onMessage) {
      deliver = onMessage;
    },
    send(m) {
      sent.push(m as Record<string, unknown>);
      return Promise.resolve();
    },
  });
  c.listen();
  const settle = () => new Promise((r) => setImmediate(r));
  return { c, sent, deliver: (m: unknown) => deliver(m), settle };
}

test('dispatch: results, errors, unknown methods, positional params, cancellation; a notification that throws is logged', async () => {
  const { c, sent, deliver, settle } = memory();
  let cancelled: boolean | undefined;
  let release: () => void = () => undefined;
  c.onRequest('echo', (p) => p);
  c.onRequest('initialize', () => ({ capabilities: {} }));
  c.onRequest('nothing', () => undefined);
  c.onRequest('refuse', () => {
    throw new ResponseError(ErrorCodes.InvalidParams, 'no', { why: 1 });
  });
  c.onRequest('break', () => Promise.reject(new Error('boom')));
  c.onRequest('slow', (_p, token) => new Promise<void>((r) => (release = r)).then(() => (cancelled = token.isCancellationRequested)));
  c.onNotification('throws', () => {
    throw new Error('notification fault');
  });
  deliver({ jsonrpc: '2.0', id: 1, method: 'echo', params: { a: 1 } });
  deliver({ jsonrpc: '2.0', id: 'two', method: 'echo', params: [null] });
  deliver({ jsonrpc: '2.0', id: 3, method: 'nothing' });
  deliver({ jsonrpc: '2.0', id: 4, method: 'refuse' });
  deliver({ jsonrpc: '2.0', id: 5, method: 'break' });
  deliver({ jsonrpc: '2.0', id: 6, method: 'missing' });
  deliver({ jsonrpc: '2.0', id: 7, method: 'slow' });
  deliver({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 7 } });
  deliver({ jsonrpc: '2.0', method: 'throws' });
  deliver({ jsonrpc: '2.0', method: 'unknown/notification' });
  deliver([{ jsonrpc: '2.0', id: 8, method: 'echo' }]);
  deliver({ jsonrpc: '2.0', id: null, method: 'echo' });
  deliver('text');
  deliver({ jsonrpc: '2.0', id: 9, method: 'initialize', params: { capabilities: {} } });
  deliver({ jsonrpc: '2.0', id: 10, method: 'initialize', params: { capabilities: {} } });
  release();
  await settle();
  await settle();
  const byId = new Map(sent.filter((m) => 'id' in m).map((m) => [m.id, m]));
  assert.deepEqual(byId.get(1), { jsonrpc: '2.0', id: 1, result: { a: 1 } });
  assert.deepEqual(byId.get('two'), { jsonrpc: '2.0', id: 'two', result: null });
  assert.deepEqual(byId.get(3), { jsonrpc: '2.0', id: 3, result: null });
  assert.deepEqual(byId.get(4), { jsonrpc: '2.0', id: 4, error: { code: -32602, message: 'no', data: { why: 1 } } });
  assert.deepEqual(byId.get(5), { jsonrpc: '2.0', id: 5, error: { code: -32603, message: 'break failed: boom' } });
  assert.deepEqual(byId.get(6), { jsonrpc: '2.0', id: 6, error: { code: -32601, message: 'unhandled method missing' } });
  assert.deepEqual(byId.get(7), { jsonrpc: '2.0', id: 7, result: true });
  assert.equal(cancelled, true, 'the slow request saw its cancellation');
  assert.equal((byId.get(10) as { error?: { code: number } }).error?.code, ErrorCodes.InvalidRequest, 'a second initialize');
  assert.equal(byId.size, 9, 'a batch and a null id are not answered as requests');
  deliver({ jsonrpc: '2.0', id: 11, method: 'shutdown' });
  deliver({ jsonrpc: '2.0', id: 12, method: 'echo', params: { a: 1 } });
  await settle();
  const after = new Map(sent.filter((m) => 'id' in m).map((m) => [m.id, m]));
  assert.deepEqual(after.get(11), { jsonrpc: '2.0', id: 11, result: null });
  assert.equal((after.get(12) as { error?: { code: number } }).error?.code, ErrorCodes.InvalidRequest, 'a request after shutdown');
  const logs = sent.filter((m) => m.method === 'window/logMessage').map((m) => (m.params as { message: string }).message);
  assert.equal(logs.length, 4, logs.join('\n'));
  assert.match(logs[0], /throws: Error: notification fault/);
  assert.match(logs[1], /not a JSON-RPC object/);
  assert.match(logs[2], /echo message whose id is null/);
  assert.match(logs[3], /not a JSON-RPC object/);
});

test('requests to the client: answered, refused, and the editor progress they make', async () => {
  const { c, sent, deliver, settle } = memory();
  const config = c.sendRequest('workspace/configuration', { items: [{ section: 's' }] });
  const refused = c.sendRequest('window/showMessageRequest', { type: 1, message: 'm' });
  const [a, b] = sent;
  deliver({ jsonrpc: '2.0', id: a.id, result: [{ x: 1 }] });
  deliver({ jsonrpc: '2.0', id: b.id, error: { code: -32603, message: 'no messages here' } });
  assert.deepEqual(await config, [{ x: 1 }]);
  await assert.rejects(refused, (e) => e instanceof ResponseError && e.code === -32603 && e.message === 'no messages here');
  const made = c.createWorkDoneProgress();
  await settle();
  const create = sent.at(-1)!;
  assert.equal(create.method, 'window/workDoneProgress/create');
  deliver({ jsonrpc: '2.0', id: create.id, result: null });
  const p = await made;
  p.begin('title', 5, 'msg');
  p.report(50);
  p.done();
  await settle();
  const token = (create.params as { token: string }).token;
  assert.deepEqual(
    sent.filter((m) => m.method === '$/progress').map((m) => m.params),
    [
      { token, value: { kind: 'begin', title: 'title', cancellable: false, message: 'msg', percentage: 5 } },
      { token, value: { kind: 'report', percentage: 50 } },
      { token, value: { kind: 'end' } },
    ],
  );
});

/** The bundled server started with `args`, its output collected. */
function start(
  args: string[],
  stdio: ('pipe' | 'ipc')[] = ['pipe', 'pipe', 'pipe'],
): { proc: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  assert.ok(existsSync(server), 'dist/server.js is missing: run `npm run build` (npm test does)');
  const proc = spawn(process.execPath, [server, ...args], { stdio, env: { ...process.env, EBPF_PORTABILITY_CODE_CACHE: 'off' } });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d) => (out += String(d)));
  proc.stderr?.on('data', (d) => (err += String(d)));
  const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, err: () => err, exit };
}

const send = (proc: ChildProcess, m: object) => proc.stdin!.write(frame(JSON.stringify(m)));

/** Waits until `done()` holds (at most 20 s). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(done(), 'timed out');
}

test('lifecycle: exit after shutdown ends with 0, without it 1, and the end of standard input ends the server', {
  timeout: 60_000,
}, async () => {
  const a = start(['--stdio']);
  send(a.proc, { jsonrpc: '2.0', id: 1, method: 'shutdown' });
  send(a.proc, { jsonrpc: '2.0', method: 'exit' });
  assert.equal(await a.exit, 0, a.err());
  assert.match(a.out(), /"id":1,"result":null/);
  const b = start(['--stdio']);
  send(b.proc, { jsonrpc: '2.0', method: 'exit' });
  assert.equal(await b.exit, 1);
  const c = start(['--stdio']);
  c.proc.stdin!.end();
  assert.equal(await c.exit, 1);
  const e = start(['--stdio']);
  send(e.proc, { jsonrpc: '2.0', id: 1, method: 'shutdown' });
  await until(() => e.out().includes('"id":1'));
  e.proc.stdin!.end();
  assert.equal(await e.exit, 0, 'standard input ends after shutdown');
  // The near miss: a server whose input stays open keeps running.
  const d = start(['--stdio']);
  const early = await Promise.race([d.exit, new Promise((r) => setTimeout(() => r('running'), 1000))]);
  assert.equal(early, 'running');
  d.proc.kill();
});

test('lifecycle: the server ends when the client process named at initialize or on its command line is gone', {
  timeout: 90_000,
}, async () => {
  // Named at initialize, and on the command line (as vscode-languageclient does).
  for (const how of ['initialize', 'command line']) {
    const client = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    const s = start(how === 'initialize' ? ['--stdio'] : ['--stdio', `--clientProcessId=${client.pid}`]);
    send(s.proc, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { processId: how === 'initialize' ? client.pid : null, capabilities: {} },
    });
    await until(() => /"id":1,"result":\{"capabilities"/.test(s.out()));
    // The near miss: while the client runs, so does the server (two looks).
    const early = await Promise.race([s.exit, new Promise((r) => setTimeout(() => r('running'), 6500))]);
    assert.equal(early, 'running', how);
    client.kill();
    // Looked for every 3 s.
    const code = await Promise.race([s.exit, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    s.proc.kill();
    assert.equal(code, 1, how);
  }
});

test('transports: Node IPC serves the same protocol; no transport named is a clear message and status 2', { timeout: 60_000 }, async () => {
  const s = start(['--node-ipc'], ['pipe', 'pipe', 'pipe', 'ipc']);
  const got: Record<string, unknown>[] = [];
  s.proc.on('message', (m) => got.push(m as Record<string, unknown>));
  s.proc.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { processId: process.pid, capabilities: {} } });
  s.proc.send({ jsonrpc: '2.0', id: 2, method: 'shutdown' });
  await until(() => got.length >= 2);
  assert.deepEqual(
    got.map((m) => m.id),
    [1, 2],
  );
  assert.equal((got[0].result as { serverInfo: { name: string } }).serverInfo.name, 'ebpf-portability');
  s.proc.send({ jsonrpc: '2.0', method: 'exit' });
  assert.equal(await s.exit, 0);
  const none = start([]);
  assert.equal(await none.exit, 2);
  assert.match(none.err(), /speaks LSP over --stdio or --node-ipc/);
});
