/**
 * Language-server figures: time from server start to first diagnostics on an example, and
 * edit-to-diagnostics latency over 200 scripted edits on a 2,000-line BPF file with the default
 * target, alone and with a project include path of 20 headers. Run by `npm run bench` after the kernel-database figures.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TestClient } from '../../test/server/lsp-client';

const root = join(__dirname, '..', '..');

/** A realistic 2,000-line file: many kprobe/fentry programs reading task and socket fields. */
export function bigFile(lines = 2000): string {
  const head =
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n#include <bpf/bpf_core_read.h>\n\nstruct event { u32 pid; u32 ppid; u64 start; char comm[16]; };\n\n';
  const prog = (i: number) => `SEC("kprobe/do_exit")
int BPF_KPROBE(exit_${i}, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct event ev = {};
    ev.pid = BPF_CORE_READ(task, tgid);
    ev.ppid = task->real_parent->tgid;
    ev.start = BPF_CORE_READ(task, start_time) + ${i};
    bpf_probe_read_kernel(&ev.comm, sizeof(ev.comm), &task->comm);
    return ev.pid + ev.ppid;
}

SEC("fentry/tcp_rcv_established")
int BPF_PROG(rcv_${i}, struct sock *sk)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    return tp->srtt_us + sk->__sk_common.skc_dport + ${i};
}

`;
  let out = head;
  for (let i = 0; out.split('\n').length < lines; i++) out += prog(i);
  return out;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Runs the language-server benchmark and prints its figures. */
export async function benchLsp(): Promise<void> {
  console.log('\n# language server (dist/server.js over stdio)');
  const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');
  const colds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const c = await TestClient.start();
    c.open('file:///bench/example.bpf.c', example);
    await c.diagnostics('file:///bench/example.bpf.c', (d) => d.length > 0);
    colds.push(performance.now() - t0);
    await c.stop();
  }
  console.log(`${'server start to first diagnostics (median of 3)'.padEnd(60)} ${pct(colds, 50).toFixed(0)} ms`);

  // The same file alone, and in a project whose include path holds 20 headers it includes.
  await editLatency('', 'file:///bench/big.bpf.c', bigFile());
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-bench-project-'));
  try {
    const includes = projectHeaders(dir, 20);
    const text = bigFile().replace('#include <bpf/bpf_core_read.h>\n', `#include <bpf/bpf_core_read.h>\n${includes}`);
    await editLatency(' (20-header include path)', pathToFileURL(join(dir, 'big.bpf.c')).href, text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Writes `n` project headers under `dir/include/proj/` (types, object-like and function-like
 * macros, conditionals, each including the previous one) and `compile_flags.txt` with the
 * include path; returns the `#include <proj/…>` lines of a program that uses them all.
 */
function projectHeaders(dir: string, n: number): string {
  mkdirSync(join(dir, 'include', 'proj'), { recursive: true });
  writeFileSync(join(dir, 'compile_flags.txt'), '-Iinclude\n-D__TARGET_ARCH_x86\n');
  let lines = '';
  for (let i = 0; i < n; i++) {
    const body = [
      `#ifndef PROJ_H${i}`,
      `#define PROJ_H${i}`,
      i > 0 ? `#include <proj/h${i - 1}.h>` : '',
      `#define PROJ_LIMIT_${i} ${i * 16}`,
      `#define PROJ_READ_${i}(p) ({ typeof(p) _v; bpf_probe_read_kernel(&_v, sizeof(_v), &p); _v; })`,
      '#ifdef __TARGET_ARCH_x86',
      `#define PROJ_ARCH_${i} 1`,
      '#endif',
      `struct proj_event_${i} { unsigned int pid; unsigned int tgid; unsigned long long ts; char comm[16]; };`,
      `static __always_inline int proj_helper_${i}(int x) { return x + PROJ_LIMIT_${i}; }`,
      '#endif',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'include', 'proj', `h${i}.h`), body);
    lines += `#include <proj/h${i}.h>\n`;
  }
  return lines;
}

/** First analysis and edit-to-diagnostics latency of one document (a fresh server). */
async function editLatency(label: string, uri: string, text: string): Promise<void> {
  const c = await TestClient.start();
  try {
    const t0 = performance.now();
    c.open(uri, text);
    await c.diagnostics(uri, (d) => d.length > 0, 1, 60000);
    console.log(
      `${`first analysis of a ${text.split('\n').length}-line file${label}`.padEnd(60)} ${(performance.now() - t0).toFixed(0)} ms`,
    );
    // 200 edits: retype one digit in a function body (changes that function only), then wait
    // for that version's diagnostics.
    const lines = text.split('\n');
    const targets = lines.map((l, i) => (/\+ \d+;$/.test(l) ? i : -1)).filter((i) => i >= 0);
    const lat: number[] = [];
    for (let n = 0; n < 200; n++) {
      const line = targets[(n * 7) % targets.length];
      const col = lines[line].length - 2;
      const version = n + 2;
      const t = performance.now();
      c.change(uri, version, [{ range: { start: { line, character: col }, end: { line, character: col + 1 } }, text: String(n % 10) }]);
      await c.diagnostics(uri, () => true, version, 60000);
      lat.push(performance.now() - t);
    }
    console.log(`${`edit to diagnostics, 200 edits: p50${label}`.padEnd(60)} ${pct(lat, 50).toFixed(1)} ms`);
    console.log(`${`edit to diagnostics, 200 edits: p95${label}`.padEnd(60)} ${pct(lat, 95).toFixed(1)} ms`);
    if (!label)
      console.log(
        `${'target kernels (default 4.14-7.x)'.padEnd(60)} ${(await c.diagnostics(uri))[0]?.data?.kernels.length ?? '?'} failing on the first finding`,
      );
  } finally {
    await c.stop();
  }
}

/**
 * The cost of more target kernels: one whole-file analysis (no reuse) of the 2,000-line file
 * against 1, 10, 40 and all default target kernels. Kernel sets are bitsets, so the cost should
 * grow far slower than the number of kernels.
 */
export async function benchTargets(): Promise<void> {
  const { KernelDb } = await import('../../kernel-db/src/query/db');
  const { Engine } = await import('../../server/src/driver/engine');
  const { loadCParser } = await import('../../server/src/parse/documents');
  const { DEFAULT_SETTINGS } = await import('../../server/src/driver/settings');
  const parser = await loadCParser();
  const db = KernelDb.open({ noUser: true });
  const text = bigFile();
  const all = db.target('4.14-7.x');
  console.log('\n# whole-file analysis against more target kernels (2,000 lines, no reuse)');
  let base = 0;
  for (const n of [1, 10, 40, all.length]) {
    const names = all
      .filter((_, i) => i % Math.max(1, Math.floor(all.length / n)) === 0)
      .slice(0, n)
      .map((k) => k.name);
    const settings = { ...DEFAULT_SETTINGS, targetKernels: names.join(',') };
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      // A fresh engine each time: no caches carried over between target sizes.
      const engine = new Engine(db, (t) => parser.parseText(t));
      const tree = parser.parseText(text)!;
      const t0 = performance.now();
      engine.analyzeDocument('file:///bench/targets.bpf.c', text, tree, settings);
      times.push(performance.now() - t0);
      tree.delete();
    }
    const med = pct(times, 50);
    if (n === 1) base = med;
    console.log(`${`${n} target kernel${n === 1 ? '' : 's'}`.padEnd(44)} ${med.toFixed(1)} ms (${(med / base).toFixed(2)}x of 1 kernel)`);
  }
}

/**
 * The object pass on the 2,000-line file: clang's compile (against a vmlinux.h bpftool dumps from
 * the newest Debian kernel's BTF beside the project), and apart from it the analysis of the object
 * — every CO-RE relocation resolved and the reachable instructions found on every default target
 * kernel. Skipped, with a message, without clang, bpftool, libbpf's headers or the BTF blob.
 */
export async function benchObject(): Promise<void> {
  const { KernelDb } = await import('../../kernel-db/src/query/db');
  const { readBpfObject } = await import('../../kernel-db/src/btf/object');
  const { checkObject } = await import('../../server/src/rules/object');
  const { DEFAULT_SETTINGS } = await import('../../server/src/driver/settings');
  const { clangFlags, defaultBtfBlob, vmlinuxHeader } = await import('../../groundtruth/src/compile');
  console.log('\n# object pass (2,000 lines, every default target kernel)');
  const find = (cmd: string) =>
    [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, cmd)).find((p) => existsSync(p));
  const clang = find('clang');
  const bpftool = find('bpftool');
  const blob = defaultBtfBlob(root);
  if (!clang || !bpftool || !blob || !existsSync('/usr/include/bpf/bpf_helpers.h')) {
    console.log('skipped: needs clang, bpftool, libbpf-dev headers and ../shared/kernel-data');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-bench-object-'));
  try {
    const inc = await vmlinuxHeader(blob, { cmd: bpftool, args: [] }, dir);
    const src = join(dir, 'big.bpf.c');
    writeFileSync(src, bigFile());
    const out = join(dir, 'big.o');
    const t0 = performance.now();
    const r = spawnSync(clang, [...clangFlags(inc), '-c', src, '-o', out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`clang failed: ${r.stderr}`);
    console.log(`${'clang compile (once)'.padEnd(60)} ${(performance.now() - t0).toFixed(0)} ms`);
    const db = KernelDb.open({ noUser: true });
    const kernels = db.target(DEFAULT_SETTINGS.targetKernels, { arch: ['x86_64'] });
    const bytes = new Uint8Array(readFileSync(out));
    const times: number[] = [];
    let relocs = 0;
    // One run first, not counted: the database's answers and the JIT are warm in a running server.
    checkObject(db, readBpfObject(bytes, 'big.o'), kernels, DEFAULT_SETTINGS.loader);
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const obj = readBpfObject(bytes, 'big.o');
      checkObject(db, obj, kernels, DEFAULT_SETTINGS.loader);
      times.push(performance.now() - t);
      relocs = obj.ext?.coreRelos.length ?? 0;
    }
    console.log(
      `${`object analysis: ${relocs} relocations x ${kernels.length} kernels (median of 5, after one warm-up)`.padEnd(60)} ${pct(times, 50).toFixed(1)} ms`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
