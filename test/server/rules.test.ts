/**
 * Rule tests on small BPF C snippets with inline expectations, against the real kernel database.
 * Every flagged case has a near miss beside it that must stay silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import type { Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, applyFix, assertFindings, builtinDb } from './expect';

const db = builtinDb;

async function check(code: string, settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, { rules: ['unsafe-kernel-deref', 'non-core-field-read'], settings, uri: 'file:///snippets/probe.bpf.c' });
}

const CORE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;

test('unsafe-kernel-deref: direct reads through a task pointer in a kprobe', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(trace_exit, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 ppid = task->real_parent->tgid;
            // ^^^^^^^^^^^^^^^^^^^^^^^ unsafe-kernel-deref: kprobe program may not dereference
    u32 pid = BPF_CORE_READ(task, tgid);
    u64 start = BPF_CORE_READ(task, real_parent, start_time);
    return ppid + pid + start;
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.equal(f[0].kernels.length, db.target('4.14-7.x', { arch: ['x86_64', 'arm64'] }).length, 'rejected on every target kernel');
  const fixed = applyFix(code, f[0]);
  assert.match(fixed, /u32 ppid = BPF_CORE_READ\(task, real_parent, tgid\);/);
  assert.deepEqual(await check(fixed), [], 'the fixed text is clean');
});

test('unsafe-kernel-deref: wrapper-macro arguments of kprobes are not BTF pointers; tp_btf ones are', async () => {
  const code = `${CORE}
SEC("kprobe/vfs_read")
int BPF_KPROBE(on_read, struct file *file)
{
    u64 ino = file->f_inode->i_ino;
           // ^^^^^^^^^^^^^^^^^^^^ unsafe-kernel-deref
    return ino;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    return prev->pid + next->real_parent->tgid;
}

SEC("fentry/vfs_read")
int BPF_PROG(fentry_read, struct file *file)
{
    return file->f_inode->i_ino;
}

SEC("lsm/file_open")
int BPF_PROG(on_open, struct file *file)
{
    return file->f_flags;
}
`;
  assertFindings(code, await check(code));
});

test('unsafe-kernel-deref: integer-made pointers are rejected even in fentry; bpf_get_current_task_btf is fine', async () => {
  const code = `${CORE}
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    struct task_struct *b = bpf_get_current_task_btf();
    return t->pid + b->pid + b->real_parent->pid;
        // ^^^^^^ unsafe-kernel-deref: not a BTF-typed pointer
}
`;
  assertFindings(code, await check(code));
});

test('unsafe-kernel-deref: silent on context structs, map values, own structs and BCC files', async () => {
  const code = `${CORE}
struct event { u32 pid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, struct event); } m SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int on_enter(struct trace_event_raw_sys_enter *ctx)
{
    u32 key = 0;
    struct event *e = bpf_map_lookup_elem(&m, &key);
    struct event local = {};
    if (!e)
        return 0;
    e->pid = ctx->id;
    local.pid = e->pid + (u32)ctx->args[0];
    return local.pid;
}

SEC("xdp")
int on_xdp(struct xdp_md *ctx)
{
    return ctx->data_end - ctx->data;
}

SEC("kprobe/do_exit")
int on_kprobe(struct pt_regs *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    char comm[16];
    bpf_probe_read_kernel_str(comm, sizeof(comm), &task->comm);
    return ctx->di + sizeof(task->pid) + bpf_core_field_exists(task->pid);
}
`;
  assertFindings(code, await check(code));
  const bcc = `#include <uapi/linux/ptrace.h>
#include <linux/sched.h>
BPF_PERF_OUTPUT(events);
int kprobe__do_exit(struct pt_regs *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return task->real_parent->tgid;
}
`;
  assertFindings(bcc, await check(bcc));
});

test('unsafe-kernel-deref: an address in parentheses is taken, not read; a read in parentheses is still a read', async () => {
  // Falco's modern probe takes `&(signal->thread_head)` of a pointer BPF_CORE_READ returned.
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct signal_struct *signal = BPF_CORE_READ(task, signal);
    struct list_head *head = &(signal->thread_head);
    struct list_head *twice = &((signal->thread_head));
    struct list_head *next = BPF_CORE_READ(head, next);
    int nr = (signal->nr_threads);
           // ^^^^^^^^^^^^^^^^^^ unsafe-kernel-deref
    return (long)next + (long)twice + nr;
}
`;
  assertFindings(code, await check(code));
});

test('non-core-field-read: a probe read of an address in parentheses gets the same CO-RE rewrite', async () => {
  const code = `#include <linux/sched.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    int pid = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), &(task->pid));
                                            // ^^^^^^^^^ non-core-field-read
    return pid;
}
`;
  const f = await check(code, { targetKernels: '5.4-6.8' });
  assertFindings(code, f);
  assert.match(f[0].fixes[0]?.title ?? '', /CO-RE|BPF_CORE_READ/, JSON.stringify(f[0].fixes.map((x) => x.title)));
});

test('non-core-field-read: kernel headers bake offsets in; the message gives them and the failing kernels', async () => {
  const code = `#include <linux/sched.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/do_exit")
int trace_exit(struct pt_regs *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u64 start = 0;
    bpf_probe_read_kernel(&start, sizeof(start), &task->start_time);
                                               // ^^^^^^^^^^^^^^^^ non-core-field-read: reads \`task_struct.start_time\` at a fixed offset
    return start;
}
`;
  const f = await check(code);
  assertFindings(code, f);
  // Offsets differ across the target, so it is an error naming those kernels.
  assert.equal(f[0].severity, 'error');
  assert.ok(f[0].kernels.length > 10);
  assert.match(f[0].message, /differs on \d+ of \d+ target kernels/);
  const fixed = applyFix(code, f[0]);
  assert.match(fixed, /BPF_CORE_READ_INTO\(&start, task, start_time\);/);
  assert.match(fixed, /#include <bpf\/bpf_tracing.h>\n#include <bpf\/bpf_core_read.h>\n/);
});

test('non-core-field-read: BPF_NO_PRESERVE_ACCESS_INDEX turns vmlinux.h types fixed; without it they relocate', async () => {
  const fixedCode = `#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/tcp_connect")
int BPF_KPROBE(on_connect, struct sock *sk)
{
    int rcvbuf = 0;
    u16 dport = 0;
    bpf_probe_read_kernel(&rcvbuf, sizeof(rcvbuf), &sk->sk_rcvbuf);
                                                 // ^^^^^^^^^^^^^ non-core-field-read: BPF_NO_PRESERVE_ACCESS_INDEX
    // Near miss: \`skc_dport\` sits at the same offset on every kernel with a known layout.
    bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
    return rcvbuf + dport;
}
`;
  const f = await check(fixedCode);
  assertFindings(fixedCode, f);
  assert.match(applyFix(fixedCode, f[0]), /BPF_CORE_READ_INTO\(&rcvbuf, sk, sk_rcvbuf\);/);
  const coreCode = fixedCode.replace('#define BPF_NO_PRESERVE_ACCESS_INDEX\n', '').replace(/\n\s*\/\/ \^+[^\n]*/, '');
  assertFindings(coreCode, await check(coreCode));
});

