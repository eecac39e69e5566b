/**
 * Type rules with real kernel facts from the built database: members whose type changed
 * (`sock.sk_protocol`), types missing on some kernels, enum constants numbered differently
 * (`PIDTYPE_TGID` on CentOS 8), and `__rcu` pointers in sleepable programs (on an imported kernel
 * built here, since no built-in kernel's BTF carries `rcu` tags). Each rule: a finding that names
 * the kernels, a near miss that stays silent, and guarded code that stays silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kind, type BtfType } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import { KernelDb } from '../../kernel-db/src/query/db';
import type { Finding } from '../../server/src/analysis/model';
import type { Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, applyFix, assertFindings, builtinDb } from './expect';

const db = builtinDb;

/** Findings of the given rules only, against `d` (default: the built-in kernels). */
async function check(code: string, rules: string[], settings: Partial<Settings> = {}, d: KernelDb = db): Promise<Finding[]> {
  return analyzeSnippet(code, { rules, settings, db: d, uri: 'file:///snippets/types.bpf.c' });
}

/** The snippet without its caret lines (for re-checking under other settings). */
function bare(code: string): string {
  return code.replace(/\n *\/\/ \^+[^\n]*/g, '');
}

const CORE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;

const BITFIELD_KERNELS = [
  'centos8-4.18.0-147.5.1.el8_1-arm64',
  'bclinux21.10u3-4.19.90-2107.6.0.0248.35.oe1.bclinux-x86_64',
  'kylin-v10sp2-4.19.90-25.41.v2101.ky10-arm64',
  'kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64',
  'cilium-testdata-5.4-x86_64',
];

test('field-type-changed-in-range: sock.sk_protocol is an 8-bit bitfield before 5.6; the fix reads it with BPF_CORE_READ_BITFIELD_PROBED', async () => {
  const code = `${CORE}
SEC("fentry/tcp_v4_connect")
int BPF_PROG(on_connect, struct sock *sk)
{
    u16 proto = sk->sk_protocol;
             // ^^^^^^^^^^^^^^^ field-type-changed-in-range: an 8-bit bitfield of \`unsigned int\` on
    return proto == IPPROTO_TCP;
}
`;
  const f = await check(code, ['field-type-changed-in-range']);
  assertFindings(code, f);
  // Only the kernels whose BTF says "bitfield" (DepSurf's Ubuntu kernels have no bitfield widths,
  // and libbpf resizes a direct unsigned load, so their `unsigned int` is not reported here), and
  // of those only where fentry programs load at all: elsewhere prog-type-unavailable reports it.
  const tracing = builtinDb.progType('BPF_PROG_TYPE_TRACING', builtinDb.kernels).kernels;
  const loads = (name: string) => tracing.find((a) => a.kernel.name === name)?.present !== false;
  assert.deepEqual([...f[0].kernels].sort(), BITFIELD_KERNELS.filter(loads).sort());
  assert.ok(f[0].kernels.length > 0 && f[0].kernels.length < BITFIELD_KERNELS.length);
  assert.equal(f[0].severity, 'error');
  assert.equal(f[0].fixes[0].safe, true);
  const fixed = applyFix(code, f[0]);
  assert.match(fixed, /u16 proto = BPF_CORE_READ_BITFIELD_PROBED\(sk, sk_protocol\);/);
  assert.deepEqual(await check(bare(fixed), ['field-type-changed-in-range']), [], 'the fixed read is silent');
  // Near miss: from 5.8 on, sk_protocol is u16 everywhere.
  assert.deepEqual(await check(bare(code), ['field-type-changed-in-range'], { targetKernels: '5.8-7.x' }), []);
});

test('field-type-changed-in-range: BPF_CORE_READ copies sizeof(u16) bytes, also wrong on the DepSurf kernels where it is `unsigned int`', async () => {
  const code = `${CORE}
SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(on_connect, struct sock *sk)
{
    u16 proto = BPF_CORE_READ(sk, sk_protocol);
             // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-type-changed-in-range: \`unsigned int\` on 10
    u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    u32 mark = BPF_CORE_READ(sk, sk_mark);
    return proto + family + mark;
}
`;
  const f = await check(code, ['field-type-changed-in-range']);
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('ubuntu-4.15.0-20-generic-amd64') && f[0].kernels.includes('centos8-4.18.0-147.5.1.el8_1-arm64'));
  assert.ok(!f[0].kernels.some((n) => n.startsWith('debian-')));
  assert.equal(applyFix(code, f[0]).includes('u16 proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);'), true);
});

