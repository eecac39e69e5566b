/**
 * Call and feature rules with real kernel facts from the built database: helper-unavailable,
 * kfunc-unavailable, legacy-probe-read, the verifier-feature-unavailable group and kernel-version-gate.
 * Each has a finding that names the kernels that break, a near miss that stays silent, and a
 * guarded variant that stays silent; fixes are applied and re-checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Finding } from '../../server/src/analysis/model';
import { DEFAULT_SETTINGS, type Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, applyFix, assertFindings } from './expect';

/** Findings of the given rules only (other rules have their own tests). */
async function check(code: string, rules: string[], settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, { rules, settings, uri: 'file:///snippets/calls.bpf.c' });
}

/** The snippet without its caret lines. */
function bare(code: string): string {
  return code.replace(/\n *\/\/ \^+[^\n]*/g, '');
}

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");
`;
const GPL = '\nchar LICENSE[] SEC("license") = "GPL";\n';

// ---- helper-unavailable ------------------------------------------------------------------------

test('helper-unavailable: bpf_ringbuf_output is missing before 5.8, except on the backported openEuler 4.19', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 v = code;
    bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
 // ^^^^^^^^^^^^^^^^^^ helper-unavailable: \`bpf_ringbuf_output\` is missing on 14 of 81 kernels
    return 0;
}
${GPL}`;
  const f = await check(code, ['helper-unavailable']);
  assertFindings(code, f);
  const names = f[0].kernels;
  assert.ok(
    names.includes('ubuntu-4.15.0-20-generic-amd64') &&
      names.includes('centos8-4.18.0-147.5.1.el8_1-arm64') &&
      names.includes('ubuntu-5.4.0-26-generic-amd64'),
  );
  assert.ok(!names.includes('kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64'), 'Kylin V10 SP3 backports the helper');
  assert.ok(!names.some((n) => /^debian-/.test(n)), 'every Debian kernel is 5.10 or newer');
  assert.match(f[0].message, /backported to 4\.19 \(openEuler 4\.19\)/);
  // The RINGBUF map itself fails on these kernels, so a guard around the call would not make the
  // object load there: the fix narrows the file's target instead, and the narrowed file is silent.
  assert.deepEqual(
    f[0].fixes.map((x) => [x.title.replace(/ \(.*/, ''), x.safe]),
    [["Narrow this file's target to 5.8+", false]],
  );
  const fixed = applyFix(bare(code), (await check(bare(code), ['helper-unavailable']))[0]);
  assert.match(fixed, /^\/\/ ebpf-portability: target=5\.8\+\n#include "vmlinux.h"/);
  assert.deepEqual(await analyzeSnippet(fixed, { uri: 'file:///snippets/calls.bpf.c' }), []);
  // Near miss: a target from 5.8 on has it everywhere.
  assert.deepEqual(await check(bare(code), ['helper-unavailable'], { targetKernels: '5.8-7.x' }), []);
});

test('helper-unavailable: bpf_printk with more than three arguments calls bpf_trace_vprintk (5.16); with three it does not', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    bpf_printk("%ld %d %d %d", code, 1, 2, 3);
 // ^^^^^^^^^^ helper-unavailable: \`bpf_printk()\` calls \`bpf_trace_vprintk\`, which is missing on
    bpf_printk("%ld %d %d", code, 1, 2);
    return 0;
}
${GPL}`;
  const f = await check(code, ['helper-unavailable']);
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('debian-5.10.0-46-amd64'), '5.10 has no bpf_trace_vprintk');
  assert.ok(!f[0].kernels.some((k) => /^debian-(6|7)\./.test(k)), 'every 6.x and 7.x kernel has it');
  assert.match(f[0].message, /With more than three arguments, libbpf's `bpf_printk\(\)` expands to a call of `bpf_trace_vprintk`/);
});

test('helper-unavailable: one cause in one function is one finding; the other calls are related, and its fix guards them all', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    bpf_send_signal(9);
 // ^^^^^^^^^^^^^^^ helper-unavailable: (3 calls in this function.)
    bpf_send_signal(9);
    if (code)
        bpf_send_signal(15);
    return 0;
}

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(other)
{
    bpf_send_signal(9);
 // ^^^^^^^^^^^^^^^ helper-unavailable: is missing on
    return 0;
}
${GPL}`;
  const targets = { targetKernels: '5.8+' } as const;
  // Near miss first: the ring buffer map of HEAD fails before 5.8, so the whole default target
  // would make the guard useless (see the test above); from 5.8 on, the map loads everywhere.
  assert.deepEqual(await check(code, ['helper-unavailable'], targets), []);
  const wide = { targetKernels: '4.14-7.x' } as const;
  const f = await check(code, ['helper-unavailable', 'map-type-unavailable'], wide);
  // Where the map fails too, the guard cannot help: none is offered.
  assert.ok(f.some((x) => x.rule === 'map-type-unavailable'));
  const noMap = code.replace(/struct \{\n[^}]*\} rb SEC\("\.maps"\);\n/, '');
  const g = await check(noMap, ['helper-unavailable'], wide);
  assertFindings(noMap, g);
  const grouped = g.find((x) => x.message.includes('3 calls'))!;
  assert.deepEqual(
    grouped.related?.map((r) => r.range.start.line),
    [2, 4].map((d) => grouped.range.start.line + d),
  );
  assert.ok(grouped.fixes[0].safe, 'whole call statements are guarded safely');
  assert.equal(grouped.fixes[0].edits.length, 3 * g.find((x) => x !== grouped)!.fixes[0].edits.length);
  const fixed = applyFix(bare(noMap), (await check(bare(noMap), ['helper-unavailable'], wide)).find((x) => x.message.includes('3 calls'))!);
  assert.equal(fixed.match(/if \(bpf_core_enum_value_exists\(enum bpf_func_id, BPF_FUNC_send_signal\)\)/g)?.length, 3);
  // The call under an unbraced `if` keeps its braces (a following `else` would stay with its `if`).
  assert.match(fixed, /if \(code\)\n {8}\{\n {8}if \(bpf_core_enum_value_exists/);
  assert.equal((await check(fixed, ['helper-unavailable'], wide)).length, 1, 'only the other function is left');
});

