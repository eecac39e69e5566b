/**
 * The bundled language server over real LSP (stdio): open a document, receive diagnostics,
 * request code actions, apply the edit, and see the diagnostic go; settings per document;
 * survival on anything a user can type.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { applyEdits } from './expect';
import { position, TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');

interface WireAction {
  title: string;
  kind: string;
  isPreferred?: boolean;
  edit: {
    documentChanges: {
      textDocument: { uri: string; version: number };
      edits: { range: { start: { line: number; character: number }; end: { line: number; character: number } }; newText: string }[];
    }[];
  };
}

test('diagnostics, quick fix, applied edit, diagnostic gone', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///work/examples/process-tracer.bpf.c';
    c.open(uri, example);
    const diags = await c.diagnostics(uri, (d) => d.length > 0);
    const at = position(example, 'task->real_parent->tgid');
    const d = diags.find((x) => x.range.start.line === at.line && x.range.start.character === at.character);
    assert.ok(d, `a diagnostic at ${JSON.stringify(at)}; got ${JSON.stringify(diags.map((x) => [x.code, x.range.start]))}`);
    assert.equal(d.code, 'unsafe-kernel-deref');
    assert.equal(d.source, 'ebpf-portability');
    assert.equal(d.severity, 1);
    assert.match(d.codeDescription?.href ?? '', /docs\/rules\/unsafe-kernel-deref\.md$/);
    // The count of failing kernels travels; their ~80 names do not (the message says "every kernel").
    assert.ok((d.data?.failing ?? 0) > 40, 'the number of failing kernels travels with the diagnostic');
    assert.deepEqual(Object.keys(d.data ?? {}), ['failing']);
    assert.match(d.message, /every kernel/);
    // The whole message travels: the headline the Problems list shows, the details the hover adds.
    const [headline, ...details] = d.message.split('\n');
    assert.match(headline, /^`task->real_parent->tgid` reads struct task_struct memory directly; /);
    assert.ok(headline.length <= 120, headline);
    assert.match(details.join('\n'), /Read it with BPF_CORE_READ\(\)/);
    // The BTF-typed reads in the tp_btf program are not flagged.
    const btfLine = position(example, 'parent->pid').line;
    assert.ok(!diags.some((x) => x.range.start.line === btfLine && /deref|field-read/.test(String(x.code))));

    const actions = await c.conn.sendRequest<WireAction[]>('textDocument/codeAction', {
      textDocument: { uri },
      range: d.range,
      context: { diagnostics: [d], only: ['quickfix'] },
    });
    const fix = actions.find((a) => a.title === 'Read with BPF_CORE_READ(task, real_parent, tgid)');
    assert.ok(fix, `quick fix offered; got ${actions.map((a) => a.title).join(' | ')}`);
    assert.equal(fix.kind, 'quickfix');
    assert.equal(fix.isPreferred, true);
    const edited = applyEdits(example, fix.edit.documentChanges[0].edits);
    assert.match(edited, /e->ppid = BPF_CORE_READ\(task, real_parent, tgid\);/);
    c.change(uri, 2, [{ text: edited }]);
    const after = await c.diagnostics(uri, () => true, 2);
    assert.ok(!after.some((x) => x.range.start.line === at.line), 'the fixed line is clean');
    assert.ok(
      after.some((x) => x.code === 'unsafe-kernel-deref'),
      'the other direct read is still flagged',
    );

    // Fix-all applies every safe fix at once.
    const all = await c.conn.sendRequest<WireAction[]>('textDocument/codeAction', {
      textDocument: { uri },
      range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
      context: { diagnostics: [], only: ['source.fixAll'] },
    });
    assert.equal(all.length, 1);
    assert.equal(all[0].kind, 'source.fixAll.ebpf-portability');
    const fixedAll = applyEdits(edited, all[0].edit.documentChanges[0].edits);
    c.change(uri, 3, [{ text: fixedAll }]);
    // Every fixable problem is gone (what remains, e.g. ringbuf helpers before 5.8, has no fix).
    assert.deepEqual(
      (await c.diagnostics(uri, () => true, 3)).filter((x) => x.code === 'unsafe-kernel-deref' || x.code === 'non-core-field-read'),
      [],
    );
  } finally {
    await c.stop();
  }
});

test('incremental edits update diagnostics', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///work/t/incremental.bpf.c';
    // x86-64 Debian and Ubuntu from 5.8 all have kprobes configured (config-required is quiet).
    c.settings = { targetKernels: '5.8-7.x', architectures: ['x86_64'], distros: ['debian', 'ubuntu'] };
    const text =
      '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n\nSEC("kprobe/do_exit")\nint probe(struct pt_regs *ctx)\n{\n    struct task_struct *t = (void *)bpf_get_current_task();\n    return 0;\n}\n';
    c.open(uri, text);
    assert.deepEqual(await c.diagnostics(uri, () => true, 1), []);
    const at = position(text, 'return 0;', 'return '.length);
    // Type the read character by character, as a person would.
    const typed = 't->pid';
    for (let i = 0; i < typed.length; i++) {
      c.change(uri, 2 + i, [
        {
          range: {
            start: { line: at.line, character: at.character + i },
            end: { line: at.line, character: at.character + i + (i === 0 ? 1 : 0) },
          },
          text: typed[i],
        },
      ]);
    }
    const d = await c.diagnostics(uri, (x) => x.length === 1, 1 + typed.length);
    assert.equal(d[0].code, 'unsafe-kernel-deref');
    assert.deepEqual(d[0].range.start, at);
  } finally {
    await c.stop();
  }
});

test('settings per document: target, rule severities, and bad values reported, not fatal', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///work/t/settings.bpf.c';
    c.settings = { rules: { 'unsafe-kernel-deref': 'warning' }, targetKernels: '6.1' };
    c.open(uri, example);
    const d = await c.diagnostics(uri, (x) => x.length > 0);
    assert.ok(
      d.every((x) => x.severity === 2),
      'warning severity from settings',
    );
    // The default target fails on more than 40 kernels (above); 6.1 is a handful.
    assert.ok(
      d.every((x) => x.data!.failing > 0 && x.data!.failing < 20),
      'only 6.1 kernels targeted',
    );

    c.settings = { targetKernels: '4.14-', rules: { 'no-such-rule': 'error' } };
    void c.conn.sendNotification('workspace/didChangeConfiguration', { settings: {} });
    const d2 = await c.diagnostics(uri, (x) => x.length > 0 && x[0].severity === 1);
    assert.ok(d2.length > 0, 'falls back to the default target');
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(
      c.messages.some((m) => /malformed target "4\.14-"/.test(m.message)),
      JSON.stringify(c.messages),
    );
    assert.ok(c.messages.some((m) => /unknown rule "no-such-rule"/.test(m.message)));
  } finally {
    await c.stop();
  }
});

test('a client without workspace/configuration uses initialization or didChangeConfiguration settings', async () => {
  const c = await TestClient.start(undefined, false);
  try {
    const uri = 'file:///work/t/noconf.bpf.c';
    void c.conn.sendNotification('workspace/didChangeConfiguration', {
      settings: { ebpfPortability: { rules: { 'unsafe-kernel-deref': 'off' } } },
    });
    c.open(uri, example);
    const d = await c.diagnostics(uri, () => true, 1);
    assert.ok(!d.some((x) => x.code === 'unsafe-kernel-deref'));
  } finally {
    await c.stop();
  }
});

test('the server survives anything a user can type', async () => {
  const c = await TestClient.start();
  try {
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('latin1');
    const cases: [string, string][] = [
      ['file:///t/empty.bpf.c', ''],
      ['file:///t/binary.bpf.c', garbage],
      ['file:///t/half.bpf.c', example.slice(0, Math.floor(example.length / 2))],
      [
        'file:///t/unbalanced.bpf.c',
        '#include "vmlinux.h"\nSEC("kprobe/x") int f(struct pt_regs *ctx) { struct task_struct *t = 0; return t->',
      ],
      ['file:///t/huge.bpf.c', `#include "vmlinux.h"\n${'int x;\n'.repeat(1_600_000)}`],
      ['file:///t/macros.bpf.c', '#define A(x) x->y\n#define B A(\n'.repeat(100)],
    ];
    for (const [uri, text] of cases) c.open(uri, text);
    for (const [uri] of cases) await c.diagnostics(uri, () => true, 1, 30000);
    // Still serving: a real document still gets its findings.
    c.open('file:///t/after.bpf.c', example);
    assert.ok((await c.diagnostics('file:///t/after.bpf.c', (x) => x.length > 0)).length > 0);
    assert.ok(
      c.messages.some((m) => /too large/.test(m.message)),
      'the 10 MB file is reported as too large',
    );
    assert.equal(c.proc.exitCode, null, 'server still running');
  } finally {
    await c.stop();
  }
});

test('plain C files are left alone', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///t/main.c';
    c.open(uri, '#include <stdio.h>\nstruct task_struct { int pid; };\nint main(void) { struct task_struct *t = 0; return t->pid; }\n');
    assert.deepEqual(await c.diagnostics(uri, () => true, 1), []);
  } finally {
    await c.stop();
  }
});

test('`ebpf-portability lsp --stdio` is the same server', async () => {
  const c = await TestClient.start([join(root, 'bin', 'ebpf-portability.js'), 'lsp', '--stdio']);
  try {
    const uri = 'file:///t/cli.bpf.c';
    c.open(uri, example);
    assert.ok((await c.diagnostics(uri, (x) => x.length > 0)).some((x) => x.code === 'unsafe-kernel-deref'));
  } finally {
    await c.stop();
  }
});

test('hover shows availability across the target kernels', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///t/hover.bpf.c';
    const text = `#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n\nstruct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");\n\nSEC("fentry/do_exit")\nint BPF_PROG(on_exit, long code)\n{\n    struct task_struct *t = bpf_get_current_task_btf();\n    long s = t->__state;\n    bpf_ringbuf_output(&rb, &s, sizeof(s), 0);\n    return 0;\n}\n`;
    c.open(uri, text);
    await c.diagnostics(uri, () => true, 1);
    type H = { contents: { kind: string; value: string }; range: unknown } | null;
    const field = await c.conn.sendRequest<H>('textDocument/hover', { textDocument: { uri }, position: position(text, '__state', 2) });
    assert.ok(field);
    assert.equal(field.contents.kind, 'markdown');
    assert.match(field.contents.value, /\*\*task_struct\.__state\*\* on 81 target kernels/);
    assert.match(field.contents.value, /missing on \d+: 4\.15/);
    assert.match(field.contents.value, /named `state`/);
    assert.match(field.contents.value, /type: `unsigned int`/);
    const helper = await c.conn.sendRequest<H>('textDocument/hover', {
      textDocument: { uri },
      position: position(text, 'bpf_ringbuf_output', 3),
    });
    assert.match(helper?.contents.value ?? '', /helper bpf_ringbuf_output[\s\S]*since 5\.8/);
    const sec = await c.conn.sendRequest<H>('textDocument/hover', { textDocument: { uri }, position: position(text, 'fentry/do_exit', 2) });
    assert.match(sec?.contents.value ?? '', /SEC\("fentry\/do_exit"\)[\s\S]*BPF_PROG_TYPE_TRACING/);
    const nothing = await c.conn.sendRequest<H>('textDocument/hover', { textDocument: { uri }, position: position(text, 'long code', 1) });
    assert.equal(nothing, null, 'plain C words get no hover');
  } finally {
    await c.stop();
  }
});

test('a header edit changes the findings of the documents that include it: in the editor, on disk, and through a project include path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-lsp-header-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'include', 'net'), { recursive: true });
  const header = join(dir, 'include', 'net', 'aliases.h');
  writeFileSync(header, '#pragma once\n');
  writeFileSync(join(dir, 'compile_flags.txt'), '-Iinclude\n');
  const text = `#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <net/aliases.h>
char LICENSE[] SEC("license") = "GPL";
SEC("kprobe/tcp_connect")
int BPF_KPROBE(on_connect, struct sock *sk)
{
    return BPF_CORE_READ(sk, sk_family);
}
`;
  const c = await TestClient.start();
  try {
    const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
    const missing = (d: { code?: string | number }[]) => d.some((x) => x.code === 'field-missing-in-range');
    c.open(uri, text);
    // The header (found through compile_flags.txt's -Iinclude) does not define the alias yet.
    await c.diagnostics(uri, missing);
    // Typed into the open header, not saved: the program's finding goes.
    const hUri = pathToFileURL(header).href;
    c.open(hUri, '#pragma once\n');
    c.change(hUri, 2, [{ text: '#pragma once\n#define sk_family __sk_common.skc_family\n' }]);
    await c.diagnostics(uri, (d) => !missing(d));
    // Closed without saving: the disk's version (no alias) applies again.
    void c.conn.sendNotification('textDocument/didClose', { textDocument: { uri: hUri } });
    await c.diagnostics(uri, missing);
    // Saved by another program: the watched-files notification brings the disk's new text.
    writeFileSync(header, '#pragma once\n#define sk_family __sk_common.skc_family\n');
    void c.conn.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: hUri, type: 2 }] });
    await c.diagnostics(uri, (d) => !missing(d));
    // Changed on disk with no word from the client (one that watches no files): what the disk
    // said is reused for a second at most, so an edit after that sees the header's new text.
    writeFileSync(header, '#pragma once\n');
    await new Promise((r) => setTimeout(r, 1100));
    c.change(uri, 2, [{ text: `${text}\n` }]);
    await c.diagnostics(uri, missing, 2);
  } finally {
    await c.stop();
  }
});

const clangOnPath = (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, 'clang')));

/** Polls `probe` until it answers (a bound against a hang, not a measure of speed). */
async function eventually<T>(probe: () => T | undefined, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The example program on disk in a directory removed after the test, beside a compiler that
 * writes its pid to `pidFile` and then takes its time.
 */
function slowCompilerProject(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-lsp-slow-compiler-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tracer.bpf.c');
  const text = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');
  writeFileSync(file, text);
  const pidFile = join(dir, 'compiler.pid');
  const compiler = join(dir, 'slow-clang');
  writeFileSync(compiler, `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 120\n`, { mode: 0o755 });
  return { file, text, pidFile, compiler };
}

/** The stand-in compiler's pid once it has started, else undefined. */
function compilerPid(pidFile: string): number | undefined {
  return existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined;
}

/** Whether process `pid` runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('an edit stops the object pass of the text on disk: the configured compiler is killed, and the log says why', {
  skip: process.platform === 'win32' ? 'skipped: the stand-in compiler is a shell script' : false,
}, async (t) => {
  const { file, text, pidFile, compiler } = slowCompilerProject(t);
  const c = await TestClient.start();
  try {
    c.settings = { architectures: ['x86_64'], clangPath: compiler };
    const uri = pathToFileURL(file).href;
    c.open(uri, text);
    await c.diagnostics(uri);
    // The object pass starts after the first diagnostics, on the text on disk.
    const pid = await eventually(() => compilerPid(pidFile), 'the compile');
    assert.ok(alive(pid), 'the stand-in compiler runs');
    c.change(uri, 2, [{ text: `${text}\n` }]);
    await eventually(() => (alive(pid) ? undefined : true), 'the compiler to be stopped');
    await eventually(
      () => c.logs.find((l) => /object pass stopped: the document changed while it was compiled or checked/.test(l.message)),
      'the log line',
    );
    // The edited text is analysed as usual.
    await c.diagnostics(uri, undefined, 2);
  } finally {
    await c.stop();
  }
});

test('settings that come late stop the object pass run with the settings used meanwhile, and it runs again with them', {
  skip: process.platform === 'win32' ? 'skipped: the stand-in compiler is a shell script' : false,
}, async (t) => {
  const { file, text, pidFile, compiler } = slowCompilerProject(t);
  // Meanwhile the server has the settings the editor sent at start, which compile.
  const c = await TestClient.start(undefined, true, undefined, { settings: { architectures: ['x86_64'], clangPath: compiler } });
  try {
    c.holdConfiguration = true;
    // The editor's answer, when it comes: no object pass.
    c.settings = { architectures: ['x86_64'], clangPath: compiler, compile: 'off' };
    const uri = pathToFileURL(file).href;
    c.open(uri, text);
    await c.diagnostics(uri, undefined, 1, 20_000);
    const pid = await eventually(() => compilerPid(pidFile), 'the compile with the settings sent at start');
    rmSync(pidFile);
    c.releaseConfiguration();
    await eventually(() => (alive(pid) ? undefined : true), 'the compiler to be stopped');
    // Not started again (the answer turns the object pass off), and nothing said about the stop.
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!existsSync(pidFile), 'the object pass ran again with compile: off');
    assert.ok(!c.logs.some((l) => /object pass stopped/.test(l.message)), c.logs.map((l) => l.message).join('\n'));
  } finally {
    await c.stop();
  }
});

/** test/fixtures/objects/relocations.bpf.c written to a directory removed after the test. */
function relocationsOnDisk(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-lsp-object-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'relocations.bpf.c');
  const text = readFileSync(join(root, 'test', 'fixtures', 'objects', 'relocations.bpf.c'), 'utf8');
  writeFileSync(file, text);
  return { file, text, uri: pathToFileURL(file).href };
}

