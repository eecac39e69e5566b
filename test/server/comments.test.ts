/** Suppression comments, per-file targets, and the loader setting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import { parseLoader } from '../../server/src/analysis/loader';
import { validateSettings, type Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, assertFindings } from './expect';

async function check(code: string, settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, {
    rules: ['unsafe-kernel-deref', 'field-missing-in-range', 'invalid-lint-comment', 'non-core-field-read'],
    settings,
    uri: 'file:///snippets/comments.bpf.c',
  });
}

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;

test('disable-next-line silences the named rules on the next line only', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    // ebpf-portability-disable-next-line unsafe-kernel-deref
    u32 a = t->pid;
    u32 b = t->tgid;
         // ^^^^^^^ unsafe-kernel-deref
    /* ebpf-portability-disable-next-line field-missing-in-range */
    u32 c = t->pid;
         // ^^^^^^ unsafe-kernel-deref
    return a + b + c;
}
`;
  assertFindings(code, await check(code));
});

test('disable/enable regions, with and without rule ids', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    /* ebpf-portability-disable unsafe-kernel-deref */
    u32 a = t->pid + BPF_CORE_READ(t, __state);
                  // ^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range
    /* ebpf-portability-enable unsafe-kernel-deref */
    u32 b = t->tgid;
         // ^^^^^^^ unsafe-kernel-deref
    /* ebpf-portability-disable */
    u32 c = t->pid + BPF_CORE_READ(t, __state);
    /* ebpf-portability-enable */
    return a + b + c;
}
`;
  assertFindings(code, await check(code));
});

test('unknown rule ids and malformed targets in comments are reported', async () => {
  const code = `${HEAD}
// ebpf-portability: target=5.8-
                         // ^^^^ invalid-lint-comment: malformed target
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    // ebpf-portability-disable-next-line field-missing-in-rnage
                                       // ^^^^^^^^^^^^^^^^^^^^^^ invalid-lint-comment: unknown rule "field-missing-in-rnage"
    return 0;
}
`;
  assertFindings(code, await check(code));
});

test('a per-file target narrows the kernels the file is checked against', async () => {
  const body = `
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    return t->__state;
}
`;
  const wide = await check(`${HEAD}${body}`);
  assert.deepEqual(
    wide.map((f) => f.rule),
    ['field-missing-in-range'],
  );
  assert.deepEqual(await check(`${HEAD}// ebpf-portability: target=5.15-7.x\n${body}`), [], '__state exists on every kernel from 5.15');
});

test('loader: bcc silences layout rules, keeps missing fields; settings validate it', async () => {
  const code = `#include <linux/sched.h>
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_exit")
int probe(struct pt_regs *ctx)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u64 s = 0;
    bpf_probe_read_kernel(&s, sizeof(s), &t->real_start_time);
    return s;
}
`;
  const libbpf = await check(code);
  assert.deepEqual(libbpf.map((f) => f.rule).sort(), ['field-missing-in-range', 'non-core-field-read']);
  const bcc = await check(code, { loader: { kind: 'bcc' } });
  assert.deepEqual(
    bcc.map((f) => f.rule),
    ['field-missing-in-range'],
    'real_start_time is gone from 5.5',
  );
  assert.deepEqual(parseLoader('libbpf>=1.3'), { kind: 'libbpf', minVersion: '1.3' });
  assert.equal(parseLoader('bcc>=1.0'), undefined);
  assert.match(validateSettings({ loader: 'lib-bpf' }).problems[0], /loader must be/);
});