test('helper-unavailable: silent under the enum guard, after an early return, and in a helper called only under the guard', async () => {
  const code = `${HEAD}
static __always_inline void emit(u64 v)
{
    bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 v = code;
    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output))
        bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output))
        emit(v);
    if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_reserve))
        return 0;
    u64 *e = bpf_ringbuf_reserve(&rb, sizeof(u64), 0);
    if (e)
        bpf_ringbuf_submit(e, 0);
    return 0;
}
${GPL}`;
  assertFindings(code, await check(code, ['helper-unavailable']));
});

test('helper-unavailable: a call whose value is used gets no guard fix (later code would read an undefined value); declarations get none', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 *e;
    e = bpf_ringbuf_reserve(&rb, sizeof(u64), 0);
     // ^^^^^^^^^^^^^^^^^^^ helper-unavailable: missing
    u64 t = bpf_ktime_get_boot_ns();
         // ^^^^^^^^^^^^^^^^^^^^^ helper-unavailable: it came in 5.8
    if (e)
        *e = t;
    return 0;
}
${GPL}`;
  const f = await check(code, ['helper-unavailable']);
  assertFindings(code, f);
  assert.ok(
    f[0].fixes.every((x) => !/only on kernels that have it/.test(x.title)),
    'later code reads e',
  );
  assert.ok(
    f[1].fixes.every((x) => !/only on kernels that have it/.test(x.title)),
    'a declaration cannot be wrapped',
  );
});

test('helper-unavailable: a static function called only by raw_tp programs may call only what raw_tp may; one fentry also calls is not judged by one type', async () => {
  const code = `${HEAD}
static __always_inline __u64 cookie_of(struct sock *sk)
{
    return bpf_get_socket_cookie(sk);
        // ^^^^^^^^^^^^^^^^^^^^^ helper-unavailable: raw_tp programs (BPF_PROG_TYPE_RAW_TRACEPOINT) may not call \`bpf_get_socket_cookie\`
}

static __always_inline __u64 shared_cookie(struct sock *sk)
{
    return bpf_get_socket_cookie(sk);
}

static __always_inline __u64 fentry_cookie(struct sock *sk)
{
    return bpf_get_socket_cookie(sk);
}

SEC("raw_tp/tcp_destroy_sock")
int BPF_PROG(on_destroy, struct sock *sk) { return cookie_of(sk) + shared_cookie(sk); }

SEC("fentry/tcp_close")
int BPF_PROG(on_close, struct sock *sk) { return shared_cookie(sk) + fentry_cookie(sk); }
${GPL}`;
  const f = await check(code, ['helper-unavailable'], { targetKernels: 'debian-6.1.0-56-amd64,debian-7.3.4-amd64' });
  assertFindings(code, f);
});

test('helper-unavailable: program types — XDP may not call bpf_get_current_comm; LSM gets the tracing helpers', async () => {
  const code = `${HEAD}