/** The lines of the member findings, with "object" where the object pass decided them. */
function members(d: { code?: string | number; range: { start: { line: number } }; data?: { basis?: string } }[]): string {
  return d
    .filter((x) => x.code === 'field-missing-in-range')
    .map((x) => `${x.range.start.line + 1}${x.data?.basis ? ` ${x.data.basis}` : ''}`)
    .join(',');
}

test('object pass in the server: on open and on save, in the background; its verdicts hold until the next edit', {
  skip: clangOnPath ? false : 'skipped: clang is not installed',
}, async (t) => {
  const { file, text, uri } = relocationsOnDisk(t);
  const c = await TestClient.start();
  try {
    c.settings = { architectures: ['x86_64'] };
    c.open(uri, text);
    // The compiled object follows the raw __builtin_preserve_field_info guard the source pass cannot.
    await c.diagnostics(uri, (d) => members(d) === '18 object', undefined, 60000);
    // An unsaved edit: the object no longer describes the text; the source pass speaks alone.
    const edited = text.replace('return r;', 'return r + 1;');
    c.change(uri, 2, [{ text: edited }]);
    await c.diagnostics(uri, (d) => members(d) === '16,17', 2);
    // Saved: compiled again.
    writeFileSync(file, edited);
    void c.conn.sendNotification('textDocument/didSave', { textDocument: { uri } });
    await c.diagnostics(uri, (d) => members(d) === '18 object', undefined, 60000);
  } finally {
    await c.stop();
  }
});

test('object pass in the server: an edit stops it, and an undo back to the text on disk runs it again without a save', {
  skip: clangOnPath ? false : 'skipped: clang is not installed',
}, async (t) => {
  const { text, uri } = relocationsOnDisk(t);
  const c = await TestClient.start();
  try {
    c.settings = { architectures: ['x86_64'] };
    c.open(uri, text);
    await c.diagnostics(uri, (d) => members(d) === '16,17');
    // Typed at once, before the object is ready: the pass of the text on disk stops.
    c.change(uri, 2, [{ text: text.replace('return r;', 'return r + 1;') }]);
    await eventually(() => c.logs.find((l) => /relocations\.bpf\.c: object pass stopped/.test(l.message)), 'the pass to stop');
    await c.diagnostics(uri, (d) => members(d) === '16,17', 2);
    // Undone: the text is the file's again, and its object is compiled and checked.
    c.change(uri, 3, [{ text }]);
    await c.diagnostics(uri, (d) => members(d) === '18 object', undefined, 60000);
  } finally {
    await c.stop();
  }
});
