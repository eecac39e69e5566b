/**
 * What the editor extension gets from the server over real LSP (stdio): the rule code actions
 * ("Disable <rule> for this line", "Show documentation"), the Deprecated tag, hovers on CO-RE
 * macro members and guarded reads, and settings problems as a status notification (named, with
 * the architecture filter kept) instead of warning messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyEdits } from './expect';
import { position, TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const server = [join(root, 'dist', 'server.js'), '--stdio'];
const EDITOR = { showRuleDocCommand: true, statusNotification: true };
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');

interface Action {
  title: string;
  kind?: string;
  command?: { command: string; arguments?: unknown[] };
  edit?: { documentChanges: { edits: { range: { start: { line: number; character: number } }; newText: string }[] }[] };
}
type Hover = { contents: { value: string } } | null;

test('a client that answers the warning message request with an error does not stop the server', async () => {
  const c = await TestClient.start();
  try {
    c.refuseMessages = true;
    c.settings = { targetKernels: 'banana' };
    const uri = 'file:///t/refused.bpf.c';
    c.open(uri, example);
    await c.diagnostics(uri, (d) => d.length > 0);
    for (let i = 0; i < 50 && c.messages.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      c.messages.some((m) => /banana/.test(m.message)),
      'the bad target is reported with a message request',
    );
    // The server is still there: a second document gets its diagnostics.
    const other = 'file:///t/after.bpf.c';
    c.open(other, example);
    assert.ok((await c.diagnostics(other, (d) => d.length > 0)).length > 0);
    assert.doesNotMatch(c.stderr, /Unhandled|unhandled/);
  } finally {
    await c.stop();
  }
});

test('code actions: disable the rule for this line, show its documentation; legacy-probe-read is deprecated', async () => {
  const c = await TestClient.start(server, true, undefined, EDITOR);
  try {
    const uri = 'file:///t/actions.bpf.c';
    c.open(uri, example);
    const diags = await c.diagnostics(uri, (d) => d.length > 0);
    const at = position(example, 'task->real_parent->tgid');
    const d = diags.find((x) => x.range.start.line === at.line && x.code === 'unsafe-kernel-deref')!;
    assert.ok(d);
    const actions = await c.conn.sendRequest<Action[]>('textDocument/codeAction', {
      textDocument: { uri },
      range: d.range,
      context: { diagnostics: [d], only: ['quickfix'] },
    });
    const disable = actions.find((a) => a.title === 'Disable unsafe-kernel-deref for this line');
    assert.ok(disable?.edit, `offered: ${actions.map((a) => a.title).join(' | ')}`);
    const edits = disable.edit.documentChanges[0].edits;
    const fixed = applyEdits(example, edits as never);
    const line = example.split('\n')[at.line];
    const indent = /^\s*/.exec(line)![0];
    assert.ok(fixed.includes(`${indent}// ebpf-portability-disable-next-line unsafe-kernel-deref\n${line}\n`), fixed);
    // The comment silences it: the same line has no finding of the rule afterwards.
    c.change(uri, 2, [{ text: fixed }]);
    const after = await c.diagnostics(uri, () => true, 2);
    assert.ok(!after.some((x) => x.range.start.line === at.line + 1 && x.code === 'unsafe-kernel-deref'));
    const doc = actions.find((a) => a.title === 'Show documentation for unsafe-kernel-deref');
    assert.deepEqual(doc?.command, {
      title: 'Show documentation for unsafe-kernel-deref',
      command: 'ebpfPortability.showRuleDoc',
      arguments: ['unsafe-kernel-deref'],
    });
    // No fix title shows markdown backticks.
    assert.ok(
      actions.every((a) => !a.title.includes('`')),
      actions.map((a) => a.title).join(' | '),
    );

    // legacy-probe-read is about a deprecated helper: tagged so editors strike it through.
    const legacy = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(on_open, int dfd, const char *filename)
{
    char name[64];
    bpf_probe_read_str(name, sizeof(name), filename);
    return name[0];
}
char LICENSE[] SEC("license") = "GPL";
`;
    const luri = 'file:///t/legacy.bpf.c';
    c.open(luri, legacy);
    const ld = await c.diagnostics(luri, (x) => x.length > 0);
    const tagged = ld.find((x) => x.code === 'legacy-probe-read') as { tags?: number[] } | undefined;
    assert.deepEqual(tagged?.tags, [2]);
    // Near miss: other rules are not deprecated.
    assert.ok(diags.every((x) => !(x as { tags?: number[] }).tags));
  } finally {
    await c.stop();
  }
});

test('code actions: a client without the documentation command gets no "Show documentation"; an existing disable comment gets the rule added', async () => {
  const c = await TestClient.start(server);
  try {
    const uri = 'file:///t/plain-client.bpf.c';
    const line = example.split('\n').find((l) => l.includes('task->real_parent->tgid'))!;
    const text = example.replace(line, `${/^\s*/.exec(line)![0]}// ebpf-portability-disable-next-line non-core-field-read\n${line}`);
    c.open(uri, text);
    const diags = await c.diagnostics(uri, (d) => d.length > 0);
    const at = position(text, 'task->real_parent->tgid');
    const d = diags.find((x) => x.range.start.line === at.line && x.code === 'unsafe-kernel-deref')!;
    assert.ok(d);
    const actions = await c.conn.sendRequest<Action[]>('textDocument/codeAction', {
      textDocument: { uri },
      range: d.range,
      context: { diagnostics: [d], only: ['quickfix'] },
    });
    assert.ok(!actions.some((a) => a.title.startsWith('Show documentation')));
    const disable = actions.find((a) => a.title === 'Disable unsafe-kernel-deref for this line');
    const fixed = applyEdits(text, disable!.edit!.documentChanges[0].edits as never);
    assert.match(fixed, /\/\/ ebpf-portability-disable-next-line non-core-field-read, unsafe-kernel-deref\n/);
  } finally {
    await c.stop();
  }
});