SEC("xdp")
int on_xdp(struct xdp_md *ctx)
{
    char comm[16];
    bpf_get_current_comm(comm, sizeof(comm));
 // ^^^^^^^^^^^^^^^^^^^^ helper-unavailable: xdp programs (BPF_PROG_TYPE_XDP) may not call \`bpf_get_current_comm\`: the verifier rejects the load on all 81 kernels
    return XDP_PASS;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    char comm[16];
    bpf_get_current_comm(comm, sizeof(comm));
    return 0;
}

SEC("lsm/file_open")
int BPF_PROG(on_open, struct file *file)
{
    u64 v = 1;
    bpf_perf_event_output(ctx, &rb, BPF_F_CURRENT_CPU, &v, sizeof(v));
    return 0;
}
${GPL}`;
  const f = await check(code, ['helper-unavailable'], { targetKernels: '4.14-7.x' });
  assertFindings(code, f);
  assert.equal(f[0].kernels.length, 81);
  assert.deepEqual(f[0].fixes, [], 'a guard cannot fix a helper the program type may not call');
});

test('helper-unavailable: a per-program-type floor — bpf_get_attach_cookie in fentry programs from 5.19', async () => {
  const code = `${HEAD}
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    return bpf_get_attach_cookie(ctx);
        // ^^^^^^^^^^^^^^^^^^^^^ helper-unavailable: may call \`bpf_get_attach_cookie\` only since 5.19
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit_kp, long code)
{
    return bpf_get_attach_cookie(ctx);
}
${GPL}`;
  const f = await check(code, ['helper-unavailable'], { targetKernels: '5.15-7.x' });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('arch-5.17.9-arch1-1-x86_64') && f[0].kernels.includes('vanilla-ci-5.18.4-x86_64'));
  assert.ok(!f[0].kernels.some((n) => /6\.\d+/.test(n)), 'allowed from 5.19 on');
});

test('helper-unavailable: GPL-only helpers need a license string the kernel accepts ("GPL-2.0" is not one)', async () => {
  const body = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    long pid = BPF_CORE_READ(t, pid);
    t = (void *)bpf_get_current_task();
    return t != 0 && pid;
}
`;
  const code = `${body}char LICENSE[] SEC("license") = "GPL-2.0";
//   ^^^^^^^ helper-unavailable: License "GPL-2.0" is not GPL-compatible, and the object calls GPL-only helpers
`;
  const f = await check(code, ['helper-unavailable']);
  assertFindings(code, f);
  assert.equal(f[0].kernels.length, 81);
  // One finding for the object's cause; each call is related, the macro's hidden call named.
  assert.deepEqual(
    f[0].related?.map((r) => r.message),
    [
      'calls `bpf_get_current_task`, which is GPL-only',
      'calls `bpf_probe_read_kernel` (through BPF_CORE_READ()), which is GPL-only',
      'calls `bpf_get_current_task`, which is GPL-only',
    ],
  );
  assert.deepEqual(await check(bare(`${body}char LICENSE[] SEC("license") = "Dual BSD/GPL";\n`), ['helper-unavailable']), []);
  // No license string in this file: it may come from another object, so nothing is claimed.
  assert.deepEqual(await check(bare(body), ['helper-unavailable']), []);
});

