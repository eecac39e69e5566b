/**
 * Packet pointers, layouts that every target kernel shares, and `offsetof`: the member rules stay
 * silent on packet headers read through pointers computed from `ctx->data` (the verifier lets the
 * program read them after its bounds check, and their layout is the wire format's), and on fixed
 * offsets that are the same on every kernel with a known layout; a kernel pointer in the same
 * programs, and offsets that really differ, are still reported. libbpf's `offsetof` on a CO-RE
 * type is relocated; `__builtin_offsetof` (and `offsetof` from <stddef.h>) is a constant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Finding } from '../../server/src/analysis/model';
import { analyzeSnippet, applyFix, assertFindings } from './expect';

/** Every rule about member reads and layouts. */
const MEMBER_RULES = [
  'unsafe-kernel-deref',
  'non-core-field-read',
  'field-missing-in-range',
  'field-type-changed-in-range',
  'type-missing-in-range',
  'legacy-probe-read',
  'kernel-version-gate',
];

async function check(code: string, uri = 'file:///snippets/packet.bpf.c'): Promise<Finding[]> {
  return analyzeSnippet(code, { rules: MEMBER_RULES, uri });
}

const CORE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
`;

const HEADERS = `#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
`;

/** Packet parsing as XDP, tc, sk_skb and cgroup_skb programs write it. */
const PACKET_PROGRAMS = `
static __always_inline int parse_ip(void *data, void *data_end, struct iphdr **out)
{
    struct iphdr *iph = data + sizeof(struct ethhdr);
    if ((void *)(iph + 1) > data_end)
        return -1;
    *out = iph;
    return iph->protocol;
}

SEC("xdp")
int xdp_parse(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *iph;
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (parse_ip(data, data_end, &iph) != IPPROTO_UDP)
        return XDP_PASS;
    struct udphdr *udp = (void *)iph + iph->ihl * 4;
    if ((void *)(udp + 1) > data_end)
        return XDP_PASS;
    return udp->dest == bpf_htons(53) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_parse(struct __sk_buff *skb)
{
    void *data_end = (void *)(unsigned long long)skb->data_end;
    struct ethhdr *eth = (void *)(unsigned long long)skb->data;
    struct ipv6hdr *ip6;
    if ((void *)(eth + 1) > data_end)
        return 0;
    ip6 = (struct ipv6hdr *)(eth + 1);
    if ((void *)(ip6 + 1) > data_end)
        return 0;
    struct tcphdr *tcph = (struct tcphdr *)((long)skb->data + sizeof(*eth) + sizeof(*ip6));
    if ((void *)(tcph + 1) > data_end)
        return 0;
    return ip6->nexthdr + tcph->dest + tcph->syn;
}

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
    __u8 *cursor = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    cursor += sizeof(struct ethhdr);
    struct iphdr *iph = (void *)cursor;
    if ((void *)(iph + 1) > end)
        return SK_PASS;
    return iph->ttl ? SK_PASS : SK_DROP;
}

SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
    struct iphdr *iph = (void *)(long)skb->data;
    if ((void *)(iph + 1) > (void *)(long)skb->data_end)
        return 1;
    return iph->version == 4;
}
`;

test('packet pointers: headers read through pointers computed from ctx->data are not kernel memory (vmlinux.h)', async () => {
  const code = `${CORE}${PACKET_PROGRAMS}`;
  assertFindings(code, await check(code));
});

test('packet pointers: the same programs against kernel headers', async () => {
  const code = `${HEADERS}${PACKET_PROGRAMS}`;
  assertFindings(code, await check(code));
});

test('packet pointers: a kernel pointer in an XDP program is still reported, and its fix is a CO-RE read', async () => {
  const code = `${CORE}
SEC("xdp")
int xdp_task(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct task_struct *t = (void *)bpf_get_current_task();
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    return eth->h_proto + t->pid;
                       // ^^^^^^ unsafe-kernel-deref: xdp program may not dereference kernel pointers
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.equal(f[0].fixes[0]?.title, 'Read with BPF_CORE_READ(t, pid)');
});

test('packet pointers: a pointer of unknown origin keeps the rules as they were (tracing programs)', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return t->pid;
        // ^^^^^^ unsafe-kernel-deref: kprobe program may not dereference
}
`;
  assertFindings(code, await check(code));
});

test('packet pointers: sk_buff->data in a kprobe is a kernel pointer, not a packet pointer', async () => {
  // Only the members of a packet program's context are packet pointers: the kernel's own
  // `struct sk_buff` reached in a kprobe must be read with probe reads, packet bytes included.
  const code = `${CORE}#include <bpf/bpf_tracing.h>
SEC("kprobe/ip_rcv")
int BPF_KPROBE(on_rcv, struct sk_buff *skb)
{
    void *data = skb->data;
              // ^^^^^^^^^ unsafe-kernel-deref: kprobe program may not dereference
    struct ethhdr *eth = data;
    return eth->h_proto;
        // ^^^^^^^^^^^^ unsafe-kernel-deref: kprobe program may not dereference
}
`;
  assertFindings(code, await check(code));
});

test('non-core-field-read: a fixed offset the same on every target kernel with a known layout is not a finding', async () => {
  // `ethhdr`, `iphdr`, `udphdr` from kernel headers, read out of a copy on the stack: their
  // offsets are the wire format's on every kernel. `task_struct.start_time` moves: reported.
  const code = `#include <linux/sched.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/ip_rcv")
