/**
 * The fixed text must compile: every libbpf example (and complete rule snippets) with all safe
 * fixes applied is compiled with `clang -target bpf -O2 -g -c` against a vmlinux.h that bpftool
 * dumps from real kernel BTF. Needs Debian's clang, libbpf-dev and bpftool (`.ci/run` installs
 * them); says so and skips when they are absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xzDecompress } from '../../kernel-db/src/btf/container';
import { KernelDb } from '../../kernel-db/src/query/db';
import { applyEdits, fixAllEdits } from '../../server/src/analysis/fixall';
import { Engine } from '../../server/src/driver/engine';
import { loadCParser } from '../../server/src/parse/documents';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';

const root = join(__dirname, '..', '..');
const which = (cmd: string, extra: string[] = []) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', ...extra].map((d) => join(d, cmd)).find((p) => existsSync(p));
const clang = which('clang');
const bpftool = which('bpftool');
const libbpfHeaders = existsSync('/usr/include/bpf/bpf_helpers.h');

/** A vmlinux.h from this machine's BTF, or from a real blob beside the project. */
async function vmlinuxH(dir: string): Promise<string | undefined> {
  let btf = '/sys/kernel/btf/vmlinux';
  if (!existsSync(btf)) {
    const blob = join(root, '..', 'shared', 'kernel-data', 'btf', 'debian-6.12.117-amd64.btf.xz');
    if (!existsSync(blob)) return undefined;
    btf = join(dir, 'vmlinux.btf');
    writeFileSync(btf, await xzDecompress(new Uint8Array(readFileSync(blob)), blob));
  }
  const r = spawnSync(bpftool!, ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) return undefined;
  writeFileSync(join(dir, 'vmlinux.h'), r.stdout);
  return join(dir, 'vmlinux.h');
}

