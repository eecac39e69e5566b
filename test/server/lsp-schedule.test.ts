/**
 * One document never holds up another (real LSP, the bundled server): the analysis runs in time
 * slices, so a small program opened while a large one is being analysed gets its diagnostics
 * first, and keystrokes in it are answered before the large one is done; an edit to the large
 * one drops the run of the text it replaced. An analysis that runs long is said in the output
 * channel and shown as the editor's progress.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const SETTINGS = { compile: 'off' };

/** A program of `n` pairs of kprobe and fentry functions reading task and socket fields. */
function largeProgram(n: number): string {
  let out = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n#include <bpf/bpf_core_read.h>\n\n';
  for (let i = 0; i < n; i++)
    out += `SEC("kprobe/do_exit")
int BPF_KPROBE(exit_${i}, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 ppid = task->real_parent->tgid;
    return BPF_CORE_READ(task, tgid) + ppid + ${i};
}

SEC("fentry/tcp_rcv_established")
int BPF_PROG(rcv_${i}, struct sock *sk)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    return tp->srtt_us + sk->__sk_common.skc_dport + ${i};
}

`;
  return out;
}

test('a small program opened while a large one is analysed is answered first, and so are its keystrokes', { timeout: 600000 }, async () => {
  // The analysis is said from 0.5 s on instead of 2 s, so the progress is seen rising however
  // fast the machine analyses the large program (server.ts, TEST_LONG_ANALYSIS_ENV).
  const env = { ...process.env, EBPF_PORTABILITY_TEST_LONG_ANALYSIS_MS: '500' };
  const c = await TestClient.start(undefined, true, env, undefined, { window: { workDoneProgress: true } });
  try {
    c.settings = SETTINGS;
    const large = 'file:///t/large.bpf.c';
    const small = 'file:///t/small.bpf.c';
    const smallText = readFileSync(join(root, 'examples', 'tcp-connect.bpf.c'), 'utf8');
    // A warm-up so the large program's run is not mostly the first analysis's cold start.
    c.open('file:///t/warm.bpf.c', smallText);
    await c.diagnostics('file:///t/warm.bpf.c');
    const largeText = largeProgram(1200);
    c.open(large, largeText);
    // Its analysis is under way (the first slice builds the file model), then the small one opens.
    await new Promise((r) => setTimeout(r, 300));
    c.open(small, smallText);
    const first = await c.diagnostics(small);
    assert.ok(first.length > 0, 'the small program has its findings');
    // Three keystrokes in the small program, each answered for its own version.
    const line = smallText.split('\n').findIndex((l) => l.includes('return 0;'));
    for (let v = 2; v <= 4; v++) {
      c.change(small, v, [{ range: { start: { line, character: 11 }, end: { line, character: 12 } }, text: String(v) }]);
      await c.diagnostics(small, () => true, v);
    }
    const order = c.published
      .filter((p) => p.uri !== 'file:///t/warm.bpf.c')
      .map((p) => `${p.uri.endsWith('small.bpf.c') ? 'small' : 'large'}@${p.version}`);
    assert.deepEqual(order, ['small@1', 'small@2', 'small@3', 'small@4'], 'the large program is still being analysed');
    const done = await c.diagnostics(large, () => true, 1, 300000);
    // All of them analysed: 1,000 are published (the cap), the last of which counts the rest.
    assert.equal(done.length, 1000, `the large program's findings (${done.length})`);
    const more = Number(/^([\d,]+) more findings are not shown/.exec(done[999].message)?.[1].replace(/,/g, ''));
    assert.ok(999 + more >= 1200, `the large program's findings (999 and ${done[999].message})`);
    assert.ok(
      c.logs.some((l) =>
        /large\.bpf\.c \(version 1, \d+ lines\) takes more than 0\.5 s to analyse; other documents are answered meanwhile/.test(l.message),
      ),
      'the output channel says the analysis runs long',
    );
    // And the editor shows it as progress: begun with the file's name, the share done rising, ended
    // (the end follows the diagnostics).
    for (let i = 0; i < 100 && c.progress[c.progress.length - 1]?.kind !== 'end'; i++) await new Promise((r) => setTimeout(r, 50));
    const kinds = c.progress.map((p) => p.kind);
    assert.equal(kinds[0], 'begin');
    assert.match(c.progress[0].message ?? '', /analysing large\.bpf\.c \([\d,]+ lines\)/);
    assert.equal(kinds[kinds.length - 1], 'end');
    const shares = c.progress.map((p) => p.percentage).filter((x): x is number => x !== undefined);
    assert.ok(
      shares.length >= 2 && shares.every((x, i) => i === 0 || x >= shares[i - 1]) && shares[shares.length - 1] > shares[0],
      `${shares}`,
    );
  } finally {
    await c.stop();
  }
});

test('an edit to a large program while it is analysed drops the run of the old text', { timeout: 600000 }, async () => {
  const c = await TestClient.start();
  try {
    c.settings = SETTINGS;
    const large = 'file:///t/large.bpf.c';
    const text = largeProgram(300);
    c.open(large, text);
    await new Promise((r) => setTimeout(r, 300));
    // The last program's constant edited twice while version 1 is being analysed.
    const lines = text.split('\n');
    const line = lines.map((l) => l.includes('skc_dport + 299;')).lastIndexOf(true);
    const character = lines[line].indexOf('299');
    c.change(large, 2, [{ range: { start: { line, character }, end: { line, character: character + 3 } }, text: '7' }]);
    await new Promise((r) => setTimeout(r, 200));
    c.change(large, 3, [{ range: { start: { line, character }, end: { line, character: character + 1 } }, text: '8' }]);
    const final = await c.diagnostics(large, () => true, 3, 300000);
    assert.ok(final.length >= 300);
    // Versions 1 and 2 were superseded before their runs ended: nothing was published for them.
    assert.deepEqual(
      c.published.filter((p) => p.uri === large).map((p) => p.version),
      [3],
    );
  } finally {
    await c.stop();
  }
});

test('a burst of edits received together is analysed once, at its last version', { timeout: 120000 }, async () => {
  const c = await TestClient.start();
  try {
    c.settings = SETTINGS;
    const uri = 'file:///t/burst.bpf.c';
    const text = readFileSync(join(root, 'examples', 'tcp-connect.bpf.c'), 'utf8');
    c.open(uri, text);
    await c.diagnostics(uri);
    const before = c.published.length;
    // Fifty keystrokes at the end of the file, sent in one go (as a paste of many changes or a
    // client catching up does): the server has them all before the first analysis could start.
    const end = text.split('\n').length;
    for (let v = 2; v <= 51; v++)
      c.change(uri, v, [{ range: { start: { line: end, character: 0 }, end: { line: end, character: 0 } }, text: ' ' }]);
    await c.diagnostics(uri, () => true, 51);
    const versions = c.published.slice(before).map((p) => p.version);
    assert.equal(versions[versions.length - 1], 51);
    // Analysing each version would publish fifty times; messages that arrive in separate reads
    // may each be analysed, so a few are allowed.
    assert.ok(versions.length <= 5, `published for versions ${versions.join(', ')}`);
  } finally {
    await c.stop();
  }
});
