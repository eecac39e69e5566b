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

test('a client that never answers workspace/configuration: the document is checked with the defaults within 2 s, said once; its late answer is used', {
  timeout: 120_000,
}, async () => {
  const text =
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n\nstruct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");\n\nSEC("kprobe/do_exit")\nint probe(struct pt_regs *ctx)\n{\n    long v = 0;\n    bpf_ringbuf_output(&rb, &v, sizeof(v), 0);\n    return 0;\n}\n';
  // Its settings move the target past 5.8, where the ringbuf helpers are.
  const settings = { targetKernels: '5.8-7.x', architectures: ['x86_64'], distros: ['debian', 'ubuntu'], compile: 'off' };
  const unavailable = (d: WireDiagnostic[]) => d.some((x) => x.code === 'helper-unavailable');
  const said =
    /has not answered workspace\/configuration within 1\.5 s \(first for .*stuck\.bpf\.c\): documents are checked with the default settings until it answers/;
  const stuck = await TestClient.start();
  try {
    stuck.holdConfiguration = true;
    stuck.settings = settings;
    const uri = 'file:///work/t/stuck.bpf.c';
    const opened = Date.now();
    stuck.open(uri, text);
    // The defaults (4.14-7.x): bpf_ringbuf_output is missing before 5.8.
    assert.ok(unavailable(await stuck.diagnostics(uri, unavailable, 1, 20_000)));
    assert.ok(Date.now() - opened < 10_000, `answered after ${Date.now() - opened} ms`);
    assert.equal(stuck.logs.filter((l) => said.test(l.message)).length, 1, stuck.logs.map((l) => l.message).join('\n'));
    // The answer comes at last: the document is checked again with its settings.
    stuck.releaseConfiguration();
    await stuck.diagnostics(uri, (d) => !unavailable(d), 1, 20_000);
  } finally {
    await stuck.stop();
  }
  // The near miss: a client that answers slowly but within the wait (after 0.8 s) is never said
  // to be stuck, and only its settings are ever used, past the wait too.
  const slow = await TestClient.start();
  try {
    slow.holdConfiguration = true;
    slow.settings = settings;
    const uri = 'file:///work/t/stuck.bpf.c';
    slow.open(uri, text);
    setTimeout(() => slow.releaseConfiguration(), 800);
    assert.ok(!unavailable(await slow.diagnostics(uri, () => true, 1, 20_000)));
    await new Promise((r) => setTimeout(r, 2500));
    const mine = slow.published.filter((p) => p.uri === uri);
    assert.ok(mine.length >= 1);
    assert.ok(!mine.some((p) => p.codes.includes('helper-unavailable')), JSON.stringify(mine));
    assert.ok(!slow.logs.some((l) => /workspace\/configuration/.test(l.message)), slow.logs.map((l) => l.message).join('\n'));
  } finally {
    await slow.stop();
  }
});