test('helper-unavailable: loaders that rewrite bpf_probe_read_kernel make pre-5.5 kernels fine; libbpf 0.1 does not', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    int pid = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), &t->pid);
 // ^^^^^^^^^^^^^^^^^^^^^ helper-unavailable: \`bpf_probe_read_kernel\` is missing
    return pid;
}
${GPL}`;
  for (const loader of [DEFAULT_SETTINGS.loader, { kind: 'cilium/ebpf' as const }, { kind: 'libbpf' as const, minVersion: '0.2' }]) {
    assert.deepEqual(await check(bare(code), ['helper-unavailable'], { loader }), [], JSON.stringify(loader));
  }
  const old = { kind: 'libbpf' as const, minVersion: '0.1' };
  // Every architecture, so the 32-bit arm, ppc64le and riscv64 images are in the target.
  const f = await check(code, ['helper-unavailable'], { loader: old, architectures: [] });
  assertFindings(code, f);
  assert.ok(!f[0].kernels.some((n) => n.startsWith('bclinux') || n.startsWith('kylin')), 'openEuler 4.19 backports it');
  assert.equal(f[0].fixes[0].title, 'Use the older equivalent helper bpf_probe_read');
  assert.equal(f[0].fixes[0].safe, false, 'armhf, ppc64el and riscv64 kernels are in the target');
  const x86 = await check(bare(code), ['helper-unavailable'], { loader: old, architectures: ['x86_64'] });
  assert.ok(x86[0].fixes[0].safe, 'on x86-64 alone the legacy helper is a drop-in');
  const fixed = applyFix(bare(code), x86[0]);
  assert.match(fixed, / {4}bpf_probe_read\(&pid, sizeof\(pid\), &t->pid\);/);
  assert.deepEqual(await check(fixed, ['helper-unavailable', 'legacy-probe-read'], { loader: old, architectures: ['x86_64'] }), []);
});

// ---- kfunc-unavailable -------------------------------------------------------------------------

const KFUNCS = `
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
`;

test('kfunc-unavailable: bpf_task_acquire is missing before 6.2; a strong __ksym fails the load', async () => {
  const code = `${HEAD}${KFUNCS}
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    struct task_struct *t = bpf_task_acquire(next);
                         // ^^^^^^^^^^^^^^^^ kfunc-unavailable: kfunc \`bpf_task_acquire\` is missing on
    if (t)
        bpf_task_release(t);
     // ^^^^^^^^^^^^^^^^ kfunc-unavailable: libbpf cannot resolve the \`__ksym\` there
    return 0;
}
${GPL}`;
  const f = await check(code, ['kfunc-unavailable']);
  assertFindings(code, f);
  const names = f[0].kernels;
  assert.ok(names.includes('debian-6.1.0-56-amd64') && names.includes('debian-5.10.0-46-amd64'));
  assert.ok(!names.some((n) => /debian-6\.(1[2-9])/.test(n) || /debian-7\./.test(n)));
  assert.deepEqual(f[0].fixes, [], 'a call whose value is used cannot be skipped');
  // The statement call gets __weak on its declaration and a bpf_ksym_exists() guard.
  const fix = f[1].fixes[0];
  assert.equal(fix.safe, false, 'bpf_ksym_exists() needs libbpf 1.2');
  const tuned = await check(bare(code), ['kfunc-unavailable'], { loader: { kind: 'libbpf', minVersion: '1.2' } });
  assert.ok(tuned[1].fixes[0].safe);
  const fixed = applyFix(bare(code), tuned[1]);
  assert.match(fixed, /bpf_task_release\(struct task_struct \*p\) __ksym __weak;/);
  assert.match(fixed, /if \(bpf_ksym_exists\(bpf_task_release\)\) \{/);
  assert.deepEqual(
    (await check(fixed, ['kfunc-unavailable'])).map((x) => x.message.slice(0, 24)),
    ['kfunc `bpf_task_acquire`'],
  );
  // Near miss: from 6.2 on every distro kernel has both.
  assert.deepEqual(await check(bare(code), ['kfunc-unavailable'], { targetKernels: '6.2-7.x' }), []);
});

test('kfunc-unavailable: a declaration whose prototype the kernel refuses (libbpf compares them)', async () => {
  const code = `${HEAD}
extern int bpf_stream_vprintk(int stream_id, const char *fmt__str, const void *args, u32 len__sz) __ksym;

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
    u64 args[1] = { 0 };
    bpf_stream_vprintk(1, "exit\\n", args, sizeof(args));
 // ^^^^^^^^^^^^^^^^^^ kfunc-unavailable: prototype does not match the kernel's
    bpf_stream_vprintk(2, "again\\n", args, sizeof(args));
    return 0;
}
${GPL}`;
  // 6.17 took a fifth argument (aux__prog); 7.0 takes four, as declared here (6.18 and 6.19 have none).
  const f = await check(code, ['kfunc-unavailable'], { targetKernels: '6.17' });
  assertFindings(code, f);
  assert.match(f[0].message, /4 parameters here, 5 in the kernel's `int bpf_stream_vprintk\(/);
  assert.ok(f[0].kernels.length > 0 && f[0].kernels.every((n) => /-6\.17\./.test(n)), f[0].kernels.join(' '));
  // Near miss: declared with 7.0's prototype and targeting 7.0 on, nothing to refuse.
  assert.deepEqual(await check(bare(code), ['kfunc-unavailable'], { targetKernels: '7.0-7.x' }), []);
});

test('kfunc-unavailable: silent under bpf_ksym_exists(), and for module kfuncs vmlinux BTF never shows', async () => {
  const code = `${HEAD}
extern void bpf_rcu_read_lock(void) __ksym __weak;
extern void bpf_rcu_read_unlock(void) __ksym __weak;
extern void dctcp_init(struct sock *sk) __ksym;

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    if (bpf_ksym_exists(bpf_rcu_read_lock)) {
        bpf_rcu_read_lock();
        bpf_rcu_read_unlock();
    }
    if (!bpf_ksym_exists(bpf_rcu_read_unlock))
        return 0;
    bpf_rcu_read_unlock();
    return 0;
}

SEC("struct_ops/dctcp_init")
void BPF_PROG(my_init, struct sock *sk)
{
    dctcp_init(sk);
}
${GPL}`;
  assertFindings(code, await check(code, ['kfunc-unavailable'], { targetKernels: '5.13-7.x' }));
});

