/**
 * `check` loses nothing: `--fix` changes only the bytes of its edits (an encoding it does not
 * know, the file's line endings, its mode), one file's failure is that file's alone, and inputs
 * that are not regular files (FIFOs, sockets, devices, endless /proc files) are refused quickly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyEditsToBytes, decodeSource } from '../../server/src/analysis/fixall';

const root = join(__dirname, '..', '..');

/** The bundled CLI in a child process; `maxRssKb` is its peak memory (a preloaded script reports it). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = root) {
  assert.ok(existsSync(join(root, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
  const preload = join(scratch, 'rss.js');
  const r = spawnSync(process.execPath, ['--require', preload, join(root, 'bin', 'ebpf-portability.js'), ...args], {
    encoding: 'utf8',
    cwd,
    // A hang (a FIFO read without O_NONBLOCK) is killed here and fails on its status: time
    // itself is the bench's to measure, never a test's.
    timeout: 120_000,
    env: { ...process.env, EBPF_PORTABILITY_HOME: join(scratch, 'no-user-kernels'), ...env },
  });
  const rss = /maxrss=(\d+)\n/.exec(r.stderr);
  return {
    status: r.status ?? -1,
    stdout: r.stdout,
    stderr: r.stderr.replace(/maxrss=\d+\n/, ''),
    maxRssKb: rss ? Number(rss[1]) : Number.NaN,
  };
}

const scratch = mkdtempSync(join(tmpdir(), 'ebpf-losses-'));
writeFileSync(
  join(scratch, 'rss.js'),
  "process.on('exit', () => require('fs').writeSync(2, 'maxrss=' + process.resourceUsage().maxRSS + '\\n'));\n",
);
test.after(() => rmSync(scratch, { recursive: true, force: true }));

/** A kprobe reading `t->pid` directly: the fix rewrites the read and adds bpf_core_read.h. */
const program = (comment: string, eol: string) =>
  [
    '#include "vmlinux.h"',
    '#include <bpf/bpf_helpers.h>',
    comment,
    'SEC("kprobe/do_sys_open")',
    'int prog(struct pt_regs *ctx) {',
    '  struct task_struct *t = (void *)bpf_get_current_task();',
    '  return t->pid;',
    '}',
    'char LICENSE[] SEC("license") = "GPL";',
    '',
  ].join(eol);

/** `bytes` with `find` (the first time) replaced and `line` inserted after `after`, byte for byte. */
function expectedFix(bytes: Buffer, eol: string): Buffer {
  const replace = (b: Buffer, find: string, by: string) => {
    const at = b.indexOf(find, 0, 'latin1');
    assert.ok(at >= 0, find);
    return Buffer.concat([b.subarray(0, at), Buffer.from(by, 'latin1'), b.subarray(at + find.length)]);
  };
  const helpers = `#include <bpf/bpf_helpers.h>${eol}`;
  return replace(replace(bytes, 't->pid', 'BPF_CORE_READ(t, pid)'), helpers, `${helpers}#include <bpf/bpf_core_read.h>${eol}`);
}

