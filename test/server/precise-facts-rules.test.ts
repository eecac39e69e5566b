/**
 * Precise facts the rules rest on, each against the built database: subscripts inside member
 * chains (`rss_stat.count[1].counter`, `subsys[0]->cgroup`), `___flavor` names matched as libbpf
 * matches them, helpers only sleepable programs may call, the helpers CO-RE macros call, and BTF
 * pointers cast to a larger struct. Each has a finding and a near miss that stays silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import type { Settings } from '../../server/src/driver/settings';
import { essentialName, typeLevels } from '../../server/src/analysis/ctypes';
import { allowedSince } from '../../server/src/rules/helper-unavailable';
import { analyzeSnippet, assertFindings, builtinDb } from './expect';

async function check(code: string, rules: string[], settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, { rules, settings, uri: 'file:///snippets/precise.bpf.c' });
}

/** The snippet without its caret lines. */
function bare(code: string): string {
  return code.replace(/\n *\/\/ \^+[^\n]*/g, '');
}

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";
`;

/** Kernels whose `mm_struct.rss_stat` is an array (`struct percpu_counter[4]`, 6.2 on). */
function rssArrayKernels(): string[] {
  return builtinDb.kernels.filter((k) => !k.user && /\[/.test(builtinDb.fieldOn('mm_struct', 'rss_stat', k).type ?? '')).map((k) => k.name);
}

// ---- subscripts in member chains ---------------------------------------------------------------

test('subscripts: BPF_CORE_READ(mm, rss_stat.count[1].counter) fails where rss_stat became an array (6.2 on)', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    struct mm_struct *mm = BPF_CORE_READ(t, mm);
    long c = BPF_CORE_READ(mm, rss_stat.count[1].counter);
          // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-type-changed-in-range: \`mm_struct.rss_stat\` is \`struct mm_rss_stat\` on
    return c;
}
`;
  const rules = ['field-type-changed-in-range', 'field-missing-in-range', 'type-missing-in-range'];
  const f = await check(code, rules);
  assertFindings(code, f);
  assert.equal(f[0].severity, 'error');
  assert.match(f[0].message, /`struct percpu_counter\[4\]` on \d+ \(6\.2/);
  const arrays = new Set(rssArrayKernels());
  assert.ok(f[0].kernels.length > 0 && f[0].kernels.every((k) => arrays.has(k)), 'only kernels where rss_stat is an array fail');
  // Near miss: up to 6.1, rss_stat is struct mm_rss_stat everywhere.
  assert.deepEqual(await check(bare(code), rules, { targetKernels: '4.14-6.1' }), []);
});

test('subscripts: mm->rss_stat.count[1].counter in fentry is reported at the member whose kind changed', async () => {
  const code = `${HEAD}
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct mm_struct *mm = t->mm;
    return mm->rss_stat.count[1].counter;
        // ^^^^^^^^^^^^ field-type-changed-in-range: CO-RE does not match members of incompatible kinds
}
`;
  const f = await check(code, ['field-type-changed-in-range', 'field-missing-in-range'], { targetKernels: '5.11-7.x' });
  assertFindings(code, f);
  const arrays = new Set(rssArrayKernels());
  assert.ok(f[0].kernels.every((k) => arrays.has(k)));
});

test('subscripts: links after an array of pointers are checked (css_set.subsys[0]->cgroup->kn->id), and a subscript ends a chain', async () => {
  const code = `${HEAD}
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    u64 id = t->cgroups->subsys[0]->cgroup->kn->id;
          // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-type-changed-in-range: \`kernfs_node.id\` is \`u64\`
    return id + t->cpus_mask.bits[0];
             // ^^^^^^^^^^^^ field-missing-in-range: \`task_struct.cpus_mask\` is missing
}
`;
  const rules = ['field-type-changed-in-range', 'field-missing-in-range'];
  const f = await check(code, rules);
  assertFindings(code, f);
  for (const x of f) assert.deepEqual(x.kernels, ['kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64']);
  // Near miss: from 5.11 on, every member of both chains exists with one kind.
  assert.deepEqual(await check(bare(code), rules, { targetKernels: '5.11-7.x' }), []);
});