// ---- legacy-probe-read -------------------------------------------------------------------------

test('legacy-probe-read: the explicit forms work everywhere with libbpf; &t->mm is kernel memory, a __user parameter user memory', async () => {
  const code = `${HEAD}
struct ev { char comm[16]; u64 x; };

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(on_open, int dfd, const char __user *filename)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    struct mm_struct *mm;
    struct ev e = {};
    bpf_probe_read(&mm, sizeof(mm), &t->mm);
 // ^^^^^^^^^^^^^^ legacy-probe-read: cannot tell kernel from user memory
    bpf_probe_read_str(e.comm, sizeof(e.comm), filename);
 // ^^^^^^^^^^^^^^^^^^ legacy-probe-read: \`bpf_probe_read_kernel_str\` or \`bpf_probe_read_user_str\`
    bpf_probe_read(&e.x, sizeof(e.x), (void *)e.x);
 // ^^^^^^^^^^^^^^ legacy-probe-read: the loader (libbpf) turns the explicit forms back into \`bpf_probe_read\`
    return 0;
}
${GPL}`;
  const f = await check(code, ['legacy-probe-read']);
  assertFindings(code, f);
  assert.ok(
    f.every((x) => x.severity === 'info'),
    'advice: every target kernel offers the legacy helper',
  );
  assert.deepEqual(
    f.map((x) => x.fixes.map((y) => `${y.edits[0].newText}${y.safe ? '!' : ''}`)),
    [
      ['bpf_probe_read_kernel!', 'bpf_probe_read_user'],
      ['bpf_probe_read_user_str!', 'bpf_probe_read_kernel_str'],
      ['bpf_probe_read_kernel', 'bpf_probe_read_user'],
    ],
  );
  // Near miss: libbpf 0.1 does not rewrite, and pre-5.5 kernels have only the legacy helpers.
  assert.deepEqual(await check(bare(code), ['legacy-probe-read'], { loader: { kind: 'libbpf', minVersion: '0.1' } }), []);
  // With that loader on 5.5 and later, the explicit forms exist everywhere.
  assert.equal(
    (await check(bare(code), ['legacy-probe-read'], { loader: { kind: 'libbpf', minVersion: '0.1' }, targetKernels: '5.5-7.x' })).length,
    3,
  );
});

test('legacy-probe-read: silent in the fallback branch of a probe-read guard', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    int pid = 0;
    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_probe_read_kernel))
        bpf_probe_read_kernel(&pid, sizeof(pid), &t->pid);
    else
        bpf_probe_read(&pid, sizeof(pid), &t->pid);
    return pid;
}
${GPL}`;
  assertFindings(code, await check(code, ['legacy-probe-read', 'helper-unavailable']));
  assertFindings(code, await check(code, ['legacy-probe-read', 'helper-unavailable'], { loader: { kind: 'libbpf', minVersion: '0.1' } }));
});

// ---- verifier-feature-unavailable (the group's rules) -------------------------------------------

test('verifier-bounded-loops: loops without #pragma unroll before 5.3 (error unless the bound is constant)', async () => {
  const code = `${HEAD}
#define MAX 16

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int i, n = code;
    u64 s = 0;
    for (i = 0; i < MAX; i++)
 // ^^^ verifier-bounded-loops: has a constant bound but no \`#pragma unroll\`
        s += i;
#pragma unroll
    for (i = 0; i < MAX; i++)
        s += i;
    for (i = 0; i < n; i++)
 // ^^^ verifier-bounded-loops: trip count is not a compile-time constant
        s += i;
    while (n--)
 // ^^^^^ verifier-bounded-loops: verifiers before 5.3 reject any back-edge
        s++;
    return s;
}
${GPL}`;
  const f = await check(code, ['verifier-bounded-loops']);
  assertFindings(code, f);
  assert.deepEqual(
    f.map((x) => x.severity),
    ['warning', 'error', 'error'],
  );
  assert.ok(f[0].kernels.includes('ubuntu-5.0.0-13-generic-amd64') && !f[0].kernels.includes('ubuntu-5.3.0-18-generic-amd64'));
  // CentOS 8.1's newest helpers are 5.0's; openEuler's 4.19 has 5.5 helpers, so its version lies.
  assert.ok(f[0].kernels.includes('centos8-4.18.0-147.5.1.el8_1-arm64'));
  assert.ok(!f[0].kernels.some((n) => n.startsWith('bclinux') || n.startsWith('kylin')));
  assert.deepEqual(
    f.map((x) => x.fixes[0].safe),
    [true, false, false],
  );
  const fixed = applyFix(bare(code), (await check(bare(code), ['verifier-bounded-loops']))[0]);
  assert.match(fixed, /#pragma unroll\n {4}for \(i = 0; i < MAX; i\+\+\)\n {8}s \+= i;\n#pragma unroll/);
  assert.equal((await check(fixed, ['verifier-bounded-loops'])).length, 2);
  // Near miss: from 5.3 on, bounded loops verify; guarded: the same under a version check.
  assert.deepEqual(await check(bare(code), ['verifier-bounded-loops'], { targetKernels: '5.3-7.x' }), []);
  const guarded = `${HEAD}
