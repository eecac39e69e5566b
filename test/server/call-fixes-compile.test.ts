/**
 * Every fix of the call rules (helper-unavailable, kfunc-unavailable, legacy-probe-read,
 * verifier-bounded-loops) and field-missing-in-range's `___old` fallback produces C that compiles:
 * each snippet is compiled as written and with each fix applied on its own, with `clang -target
 * bpf -O2 -g -c` against a vmlinux.h that bpftool dumps from real kernel BTF, with a variable a
 * guard leaves uninitialised and an undeclared function (a missing include) made errors. Needs
 * Debian's clang, libbpf-dev and bpftool; says so and skips when they are absent. Which guard
 * fixes are offered at all (only where the program then loads) is checked without clang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelDb } from '../../kernel-db/src/query/db';
import { applyEdits, fixAllEdits } from '../../server/src/analysis/fixall';
import { Engine } from '../../server/src/driver/engine';
import { loadCParser } from '../../server/src/parse/documents';
import { DEFAULT_SETTINGS, type Settings } from '../../server/src/driver/settings';
import { writeVmlinuxH } from './vmlinux';

const find = (cmd: string) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, cmd)).find((p) => existsSync(p));
const clang = find('clang');
const bpftool = find('bpftool');
const helpersH = '/usr/include/bpf/bpf_helpers.h';

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");
`;
const GPL = '\nchar LICENSE[] SEC("license") = "GPL";\n';
/** No ring buffer map: the guards below are about the helpers alone. */
const PLAIN = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
`;
/** A helper's value used after the call (no guard), a call statement (a guard), an already guarded call (no second guard). */
const GUARDS = `${PLAIN}#include <bpf/bpf_core_read.h>

static long cb(u32 i, void *ctx)
{
    return 0;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 ts;
    ts = bpf_ktime_get_boot_ns();
    if (!ts)
        return 0;
    bpf_loop(16, cb, NULL, 0);
    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop))
        bpf_loop(8, cb, NULL, 0);
    return ts;
}
${GPL}`;
/** Ring buffer helpers where the RINGBUF map itself fails on the same kernels. */
const RINGBUF = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 *e;
    e = bpf_ringbuf_reserve(&rb, sizeof(u64), 0);
    if (!e)
        return 0;
    *e = code;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
${GPL}`;
/** A renamed member read through a BTF pointer, in a file without bpf_core_read.h. */
const RENAMED = `${PLAIN}
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    return prev->__state;
}
${GPL}`;

/** Snippets whose findings carry fixes, with the settings that produce them. */
const SNIPPETS: { name: string; code: string; settings?: Partial<Settings>; rules: string[] }[] = [
  {
    name: 'helper guards',
    rules: ['helper-unavailable'],
    code: `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 v = code, *e;
    bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
    bpf_ringbuf_output(&rb, &code, sizeof(code), 0);
    e = bpf_ringbuf_reserve(&rb, sizeof(u64), 0);
    if (e)
        bpf_ringbuf_submit(e, 0);
    return 0;
}
${GPL}`,
  },
  { name: 'guards only around call statements', rules: ['helper-unavailable'], code: GUARDS },
  { name: 'ring buffer map and helpers', rules: ['helper-unavailable'], code: RINGBUF },
  { name: 'renamed member fallback', rules: ['field-missing-in-range'], code: RENAMED },
  {
    name: 'older equivalent helper',
    rules: ['helper-unavailable'],
    settings: { loader: { kind: 'libbpf', minVersion: '0.1' }, architectures: ['x86_64'] },
    code: `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    char comm[16];
    bpf_probe_read_kernel_str(comm, sizeof(comm), t->comm);
    return comm[0];
}
${GPL}`,
  },
  {
    name: 'explicit probe reads',
    rules: ['legacy-probe-read'],
    code: `${HEAD}
SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(on_open, int dfd, const char *filename)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    struct mm_struct *mm;
    char name[64];
    bpf_probe_read(&mm, sizeof(mm), &t->mm);
    bpf_probe_read_str(name, sizeof(name), filename);
    return name[0];
}
${GPL}`,
  },
  {
    name: 'kfunc guard',
    rules: ['kfunc-unavailable'],
    settings: { loader: { kind: 'libbpf', minVersion: '1.2' } },
    code: `${HEAD}
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym;

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    struct task_struct *t = bpf_task_acquire(next);
    if (t)
        bpf_task_release(t);
    return 0;
}
${GPL}`,
  },
  {
    name: 'unrolled loops',
    rules: ['verifier-bounded-loops'],
    code: `${HEAD}
#define MAX 8

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int i;
    u64 s = 0;
    for (i = 0; i < MAX; i++)
        s += i * code;
    return s;
}
${GPL}`,
  },
];