test('field-type-changed-in-range: silent under the __sk_flags_offset guard (Tracee), inside the bitfield macros and bpf_core_field_size branches', async () => {
  const code = `${CORE}
struct sock___old {
    u32 __sk_flags_offset[0];
} __attribute__((preserve_access_index));

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(on_connect, struct sock *sk)
{
    u16 proto = 0;
    struct sock___old *check = (void *)sk;
    if (bpf_core_field_exists(check->__sk_flags_offset))
        proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
    else
        proto = BPF_CORE_READ(sk, sk_protocol);
    if (bpf_core_field_size(sk->sk_protocol) == 2)
        proto += BPF_CORE_READ(sk, sk_protocol);
    return proto;
}
`;
  assertFindings(code, await check(code, ['field-type-changed-in-range']));
});

test('field-type-changed-in-range: widths, signedness and kinds (sk_tsflags, on_cpu, perf_event_ctxp); libbpf resizes unsigned direct loads, cilium/ebpf does not', async () => {
  const code = `${CORE}
SEC("fentry/tcp_sendmsg")
int BPF_PROG(on_send, struct sock *sk)
{
    struct task_struct *prev = bpf_get_current_task_btf();
    int cpu = prev->on_cpu;
           // ^^^^^^^^^^^^ field-type-changed-in-range: the signed load is poisoned
    u32 flags = BPF_CORE_READ(sk, sk_tsflags);
             // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-type-changed-in-range: bpf_core_field_size()
    void *ctxp = prev->perf_event_ctxp;
              // ^^^^^^^^^^^^^^^^^^^^^ field-type-changed-in-range: incompatible kinds
    u64 rate = sk->sk_pacing_rate;
            // ^^^^^^^^^^^^^^^^^^ field-type-changed-in-range: in an anonymous union on 1 (4.19 (openEuler 4.19))
    return cpu + flags + rate + (long)ctxp;
}
`;
  const f = await check(code, ['field-type-changed-in-range']);
  assertFindings(code, f);
  const onCpu = f.find((x) => x.message.includes('on_cpu'))!;
  assert.deepEqual([...new Set(onCpu.kernels.map((n) => n.replace(/^debian-(\d+\.\d+).*/, '$1')))].sort(), ['7.2', '7.3']);
  assert.equal(onCpu.fixes[0]?.safe, false, 'a signed member read as unsigned long long is not a drop-in');
  const tsflags = f.find((x) => x.message.includes('sk_tsflags'))!;
  assert.ok(tsflags.kernels.includes('debian-6.1.0-56-amd64') && !tsflags.kernels.includes('debian-6.12.117-amd64'));
  // `sk_pacing_rate` went from u32 to unsigned long: a direct unsigned load libbpf resizes, so only
  // Kylin's KABI union is left, as information; cilium/ebpf relocates only the offset.
  const rate = f.find((x) => x.message.includes('sk_pacing_rate'))!;
  assert.equal(rate.severity, 'info');
  assert.ok(!rate.message.includes('u32'));
  // cilium/ebpf relocates only the offset: a direct load of a member whose width changed reads the
  // wrong number of bytes (sk_tsflags became u32 in 6.x), where libbpf would resize the load.
  const direct = `${CORE}
SEC("fentry/tcp_sendmsg")
int BPF_PROG(on_send, struct sock *sk)
{
    return sk->sk_tsflags;
}
`;
  const cilium = await check(direct, ['field-type-changed-in-range'], { loader: { kind: 'cilium/ebpf' } });
  assert.ok(
    cilium.some((x) => x.message.includes('sk_tsflags') && x.message.includes('not the load size')),
    JSON.stringify(cilium.map((x) => x.message)),
  );
  assert.deepEqual(await check(direct, ['field-type-changed-in-range']), [], 'libbpf resizes the unsigned load');
});