extern int LINUX_KERNEL_VERSION __kconfig;

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int i, n = code;
    u64 s = 0;
    if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 3, 0)) {
        for (i = 0; i < n; i++)
            s += i;
    }
    return s;
}
${GPL}`;
  assert.deepEqual(await check(guarded, ['verifier-bounded-loops'], { targetKernels: '5.2-7.x' }), []);
});

test('verifier-open-coded-iterators: bpf_for needs the numeric iterator kfunc (6.4), silent under bpf_core_type_exists(struct bpf_iter_num)', async () => {
  const code = `${HEAD}
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    int i;
    u64 s = 0;
    bpf_for(i, 0, 10) {
 // ^^^^^^^ verifier-open-coded-iterators: built on the \`bpf_iter_num_new\` kfunc, which is missing on
        s++;
    }
    if (bpf_core_type_exists(struct bpf_iter_num)) {
        bpf_repeat(5) {
            s++;
        }
    }
    return s;
}
${GPL}`;
  const f = await check(code, ['verifier-open-coded-iterators'], { targetKernels: '5.5-7.x' });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('debian-6.1.0-56-amd64') && !f[0].kernels.includes('debian-6.12.117-amd64'));
  assert.deepEqual(await check(bare(code), ['verifier-open-coded-iterators'], { targetKernels: '6.4-7.x' }), []);
});

test('verifier-global-data: a static global only read by name or member is folded by clang -O2; written, addressed or indexed it stays', async () => {
  // Tetragon's \`static struct generic_maps maps = { .heap = &heap, … }\`, read by name and through
  // \`&maps\` handed to inlined functions: clang -O2 leaves no .data or .rodata for it (checked with
  // clang 14), and Tetragon loads on 4.19.
  const code = `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, long); } heap SEC(".maps");
struct gmaps { void *heap; int limit; };
static struct gmaps maps = { .heap = &heap, .limit = 4 };
static int flag = 3;
static int table[4] = { 1, 2, 3, 4 };
        // ^^^^^ verifier-global-data: (\`table\` and
static int written = 0;
static volatile int vol = 1;
static struct gmaps addressed = { .limit = 1 };
static struct gmaps passed = { .heap = &heap, .limit = 2 };
static int probed = 0;
static int filled = 0;
static int macro_written = 0;
static int macro_bumped = 0;
static struct named { char comm[16]; int n; } named_cfg = { .n = 1 };
static int kept_used __attribute__((used)) = 1;
#define BUMP() (macro_bumped++)

static __always_inline long reader(struct gmaps *m, int k)
{
    long *v = bpf_map_lookup_elem(m->heap, &k);
    return (v ? *v : 0) + m->limit;
}

static __always_inline void fill(int *p, const void *src)
{
    bpf_probe_read_kernel(p, sizeof(*p), src);
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int k = 0;
    long *v = bpf_map_lookup_elem(maps.heap, &k);
    struct gmaps *a = &addressed;
    written = 2;
    bpf_probe_read_kernel(&probed, sizeof(probed), (void *)code);
    fill(&filled, (void *)code);
    WRITE_ONCE(macro_written, 1);
    BUMP();
    bpf_get_current_comm(named_cfg.comm, sizeof(named_cfg.comm));
    return (v ? *v : 0) + (maps.limit) + flag + table[k & 3] + vol + a->limit + reader(&passed, k) + probed + filled + named_cfg.n + kept_used + macro_bumped;
}
${GPL}`;
  const f = await check(code, ['verifier-global-data'], { targetKernels: '4.14-5.1' });
  assertFindings(code, f);
  const named = (f[0].related ?? []).map((r) => r.message).join(' ');
  const all = `${f[0].message} ${named}`;
  for (const kept of ['table', 'written', 'vol', 'addressed', 'probed']) assert.match(named, new RegExp(`\`${kept}\``), kept);
  // Written by a function of the file it is handed to, by macros, or a member array handed to a
  // helper (its address); kept by \`used\` whatever its uses: all stay (clang 14 keeps each).
  for (const kept of ['filled', 'macro_written', 'macro_bumped', 'named_cfg', 'kept_used'])
    assert.ok(all.includes(`\`${kept}\``), `${kept}: ${all}`);
  for (const folded of ['maps', 'flag', 'passed']) assert.doesNotMatch(named, new RegExp(`\`${folded}\``), folded);
  assert.match(f[0].message, /: libbpf refuses to load it on 6 of 7/);
  // Loaded with cilium/ebpf (Tetragon), the object does not load either; libbpf is not the one refusing.
  const cilium = await check(code, ['verifier-global-data'], { targetKernels: '4.14-5.1', loader: { kind: 'cilium/ebpf' } });
  assert.match(cilium[0]?.message ?? '', /: it does not load on 6 of 7 target kernels/);
});

