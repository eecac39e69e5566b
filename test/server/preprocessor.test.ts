/**
 * Preprocessor conditions: branches the build does not compile have no findings; branches that
 * depend on what the analysis cannot see keep theirs. Each case has the compiled twin as a near
 * miss that is still reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { buildFileModel, NO_BUILD } from '../../server/src/analysis/file';
import { evaluateCondition, inactiveRegions } from '../../server/src/analysis/preprocessor';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { analyzeSnippet, assertFindings, builtinDb } from './expect';

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
`;

async function model(code: string, defines: Record<string, string> = {}, arch?: string) {
  const parser = await loadCParser();
  const tree = parser.parseText(code)!;
  const build = { ...NO_BUILD, defines: new Map(Object.entries(defines)), ...(arch ? { arch } : {}) };
  return { m: buildFileModel('file:///snippets/pp.bpf.c', code, tree, undefined, undefined, build), tree };
}

test('preprocessor: #if arithmetic, defined, macros, short-circuits over unknown names', async () => {
  const code = '#define A 2\n#define B (A * 3)\n#define EMPTY\nint x;\n';
  const { m, tree } = await model(code, { D: '1' });
  const at = code.length;
  const ev = (e: string) => evaluateCondition(e, m, at);
  assert.equal(ev('0'), 0n);
  assert.equal(ev('B == 6 && defined(A) && defined D'), 1n);
  assert.equal(ev('A << 2 | 1'), 9n);
  assert.equal(ev('!defined(A) ? 5 : 0x10'), 16n);
  assert.equal(ev('defined(__bpf__) && !defined(__x86_64__)'), 1n, 'clang -target bpf defines __bpf__, no host arch');
  assert.equal(ev('UNKNOWN_FROM_VMLINUX'), undefined, 'a name nobody here defines is unknown, not 0');
  assert.equal(ev('UNKNOWN && 0'), 0n);
  assert.equal(ev('UNKNOWN || 1'), 1n);
  assert.equal(ev('FOO(1) > 2'), undefined, 'function-like macros are not expanded');
  assert.equal(ev('(1'), undefined, 'malformed');
  assert.equal(ev('1 / 0'), undefined);
  // Positions: a macro defined after the condition is not defined there.
  assert.equal(evaluateCondition('defined(A)', m, 0), undefined);
  tree.delete();
});

test("preprocessor: an #if nested past clang's 256 brackets is unknown, not a stack overflow; 200 levels still evaluate", async () => {
  const deep = (n: number, inner: string) => `${'('.repeat(n)}${inner}${')'.repeat(n)}`;
  const code = `#if ${deep(3000, '0')}\nint hidden;\n#endif\n#if ${'!'.repeat(5000)}0\nint a;\n#endif\nint x;\n`;
  const { m, tree } = await model(code);
  const at = code.length;
  // Found by fuzzing: 2,200 parentheses after `#if 0` overflowed the stack and failed the analysis.
  assert.equal(evaluateCondition(deep(3000, '0'), m, at), undefined);
  assert.equal(evaluateCondition(`${'!'.repeat(5000)}0`, m, at), undefined);
  assert.equal(evaluateCondition(`${'1 ? '.repeat(3000)}1${' : 0'.repeat(3000)}`, m, at), undefined);
  assert.deepEqual(inactiveRegions(m, tree), [], 'unknown conditions hide nothing');
  // Near misses: nesting within the bound is evaluated.
  assert.equal(evaluateCondition(deep(200, '0'), m, at), 0n);
  assert.equal(evaluateCondition(deep(256, '3'), m, at), 3n, "clang's 256 levels");
  assert.equal(evaluateCondition(deep(257, '3'), m, at), undefined, 'one past them');
  assert.equal(evaluateCondition(deep(200, '2 + 3'), m, at), 5n);
  assert.equal(evaluateCondition(`${'!'.repeat(200)}0`, m, at), 0n);
  assert.equal(evaluateCondition(`${'1 ? '.repeat(100)}7${' : 0'.repeat(100)}`, m, at), 7n);
  tree.delete();
  // The whole analysis of such a file ends without a failure (analyzeSnippet asserts none).
  await analyzeSnippet(`${HEAD}#if ${deep(3000, '0')}\nint hidden;\n#endif\n`);
});

test('preprocessor: __TARGET_ARCH_<arch> of the build makes the other architectures known undefined', async () => {
  const code = 'int x;\n';
  const x86 = await model(code, { __TARGET_ARCH_x86: '1' }, 'x86_64');
  assert.equal(evaluateCondition('defined(__TARGET_ARCH_arm64)', x86.m, 7), 0n);
  assert.equal(evaluateCondition('defined(bpf_target_arm64)', x86.m, 7), 0n);
  assert.equal(evaluateCondition('defined(__TARGET_ARCH_x86)', x86.m, 7), 1n);
  assert.equal(evaluateCondition('defined(bpf_target_x86)', x86.m, 7), undefined, 'bpf_tracing.h defines it; not read');
  const none = await model(code);
  assert.equal(evaluateCondition('defined(__TARGET_ARCH_arm64)', none.m, 7), undefined, 'no flags: unknown');
  x86.tree.delete();
  none.tree.delete();
});

test('preprocessor: include guards and conditional definitions are not taken as facts', async () => {
  const code = '#ifndef PROG_H\n#define PROG_H\n#ifdef X\n#define Y 1\n#endif\n#undef Z\nint x;\n#endif\n';
  const { m, tree } = await model(code);
  assert.equal(m.macroSites.get('PROG_H')?.conditional, false);
  assert.equal(m.macroSites.get('Y')?.conditional, true);
  assert.equal(evaluateCondition('defined(Y)', m, code.length), undefined);
  assert.equal(evaluateCondition('defined(Z)', m, code.length), undefined, '#undef somewhere: unknown');
  assert.deepEqual(inactiveRegions(m, tree), [], 'the guard itself never makes the file inactive');
  tree.delete();
});

test('preprocessor: findings in #if 0, in the #else of a true #if and after #ifndef of a defined name are dropped', async () => {
  const code = `${HEAD}#define USE_RINGBUF 0
#define HAVE_PID 1

#if USE_RINGBUF
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
#else
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } events SEC(".maps");
#endif

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(on_unlink, int dfd)
{
    struct task_struct *t = (void *)bpf_get_current_task();
#if HAVE_PID
    return bpf_get_smp_processor_id();
#else
    return t->pid;
#endif
}

#ifndef HAVE_PID
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(unused, int dfd)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return t->tgid;
}
#endif

#if defined(SOMETHING_FROM_ELSEWHERE)
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(maybe, int dfd)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    return t->tgid;
//         ^^^^^^^ unsafe-kernel-deref
}
#endif
`;
  const f = await analyzeSnippet(code, { rules: ['unsafe-kernel-deref', 'map-type-unavailable'] });
  assertFindings(code, f);
  // Near miss: with the ring buffer on, its map is reported.
  const on = code.replace('#define USE_RINGBUF 0', '#define USE_RINGBUF 1');
  const g = await analyzeSnippet(on, { rules: ['map-type-unavailable'] });
  assert.equal(g.length, 1);
  assert.match(g[0].message, /RINGBUF/);
});

test('preprocessor: the other architecture branch of an x86 build (-D__TARGET_ARCH_x86) has no findings', async () => {
  const code = `${HEAD}
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(on_unlink, int dfd)
{
    struct task_struct *t = (void *)bpf_get_current_task();
#ifdef __TARGET_ARCH_arm64
    return t->pid;
#endif
    return 0;
}
`;
  const parser = await loadCParser();
  const run = async (flags: string[]) => {
    const engine = new Engine(builtinDb, (t) => parser.parseText(t), { extraFlags: flags, config: false });
    const tree = parser.parseText(code)!;
    try {
      return engine
        .analyzeDocument(pathToFileURL('/nonexistent-dir/arch.bpf.c').toString(), code, tree, DEFAULT_SETTINGS)
        .findings.filter((f) => f.rule === 'unsafe-kernel-deref');
    } finally {
      tree.delete();
      engine.dispose();
    }
  };
  assert.equal((await run(['-D__TARGET_ARCH_x86'])).length, 0);
  assert.equal((await run(['-D__TARGET_ARCH_arm64'])).length, 1, 'compiled for arm64: reported');
  assert.equal((await run([])).length, 1, 'no flags: the branch may be compiled');
});