int on_rcv(struct pt_regs *ctx)
{
    struct iphdr ip = {};
    struct iphdr *iph = &ip;
    struct udphdr udp = {};
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u64 start = 0;
    bpf_probe_read_kernel(&ip, sizeof(ip), (void *)PT_REGS_PARM2(ctx));
    bpf_probe_read_kernel(&start, sizeof(start), &task->start_time);
                                               // ^^^^^^^^^^^^^^^^ non-core-field-read: differs on
    return iph->ihl + iph->protocol + udp.dest + start;
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.equal(f[0].severity, 'error');
});

test("offsetof: libbpf's macro on a vmlinux.h type is relocated; __builtin_offsetof is a constant", async () => {
  const code = `${CORE}#include <bpf/bpf_tracing.h>
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    void *t = (void *)bpf_get_current_task();
    u64 start = 0, rt = 0;
    bpf_probe_read_kernel(&start, sizeof(start), t + offsetof(struct task_struct, start_time));
    bpf_probe_read_kernel(&start, sizeof(start), t + __builtin_offsetof(struct task_struct, start_time));
                                                  // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ non-core-field-read: __builtin_offsetof, a compile-time constant
    bpf_probe_read_kernel(&rt, sizeof(rt), t + __builtin_offsetof(struct task_struct, se.sum_exec_runtime));
                                            // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ non-core-field-read: task_struct.se.sum_exec_runtime
    // Near miss: the same offset on every target kernel with a known layout.
    return start + rt + __builtin_offsetof(struct ethhdr, h_proto);
}
`;
  const f = await check(code);
  assertFindings(code, f);
  assert.ok(f.every((x) => x.severity === 'error'));
  assert.equal(f[0].fixes[0].title, 'Use bpf_core_field_offset(struct task_struct, start_time)');
  assert.equal(f[0].fixes[0].safe, false, 'a run-time offset is not a drop-in for a constant');
  assert.match(applyFix(code, f[1]), /t \+ bpf_core_field_offset\(struct task_struct, se\.sum_exec_runtime\)\);/);
});

/** A kprobe that reads `start_time` through offsetof, after the includes given. */
const OFFSETOF_PROGRAM = (includes: string) => `${includes}
SEC("kprobe/do_exit")
int on_exit(struct pt_regs *ctx)
{
    void *t = (void *)bpf_get_current_task();
    u64 start = 0;
    bpf_probe_read_kernel(&start, sizeof(start), t + offsetof(struct task_struct, start_time));
    return start;
}
`;

/** The findings' rules and first lines, for comparing variants of one program. */
function where(f: Finding[]): string[] {
  return f.map((x) => `${x.rule}@${x.range.start.line + 1}: ${x.message.slice(0, 60)}`);
}

test("offsetof: <stddef.h> before libbpf's headers makes it __builtin_offsetof; after them it is unknown", async () => {
  const before = await check(OFFSETOF_PROGRAM('#include <stddef.h>\n#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>'));
  assert.deepEqual(
    before.map((x) => [x.rule, x.range.start.line + 1, x.severity]),
    [['non-core-field-read', 9, 'error']],
  );
  assert.match(before[0].message, /which <stddef\.h> defines as __builtin_offsetof/);
  // Near misses: clang 18's <stddef.h> keeps an earlier definition, older ones replace it.
  assert.deepEqual(where(await check(OFFSETOF_PROGRAM('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <stddef.h>'))), []);
  assert.deepEqual(where(await check(OFFSETOF_PROGRAM('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>'))), []);
  // A definition of the program's own decides as it says.
  const own = await check(
    OFFSETOF_PROGRAM('#include "vmlinux.h"\n#define offsetof(T, M) __builtin_offsetof(T, M)\n#include <bpf/bpf_helpers.h>'),
  );
  assert.deepEqual(
    own.map((x) => [x.rule, x.range.start.line + 1]),
    [['non-core-field-read', 9]],
  );
  const relocatable = '#include "vmlinux.h"\n#define offsetof(TYPE, MEMBER) ((unsigned long)&((TYPE *)0)->MEMBER)';
  assert.deepEqual(where(await check(OFFSETOF_PROGRAM(relocatable))), []);
});

test('offsetof: on a type from kernel headers it is a constant whichever definition it has', async () => {
  const code = `#include <linux/sched.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_exit")
int on_exit(struct pt_regs *ctx)
{
    void *t = (void *)bpf_get_current_task();
    u64 start = 0;
    bpf_probe_read_kernel(&start, sizeof(start), t + offsetof(struct task_struct, start_time));
                                                  // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ non-core-field-read: offsetof on a type from kernel headers
    return start + offsetof(struct ethhdr, h_proto);
}
`;
  assertFindings(code, await check(code));
});

test('offsetof: <stddef.h> included by a local header counts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-portability-offsetof-'));
  try {
    writeFileSync(join(dir, 'common.h'), '#pragma once\n#include <stddef.h>\n');
    const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
    const viaHeader = await check(OFFSETOF_PROGRAM('#include "common.h"\n#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>'), uri);
    assert.deepEqual(
      viaHeader.map((x) => [x.rule, x.range.start.line + 1]),
      [['non-core-field-read', 9]],
    );
    // Near miss: the header after libbpf's.
    assert.deepEqual(
      where(await check(OFFSETOF_PROGRAM('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "common.h"'), uri)),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
