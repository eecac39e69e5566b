/**
 * The fixes of the type rules compile: snippets with every fix of field-type-changed-in-range and
 * enum-value-not-relocated applied (safe or not) are compiled with `clang -target bpf` against a
 * vmlinux.h that bpftool dumps from a real kernel's BTF. Skips, saying why, without clang,
 * bpftool or libbpf-dev (`.ci/run` installs them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xzDecompress } from '../../kernel-db/src/btf/container';
import { KernelDb } from '../../kernel-db/src/query/db';
import { applyEdits } from '../../server/src/analysis/fixall';
import { Engine } from '../../server/src/driver/engine';
import { loadCParser } from '../../server/src/parse/documents';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';

const root = join(__dirname, '..', '..');
const RULES = ['field-type-changed-in-range', 'enum-value-not-relocated'];

function tool(cmd: string): string | undefined {
  return [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, cmd)).find((p) => existsSync(p));
}

/** Writes `vmlinux.h` into `dir` from a real Debian 6.12 BTF (sk_protocol is u16 there). */
async function writeVmlinux(dir: string, bpftool: string): Promise<boolean> {
  const blob = join(root, '..', 'shared', 'kernel-data', 'btf', 'debian-6.12.117-amd64.btf.xz');
  let btf = blob;
  if (existsSync(blob)) {
    btf = join(dir, 'vmlinux.btf');
    writeFileSync(btf, await xzDecompress(new Uint8Array(readFileSync(blob)), blob));
  } else if (existsSync('/sys/kernel/btf/vmlinux')) {
    btf = '/sys/kernel/btf/vmlinux';
  } else {
    return false;
  }
  const r = spawnSync(bpftool, ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) return false;
  writeFileSync(join(dir, 'vmlinux.h'), r.stdout);
  return true;
}

const SNIPPET = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry/tcp_v4_connect")
int BPF_PROG(on_connect, struct sock *sk)
{
    u16 proto = sk->sk_protocol;
    u32 flags = sk->sk_tsflags;
    return proto == IPPROTO_TCP && flags;
}

SEC("fentry/ip_finish_output")
int BPF_PROG(on_output, struct net *net, struct sock *sk, struct sk_buff *skb)
{
    return skb->sk->sk_protocol;
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(on_kprobe, struct sock *sk, struct sk_buff *skb)
{
    u16 a = BPF_CORE_READ(sk, sk_protocol);
    u16 b = BPF_CORE_READ(skb, sk, sk_protocol);
    u32 c = BPF_CORE_READ(sk, sk_tsflags);
    return a + b + c;
}

SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct pid *tg = t->signal->pids[PIDTYPE_TGID];
    struct cgroup_subsys_state *pids = t->cgroups->subsys[pids_cgrp_id];
    return (long)tg + (long)pids + PIDTYPE_SID;
}

char LICENSE[] SEC("license") = "GPL";
`;

test('fixes of the type rules compile with clang -target bpf', async (t) => {
  const clang = tool('clang');
  const bpftool = tool('bpftool');
  const missing = [!clang && 'clang', !bpftool && 'bpftool', !existsSync('/usr/include/bpf/bpf_helpers.h') && 'libbpf-dev'].filter(Boolean);
  if (missing.length) {
    t.skip(`not installed: ${missing.join(', ')}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-types-compile-'));
  try {
    if (!(await writeVmlinux(dir, bpftool!))) {
      t.skip('no kernel BTF to make vmlinux.h from');
      return;
    }
    const parser = await loadCParser();
    const engine = new Engine(KernelDb.open({ noUser: true }), (s) => parser.parseText(s));
    const tree = parser.parseText(SNIPPET)!;
    const findings = engine
      .analyzeDocument(`file://${join(dir, 'types.bpf.c')}`, SNIPPET, tree, DEFAULT_SETTINGS)
      .findings.filter((f) => RULES.includes(f.rule));
    tree.delete();
    const fixes = findings.filter((f) => f.fixes.length > 0);
    // Direct and macro reads of sk_protocol (also through skb->sk), sk_tsflags, and the enum uses.
    assert.ok(fixes.length >= 6, `fixes offered: ${findings.map((f) => f.message).join('\n')}`);
    // Each fix's edits, plus the one include edit they share, applied together from the end.
    const seen = new Set<string>();
    const edits = fixes
      .flatMap((f) => f.fixes[0].edits)
      .filter((e) => {
        const k = JSON.stringify(e);
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    const fixed = applyEdits(SNIPPET, edits);
    // A multi-step BPF_CORE_READ has no fix: clang rejects a BPF_CORE_READ nested in the bitfield macro.
    assert.match(fixed, /u16 b = BPF_CORE_READ\(skb, sk, sk_protocol\);/);
    assert.match(fixed, /BPF_CORE_READ_BITFIELD_PROBED\(skb->sk, sk_protocol\)/);
    assert.match(fixed, /pids\[bpf_core_enum_value\(enum pid_type, PIDTYPE_TGID\)\]/);
    assert.match(fixed, /#include <bpf\/bpf_core_read\.h>/);
    const file = join(dir, 'types.bpf.c');
    writeFileSync(file, fixed);
    const r = spawnSync(clang!, ['-target', 'bpf', '-O2', '-g', '-D__TARGET_ARCH_x86', '-I', dir, '-c', file, '-o', `${file}.o`], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `the fixed snippet compiles:\n${fixed}\n${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