test('verifier-global-data: global data, kconfig externs and bpf_printk need 5.2 (BPF_MAP_FREEZE per kernel)', async (t) => {
  const code = `${HEAD}
const volatile int targ_pid = 0;
                // ^^^^^^^^ verifier-global-data: The object has global data (\`targ_pid\` and 2 more): libbpf refuses to load it
u64 counter;

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int counter_local = 1;
    if (targ_pid && (bpf_get_current_pid_tgid() >> 32) != targ_pid)
        return 0;
    counter += counter_local;
    bpf_printk("exit %ld", code);
    return 0;
}
${GPL}`;
  const f = await check(code, ['verifier-global-data'], { targetKernels: '4.14-5.4' });
  assertFindings(code, f);
  // One finding for the object, with every use as related information.
  assert.equal(f.length, 1);
  assert.deepEqual(
    f[0].related?.map((r) => r.message),
    [
      'uses `targ_pid`',
      'uses `targ_pid`',
      'uses `counter`',
      'uses `bpf_printk()`, whose format string libbpf keeps in `.rodata` (define `BPF_NO_GLOBAL_DATA` to keep it on the stack)',
    ],
  );
  assert.ok(
    f[0].kernels.includes('centos8-4.18.0-147.5.1.el8_1-arm64') &&
      f[0].kernels.includes('bclinux21.10u3-4.19.90-2107.6.0.0248.35.oe1.bclinux-x86_64'),
  );
  assert.ok(!f[0].kernels.includes('kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64'), 'Kylin V10 SP3 has BPF_MAP_FREEZE');
  assert.deepEqual(await check(bare(code), ['verifier-global-data'], { targetKernels: '5.2-7.x' }), []);
  // BPF_NO_GLOBAL_DATA keeps bpf_printk's format on the stack.
  const printkOnly = `#define BPF_NO_GLOBAL_DATA\n${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    bpf_printk("exit %ld", code);
    return 0;
}
${GPL}`;
  assert.deepEqual(await check(printkOnly, ['verifier-global-data'], { targetKernels: '4.14-5.4' }), []);
  // So does the build's -DBPF_NO_GLOBAL_DATA (a Makefile's CFLAGS, here the project file's defines).
  const bare2 = printkOnly.replace('#define BPF_NO_GLOBAL_DATA\n', '');
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-no-global-data-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, '.ebpf-portability.json'), JSON.stringify({ defines: { BPF_NO_GLOBAL_DATA: '1' } }));
  const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
  const settings = { ...DEFAULT_SETTINGS, targetKernels: '4.14-5.4' };
  assert.deepEqual(await analyzeSnippet(bare2, { rules: ['verifier-global-data'], settings, uri }), []);
  // Near misses: the same file elsewhere, without the define; and the define after the include,
  // where bpf_helpers.h has already chosen.
  assert.equal((await check(bare2, ['verifier-global-data'], { targetKernels: '4.14-5.4' })).length, 1);
  const late = bare2.replace(HEAD, `${HEAD}#define BPF_NO_GLOBAL_DATA\n`);
  assert.ok(late.includes('#define BPF_NO_GLOBAL_DATA'));
  assert.equal((await check(late, ['verifier-global-data'], { targetKernels: '4.14-5.4' })).length, 1);
});