/**
 * Debian's libbpf-dev 1.1 predates `bpf_ksym_exists()` (libbpf 1.2), which the kfunc fix uses:
 * supply a definition with the same contract (a weak symbol's address as a truth value).
 */
const KSYM_EXISTS = `#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!(sym)), #sym " must be declared __weak"); !!(sym); })
#endif
`;

test('call-rule fixes compile with clang -target bpf', async (t) => {
  const missing = [!clang && 'clang', !bpftool && 'bpftool', !existsSync(helpersH) && 'libbpf-dev (/usr/include/bpf)'].filter(Boolean);
  if (missing.length) {
    t.skip(`not installed: ${missing.join(', ')} (Debian packages clang, bpftool, libbpf-dev; .ci/run installs them)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-call-fixes-'));
  try {
    if (!(await writeVmlinuxH(dir, bpftool!))) {
      t.skip('no kernel BTF to make vmlinux.h from (/sys/kernel/btf/vmlinux or ../shared/kernel-data)');
      return;
    }
    const needShim = !readFileSync(helpersH, 'utf8').includes('bpf_ksym_exists');
    const parser = await loadCParser();
    const engine = new Engine(KernelDb.open({ noUser: true }), (s) => parser.parseText(s));
    const compile = (label: string, text: string) => {
      const file = join(dir, `${label.replace(/\W+/g, '-')}.bpf.c`);
      writeFileSync(
        file,
        needShim && text.includes('bpf_ksym_exists')
          ? text.replace('#include <bpf/bpf_tracing.h>\n', `#include <bpf/bpf_tracing.h>\n${KSYM_EXISTS}`)
          : text,
      );
      // A guard that skips an assignment leaves the variable undefined where the value is used;
      // a fix that forgets an include calls an undeclared function: both are errors here.
      const strict = ['-Werror=uninitialized', '-Werror=sometimes-uninitialized', '-Werror=implicit-function-declaration'];
      const r = spawnSync(
        clang!,
        ['-target', 'bpf', '-O2', '-g', '-D__TARGET_ARCH_x86', ...strict, '-I', dir, '-c', file, '-o', `${file}.o`],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, `${label} compiles:\n${text}\n${r.stdout}${r.stderr}`);
    };
    let fixes = 0;
    for (const s of SNIPPETS) {
      compile(`${s.name} as written`, s.code);
      const tree = parser.parseText(s.code)!;
      const findings = engine
        .analyzeDocument(`file://${join(dir, 'x.bpf.c')}`, s.code, tree, { ...DEFAULT_SETTINGS, ...s.settings })
        .findings.filter((f) => s.rules.includes(f.rule));
      tree.delete();
      assert.ok(
        findings.some((f) => f.fixes.length > 0),
        `${s.name}: the rules offer fixes`,
      );
      for (const f of findings) {
        f.fixes.forEach((fix, i) => {
          fixes++;
          compile(`${s.name}: ${f.rule} line ${f.range.start.line + 1} fix ${i + 1} (${fix.title})`, applyEdits(s.code, fix.edits));
        });
      }
    }
    assert.ok(fixes >= 10, `compiled ${fixes} fixes`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('guard fixes are offered only where the program then loads', async () => {
  const parser = await loadCParser();
  const engine = new Engine(KernelDb.open({ noUser: true }), (s) => parser.parseText(s));
  const analyse = (code: string) => {
    const tree = parser.parseText(code)!;
    const r = engine.analyzeDocument('file:///tmp/guards.bpf.c', code, tree, DEFAULT_SETTINGS).findings;
    tree.delete();
    return r;
  };
  const isGuard = (title: string) => /only on kernels that have it/.test(title);
  const at = (findings: ReturnType<typeof analyse>, code: string, needle: string, nth = 0) => {
    let off = -1;
    for (let i = 0; i <= nth; i++) off = code.indexOf(needle, off + 1);
    const line = code.slice(0, off).split('\n').length - 1;
    const f = findings.find((x) => x.rule === 'helper-unavailable' && x.range.start.line === line);
    assert.ok(f, `a helper-unavailable finding on line ${line + 1} (${needle}): ${findings.map((x) => x.message).join('\n')}`);
    return f;
  };

  const g = analyse(GUARDS);
  // `ts = bpf_ktime_get_boot_ns();` followed by `if (!ts)`: a guard would leave `ts` undefined.
  assert.deepEqual(
    at(g, GUARDS, 'ts = bpf_ktime_get_boot_ns').fixes.filter((x) => isGuard(x.title)),
    [],
  );
  // A call statement is guarded, and fix all applies it.
  const loop = at(g, GUARDS, 'bpf_loop(16');
  assert.ok(loop.fixes.some((x) => isGuard(x.title) && x.safe));
  assert.match(
    applyEdits(GUARDS, fixAllEdits(g)),
    /if \(bpf_core_enum_value_exists\(enum bpf_func_id, BPF_FUNC_loop\)\) \{\n\s+bpf_loop\(16/,
  );
  // The call already under that guard gets no identical guard inside it.
  const guarded = g.find(
    (x) => x.rule === 'helper-unavailable' && x.range.start.line === GUARDS.slice(0, GUARDS.indexOf('bpf_loop(8')).split('\n').length - 1,
  );
  assert.deepEqual(guarded?.fixes.filter((x) => isGuard(x.title)) ?? [], []);

  // The RINGBUF map fails wherever the ring buffer helpers are missing: a guard cannot make the
  // object load there, so none is offered, nor applied by fix all; narrowing the target is.
  const rb = analyse(RINGBUF);
  assert.ok(rb.some((f) => f.rule === 'map-type-unavailable'));
  for (const needle of ['bpf_ringbuf_reserve', 'bpf_ringbuf_submit']) {
    const f = at(rb, RINGBUF, needle);
    assert.deepEqual(
      f.fixes.filter((x) => isGuard(x.title)),
      [],
      needle,
    );
    const narrow = f.fixes.find((x) => /^Narrow this file's target to \d+\.\d+\+/.test(x.title));
    assert.ok(narrow && !narrow.safe, `${needle}: narrowing offered, not applied by fix all`);
    // The narrowed file has no finding left on the helper's kernels.
    const narrowed = applyEdits(RINGBUF, narrow.edits);
    assert.deepEqual(
      analyse(narrowed).filter((x) => x.severity === 'error'),
      [],
    );
  }
  assert.doesNotMatch(applyEdits(RINGBUF, fixAllEdits(rb)), /BPF_FUNC_ringbuf/);
  // Guard fixes carry no internal marks out of the analysis.
  assert.ok(g.every((f) => f.fixes.every((x) => !('guard' in x) && !('needsCoreRead' in x))));

  // The ___old fallback declares bpf_core_field_exists's header even for a direct BTF read.
  const renamed = analyse(RENAMED).find((f) => f.rule === 'field-missing-in-range');
  const fallback = renamed?.fixes.find((x) => /___old/.test(x.title));
  assert.ok(fallback, 'the ___old fallback is offered');
  assert.doesNotMatch(fallback.title, /`/);
  assert.match(applyEdits(RENAMED, fallback.edits), /#include <bpf\/bpf_core_read\.h>/);
});
