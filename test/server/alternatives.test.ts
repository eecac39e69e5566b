/**
 * Programs and maps the loader chooses at run time: variants of one hook switched by
 * `bpf_program__set_autoload`, map types changed by `bpf_map__set_type` (also through a wrapper
 * in another file), attach targets set at run time. Each case has a near miss without the loader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Finding } from '../../server/src/analysis/model';
import { runtimeChoices } from '../../server/src/analysis/runtimeChoices';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { builtinDb } from './expect';

const PROG = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw)
{
    return 0;
}

SEC("kprobe/blk_account_io_merge_bio")
int BPF_KPROBE(merge_bio)
{
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

const LOADER = `#include <bpf/libbpf.h>
#include "prog.skel.h"

int main(void)
{
    struct prog_bpf *obj = prog_bpf__open();
    if (probe_tp_btf("sched_switch"))
        bpf_program__set_autoload(obj->progs.switch_raw, false);
    else
        bpf_program__set_autoload(obj->progs.switch_btf, false);
    if (!kallsyms_has("blk_account_io_merge_bio"))
        bpf_program__set_autoload(obj->progs.merge_bio, false);
    buffer_new(obj->maps.events);
    return prog_bpf__load(obj);
}
`;

const COMPAT = `#include <bpf/libbpf.h>
/* bpf_map__set_type(obj->maps.heap, 0) in a comment does not count. */
int buffer_new(struct bpf_map *events)
{
    if (!probe_ringbuf())
        bpf_map__set_type(events, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    return 0;
}
`;

async function analyzeIn(files: Record<string, string>): Promise<Finding[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-portability-alt-'));
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (t) => parser.parseText(t));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const text = files['prog.bpf.c'];
    const tree = parser.parseText(text)!;
    try {
      // 4.18-5.10 on x86_64: tp_btf needs 5.5, raw_tp 4.17, the ring buffer 5.8.
      const settings = { ...DEFAULT_SETTINGS, targetKernels: '4.18-5.10', architectures: ['x86_64'] };
      return engine.analyzeDocument(pathToFileURL(join(dir, 'prog.bpf.c')).href, text, tree, settings).findings;
    } finally {
      tree.delete();
    }
  } finally {
    engine.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

const find = (fs: Finding[], rule: string, words: string) => fs.find((f) => f.rule === rule && f.message.includes(words));

test('the loader reads: autoload switches, if/else alternatives, map type changes through a wrapper, comments ignored', () => {
  const r = runtimeChoices([{ path: 'prog.c', text: LOADER }], [{ path: 'compat.c', text: COMPAT }]);
  assert.deepEqual([...r.programs.keys()].sort(), ['merge_bio', 'switch_btf', 'switch_raw']);
  assert.equal(r.programs.get('switch_raw'), 'prog.c:8');
  assert.deepEqual([...(r.alternatives.get('switch_btf') ?? [])], ['switch_raw']);
  assert.ok(!r.alternatives.has('merge_bio'), 'a switch outside an if/else pairs with nothing');
  assert.deepEqual([...r.maps.keys()], ['events'], 'the heap in a comment does not count');
  const commented = runtimeChoices(
    [
      {
        path: 'x.c',
        text: '// bpf_program__set_autoload(obj->progs.a, false);\nconst char *s = "bpf_program__set_autoload(obj->progs.b, false)";\n',
      },
    ],
    [],
  );
  assert.equal(commented.programs.size, 0);
});

test('the loader reads: an explicit attach call with a computed target moves the program; a string target does not', () => {
  const r = runtimeChoices(
    [
      {
        path: 'fs.c',
        text: `static int attach(struct fs_bpf *obj, const char **funcs)
{
	obj->links.read = bpf_program__attach_kprobe(obj->progs.read_entry, false, funcs[0]);
	obj->links.tp = bpf_program__attach_tracepoint(obj->progs.on_tp, "sched", tp_name);
	obj->links.fixed = bpf_program__attach_kprobe(obj->progs.fixed_entry, false, "vfs_read");
	obj->links.fixed_tp = bpf_program__attach_tracepoint(obj->progs.fixed_tp, "sched", "sched_switch");
	return 0;
}
`,
      },
    ],
    [],
  );
  assert.deepEqual([...r.retargeted.keys()].sort(), ['on_tp', 'read_entry']);
  assert.equal(r.retargeted.get('read_entry'), 'fs.c:3');
});

test('variants: a tp_btf program the loader swaps for raw_tp, and a ring buffer it turns into a perf buffer, are warnings', async () => {
  const f = await analyzeIn({ 'prog.bpf.c': PROG, 'prog.c': LOADER, 'compat.c': COMPAT });
  const btf = find(f, 'prog-type-unavailable', 'tp_btf/sched_switch');
  assert.equal(btf?.severity, 'warning');
  assert.match(btf!.message, /`switch_raw` serves these kernels/);
  const ring = find(f, 'map-type-unavailable', 'RINGBUF');
  assert.equal(ring?.severity, 'warning');
  assert.match(ring!.message, /changes this map's type at run time \(prog\.c:13\)/);
  const merge = find(f, 'attach-target-missing-in-range', 'blk_account_io_merge_bio');
  assert.equal(merge?.severity, 'warning', 'an optional program without variants does not fail the object');
  assert.ok(!f.some((x) => x.severity === 'error'), JSON.stringify(f.filter((x) => x.severity === 'error').map((x) => x.message)));
});

test('near miss: without the loader, the same failures are errors', async () => {
  const f = await analyzeIn({ 'prog.bpf.c': PROG, 'compat.c': COMPAT });
  assert.equal(find(f, 'prog-type-unavailable', 'tp_btf/sched_switch')?.severity, 'error');
  assert.equal(find(f, 'map-type-unavailable', 'RINGBUF')?.severity, 'error');
  assert.equal(find(f, 'attach-target-missing-in-range', 'blk_account_io_merge_bio')?.severity, 'error');
});

test('variants: where no variant loads, the finding stays an error for those kernels only', async () => {
  // raw_tp came in 4.17: on 4.15 neither variant loads.
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-portability-alt-'));
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (t) => parser.parseText(t));
  try {
    writeFileSync(join(dir, 'prog.bpf.c'), PROG);
    writeFileSync(join(dir, 'prog.c'), LOADER);
    const tree = parser.parseText(PROG)!;
    const settings = { ...DEFAULT_SETTINGS, targetKernels: '4.15-5.4', architectures: ['x86_64'] };
    const f = engine.analyzeDocument(pathToFileURL(join(dir, 'prog.bpf.c')).href, PROG, tree, settings).findings;
    tree.delete();
    const btf = find(f, 'prog-type-unavailable', 'tp_btf/sched_switch');
    assert.equal(btf?.severity, 'error');
    assert.ok(btf!.kernels.length > 0 && btf!.kernels.every((k) => k.includes('4.15')), btf!.kernels.join(','));
    assert.match(btf!.message, /no variant of this hook loads on/);
  } finally {
    engine.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loader-set flags: code under a const volatile flag the loader sets is optional; the same code unguarded stays an error', async () => {
  const prog = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile bool use_pidns = false;
const volatile bool always = true;

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(on_unlink)
{
    struct bpf_pidns_info ns = {};
    u32 pid = 0;
    if (use_pidns && !bpf_get_ns_current_pid_tgid(1, 2, &ns, sizeof(ns)))
        pid = ns.tgid;
    return pid;
}

SEC("kprobe/do_rmdir")
int BPF_KPROBE(on_rmdir)
{
    struct bpf_pidns_info ns2 = {};
    if (always && !bpf_get_ns_current_pid_tgid(1, 2, &ns2, sizeof(ns2)))
        return ns2.pid;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;
  const loader = `#include "prog.skel.h"
int main(void)
{
    struct prog_bpf *obj = prog_bpf__open();
    if (probe_ns_helper())
        obj->rodata->use_pidns = true;
    obj->rodata->always = true;
    return prog_bpf__load(obj);
}
`;
  const r = runtimeChoices([{ path: 'prog.c', text: loader }], []);
  assert.deepEqual(
    [...r.rodata],
    [
      ['use_pidns', 'prog.c:6'],
      ['always', 'prog.c:7'],
    ],
  );
  const f = (await analyzeIn({ 'prog.bpf.c': prog, 'prog.c': loader })).filter(
    (x) => x.rule === 'helper-unavailable' || x.rule === 'type-missing-in-range',
  );
  const line = (x: Finding) => x.range.start.line + 1;
  const flagged = f.filter((x) => line(x) <= 15);
  assert.deepEqual(flagged.map((x) => `${x.rule}:${line(x)}:${x.severity}`).sort(), [
    'helper-unavailable:13:warning',
    'type-missing-in-range:11:warning',
  ]);
  assert.match(flagged[0].message, /runs only where the loader sets `use_pidns` \(prog\.c:6\)/);
  // Near miss: `always` is true in the object, so the code it guards runs everywhere.
  const plain = f.filter((x) => line(x) > 15);
  assert.deepEqual(plain.map((x) => `${x.rule}:${x.severity}`).sort(), ['helper-unavailable:error', 'type-missing-in-range:error']);
  // Near miss: without the loader, the flagged code is an error too.
  const alone = (await analyzeIn({ 'prog.bpf.c': prog })).filter((x) => x.rule === 'helper-unavailable' && x.range.start.line + 1 === 13);
  assert.equal(alone[0]?.severity, 'error');
});

test('a run-time attachment chooser (build.yaml wasm): kprobes whose targets are missing load, so warnings; fentry stays an error', async () => {
  const prog = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/inotify_handle_inode_event")
int BPF_KPROBE(new_event)
{
    return 0;
}

SEC("kprobe/inotify_handle_event")
int BPF_KPROBE(old_event)
{
    return 0;
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(open2)
{
    return 0;
}

SEC("fentry/inotify_handle_inode_event")
int BPF_PROG(new_event_fentry)
{
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;
  const rules = (fs: Finding[]) =>
    fs
      .filter((x) => x.rule === 'attach-target-missing-in-range')
      .map((x) => `${x.range.start.line + 1}:${x.severity}`)
      .sort();
  const f = await analyzeIn({ 'prog.bpf.c': prog, 'build.yaml': 'wasm: go/program.go\n' });
  assert.deepEqual(rules(f), ['11:warning', '17:warning', '23:error', '5:warning']);
  const byLine = (l: number) => f.find((x) => x.rule === 'attach-target-missing-in-range' && x.range.start.line + 1 === l)!;
  assert.match(byLine(5).message, /`old_event` attaches where it is missing/);
  assert.match(byLine(17).message, /chooses what to attach at run time; where it attaches this program anyway, that fails/);
  // Near miss: without the module, the same kprobes are errors.
  assert.deepEqual(rules(await analyzeIn({ 'prog.bpf.c': prog })), ['11:error', '17:error', '23:error', '5:error']);
});