test('verifier-atomics: atomics with fetch need 5.12; an add whose result is unused does not', async () => {
  const code = `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } cnt SEC(".maps");

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u32 k = 0;
    u64 *v = bpf_map_lookup_elem(&cnt, &k);
    if (!v)
        return 0;
    __sync_fetch_and_add(v, 1);
    return __sync_fetch_and_add(v, 1);
        // ^^^^^^^^^^^^^^^^^^^^ verifier-atomics: with its result used needs the atomic instructions of 5.12
}
${GPL}`;
  const f = await check(code, ['verifier-atomics'], { targetKernels: '5.3-7.x' });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('debian-5.10.0-46-amd64') && !f[0].kernels.includes('debian-6.1.0-56-amd64'));
  assert.deepEqual(await check(bare(code), ['verifier-atomics'], { targetKernels: '5.12-7.x' }), []);
});

test('verifier-spin-lock-timer: a bpf_spin_lock in a map value needs the kernel to have struct bpf_spin_lock (5.1)', async () => {
  const code = `${HEAD}
struct val {
    struct bpf_spin_lock lock;
    u64 n;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct val);
               // ^^^^^^^^^^ verifier-spin-lock-timer: holds a \`struct bpf_spin_lock\` (\`lock\`), which needs 5.1
} vals SEC(".maps");
${GPL}`;
  const f = await check(code, ['verifier-spin-lock-timer']);
  assertFindings(code, f);
  assert.ok(
    f[0].kernels.includes('ubuntu-5.0.0-13-generic-amd64') && !f[0].kernels.includes('kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64'),
  );
  assert.deepEqual(await check(bare(code), ['verifier-spin-lock-timer'], { targetKernels: '5.1-7.x' }), []);
});

test('verifier-arena: __arena pointers need BPF_MAP_TYPE_ARENA (6.9)', async () => {
  const code = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#define __arena __attribute__((address_space(1)))

struct node { u64 v; };
struct node __arena *head;

SEC("syscall")
int walk(void *ctx)
{
    struct node __arena *n = head;
             // ^^^^^^^ verifier-arena: \`__arena\` pointers need BPF arenas (6.9, BPF_MAP_TYPE_ARENA)
    return n ? n->v : 0;
}
${GPL}`;
  const f = await check(code, ['verifier-arena'], { targetKernels: '6.1-7.x' });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('ubuntu-6.8.0-31-generic-amd64') && !f[0].kernels.includes('debian-6.12.117-amd64'));
  assert.deepEqual(await check(bare(code), ['verifier-arena'], { targetKernels: '6.9-7.x' }), []);
});

// ---- kernel-version-gate -----------------------------------------------------------------------

test('kernel-version-gate: a version check around bpf_ringbuf_output lies on the backported openEuler 4.19', async () => {
  const code = `${HEAD}
extern int LINUX_KERNEL_VERSION __kconfig;

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 v = code;
    if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 8, 0))
     // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ kernel-version-gate: 4.19 (openEuler 4.19) has \`bpf_ringbuf_output\` though older than 5.8.0
        bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
    return 0;
}
${GPL}`;
  const f = await check(code, ['kernel-version-gate', 'helper-unavailable']);
  assertFindings(code, f);
  assert.equal(f[0].severity, 'info');
  assert.deepEqual(f[0].kernels, ['kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64']);
  assert.match(f[0].message, /bpf_core_enum_value_exists\(enum bpf_func_id, BPF_FUNC_ringbuf_output\)/);
  // Guarded variant: the probe it suggests is not a version check, and the helper stays silent.
  const probed = bare(code).replace(
    'LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 8, 0)',
    'bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output)',
  );
  assert.deepEqual(await check(probed, ['kernel-version-gate', 'helper-unavailable']), []);
  // Near miss: a comparison that does not involve the kernel version.
  assert.deepEqual(await check(bare(code).replace('LINUX_KERNEL_VERSION >=', 'v >='), ['kernel-version-gate']), []);
});

test('kernel-version-gate: #if on LINUX_VERSION_CODE, a kfunc in the newer branch, and a general note otherwise', async () => {
  const code = `${HEAD}
#include <linux/version.h>
extern int LINUX_KERNEL_VERSION __kconfig;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;

#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 5, 0)
 // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ kernel-version-gate: Probe the feature itself
#define OLD_KERNEL 1
#endif

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
 // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ kernel-version-gate: For kfunc \`bpf_task_acquire\`, which the newer branch uses
    struct task_struct *t = bpf_task_acquire(next);
    if (t)
        bpf_task_release(t);
#endif
    return LINUX_KERNEL_VERSION > 0x50a00 ? 1 : 0;
        // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ kernel-version-gate: (> 5.10.0)
}
${GPL}`;
  const f = await check(code, ['kernel-version-gate', 'kfunc-unavailable'], { targetKernels: '5.10-7.x' });
  assertFindings(code, f);
  assert.ok(f.every((x) => x.severity === 'info'));
});
