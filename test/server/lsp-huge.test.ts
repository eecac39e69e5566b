/**
 * Huge, odd and hostile files over real LSP: a 20 MB C file, a 3 MB `vmlinux.h` opened by mistake (under
 * the size and line limits, so only what it is keeps it from being parsed) and a binary file
 * named `.bpf.c`, all open while a small program is edited. The small program still gets its
 * diagnostics (no timing is asserted: they must arrive), the odd files hold no tree and get empty
 * diagnostics, and the output channel says why each was not analysed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { notAProgram } from '../../server/src/parse/inputLimits';
import { position, TestClient } from './lsp-client';
import { binaryText, fakeVmlinuxH } from './odd-files';

const root = join(__dirname, '..', '..');
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');

test('a vmlinux.h is never parsed as a program, whatever its size; other headers are', () => {
  assert.match(notAProgram('file:///p/vmlinux.h') ?? '', /not a BPF program/);
  assert.ok(notAProgram('file:///p/x86/vmlinux_601.h'));
  assert.equal(notAProgram('file:///p/common.h'), undefined);
  assert.equal(notAProgram('file:///p/vmlinux.h.bak'), undefined);
  assert.equal(notAProgram('file:///p/vmlinux.bpf.c'), undefined);
});

test('a 20 MB C file, a 3 MB vmlinux.h and a binary .bpf.c open: another document still gets diagnostics, the output says why each was skipped', async () => {
  const c = await TestClient.start();
  try {
    c.settings = { compile: 'off' };
    const huge = 'file:///work/huge/huge.bpf.c';
    const vmlinux = 'file:///work/huge/vmlinux.h';
    const blob = 'file:///work/huge/blob.bpf.c';
    const small = 'file:///work/huge/small.bpf.c';
    const hugeText = example.repeat(Math.ceil((20 * 1024 * 1024) / example.length));
    const header = fakeVmlinuxH(3 * 1024 * 1024);
    assert.ok(hugeText.length >= 20 * 1024 * 1024);
    assert.ok(header.length >= 3 * 1024 * 1024 && header.split('\n').length < 50_000, 'under the size and line limits');
    c.open(huge, hugeText);
    c.open(vmlinux, header);
    c.open(blob, binaryText(4 * 1024 * 1024));
    c.open(small, example);
    const diags = await c.diagnostics(small, (d) => d.length > 0, 1, 120000);
    assert.ok(diags.some((d) => d.code === 'unsafe-kernel-deref'));
    for (const uri of [huge, vmlinux, blob]) assert.deepEqual(await c.diagnostics(uri, () => true, 1, 120000), []);

    // Edits on the huge file and on the small one: the small one's answer still comes.
    c.change(huge, 2, [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '// typed\n' }]);
    c.change(vmlinux, 2, [{ range: { start: { line: 2, character: 0 }, end: { line: 2, character: 0 } }, text: '/* typed */\n' }]);
    const at = position(example, 'task->real_parent->tgid');
    const edited = example.replace('\te->ppid = task->real_parent->tgid;', '\te->ppid = BPF_CORE_READ(task, real_parent, tgid);');
    c.change(small, 2, [{ text: edited }]);
    const after = await c.diagnostics(small, () => true, 2, 120000);
    assert.ok(!after.some((d) => d.range.start.line === at.line), 'the edit is analysed');
    assert.deepEqual(await c.diagnostics(huge, () => true, 2, 120000), []);
    assert.deepEqual(await c.diagnostics(vmlinux, () => true, 2, 120000), []);

    // Why, in the output channel for each; a warning for the two BPF files only.
    const log = c.logs.map((l) => l.message).join('\n');
    assert.match(log, /huge\.bpf\.c: not analysed: too large: 2\d\.\d MB \(the limit is 5\.\d MB\)/);
    assert.match(log, /vmlinux\.h: not analysed: a vmlinux\.h \(kernel type declarations\) is not a BPF program/);
    assert.match(log, /blob\.bpf\.c: not analysed: binary content \(a NUL byte at offset 0\)/);
    const warnings = c.messages.map((m) => m.message).join('\n');
    assert.match(warnings, /huge\.bpf\.c: skipped: too large/);
    assert.match(warnings, /blob\.bpf\.c: skipped: binary content/);
    assert.doesNotMatch(warnings, /vmlinux/);

    // Only the small program holds a tree.
    const stats = await c.conn.sendRequest<{ documents: number; trees: number; headerTrees: number }>('ebpfPortability/stats');
    assert.equal(stats.documents, 4);
    assert.equal(stats.trees - stats.headerTrees, 1, JSON.stringify(stats));
    assert.equal(c.proc.exitCode, null, 'the server is still running');
  } finally {
    await c.stop();
  }
});

test('hostile includes and a bad project file over LSP: diagnostics still come, the warnings name each header and key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-lsp-hostile-'));
  const c = await TestClient.start();
  try {
    c.settings = { compile: 'off' };
    assert.equal(spawnSync('mkfifo', [join(dir, 'fifo.h')]).status, 0);
    mkdirSync(join(dir, 'dir.h'));
    symlinkSync('loop.h', join(dir, 'loop.h'));
    writeFileSync(join(dir, '.ebpf-portability.json'), JSON.stringify({ targetKernels: '6.x-4.14', colour: 'red' }));
    const text = example.replace(
      '#include <bpf/bpf_helpers.h>\n',
      '#include <bpf/bpf_helpers.h>\n#include "/dev/zero"\n#include "/proc/self/mem"\n#include "fifo.h"\n#include "dir.h"\n#include "loop.h"\n',
    );
    const path = join(dir, 'prog.bpf.c');
    writeFileSync(path, text);
    const uri = pathToFileURL(path).href;
    c.open(uri, text);
    const diags = await c.diagnostics(uri, (d) => d.length > 0, 1, 120000);
    assert.ok(diags.some((d) => d.code === 'unsafe-kernel-deref'));
    const said = c.messages.map((m) => m.message).join('\n');
    assert.match(said, /header \/dev\/zero not read: not a regular file \(a character device\)/);
    assert.match(said, /header \/proc\/self\/mem not read: cannot read/);
    assert.match(said, /fifo\.h not read: not a regular file \(a FIFO\)/);
    assert.match(said, /dir\.h not read: not a regular file \(a directory\)/);
    assert.match(said, /loop\.h not read: a loop of symbolic links/);
    assert.match(said, /\.ebpf-portability\.json: unknown key "colour"/);
    assert.match(said, /\.ebpf-portability\.json: targetKernels: malformed target "6\.x-4\.14"/);
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