test('type-missing-in-range: the tracepoint record type of inet_sock_set_state is missing on 4.15', async () => {
  const code = `${CORE}
SEC("tracepoint/sock/inet_sock_set_state")
int handle_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
                  // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ type-missing-in-range: the record type
{
    if (ctx->protocol != IPPROTO_TCP)
        return 0;
    return ctx->newstate;
}

SEC("tracepoint/sched/sched_switch")
int handle_switch(struct trace_event_raw_sched_switch *ctx)
{
    struct bpf_iter__task *unused = 0;
    return ctx->prev_pid + (unused != 0);
}
`;
  const f = await check(code, ['type-missing-in-range']);
  assertFindings(code, f);
  assert.deepEqual(f[0].kernels, ['ubuntu-4.15.0-20-generic-amd64']);
  assert.match(f[0].message, /The 2 CO-RE reads through it/);
  // Near miss: from 4.18 on every kernel has the tracepoint.
  assert.deepEqual(await check(bare(code), ['type-missing-in-range'], { targetKernels: '4.18-7.x' }), []);
});

test('type-missing-in-range: bpf_core_type_size of a struct that appeared in 5.8; silent under bpf_core_type_exists', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit)
{
    u64 sz = bpf_core_type_size(struct bpf_iter__task);
          // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ type-missing-in-range: struct bpf_iter__task is missing on 15
    if (bpf_core_type_exists(struct bpf_iter__task))
        sz += bpf_core_type_size(struct bpf_iter__task);
    return sz;
}
`;
  const f = await check(code, ['type-missing-in-range']);
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('centos8-4.18.0-147.5.1.el8_1-arm64') && !f[0].kernels.includes('debian-5.10.0-46-amd64'));
});

test('type-missing-in-range: a cast type declared before its guard is silent; without the guard it is reported at its first mention', async () => {
  const code = `${CORE}
SEC("tracepoint/block/block_rq_complete")
int handle_rq(void *ctx)
{
    struct trace_event_raw_block_rq_completion *rq = (struct trace_event_raw_block_rq_completion *)ctx;
    if (!bpf_core_type_exists(struct trace_event_raw_block_rq_completion))
        return 0;
    return rq->error;
}
`;
  assertFindings(code, await check(code, ['type-missing-in-range']));
  const unguarded = code.replace(/ {4}if \(!bpf_core_type_exists[^\n]*\n[^\n]*\n/, '');
  const f = await check(unguarded, ['type-missing-in-range']);
  assert.deepEqual(
    f.map((x) => x.message.startsWith('struct trace_event_raw_block_rq_completion is missing')),
    [true],
  );
  assert.equal(f[0].range.start.line, 8);
  assert.ok(f[0].kernels.includes('debian-5.10.0-46-amd64'));
});

test('type-missing-in-range: a struct only minimal test configs lack is not reported (configured out, not absent)', async () => {
  const code = `${CORE}
SEC("fentry/mem_cgroup_charge_statistics")
int BPF_PROG(on_charge, struct mem_cgroup *memcg)
{
    return memcg->id.id;
}
`;
  const minimal = db
    .aggregate('mem_cgroup', db.target('5.18-7.x'))
    .filter((a) => a.present === false)
    .map((a) => a.kernel.fidelity);
  assert.ok(
    minimal.length > 0 && minimal.every((x) => x === 'btf-minimal-config'),
    'only minimal builds lack struct mem_cgroup in 5.18-7.x',
  );
  assert.deepEqual(await check(code, ['type-missing-in-range'], { targetKernels: '5.18-7.x' }), []);
  // Near miss the other way: a real developer build of 5.13 has no memory cgroups either.
  const f = await check(code, ['type-missing-in-range']);
  assert.deepEqual(
    f.map((x) => x.kernels),
    [['cilium-testdata-5.13.2-x86_64']],
  );
});

test('enum-value-not-relocated: PIDTYPE_TGID is 3 on CentOS 8 4.18; the fix asks bpf_core_enum_value', async () => {
  assert.deepEqual(db.enumOf('PIDTYPE_TGID'), ['pid_type']);
  assert.deepEqual(db.enumOf('NO_SUCH_CONSTANT_ANYWHERE'), []);
  const code = `${CORE}
#define MY_TYPE 3
enum { LOCAL_KEY = 1 };

SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct pid *tg = t->signal->pids[PIDTYPE_TGID];
                                  // ^^^^^^^^^^^^ enum-value-not-relocated: 3 on 1
    long k = PIDTYPE_PID + MY_TYPE + LOCAL_KEY + bpf_core_enum_value(enum pid_type, PIDTYPE_SID);
    struct cgroup_subsys_state *css = t->cgroups->subsys[memory_cgrp_id];
    switch (code) {
    case PIDTYPE_SID:
      // ^^^^^^^^^^^ enum-value-not-relocated: case label
        return 1;
    }
    return k + (long)tg + (long)css;
}
`;
  const f = await check(code, ['enum-value-not-relocated']);
  assertFindings(code, f);
  assert.deepEqual(f[0].kernels, ['centos8-4.18.0-147.5.1.el8_1-arm64']);
  assert.equal(f[0].fixes[0].safe, true);
  assert.match(applyFix(code, f[0]), /pids\[bpf_core_enum_value\(enum pid_type, PIDTYPE_TGID\)\]/);
  assert.deepEqual(f[1].fixes, [], 'no fix in a case label');
  // Near miss: a target without CentOS 8 numbers pid_type one way.
  assert.deepEqual(await check(bare(code), ['enum-value-not-relocated'], { targetKernels: '4.19-7.x' }), []);
});

test("enum-value-not-relocated: a project header's macro is not the kernel enum constant of the same name", async (t) => {
  // Tracee's common/network.h: `#define FULL 65536`, where enum slab_state has a FULL of 3 or 4.
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-enum-macro-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'network.h'),
    '#pragma once\n#define FULL    65536       // 1 << 16\n#define HEADERS 0\n#define SIZE_OF(x) (x)\n',
  );
  const body = (include: string) => `${CORE}${include}
SEC("cgroup_skb/ingress")
int on_skb(struct __sk_buff *ctx)
{
    unsigned int size = ctx->len;
    size = size > FULL ? SIZE_OF(FULL) : size;
    return size == HEADERS;
}
`;
  const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
  assert.deepEqual(await analyzeSnippet(body('#include "network.h"\n'), { rules: ['enum-value-not-relocated'], uri }), []);
  // Near miss: without the header, FULL is enum slab_state's, numbered differently across kernels.
  const bareCode = body('');
  const f = await analyzeSnippet(bareCode, { rules: ['enum-value-not-relocated'], uri });
  assert.equal(f.length, 2, JSON.stringify(f.map((x) => x.message.split('\n')[0])));
  assert.match(f[0].message, /enum slab_state/);
});

/** A read indexed by \`PIDTYPE_TGID\`, whose value CentOS 8's 4.18 numbers differently. */
const READS_PIDTYPE_TGID = `${CORE}
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    return (long)t->signal->pids[PIDTYPE_TGID];
}
`;

test("enum-value-not-relocated: a constant a project's own vmlinux.h declares is the program's", async (t) => {
  // Tracee's trimmed vmlinux.h: \`const int TRACE_EVENT_FL_TRACEPOINT = (1 << …);\` beside the types.
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-enum-vmlinux-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const code = READS_PIDTYPE_TGID;
  const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
  writeFileSync(join(dir, 'vmlinux.h'), '#pragma once\nstruct task_struct;\nconst int PIDTYPE_TGID = 1;\n');
  assert.deepEqual(await analyzeSnippet(code, { rules: ['enum-value-not-relocated'], uri }), []);
  // Near miss: a vmlinux.h of types only; PIDTYPE_TGID is the kernel's enum pid_type constant.
  writeFileSync(
    join(dir, 'vmlinux.h'),
    '#pragma once\nstruct task_struct;\n#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#pragma clang attribute pop\n',
  );
  const again = pathToFileURL(join(dir, 'other.bpf.c')).href;
  const f = await analyzeSnippet(code, { rules: ['enum-value-not-relocated'], uri: again });
  assert.equal(f.length, 1, JSON.stringify(f.map((x) => x.message.split('\n')[0])));
});

test('enum-value-not-relocated: a vmlinux.h wrapper is read again when the header it includes changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-enum-wrapper-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'arch'));
  writeFileSync(join(dir, 'vmlinux.h'), '#pragma once\n#include "arch/vmlinux_x86.h"\n');
  writeFileSync(join(dir, 'arch', 'vmlinux_x86.h'), '#pragma once\nstruct task_struct;\nconst int PIDTYPE_TGID = 1;\n');
  const code = READS_PIDTYPE_TGID;
  const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
  assert.deepEqual(await analyzeSnippet(code, { rules: ['enum-value-not-relocated'], uri }), []);
  // The included header no longer declares it (past the second the disk's answers are kept):
  // the same engine sees the kernel's constant again.
  await new Promise((r) => setTimeout(r, 1100));
  writeFileSync(join(dir, 'arch', 'vmlinux_x86.h'), '#pragma once\nstruct task_struct;\n');
  assert.equal((await analyzeSnippet(code, { rules: ['enum-value-not-relocated'], uri })).length, 1);
});

