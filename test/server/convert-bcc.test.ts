/**
 * `convert-bcc`: BCC programs of our own (a Python tool and a C file) written out as libbpf CO-RE
 * `.bpf.c` files — BTF maps, SEC() programs, helpers for map methods, BPF_CORE_READ for kernel
 * reads, placeholders as const volatile globals — that compile with `clang -target bpf` against a
 * vmlinux.h bpftool dumps from real kernel BTF (skipped, saying so, without clang, bpftool and
 * libbpf-dev), and what could not be converted listed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertBcc } from '../../server/src/driver/convertBcc';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { builtinDb } from './expect';
import { writeVmlinuxH } from './vmlinux';

const find = (cmd: string) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, cmd)).find((p) => existsSync(p));
const clang = find('clang');
const bpftool = find('bpftool');
const helpersH = '/usr/include/bpf/bpf_helpers.h';

async function converter() {
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (t) => parser.parseText(t));
  return (path: string, text: string) =>
    convertBcc(path, text, builtinDb, (c) => {
      const tree = parser.parseText(c)!;
      try {
        return engine.analyzeDocument('file:///conv/out.bpf.c', c, tree, DEFAULT_SETTINGS).findings;
      } finally {
        tree.delete();
      }
    });
}

const PY_TOOL = `#!/usr/bin/env python3
from bcc import BPF

prog = """
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct event_t {
    u32 pid;
    u32 ppid;
    char comm[TASK_COMM_LEN];
};
BPF_HASH(start, u32, u64);
BPF_HISTOGRAM(dist);
BPF_PERF_OUTPUT(events);

int kprobe__do_nanosleep(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 ts = bpf_ktime_get_ns();
    if (TARGET_PID && pid != TARGET_PID)
        return 0;
    start.update(&pid, &ts);
    return 0;
}

int trace_return(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 *tsp = start.lookup(&pid);
    if (tsp == 0)
        return 0;
    u64 delta = (bpf_ktime_get_ns() - *tsp) / 1000;
    start.delete(&pid);
    dist.increment(bpf_log2l(delta));
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct event_t e = {};
    e.pid = pid;
    e.ppid = task->real_parent->tgid;
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.perf_submit(ctx, &e, sizeof(e));
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u32 pid = args->pid;
    start.delete(&pid);
    return 0;
}
"""
if args.pid:
    prog = prog.replace('TARGET_PID', str(args.pid))
b = BPF(text=prog)
b.attach_kretprobe(event="do_nanosleep", fn_name="trace_return")
`;

const C_TOOL = `#include <uapi/linux/ptrace.h>
#include <linux/sched.h>
BPF_ARRAY(counts, u64, 4);
BPF_RINGBUF_OUTPUT(ring, 8);

KFUNC_PROBE(do_exit, long code)
{
    u32 key = 0;
    u64 zero = 0, *v = counts.lookup_or_try_init(&key, &zero);
    if (v)
        __sync_fetch_and_add(v, 1);
    u32 *slot = ring.ringbuf_reserve(sizeof(u32));
    if (!slot)
        return 0;
    *slot = code;
    ring.ringbuf_submit(slot, 0);
    return 0;
}

RAW_TRACEPOINT_PROBE(sched_switch)
{
    counts.increment(1);
    return 0;
}
`;

test('convert-bcc: a Python tool becomes BTF maps, SEC programs and CO-RE reads; what needs a hand is listed', async () => {
  const convert = await converter();
  const r = convert('/tools/sleeplat.py', PY_TOOL);
  assert.match(r.text, /#include "vmlinux\.h"/);
  assert.doesNotMatch(r.text, /^#include <linux\//m);
  assert.match(
    r.text,
    /__uint\(type, BPF_MAP_TYPE_HASH\);\n {4}__uint\(max_entries, 10240\);\n {4}__type\(key, u32\);\n {4}__type\(value, u64\);\n\} start SEC\("\.maps"\);/,
  );
  // A histogram with BCC's default int key is an array of 64 slots.
  assert.match(
    r.text,
    /BPF_MAP_TYPE_ARRAY\);\n {4}__uint\(max_entries, 64\);\n {4}__type\(key, int\);\n {4}__type\(value, u64\);\n\} dist SEC/,
  );
  assert.match(r.text, /BPF_MAP_TYPE_PERF_EVENT_ARRAY/);
  assert.match(r.text, /SEC\("kprobe\/do_nanosleep"\)\nint BPF_KPROBE\(kprobe__do_nanosleep\)/);
  // attach_kretprobe(event=…, fn_name=…) with literals gives the hand-attached function its SEC.
  assert.match(r.text, /SEC\("kretprobe\/do_nanosleep"\)\nint BPF_KRETPROBE\(trace_return\)/);
  assert.match(
    r.text,
    /SEC\("tracepoint\/sched\/sched_process_exit"\)\nint tracepoint__sched__sched_process_exit\(struct trace_event_raw_sched_process_template \*args\)/,
  );
  assert.match(r.text, /bpf_map_update_elem\(&start, &pid, &ts, BPF_ANY\)/);
  assert.match(r.text, /bpf_map_lookup_elem\(&start, &pid\)/);
  assert.match(r.text, /bpf_perf_event_output\(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof\(e\)\)/);
  assert.match(r.text, /dist__increment\(bpf_log2l\(delta\), 1\)/);
  // The kernel pointer chain BCC's rewriter read through probe reads is a CO-RE read.
  assert.match(r.text, /e\.ppid = BPF_CORE_READ\(task, real_parent, tgid\);/);
  assert.match(r.text, /const volatile long TARGET_PID = 0;/);
  assert.match(r.text, /char LICENSE\[\] SEC\("license"\) = "GPL";/);
  assert.ok(
    r.notes.some((n) => /placeholder TARGET_PID/.test(n)),
    r.notes.join('\n'),
  );
  assert.ok(r.notes.some((n) => /bpf_log2l/.test(n)));
});

test('convert-bcc: a C file with probe macros and map methods; a Python file without bcc converts nothing', async () => {
  const convert = await converter();
  const r = convert('/tools/exits.c', C_TOOL);
  assert.match(r.text, /SEC\("fentry\/do_exit"\)\nint BPF_PROG\(kfunc__do_exit, long code\)/);
  assert.match(r.text, /SEC\("raw_tp\/sched_switch"\)\nint raw_tracepoint__sched_switch\(struct bpf_raw_tracepoint_args \*ctx\)/);
  assert.match(r.text, /counts__lookup_or_try_init\(&key, &zero\)/);
  assert.match(r.text, /bpf_ringbuf_reserve\(&ring, sizeof\(u32\), 0\)/);
  assert.match(r.text, /bpf_ringbuf_submit\(slot, 0\)/);
  assert.match(r.text, /__uint\(max_entries, \(8\) \* 4096\)/);
  // Near miss: no bcc import, no program.
  const none = convert('/tools/other.py', PY_TOOL.replace('from bcc import BPF', 'from mylib import BPF'));
  assert.equal(none.text, '');
  assert.match(none.notes.join('\n'), /does not import bcc/);
});

test('convert-bcc: the converted programs compile with clang -target bpf', async (t) => {
  const missing = [!clang && 'clang', !bpftool && 'bpftool', !existsSync(helpersH) && 'libbpf-dev (/usr/include/bpf)'].filter(Boolean);
  if (missing.length) {
    t.skip(`not installed: ${missing.join(', ')} (Debian packages clang, bpftool, libbpf-dev)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'convert-bcc-'));
  try {
    if (!(await writeVmlinuxH(dir, bpftool!))) {
      t.skip('no kernel BTF to make vmlinux.h from (/sys/kernel/btf/vmlinux or ../shared/kernel-data)');
      return;
    }
    const convert = await converter();
    // The Python tool reads real_parent->tgid: on every kernel; it compiles against any vmlinux.h.
    for (const [name, path, text] of [
      ['sleeplat', '/tools/sleeplat.py', PY_TOOL],
      ['exits', '/tools/exits.c', C_TOOL],
    ] as const) {
      const out = join(dir, `${name}.bpf.c`);
      writeFileSync(out, convert(path, text).text);
      const r = spawnSync(
        clang!,
        [
          '-target',
          'bpf',
          '-O2',
          '-g',
          '-D__TARGET_ARCH_x86',
          '-Werror=implicit-function-declaration',
          '-I',
          dir,
          '-c',
          out,
          '-o',
          `${out}.o`,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, `${name} compiles:\n${readFileSync(out, 'utf8')}\n${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