function compile(dir: string, file: string): { ok: boolean; out: string } {
  const r = spawnSync(clang!, ['-target', 'bpf', '-O2', '-g', '-D__TARGET_ARCH_x86', '-I', dir, '-c', file, '-o', `${file}.o`], {
    encoding: 'utf8',
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test('fixed examples compile with clang -target bpf', async (t) => {
  const missing = [!clang && 'clang', !bpftool && 'bpftool', !libbpfHeaders && 'libbpf-dev (/usr/include/bpf)'].filter(Boolean);
  if (missing.length) {
    t.skip(`not installed: ${missing.join(', ')} (Debian packages clang, bpftool, libbpf-dev; .ci/run installs them)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-compile-'));
  try {
    if (!(await vmlinuxH(dir))) {
      t.skip('no kernel BTF to make vmlinux.h from (/sys/kernel/btf/vmlinux or ../shared/kernel-data)');
      return;
    }
    const parser = await loadCParser();
    const engine = new Engine(KernelDb.open({ noUser: true }), (s) => parser.parseText(s));
    const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.bpf.c'));
    assert.ok(examples.length >= 3);
    let fixedSomething = 0;
    for (const name of examples) {
      const text = readFileSync(join(root, 'examples', name), 'utf8');
      const tree = parser.parseText(text)!;
      const r = engine.analyzeDocument(`file://${join(dir, name)}`, text, tree, DEFAULT_SETTINGS);
      tree.delete();
      const edits = fixAllEdits(r.findings);
      const fixed = applyEdits(text, edits);
      if (edits.length) fixedSomething++;
      const before = join(dir, `orig-${name}`);
      const after = join(dir, name);
      writeFileSync(before, text);
      writeFileSync(after, fixed);
      const a = compile(dir, before);
      assert.ok(a.ok, `${name} (as written) compiles:\n${a.out}`);
      const b = compile(dir, after);
      assert.ok(b.ok, `${name} with every safe fix applied compiles:\n${fixed}\n${b.out}`);
      // And the fixes leave no error behind that a fix could have removed.
      const t2 = parser.parseText(fixed)!;
      const again = engine.analyzeDocument(`file://${after}`, fixed, t2, DEFAULT_SETTINGS).findings;
      t2.delete();
      assert.deepEqual(
        again.filter((f) => f.severity === 'error' && f.fixes.some((x) => x.safe)).map((f) => f.message),
        [],
        `${name} after fixing`,
      );
    }
    assert.ok(fixedSomething >= 2, 'the examples exercise the fixes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the renamed-field fallback (a fix to review) compiles and leaves the read clean', async (t) => {
  const missing = [!clang && 'clang', !bpftool && 'bpftool', !libbpfHeaders && 'libbpf-dev (/usr/include/bpf)'].filter(Boolean);
  if (missing.length) {
    t.skip(`not installed: ${missing.join(', ')}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-compile-'));
  try {
    if (!(await vmlinuxH(dir))) {
      t.skip('no kernel BTF to make vmlinux.h from');
      return;
    }
    const parser = await loadCParser();
    const engine = new Engine(KernelDb.open({ noUser: true }), (s) => parser.parseText(s));
    const head = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n#include <bpf/bpf_core_read.h>\n\n';
    const tail = '\nchar LICENSE[] SEC("license") = "GPL";\n';
    // Each renamed member with the declaration its fallback flavor must get (the old name and type
    // from the kernels that lack the new one).
    const snippets: Record<string, { text: string; decl: RegExp }> = {
      'fentry.bpf.c': {
        text: `${head}SEC("fentry/do_exit")\nint BPF_PROG(on_exit, long code)\n{\n\tstruct task_struct *t = bpf_get_current_task_btf();\n\treturn t->__state;\n}\n${tail}`,
        decl: /struct task_struct___old \{\n\tvolatile long int state;\n\} __attribute__\(\(preserve_access_index\)\);\n\nSEC\(/,
      },
      'kprobe.bpf.c': {
        text: `${head}SEC("kprobe/do_exit")\nint BPF_KPROBE(on_exit, long code)\n{\n\tstruct task_struct *t = (void *)bpf_get_current_task();\n\tstruct task_struct *p = BPF_CORE_READ(t, real_parent);\n\treturn BPF_CORE_READ(p, __state);\n}\n${tail}`,
        decl: /struct task_struct___old \{\n\tvolatile long int state;\n\} __attribute__\(\(preserve_access_index\)\);\n\nSEC\(/,
      },
      // start_boottime was real_start_time before 5.5 (the same u64 between start_time and min_flt).
      'boottime.bpf.c': {
        text: `${head}SEC("kprobe/do_exit")\nint BPF_KPROBE(on_exit, long code)\n{\n\tstruct task_struct *t = (void *)bpf_get_current_task();\n\treturn BPF_CORE_READ(t, start_boottime) > 0;\n}\n${tail}`,
        decl: /struct task_struct___old \{\n\tu64 real_start_time;\n\} __attribute__\(\(preserve_access_index\)\);\n\nSEC\(/,
      },
    };
    for (const [name, { text, decl }] of Object.entries(snippets)) {
      const tree = parser.parseText(text)!;
      const f = engine
        .analyzeDocument(`file://${join(dir, name)}`, text, tree, DEFAULT_SETTINGS)
        .findings.find((x) => x.rule === 'field-missing-in-range');
      tree.delete();
      assert.ok(f && f.fixes[0], `${name}: a fallback fix`);
      assert.equal(f.fixes[0].safe, false);
      const fixed = applyEdits(text, f.fixes[0].edits);
      assert.match(fixed, decl);
      writeFileSync(join(dir, name), fixed);
      const c = compile(dir, join(dir, name));
      assert.ok(c.ok, `${name} fixed compiles:\n${fixed}\n${c.out}`);
      const t2 = parser.parseText(fixed)!;
      const again = engine
        .analyzeDocument(`file://${join(dir, name)}`, fixed, t2, DEFAULT_SETTINGS)
        .findings.filter((x) => x.rule === 'field-missing-in-range');
      t2.delete();
      assert.deepEqual(
        again.map((x) => x.message),
        [],
        `${name}: the guarded reads are clean`,
      );
    }
    // Without layout evidence of a rename there is no name to fall back to: no fix is offered
    // (`i_ctime_sec` replaced the timespec64 `__i_ctime` by two members, it is no rename of it),
    // and the code as written compiles.
    const plain = `${head}SEC("kprobe/vfs_unlink")\nint BPF_KPROBE(on_unlink, void *idmap, struct inode *dir)\n{\n\treturn BPF_CORE_READ(dir, i_ctime_sec) > 0;\n}\n${tail}`;
    const tree = parser.parseText(plain)!;
    const f = engine
      .analyzeDocument(`file://${join(dir, 'plain.bpf.c')}`, plain, tree, DEFAULT_SETTINGS)
      .findings.find((x) => x.rule === 'field-missing-in-range');
    tree.delete();
    assert.ok(f, 'inode.i_ctime_sec is missing before 6.11');
    assert.doesNotMatch(f.message, /named/);
    assert.deepEqual(f.fixes, []);
    writeFileSync(join(dir, 'plain.bpf.c'), plain);
    const c = compile(dir, join(dir, 'plain.bpf.c'));
    assert.ok(c.ok, c.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