test('hover: members named in CO-RE macros, the guard around a read, one version never on both lists', async () => {
  const c = await TestClient.start(server, true, undefined, EDITOR);
  try {
    const uri = 'file:///t/hover-core.bpf.c';
    const text = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *task = (void *)bpf_get_current_task();
    u64 t = BPF_CORE_READ(task, start_time);
    u64 v = BPF_CORE_READ(task, se.vruntime);
    if (bpf_core_field_exists(task->__state))
        t += BPF_CORE_READ(task, __state);
    u64 *e = bpf_ringbuf_reserve(&rb, sizeof(u64), 0);
    if (e)
        bpf_ringbuf_submit(e, 0);
    return t + v;
}
char LICENSE[] SEC("license") = "GPL";
`;
    c.open(uri, text);
    await c.diagnostics(uri);
    const hover = (needle: string, delta = 1, nth = 0) =>
      c.conn.sendRequest<Hover>('textDocument/hover', { textDocument: { uri }, position: position(text, needle, delta, nth) });
    assert.match((await hover('start_time'))?.contents.value ?? '', /^\*\*task_struct\.start_time\*\* on \d+ target kernels/);
    assert.match((await hover('vruntime'))?.contents.value ?? '', /^\*\*sched_entity\.vruntime\*\*/);
    assert.match((await hover('se.vruntime'))?.contents.value ?? '', /^\*\*task_struct\.se\*\*/);
    // Near miss: the macro's source argument is not a member.
    assert.equal(await hover('task, start_time'), null);
    // The read under bpf_core_field_exists says so, and that every kernel it runs on has the member.
    const guarded = (await hover('__state);'))?.contents.value ?? '';
    assert.match(
      guarded,
      /guarded by `bpf_core_field_exists\(task->__state\)`: this code runs on (\d+) of the (\d+) target kernels, all of which have the member/,
    );
    // bpf_ringbuf_reserve: builds of 4.19 differ; no version is listed as both present and missing.
    const rb = (await hover('bpf_ringbuf_reserve'))?.contents.value ?? '';
    const lists = (re: RegExp) => (re.exec(rb)?.[1] ?? '').replace(/\(.*?\)|the builds? .*$/g, '');
    const present = lists(/- present on \d+: ([^\n]*)/);
    const missing = lists(/- missing on \d+: ([^\n]*)/);
    assert.ok(present && missing, rb);
    assert.match(rb, /- present on \d+: [^\n]*the build kylin-v10sp3-4\.19/);
    for (const v of present.match(/\d+\.\d+/g) ?? [])
      assert.ok(!new RegExp(`(^|[ ,–])${v.replace('.', '\\.')}([ ,–]|$)`).test(missing), `${v} on both lists:\n${rb}`);
  } finally {
    await c.stop();
  }
});

test('settings problems the client has from the start are named too: the settings are asked for while the server starts', async () => {
  const c = await TestClient.start(server, true, undefined, EDITOR);
  try {
    const uri = 'file:///t/status-first.bpf.c';
    // A value only the settings' validation rejects (not the target's resolution).
    c.settings = { loader: 'bpftool' };
    c.open(uri, example);
    const first = await c.status((s) => s.uri === uri);
    assert.ok(
      first.problems.some((p) => /loader/.test(p)),
      `the first status names the bad setting: ${JSON.stringify(first.problems)}`,
    );
  } finally {
    await c.stop();
  }
});

test('settings problems: one status names each bad setting, the architecture filter is kept, no warning messages', async () => {
  const c = await TestClient.start(server, true, undefined, EDITOR);
  try {
    const uri = 'file:///t/status.bpf.c';
    c.settings = { targetKernels: '6.1', architectures: ['x86_64'] };
    c.open(uri, example);
    const good = await c.status((s) => s.uri === uri);
    assert.deepEqual(good.problems, []);
    assert.equal(good.target, '6.1');
    assert.deepEqual(good.architectures, ['x86_64']);
    const x86 = good.kernels;
    assert.ok(x86 > 0);

    // A bad target falls back to the default target on the same architectures, and says so.
    c.settings = { targetKernels: 'banana', architectures: ['x86_64'], loader: 'bpftool' };
    void c.conn.sendNotification('workspace/didChangeConfiguration', { settings: {} });
    const bad = await c.status((s) => s.uri === uri && s.problems.length > 0);
    assert.ok(
      bad.problems.some((p) => /targetKernels/.test(p) && /banana/.test(p)),
      bad.problems.join('\n'),
    );
    assert.ok(
      bad.problems.some((p) => /loader/.test(p)),
      bad.problems.join('\n'),
    );
    c.settings = { architectures: ['x86_64'] };
    void c.conn.sendNotification('workspace/didChangeConfiguration', { settings: {} });
    const all = await c.status((s) => s.uri === uri && s.problems.length === 0 && s.target !== '6.1');
    assert.equal(bad.kernels, all.kernels, 'the fallback keeps the architecture filter');

    // An architecture no kernel has is blamed, not the target.
    c.settings = { architectures: ['x86'] };
    void c.conn.sendNotification('workspace/didChangeConfiguration', { settings: {} });
    const arch = await c.status((s) => s.uri === uri && s.problems.some((p) => /"x86"/.test(p)));
    assert.ok(
      arch.problems.every((p) => !/^targetKernels/.test(p)),
      arch.problems.join('\n'),
    );
    assert.match(arch.problems.join('\n'), /architectures: no kernel is "x86" \(known: [^)]*x86_64/);
    // The client shows them: the server sends no warning message of its own.
    assert.deepEqual(c.messages, []);
  } finally {
    await c.stop();
  }
});
