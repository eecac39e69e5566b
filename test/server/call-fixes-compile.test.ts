/**
 * Every fix of the call rules (helper-unavailable, kfunc-unavailable, legacy-probe-read,
 * verifier-bounded-loops) produces C that compiles: each snippet is compiled as written and
 * with each fix applied on its own, with `clang -target bpf -O2 -g -c` against a vmlinux.h that
 * bpftool dumps from real kernel BTF. Needs Debian's clang, libbpf-dev and bpftool; says so and
 * skips when they are absent.
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
import { DEFAULT_SETTINGS, type Settings } from '../../server/src/driver/settings';

const root = join(__dirname, '..', '..');
const find = (cmd: string) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, cmd)).find((p) => existsSync(p));
const clang = find('clang');
const bpftool = find('bpftool');
const helpersH = '/usr/include/bpf/bpf_helpers.h';

/** Writes vmlinux.h into `dir` from this machine's BTF or a real blob beside the project. */
async function writeVmlinuxH(dir: string): Promise<boolean> {
  let btf = '/sys/kernel/btf/vmlinux';
  if (!existsSync(btf)) {
    const blob = join(root, '..', 'shared', 'kernel-data', 'btf', 'debian-6.12.117-amd64.btf.xz');
    if (!existsSync(blob)) return false;
    btf = join(dir, 'vmlinux.btf');
    writeFileSync(btf, await xzDecompress(new Uint8Array(readFileSync(blob)), blob));
  }
  const r = spawnSync(bpftool!, ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) return false;
  writeFileSync(join(dir, 'vmlinux.h'), r.stdout);
  return true;
}

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");
`;
const GPL = '\nchar LICENSE[] SEC("license") = "GPL";\n';

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
    if (!(await writeVmlinuxH(dir))) {
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
      const r = spawnSync(clang!, ['-target', 'bpf', '-O2', '-g', '-D__TARGET_ARCH_x86', '-I', dir, '-c', file, '-o', `${file}.o`], {
        encoding: 'utf8',
      });
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
