/**
 * Huge and odd files named `.bpf.c` end at once with a reason, not a parse: a binary file, one
 * 5 MB line, 4.4 MB of 178,000 lines. The CLI says `skipped: why` and exits 2 (a file it could not
 * check); the document store keeps no tree and the same reason for the language server. No timing
 * is asserted: a file that was parsed would show up as findings or as a missing reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { DocumentStore, loadCParser } from '../../server/src/parse/documents';
import { MAX_LINE_CHARS, MAX_LINES, unanalysable } from '../../server/src/parse/inputLimits';

const root = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'ebpf-odd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');

/** Deterministic bytes that look like an object file: NULs among random bytes. */
function binary(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = i % 7 === 0 ? 0 : x >>> 24;
  }
  return b;
}

const FILES: Array<{ name: string; content: () => string | Buffer; reason: RegExp }> = [
  { name: 'binary.bpf.c', content: () => binary(4 * 1024 * 1024), reason: /skipped: binary content \(a NUL byte at offset \d+\)/ },
  {
    name: 'one-line.bpf.c',
    content: () => `${example}\nint big = 0${' + 1'.repeat(1_300_000)};\n`,
    reason: /skipped: line \d+ has 5,200,\d{3} characters \(the limit is 65,536\)/,
  },
  {
    name: 'many-lines.bpf.c',
    content: () => `${example}\n${'int x; /* padding padding */\n'.repeat(178_000)}`,
    reason: /skipped: more than 50,000 lines \(178,\d{3}\)/,
  },
];

for (const f of FILES) {
  test(`check ${f.name}: skipped with its reason, exit 2`, () => {
    const path = join(dir, f.name);
    writeFileSync(path, f.content());
    const r = spawnSync(process.execPath, [join(root, 'bin', 'ebpf-portability.js'), 'check', '--no-compile', path], {
      encoding: 'utf8',
      cwd: root,
    });
    assert.match(r.stdout + r.stderr, f.reason, r.stdout + r.stderr);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    // The summary counts only the files that were checked.
    assert.match(r.stdout, /^0 files checked against \d+ kernels .*; 1 file not checked \(see above\)$/m, r.stdout);
  });
}

test('near miss: beside an odd file, the example is checked and counted, the odd file is not', () => {
  const odd = join(dir, 'beside.bpf.c');
  writeFileSync(odd, binary(64 * 1024));
  const ok = join(dir, 'beside-ok.bpf.c');
  writeFileSync(ok, example);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ebpf-portability.js'), 'check', '--no-compile', odd, ok], {
    encoding: 'utf8',
    cwd: root,
  });
  assert.match(r.stdout, /^1 file checked against \d+ kernels [^;]*; 1 file not checked \(see above\)$/m, r.stdout);
  assert.equal(r.status, 2, r.stdout + r.stderr);
});

test('near miss: the example itself, and lines up to the limits, are analysed', () => {
  assert.equal(unanalysable(example), undefined);
  assert.equal(unanalysable(`${'x'.repeat(MAX_LINE_CHARS)}\n`.repeat(3)), undefined);
  assert.equal(unanalysable('\n'.repeat(MAX_LINES - 1)), undefined);
  assert.match(unanalysable('\n'.repeat(MAX_LINES)) ?? '', /more than 50,000 lines/);
  assert.match(unanalysable(`${'x'.repeat(MAX_LINE_CHARS + 1)}\n`) ?? '', /line 1 has 65,537 characters/);
  // Tabs, form feeds and CRLF are text; a mostly-control-character file is not.
  assert.equal(unanalysable(`int x;\t\f\r\n`.repeat(100)), undefined);
  assert.match(unanalysable('\x01\x02\x03int x;\n'.repeat(100)) ?? '', /binary content \(\d+% control characters\)/);
});

test('the document store keeps the reason and no tree (the language server says it)', async () => {
  const store = new DocumentStore(await loadCParser());
  try {
    const doc = store.open('file:///odd/one-line.bpf.c', `int a${' + 1'.repeat(40_000)};\n`, 1);
    assert.equal(doc.tree, null);
    assert.ok(doc.tooLarge);
    assert.match(doc.skipped ?? '', /line 1 has 160,\d{3} characters/);
    // Deleting the line makes it a document like any other.
    const fixed = store.change('file:///odd/one-line.bpf.c', 2, [{ text: 'int a = 1;\n' }]);
    assert.ok(fixed.tree);
    assert.equal(fixed.skipped, undefined);
  } finally {
    store.dispose();
  }
});

test('found by walking a directory, a binary .bpf.c is a warning: the other files decide the exit status', () => {
  const walk = join(dir, 'walk');
  mkdirSync(walk);
  writeFileSync(join(walk, 'binary.bpf.c'), binary(64 * 1024));
  writeFileSync(join(walk, 'ok.bpf.c'), '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n');
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ebpf-portability.js'), 'check', '--no-compile', walk], {
    encoding: 'utf8',
    cwd: root,
  });
  assert.match(r.stderr, /warning: .*binary\.bpf\.c: skipped: binary content/, r.stdout + r.stderr);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
