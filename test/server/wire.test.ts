/**
 * The stdio transport's encoder: every message is ASCII JSON that parses to the message (the bytes
 * `JSON.stringify` gives wherever the message is ASCII), and a diagnostic published again is not
 * encoded again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { publishedDiagnostic } from '../../server/src/lsp/convert';
import { encodeMessage } from '../../server/src/lsp/wire';
import { analyzeSnippet } from './expect';

const publish = (uri: string, diagnostics: unknown[], version?: number) => ({
  jsonrpc: '2.0',
  method: 'textDocument/publishDiagnostics',
  params: { uri, ...(version !== undefined ? { version } : {}), diagnostics },
});

test('a publish of real findings, and of odd text, is ASCII JSON of the message', async () => {
  const code = readFileSync(join(__dirname, '..', '..', 'examples', 'process-tracer.bpf.c'), 'utf8');
  const uri = pathToFileURL('/tmp/wire/process-tracer.bpf.c').href;
  const findings = await analyzeSnippet(code);
  assert.ok(findings.length >= 3, `the example has findings (${findings.length})`);
  const diagnostics = findings.map((f) => publishedDiagnostic(f, uri));
  const odd = [
    // Non-ASCII, a lone surrogate (escaped by JSON.stringify), quotes and backslashes, and a key
    // that looks like the list's own.
    { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } }, message: 'a – b … ü \ud800 "x" \\ "diagnostics":[]' },
    { range: { start: { line: 1, character: 0 }, end: { line: 1, character: 2 } }, message: '', data: { nested: [1, null, 'é'] } },
  ];
  for (const msg of [
    publish(uri, diagnostics, 7),
    publish(uri, diagnostics),
    publish(`${uri}?"diagnostics":[]`, odd, 2),
    publish(uri, [], 3),
    { jsonrpc: '2.0', id: 4, result: { diagnostics: odd } },
    { jsonrpc: '2.0', method: 'window/logMessage', params: { type: 3, message: 'ü' } },
  ]) {
    const bytes = encodeMessage(msg);
    const what = JSON.stringify(msg).slice(0, 120);
    assert.ok(
      bytes.every((b) => b < 0x80),
      `ASCII: ${what}`,
    );
    assert.deepEqual(JSON.parse(bytes.toString('utf8')), msg, what);
    // Where JSON.stringify writes ASCII, the bytes are its own.
    const plain = JSON.stringify(msg);
    if (!/[\u0080-\uffff]/.test(plain)) assert.equal(bytes.toString('latin1'), plain, what);
  }
  assert.ok(
    diagnostics.some((d) => /[\u0080-\uffff]/.test(d.message)),
    'a real message has a character past U+007F (the escapes are exercised)',
  );
});

test('a diagnostic published again is not encoded again; a new one is', () => {
  const d = (i: number) => ({ range: { start: { line: i, character: 0 }, end: { line: i, character: 1 } }, message: `m${i}` });
  const kept = Array.from({ length: 50 }, (_, i) => d(i));
  const stringify = JSON.stringify;
  let calls = 0;
  const count = () => {
    JSON.stringify = ((...a: Parameters<typeof stringify>) => {
      calls++;
      return stringify(...a);
    }) as typeof stringify;
  };
  try {
    count();
    encodeMessage(publish('file:///a.c', kept, 1));
    assert.equal(calls, 1 + 50, 'the first publish encodes the message shell and each diagnostic');
    calls = 0;
    const again = [...kept.slice(0, 49), d(99)];
    const bytes = encodeMessage(publish('file:///a.c', again, 2));
    assert.equal(calls, 1 + 1, 'the next encodes the shell and the one new diagnostic only');
    JSON.stringify = stringify;
    assert.equal(bytes.toString('latin1'), JSON.stringify(publish('file:///a.c', again, 2)));
  } finally {
    JSON.stringify = stringify;
  }
});