test('non-core-field-read: a ___flavor struct without preserve_access_index, and the one with it', async () => {
  const code = `${CORE}
struct task_struct___o {
    long state;
};

struct task_struct___x {
    unsigned int __state;
} __attribute__((preserve_access_index));

struct my_event {
    u32 pid;
};

SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct task_struct___o *o = (void *)t;
    struct task_struct___x *x = (void *)t;
    return o->state + x->__state;
        // ^^^^^^^^ non-core-field-read: local copy of struct task_struct___o
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.equal(f[0].fixes[0].title, 'Add __attribute__((preserve_access_index)) to struct task_struct___o');
  const fixed = applyFix(code, f[0]);
  assert.match(fixed, /struct task_struct___o \{\n {4}long state;\n\} __attribute__\(\(preserve_access_index\)\);/);
  assert.deepEqual(await check(fixed), [], 'the copy relocates now');
  // Near miss: the same copy read only through BPF_CORE_READ is relocated by the macro.
  const viaMacro = code
    .replace('return o->state + x->__state;', 'return BPF_CORE_READ(o, state) + x->__state;')
    .replace(/\n *\/\/ \^+[^\n]*/, '');
  assert.deepEqual(await check(viaMacro), []);
});

test('non-core-field-read: offsetof from <stddef.h> on a kernel struct is a compile-time constant', async () => {
  // <stddef.h> first: \`offsetof\` is \`__builtin_offsetof\`, not libbpf's relocatable macro.
  const code = `#include <stddef.h>
${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    void *t = (void *)bpf_get_current_task();
    u64 start = 0;
    bpf_probe_read_kernel(&start, sizeof(start), t + offsetof(struct task_struct, start_time));
                                                  // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ non-core-field-read: offsetof
    return start + bpf_core_field_offset(struct task_struct, start_time);
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.equal(f[0].fixes[0].safe, false, 'a run-time offset is not a drop-in for a constant');
});

test('rule settings: off silences a rule, a severity overrides it', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(trace_exit, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return task->tgid;
}
`;
  assert.equal((await check(code, { rules: { 'unsafe-kernel-deref': 'off' } })).length, 0);
  const w = await check(code, { rules: { 'unsafe-kernel-deref': 'warning' } });
  assert.deepEqual(
    w.map((x) => [x.rule, x.severity]),
    [['unsafe-kernel-deref', 'warning']],
  );
});

test('fixes keep surrounding casts and parentheses and handle `.` members', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(trace_exit, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u64 rt = (u64)(task->se.sum_exec_runtime);
                // ^^^^^^^^^^^^^^^^^^^^^^^^^ unsafe-kernel-deref
    return rt;
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.match(applyFix(code, f[0]), /u64 rt = \(u64\)\(BPF_CORE_READ\(task, se\.sum_exec_runtime\)\);/);
});