test('subscripts: BPF_CORE_READ(t, cpus_mask.bits[0]) checks cpus_mask (5.3 on); silent where it exists', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return BPF_CORE_READ(t, cpus_mask.bits[0]);
        // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range: \`task_struct.cpus_mask\` is missing
}
`;
  const rules = ['field-missing-in-range', 'field-type-changed-in-range'];
  const f = await check(code, rules);
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('ubuntu-4.15.0-20-generic-amd64'));
  assert.ok(!f[0].kernels.some((k) => k.startsWith('debian-')));
  assert.deepEqual(await check(bare(code), rules, { targetKernels: '5.8-7.x' }), []);
});

test('type strings: levels of arrays and pointers', () => {
  assert.equal(typeLevels('struct percpu_counter[4]'), 1);
  assert.equal(typeLevels('struct cgroup_subsys_state *[14]'), 2);
  assert.equal(typeLevels('struct mm_rss_stat'), 0);
  assert.equal(typeLevels('const char **'), 2);
});

// ---- ___flavor names ---------------------------------------------------------------------------

test('___flavor: the essential name is what precedes the last ___ with a non-underscore on both sides', () => {
  assert.equal(essentialName('task_struct___old'), 'task_struct');
  assert.equal(essentialName('trace_event_raw_kmalloc___x'), 'trace_event_raw_kmalloc');
  assert.equal(essentialName('a___b___c'), 'a___b');
  assert.equal(essentialName('x____y'), 'x____y');
  assert.equal(essentialName('BPF_FUNC_ringbuf_output___v2'), 'BPF_FUNC_ringbuf_output');
  assert.equal(essentialName('__sk_buff'), '__sk_buff');
  assert.equal(essentialName('a___'), 'a___');
});

test('___flavor: a flavored type is its kernel type for existence; silent under bpf_core_type_exists of the flavor', async () => {
  const code = `${HEAD}
struct trace_event_raw_kmalloc___x {
    unsigned long call_site;
} __attribute__((preserve_access_index));

SEC("tp_btf/kmalloc")
int BPF_PROG(on_kmalloc, unsigned long call_site)
{
    void *p = (void *)ctx;
    if (bpf_core_type_exists(struct trace_event_raw_kmalloc___x)) {
        struct trace_event_raw_kmalloc___x *r = p;
        return BPF_CORE_READ(r, call_site);
    }
    return 0;
}

SEC("tp_btf/kmalloc")
int BPF_PROG(unguarded, unsigned long call_site)
{
    void *p = (void *)ctx;
    struct trace_event_raw_kmalloc___x *r = p;
 // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ type-missing-in-range: struct trace_event_raw_kmalloc is missing
    return BPF_CORE_READ(r, call_site);
}
`;
  const f = await check(code, ['type-missing-in-range', 'field-missing-in-range'], { targetKernels: '5.11-7.x' });
  assertFindings(code, f);
});

test('___flavor: enum and value names in bpf_core_enum_value_exists are matched without their flavors', async () => {
  const code = `${HEAD}
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");

enum bpf_func_id___x { BPF_FUNC_ringbuf_output___y = 130 };

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 v = code;
    if (bpf_core_enum_value_exists(enum bpf_func_id___x, BPF_FUNC_ringbuf_output___y))
        bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
    bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
 // ^^^^^^^^^^^^^^^^^^ helper-unavailable: \`bpf_ringbuf_output\` is missing
    return 0;
}
`;
  assertFindings(code, await check(code, ['helper-unavailable']));
});

// ---- sleepable-only helpers --------------------------------------------------------------------

test('helper-unavailable: bpf_copy_from_user only in sleepable programs (fentry.s, lsm.s); bpf_ima_inode_hash in lsm', async () => {
  const code = `${HEAD}
SEC("fentry/do_sys_openat2")
int BPF_PROG(open_entry, int dfd, const char *filename)
{
    char buf[16];
    bpf_copy_from_user(buf, sizeof(buf), filename);
 // ^^^^^^^^^^^^^^^^^^ helper-unavailable: SEC("fentry/do_sys_openat2") is not one
    return 0;
}

SEC("fentry.s/do_sys_openat2")
int BPF_PROG(open_entry_s, int dfd, const char *filename)
{
    char buf[16];
    bpf_copy_from_user(buf, sizeof(buf), filename);
    return 0;
}

SEC("lsm/file_open")
int BPF_PROG(file_open, struct file *file)
{
    char hash[32];
    bpf_ima_inode_hash(file->f_inode, hash, sizeof(hash));
 // ^^^^^^^^^^^^^^^^^^ helper-unavailable: \`bpf_ima_inode_hash\` may sleep
    return 0;
}

SEC("lsm.s/file_open")
int BPF_PROG(file_open_s, struct file *file)
{
    char hash[32];
    bpf_ima_inode_hash(file->f_inode, hash, sizeof(hash));
    return 0;
}
`;
  const f = await check(code, ['helper-unavailable'], { targetKernels: '5.11-7.x' });
  assertFindings(code, f);
  for (const x of f) {
    assert.equal(x.fixes.length, 0, 'no guard fix for a call that fails on every kernel');
    assert.match(x.message, /helper call might sleep in a non-sleepable prog/);
  }
  assert.match(f.find((x) => /copy_from_user/.test(x.message))!.message, /bpf_probe_read_user\(\)/);
});

// ---- helpers the CO-RE macros call -------------------------------------------------------------

test('helper-unavailable: BPF_CORE_READ calls bpf_probe_read_kernel, which XDP may not call where libbpf falls back to bpf_probe_read', async () => {
  const code = `${HEAD}
