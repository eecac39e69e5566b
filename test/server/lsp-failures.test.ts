/**
 * A rule that throws in the language server: the other rules' findings are published for the
 * document's current version (never the previous version's at shifted positions), and the output
 * channel names the rule and the file. The bundled server runs with the test hook
 * EBPF_PORTABILITY_TEST_THROW, which makes the rule it names throw wherever it runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestClient, type WireDiagnostic } from './lsp-client';

const root = join(__dirname, '..', '..');
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');
const uri = 'file:///work/examples/process-tracer.bpf.c';
const key = (d: WireDiagnostic, shift = 0) => `${d.code}@${d.range.start.line + shift}:${d.range.start.character}`;

test('a throwing rule loses only its own findings; the rest are published for the current version and the failure is logged', async () => {
  // What the server finds without the hook.
  const normal = await TestClient.start();
  let expected: WireDiagnostic[];
  try {
    normal.open(uri, example);
    expected = await normal.diagnostics(uri, (d) => d.length > 0);
  } finally {
    await normal.stop();
  }
  assert.ok(
    expected.some((d) => d.code === 'unsafe-kernel-deref'),
    'the example has findings of the rule that will throw',
  );
  const others = expected.filter((d) => d.code !== 'unsafe-kernel-deref');
  assert.ok(others.length > 0, 'and findings of other rules');

  const c = await TestClient.start(undefined, true, { ...process.env, EBPF_PORTABILITY_TEST_THROW: 'unsafe-kernel-deref' });
  try {
    c.open(uri, example, 1);
    const v1 = await c.diagnostics(uri, (d) => d.length > 0, 1);
    assert.ok(!v1.some((d) => d.code === 'unsafe-kernel-deref'), 'the throwing rule has no findings');
    const got = new Set(v1.map((d) => key(d)));
    for (const d of others) assert.ok(got.has(key(d)), `${key(d)} (another rule's finding) is published`);
    const log = c.logs.find((l) => /rule unsafe-kernel-deref failed on file:\/\/\/work\/examples\/process-tracer\.bpf\.c/.test(l.message));
    assert.ok(log, `the output channel names the rule and the file; got ${JSON.stringify(c.logs.map((l) => l.message.split('\n')[0]))}`);
    assert.equal(log.type, 1, 'logged as an error');

    // Three lines added above everything: version 2's diagnostics are where its text has them.
    c.change(uri, 2, [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '// a\n// b\n// c\n' }]);
    const v2 = await c.diagnostics(uri, () => true, 2);
    assert.deepEqual(v2.map((d) => key(d)).sort(), v1.map((d) => key(d, 3)).sort(), 'every finding moved with its line');
  } finally {
    await c.stop();
  }
});
