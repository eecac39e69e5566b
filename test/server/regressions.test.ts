/**
 * Wrong results that came from facts computed twice or cached under incomplete keys: each case
 * here failed before the analysis took its facts from one place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Node } from 'web-tree-sitter';
import { buildFileModel } from '../../server/src/analysis/file';
import { Guards } from '../../server/src/analysis/guards';
import { KSet } from '../../server/src/analysis/kset';
import { functionContexts } from '../../server/src/analysis/program';
import { FunctionScope, TypeEnv } from '../../server/src/analysis/scope';
import { Engine } from '../../server/src/driver/engine';
import { loadCParser } from '../../server/src/parse/documents';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { analyzeSnippet, assertFindings, builtinDb } from './expect';

const CORE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;

test('guards: every read before an early-return guard runs on all targets, in whatever order nodes are asked about', async () => {
  // Node ids are addresses: a cache keyed by arithmetic on them gave some reads before the guard
  // the guarded set of a read after it (here 29 of the 90 statements share an id modulo 4096).
  const before = Array.from({ length: 30 }, (_, i) => `    s += BPF_CORE_READ(t, __state) + ${i};`).join('\n');
  const after = Array.from({ length: 60 }, (_, i) => `    s += BPF_CORE_READ(t, __state) * ${i};`).join('\n');
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    long s = 0;
${before}
    if (!bpf_core_field_exists(t->__state))
        return 0;
${after}
    return s;
}
`;
  const parser = await loadCParser();
  const tree = parser.parseText(code)!;
  try {
    const kernels = builtinDb.target(DEFAULT_SETTINGS.targetKernels, { arch: DEFAULT_SETTINGS.architectures });
    const model = buildFileModel('file:///snippets/guards.bpf.c', code, tree);
    const env = new TypeEnv(model, builtinDb);
    const fn = model.functions[0];
    const scope = new FunctionScope(env, fn, functionContexts(model, builtinDb.facts).get(fn)!);
    const guards = new Guards(env, builtinDb, KSet.all(kernels), scope, code);
    // The same nodes with ids that are multiples of 4096, as addresses may well be.
    const stmts = (fn.body!.namedChildren.filter((n) => n?.type === 'expression_statement') as Node[]).map(aligned);
    assert.equal(stmts.length, 90);
    const has = (k: KSet) => k.size;
    const guarded = stmts.slice(30).map((n) => has(guards.kernelsAt(n)));
    assert.ok(
      guarded.every((n) => n > 0 && n < kernels.length),
      'reads after the guard run only where the field exists',
    );
    const unguarded = stmts.slice(0, 30).map((n) => has(guards.kernelsAt(n)));
    assert.deepEqual(
      unguarded,
      unguarded.map(() => kernels.length),
      'reads before the guard run on every target',
    );
  } finally {
    tree.delete();
  }
  const f = await analyzeSnippet(code, { rules: ['field-missing-in-range'] });
  assert.equal(f.length, 30, 'and the rule flags the 30 reads before the guard');
});

/** A node whose id (and every id reachable from it) is its real id times 4096. */
function aligned(n: Node): Node {
  const targets = new WeakMap<object, object>();
  const wrap = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(wrap);
    if (!v || typeof v !== 'object' || typeof (v as Node).id !== 'number' || !('startIndex' in v)) return v;
    const p = new Proxy(v as Node, {
      get(t, k) {
        if (k === 'id') return t.id * 4096;
        const x = Reflect.get(t, k, t);
        return typeof x === 'function'
          ? (...a: unknown[]) =>
              wrap(
                x.apply(
                  t,
                  a.map((y) => (y && typeof y === 'object' && targets.get(y)) || y),
                ),
              )
          : wrap(x);
      },
    });
    targets.set(p, v as object);
    return p;
  };
  return wrap(n) as Node;
}

test('SEC(): a comment between the section and the function keeps the program type', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
/* Runs when a task exits. */
int on_exit(struct pt_regs *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return task->tgid;
        // ^^^^^^^^^^ unsafe-kernel-deref: kprobe program may not dereference
}

SEC("kprobe/do_exit")
// A line comment, then an attribute-free definition.
int on_exit2(struct pt_regs *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return BPF_CORE_READ(task, tgid);
}
`;
  assertFindings(code, await analyzeSnippet(code, { rules: ['unsafe-kernel-deref'] }));
});

test('analysis cache: a changed local header invalidates the findings of functions that did not change', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-portability-cache-'));
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (t) => parser.parseText(t));
  try {
    const header = join(dir, 'common.h');
    // A local mirror of the kernel struct: fixed offsets unless it relocates.
    const plain = 'struct task_struct { int pid; int tgid; };\n';
    const core = 'struct task_struct { int pid; int tgid; } __attribute__((preserve_access_index));\n';
    writeFileSync(header, plain);
    const code = (extra: string) => `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"

SEC("kprobe/do_exit")
int on_task(void *ctx)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    int tgid = 0;
    bpf_probe_read_kernel(&tgid, sizeof(tgid), &t->tgid);
    return tgid;
}