test('check --fix changes only the bytes of its edits: Latin-1 bytes stay, CRLF stays CRLF, mode and symlink kept', () => {
  const dir = join(scratch, 'fix');
  mkdirSync(dir);
  writeFileSync(join(dir, 'vmlinux.h'), '');
  // Latin-1: é (E9) and © (A9) are not UTF-8; a UTF-8 rewrite would turn them into EF BF BD.
  const latin1 = Buffer.from(program('/* caf\u00e9 \u00a9 2024 */', '\n'), 'latin1');
  assert.ok(latin1.includes(Buffer.from([0xe9])) && latin1.includes(Buffer.from([0xa9])));
  const crlf = Buffer.from(program('/* d\u00e9j\u00e0 vu, in UTF-8 */', '\r\n'), 'utf8');
  writeFileSync(join(dir, 'latin1.bpf.c'), latin1);
  writeFileSync(join(dir, 'real-crlf.bpf.c'), crlf);
  chmodSync(join(dir, 'latin1.bpf.c'), 0o640);
  chmodSync(join(dir, 'real-crlf.bpf.c'), 0o604);
  // A symbolic link to the CRLF file is fixed through: the link stays a link.
  symlinkSync('real-crlf.bpf.c', join(dir, 'crlf.bpf.c'));
  const inode = statSync(join(dir, 'latin1.bpf.c')).ino;

  const r = cli(['check', '--no-compile', '--fix', 'latin1.bpf.c', 'crlf.bpf.c'], {}, dir);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /fixed 2 files/);

  assert.deepEqual(readFileSync(join(dir, 'latin1.bpf.c')), expectedFix(latin1, '\n'), 'Latin-1 file: only the edits changed');
  assert.deepEqual(readFileSync(join(dir, 'real-crlf.bpf.c')), expectedFix(crlf, '\r\n'), 'CRLF file: only the edits changed, with CRLF');
  assert.equal(statSync(join(dir, 'latin1.bpf.c')).mode & 0o777, 0o640, 'mode kept');
  assert.equal(statSync(join(dir, 'real-crlf.bpf.c')).mode & 0o777, 0o604, 'mode kept');
  assert.ok(lstatSync(join(dir, 'crlf.bpf.c')).isSymbolicLink(), 'the link is still a link');
  assert.notEqual(statSync(join(dir, 'latin1.bpf.c')).ino, inode, 'replaced by rename, not rewritten in place');
});

test('fix edits map text offsets to bytes exactly (multi-byte UTF-8, astral characters, Latin-1)', () => {
  const edit = (text: string, find: string, newText: string) => {
    const at = text.indexOf(find);
    const before = text.slice(0, at).split('\n');
    const line = before.length - 1;
    const character = before[line].length;
    return { range: { start: { line, character }, end: { line, character: character + find.length } }, newText };
  };
  const utf8 = Buffer.from('/* \u00e9\u{1F600}\u4e2d */\nint x = a->b;\n/* \u00fc */ int y = c->d;\n', 'utf8');
  const src = decodeSource(utf8);
  assert.equal(src.encoding, 'utf8');
  const out = applyEditsToBytes(src, [edit(src.text, 'c->d', 'R(c, d)'), edit(src.text, 'a->b', 'R(a, b)')]);
  assert.equal(Buffer.from(out).toString('utf8'), '/* \u00e9\u{1F600}\u4e2d */\nint x = R(a, b);\n/* \u00fc */ int y = R(c, d);\n');
  // Bytes that are not UTF-8 decode one character per byte, and come back as they were.
  const raw = Buffer.from([0x2f, 0x2a, 0xff, 0xfe, 0x2a, 0x2f, 0x0a, 0x61, 0x2d, 0x3e, 0x62, 0x0a]);
  const l1 = decodeSource(raw);
  assert.equal(l1.encoding, 'latin1');
  assert.deepEqual(
    Buffer.from(applyEditsToBytes(l1, [edit(l1.text, 'a->b', 'R(a, b)')])),
    Buffer.concat([raw.subarray(0, 7), Buffer.from('R(a, b)\n')]),
  );
  // A fix that the file's encoding cannot hold is refused, never written lossily.
  assert.throws(() => applyEditsToBytes(l1, [edit(l1.text, 'a->b', '\u4e2d')]), /encoding/);
  assert.throws(() => applyEditsToBytes(src, [edit(src.text, 'a->b', 'x'), edit(src.text, 'x = a', 'y')]), /overlap/);
});