SEC("xdp")
int xdp_prog(struct xdp_md *ctx)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    int a = BPF_CORE_READ(t, pid);
         // ^^^^^^^^^^^^^ helper-unavailable: \`BPF_CORE_READ()\` reads with the helper \`bpf_probe_read_kernel\`
    int b = BPF_CORE_READ(t, tgid);
    return a + b;
}

SEC("xdp")
int xdp_explicit(struct xdp_md *ctx)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    int pid = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), &t->pid);
 // ^^^^^^^^^^^^^^^^^^^^^ helper-unavailable: the loader calls \`bpf_probe_read\` instead
    return pid + BPF_CORE_READ(t, tgid);
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return BPF_CORE_READ(t, pid);
}
`;
  const f = await check(code, ['helper-unavailable']);
  // bpf_get_current_task is not an XDP helper either: only the probe reads are looked at here.
  assertFindings(
    code,
    f.filter((x) => !/bpf_get_current_task/.test(x.message)),
  );
  const macro = f.find((x) => /BPF_CORE_READ\(\)/.test(x.message))!;
  assert.ok(macro.kernels.includes('ubuntu-5.4.0-26-generic-amd64'));
  assert.ok(!macro.kernels.some((k) => k.startsWith('debian-')), 'XDP may call bpf_probe_read_kernel from 5.8 on');
  assert.deepEqual(macro.fixes, []);
});

test('helper-unavailable: the probe reads join networking programs from 5.8 (the curated floor); tracing programs have them from the start', () => {
  const fact = builtinDb.facts.helper('bpf_probe_read_kernel')!;
  assert.equal(allowedSince(fact, 'BPF_PROG_TYPE_XDP', builtinDb.facts), '5.8');
  assert.equal(allowedSince(fact, 'BPF_PROG_TYPE_SCHED_CLS', builtinDb.facts), '5.8');
  assert.equal(allowedSince(fact, 'BPF_PROG_TYPE_KPROBE', builtinDb.facts), undefined);
});

test('helper-unavailable: BPF_CORE_READ in a non-GPL program calls a GPL-only helper', async () => {
  const code = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Proprietary";
//   ^^^^^^^ helper-unavailable: License "Proprietary" is not GPL-compatible

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return BPF_CORE_READ(t, pid) + BPF_CORE_READ(t, tgid);
}
`;
  const f = await check(code, ['helper-unavailable'], { targetKernels: '5.8-7.x' });
  assertFindings(code, f);
  assert.ok(f[0].related?.some((r) => r.message === 'calls `bpf_probe_read_kernel` (through BPF_CORE_READ()), which is GPL-only'));
  // Near miss: the same reads under a GPL-compatible license.
  const gpl = bare(code).replace('"Proprietary"', '"Dual BSD/GPL"');
  assert.deepEqual(await check(gpl, ['helper-unavailable'], { targetKernels: '5.8-7.x' }), []);
});

test('unsafe-kernel-deref: a BTF pointer cast to a larger struct and read past the struct the verifier knows', async () => {
  const code = `${HEAD}
SEC("fentry/tcp_sendmsg")
int BPF_PROG(send, struct sock *sk)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    u32 srtt = tp->srtt_us;
//             ^^^^^^^^^^^ unsafe-kernel-deref: reads past struct sock, the type the verifier knows
    u32 via_core = BPF_CORE_READ(tp, srtt_us);
    struct tcp_sock *real = bpf_skc_to_tcp_sock(sk);
    u32 checked = real ? real->srtt_us : 0;
    u16 family = tp->inet_conn.icsk_inet.sk.__sk_common.skc_family;
    return srtt + via_core + checked + family + sk->__sk_common.skc_num;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(send_kprobe, struct sock *sk)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    return BPF_CORE_READ(tp, srtt_us);
}
`;
  const f = await check(code, ['unsafe-kernel-deref']);
  assertFindings(code, f);
  assert.match(f[0].message, /srtt_us` is at offset \d+ of struct tcp_sock, past the \d+ bytes of struct sock/);
  assert.ok(f[0].kernels.includes('debian-6.1.0-56-amd64'));
  assert.ok(!f[0].kernels.some((k) => k.startsWith('ubuntu-4.')), 'kernels without fentry are prog-type-unavailable territory');
});