SEC("kprobe/do_exit")
int on_exit(struct pt_regs *ctx)
{
    return ${extra};
}
`;
    const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
    const run = (text: string) => {
      const tree = parser.parseText(text)!;
      try {
        return engine.analyzeDocument(uri, text, tree, DEFAULT_SETTINGS, true).findings.filter((f) => f.rule === 'non-core-field-read');
      } finally {
        tree.delete();
      }
    };
    assert.equal(run(code('0')).length, 1, 'the probe read of a plain struct is flagged');
    writeFileSync(header, core);
    // Make the change visible to an mtime check even on coarse file systems.
    const later = new Date(Date.now() + 5000);
    utimesSync(header, later, later);
    assert.deepEqual(run(code('1')), [], 'after the header gains preserve_access_index the read relocates');
    writeFileSync(header, plain);
    const later2 = new Date(Date.now() + 10000);
    utimesSync(header, later2, later2);
    assert.equal(run(code('2')).length, 1, 'and it is flagged again once the attribute is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    engine.dispose();
  }
});

test('member-alias macros: a member spelled with an object-like macro is not reported as missing', async () => {
  const code = `${CORE}
#define sk_family __sk_common.skc_family

SEC("kprobe/tcp_connect")
int BPF_KPROBE(on_connect, struct sock *sk)
{
    return BPF_CORE_READ(sk, sk_family) + BPF_CORE_READ(sk, sk_nosuchfield);
                                       // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range
}
`;
  assertFindings(code, await analyzeSnippet(code, { rules: ['field-missing-in-range'] }));
  // Near miss: without the alias, the name is not a member of struct sock on any kernel.
  const bare = code.replace('#define sk_family __sk_common.skc_family\n', '\n');
  const f = await analyzeSnippet(bare, { rules: ['field-missing-in-range'] });
  assert.ok(
    f.some((x) => x.message.includes('sock.sk_family')),
    JSON.stringify(f.map((x) => x.message)),
  );
});

test('type-missing-in-range: a struct from kernel or UAPI headers read plainly is compiled to fixed offsets, not relocated', async () => {
  const uapi = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tp/syscalls/sys_enter_write")
int on_write(void *ctx)
{
    struct bpf_pidns_info ns;
    bpf_get_ns_current_pid_tgid(1, 2, &ns, sizeof(ns));
    return ns.pid;
}
`;
  assert.deepEqual(await analyzeSnippet(uapi, { rules: ['type-missing-in-range'] }), []);
  // Near miss: the same struct from vmlinux.h relocates, and is missing before 5.7.
  const core = uapi.replace('#include <linux/bpf.h>', '#include "vmlinux.h"');
  const f = await analyzeSnippet(core, { rules: ['type-missing-in-range'] });
  assert.equal(f.length, 1);
  assert.match(f[0].message, /struct bpf_pidns_info is missing/);
});

test('guards: a helper that returns an existence check guards like the check; a name declared in two blocks keeps each type', async () => {
  const code = (cond: string) => `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
struct trace_event_raw_block_rq_completion___x { dev_t dev; } __attribute__((preserve_access_index));
struct trace_event_raw_block_rq_complete___x { dev_t dev; } __attribute__((preserve_access_index));

static __always_inline bool has_block_rq_completion()
{
    if (bpf_core_type_exists(struct trace_event_raw_block_rq_completion___x))
        return true;
    return false;
}

SEC("tp_btf/block_rq_complete")
int handle(void *args)
{
    u32 dev;
    if (${cond}) {
        struct trace_event_raw_block_rq_completion___x *ctx = args;
        dev = BPF_CORE_READ(ctx, dev);
    } else {
        struct trace_event_raw_block_rq_complete___x *ctx = args;
        dev = BPF_CORE_READ(ctx, dev);
    }
    return dev;
}
`;
  assert.deepEqual(await analyzeSnippet(code('has_block_rq_completion()'), { rules: ['type-missing-in-range'] }), []);
  // Near miss: an unrelated condition guards nothing, so each branch needs its type everywhere.
  const f = await analyzeSnippet(code('args != 0'), { rules: ['type-missing-in-range'] });
  assert.deepEqual(f.map((x) => /struct (\w+) is missing/.exec(x.message)?.[1]).sort(), [
    'trace_event_raw_block_rq_complete',
    'trace_event_raw_block_rq_completion',
  ]);
});

test('numbers in messages are grouped by thousands as en-US prints them, without loading ICU', async () => {
  const { num } = await import('../../server/src/analysis/layout');
  for (const n of [0, 7, 999, 1000, 2576, 65535, 1234567, -1234, 1.5]) assert.equal(num(n), n.toLocaleString('en-US'), String(n));
});