test('enum-value-not-relocated: cgroup subsystem ids depend on the config; silent under a version guard', async () => {
  const code = `${CORE}
extern int LINUX_KERNEL_VERSION __kconfig;

SEC("fentry/cgroup_attach_task")
int BPF_PROG(on_attach, struct cgroup *dst)
{
    struct cgroup_subsys_state *pids = dst->subsys[pids_cgrp_id];
                                                // ^^^^^^^^^^^^ enum-value-not-relocated: 10 on 8
    if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(4, 19, 0))
        return dst->self.id + PIDTYPE_TGID;
    return (long)pids;
}
`;
  const f = await check(code, ['enum-value-not-relocated']);
  assertFindings(code, f);
  assert.ok(f[0].kernels.every((n) => n.startsWith('vanilla-ci-')));
  // Some kernels in range have no pids controller at all: the relocated value would not load there.
  assert.equal(f[0].fixes[0].safe, false);
});

/** A one-kernel BTF like a clang-built kernel's: `task_struct.real_parent` carries the `rcu` type tag. */
function rcuBtf(): Uint8Array {
  const types: BtfType[] = [
    { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 },
    {
      kind: Kind.Struct,
      name: 'task_struct',
      kindFlag: false,
      size: 24,
      members: [
        { name: 'tgid', type: 1, offsetBits: 0, bitfieldBits: 0 },
        { name: 'real_parent', type: 4, offsetBits: 64, bitfieldBits: 0 },
        { name: 'group_leader', type: 5, offsetBits: 128, bitfieldBits: 0 },
      ],
    },
    { kind: Kind.TypeTag, name: 'rcu', kindFlag: false, type: 2 },
    { kind: Kind.Ptr, name: '', kindFlag: false, type: 3 },
    { kind: Kind.Ptr, name: '', kindFlag: false, type: 2 },
  ];
  return writeBtf(types);
}

test('rcu-ptr-direct-deref: no built-in kernel carries rcu tags, so the rule is tested on an imported clang-like kernel', async () => {
  const builtIn = db.target('*');
  for (const k of builtIn) assert.ok(!(db.fieldOn('task_struct', 'real_parent', k).tags ?? '').includes('rcu'), k.name);
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-rcu-'));
  try {
    writeFileSync(join(dir, 'rcu.btf'), rcuBtf());
    const userDb = KernelDb.open({ userDir: dir });
    await userDb.user!.add(join(dir, 'rcu.btf'), userDb.facts, () => false, { name: 'clang-6.8', version: '6.8.0', arch: 'x86_64' });
    const d = KernelDb.open({ userDir: dir });
    assert.equal(d.fieldOn('task_struct', 'real_parent', d.kernels.find((k) => k.user)!).tags, 'rcu');
    const code = `${CORE}
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;

SEC("lsm.s/bprm_committed_creds")
int BPF_PROG(on_exec, struct linux_binprm *bprm)
{
    struct task_struct *t = bpf_get_current_task_btf();
    int a = t->real_parent->tgid;
         // ^^^^^^^^^^^^^^ rcu-ptr-direct-deref: sleepable program
    int b = t->group_leader->tgid;
    int c = BPF_CORE_READ(t, real_parent, tgid);
    bpf_rcu_read_lock();
    int e = t->real_parent->tgid;
    bpf_rcu_read_unlock();
    return a + b + c + e;
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(on_exec_nonsleepable, struct linux_binprm *bprm)
{
    struct task_struct *t = bpf_get_current_task_btf();
    return t->real_parent->tgid;
}
`;
    const f = await check(code, ['rcu-ptr-direct-deref'], { targetKernels: 'clang-6.8,6.1' }, d);
    assertFindings(code, f);
    assert.deepEqual(f[0].kernels, ['clang-6.8'], 'only the kernel whose BTF tags the member');
    // Near miss: the built-in kernels' BTF has no rcu tags.
    assert.deepEqual(await check(bare(code), ['rcu-ptr-direct-deref']), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