test('one bad file never hides the others: per-file errors, the rule that threw named, the other findings printed', () => {
  const dir = join(scratch, 'batch');
  mkdirSync(dir);
  writeFileSync(join(dir, 'vmlinux.h'), '');
  writeFileSync(join(dir, 'good.bpf.c'), program('/* good */', '\n'));
  // A function in the license section (this crashed the whole run before).
  writeFileSync(join(dir, 'bad.bpf.c'), '#include <bpf/bpf_helpers.h>\nSEC("license")\nint f(void) { return 0; }\n');

  const plain = cli(['check', '--no-compile', '--format', 'json', 'good.bpf.c', 'bad.bpf.c'], {}, dir);
  assert.equal(plain.status, 1, plain.stderr);
  const doc = JSON.parse(plain.stdout);
  assert.deepEqual(
    doc.files.map((f: { path: string; errors?: unknown }) => [f.path, f.errors]),
    [
      ['good.bpf.c', undefined],
      ['bad.bpf.c', undefined],
    ],
  );
  const good = doc.files[0].diagnostics.map((d: { rule: string }) => d.rule);
  assert.ok(good.includes('unsafe-kernel-deref'), good.join());

  // A rule that throws (the test hook): it alone loses its findings, in each file.
  const hook = { EBPF_PORTABILITY_TEST_THROW: 'unsafe-kernel-deref' };
  const json = cli(['check', '--no-compile', '--format', 'json', 'good.bpf.c', 'bad.bpf.c'], hook, dir);
  assert.equal(json.status, 2, 'an incomplete check exits 2');
  const failed = JSON.parse(json.stdout);
  for (const f of failed.files) {
    assert.ok(f.errors.length > 0, f.path);
    for (const e of f.errors) {
      assert.equal(e.rule, 'unsafe-kernel-deref');
      assert.match(e.message, /EBPF_PORTABILITY_TEST_THROW makes unsafe-kernel-deref throw/);
    }
  }
  const rules = failed.files[0].diagnostics.map((d: { rule: string }) => d.rule);
  assert.ok(!rules.includes('unsafe-kernel-deref'));
  assert.ok(rules.length > 0, 'the other rules still report the direct read');

  const text = cli(['check', '--no-compile', 'good.bpf.c', 'bad.bpf.c'], hook, dir);
  assert.equal(text.status, 2);
  assert.match(text.stderr, /^good\.bpf\.c: error: rule unsafe-kernel-deref failed \(in prog\(\): /m);
  assert.match(text.stderr, /^bad\.bpf\.c: error: rule unsafe-kernel-deref failed/m);
  assert.match(text.stdout, /^good\.bpf\.c:7:10: error: /m, "the other rules' findings are printed");
  assert.match(text.stdout, /2 files checked/);
});

test('FIFOs, sockets, devices and endless /proc files as inputs and includes end (never block) and stay small', async () => {
  const dir = join(scratch, 'special');
  mkdirSync(dir);
  writeFileSync(join(dir, 'vmlinux.h'), '');
  const fifo = join(dir, 'pipe.c');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const server = createServer();
  await new Promise<void>((res) => server.listen(join(dir, 'sock.c'), res));
  try {
    writeFileSync(join(dir, 'ok.bpf.c'), program('/* ok */', '\n'));
    writeFileSync(
      join(dir, 'includes.bpf.c'),
      `#include "/proc/self/pagemap"\n#include "/proc/self/mem"\n#include "/dev/zero"\n${program('/* inc */', '\n')}`,
    );
    const runs: [string[], number, RegExp, RegExp][] = [
      [[fifo], 2, /pipe\.c: not a regular file \(a FIFO\)/, /^/],
      [['/dev/zero'], 2, /\/dev\/zero: not a regular file \(a character device\)/, /^/],
      [[join(dir, 'sock.c')], 2, /sock\.c: not a regular file \(a socket\)/, /^/],
      // A directory: the FIFO and the socket skipped with a message, the programs checked.
      [
        [dir],
        1,
        /pipe\.c: skipped: not a regular file \(a FIFO\)[\s\S]*sock\.c: skipped: not a regular file \(a socket\)/,
        /2 files checked/,
      ],
      [[join(dir, 'includes.bpf.c')], 1, /^/, /1 file checked/],
    ];
    for (const [args, status, err, out] of runs) {
      const r = cli(['check', '--no-compile', ...args]);
      assert.equal(r.status, status, `${args}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, err, args.join(' '));
      assert.match(r.stdout, out, args.join(' '));
      assert.ok(r.maxRssKb < 200 * 1024, `${args}: ${r.maxRssKb} KiB`);
    }
    const add = cli(['db', 'add', '/dev/zero', '--user-dir', join(dir, 'store')]);
    assert.equal(add.status, 2);
    assert.match(add.stderr, /\/dev\/zero: not a regular file \(a character device\)/);
    assert.ok(add.maxRssKb < 200 * 1024, `${add.maxRssKb} KiB`);
  } finally {
    server.close();
  }
});
