/**
 * Range rules with real kernel facts from the built database: a finding names the kernels that
 * break, a near miss stays silent, and guarded code is checked only where its guard holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import type { Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, assertFindings } from './expect';

/** Findings of the given rules only (other rules have their own tests). */
async function check(code: string, rules: string[], settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, { rules, settings, uri: 'file:///snippets/range.bpf.c' });
}

const CORE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;

test('field-missing-in-range: task_struct.__state is missing before 5.14, named state there', async () => {
  const code = `${CORE}
SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    return t->__state;
        // ^^^^^^^^^^ field-missing-in-range: named \`state\` there
}
`;
  const f = await check(code, ['field-missing-in-range']);
  assertFindings(code, f);
  const names = f[0].kernels;
  assert.ok(names.includes('debian-5.10.0-46-amd64') && names.includes('ubuntu-5.13.0-19-generic-amd64'));
  assert.ok(!names.some((n) => /debian-6\./.test(n)), 'present from 5.14');
  // Not before 5.5, where fentry programs do not load at all (prog-type-unavailable's finding).
  assert.match(f[0].message, /Ubuntu 5\.8 … 5\.13/);
  assert.ok(!names.includes('ubuntu-4.15.0-20-generic-amd64'));
  // Near miss: a target that starts at 5.14 has it everywhere.
  assert.deepEqual(await check(code.replace(/\n *\/\/ \^+[^\n]*/, ''), ['field-missing-in-range'], { targetKernels: '5.15-7.x' }), []);
});

test('field-missing-in-range: the rename hint comes from layout evidence, never from a look-alike', async () => {
  const code = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    u64 a = BPF_CORE_READ(t, real_start_time);
         // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range: named \`start_boottime\` there
    u64 b = BPF_CORE_READ(t, start_boottime);
         // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range: named \`real_start_time\` there
    return a + b;
}

SEC("kprobe/vfs_unlink")
int BPF_KPROBE(on_unlink, void *idmap, struct inode *dir)
{
    return BPF_CORE_READ(dir, i_ctime.tv_sec) + BPF_CORE_READ(dir, i_ctime_sec);
        // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range: named \`__i_ctime\` on 4 of them
                                             // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range: \`inode.i_ctime_sec\` is missing
}
`;
  const f = await check(code, ['field-missing-in-range']);
  assertFindings(code, f);
  const [real, boot, ctime, sec] = f;
  // The 5.4 and 5.11 layouts put start_boottime where real_start_time was; mce_vaddr and
  // cputime_expires only look alike (offset, name) across kernels years apart.
  assert.doesNotMatch(real.message, /mce_vaddr|preempt_disable_ip/);
  assert.doesNotMatch(boot.message, /cputime_expires/);
  assert.match(real.fixes[0]?.title ?? '', /Fall back to start_boottime /);
  assert.match(boot.fixes[0]?.title ?? '', /Fall back to real_start_time /);
  // __i_ctime only on 6.6–6.10; i_ctime_sec and i_ctime_nsec replaced it, no rename: the kernels
  // are told apart, and no fallback is offered that would fail on the other 40.
  assert.match(ctime.message, /named `__i_ctime` on 4 of them \(6\.6–6\.8\)\./);
  assert.doesNotMatch(ctime.message, /i_ctime_sec/);
  assert.ok(ctime.kernels.length > 40);
  assert.deepEqual(ctime.fixes, []);
  // No evidence, no hint: just where it is missing.
  assert.doesNotMatch(sec.message, /named/);
  assert.deepEqual(sec.fixes, []);
  // Near miss: the same reads under their existence checks are silent.
  const guarded = `${CORE}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    if (bpf_core_field_exists(t->start_boottime))
        return BPF_CORE_READ(t, start_boottime);
    return 0;
}
`;
  assert.deepEqual(await check(guarded, ['field-missing-in-range']), []);
});

test('field-missing-in-range: silent inside the bpf_core_field_exists guard and its ___flavor fallback', async () => {
  const code = `${CORE}
struct task_struct___o {
    long state;
} __attribute__((preserve_access_index));

SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    long state;

    if (bpf_core_field_exists(t->__state))
        state = BPF_CORE_READ(t, __state);
    else
        state = BPF_CORE_READ((struct task_struct___o *)t, state);
    return bpf_core_field_exists(struct task_struct, __state) ? t->__state : state;
}
`;
  assertFindings(code, await check(code, ['field-missing-in-range']));
});

test('field-missing-in-range: early returns, && chains and negations narrow the kernels', async () => {
  const code = `${CORE}
SEC("fentry/vfs_read")
int BPF_PROG(on_read, struct file *file)
{
    struct inode *inode = file->f_inode;
    if (!bpf_core_field_exists(inode->i_ctime_sec))
        return 0;
    u64 s = inode->i_ctime_sec;
    if (bpf_core_type_exists(struct bpf_iter_meta) && bpf_core_field_exists(inode->__i_ctime))
        s += inode->__i_ctime.tv_sec;
    return s;
}
`;
  assertFindings(code, await check(code, ['field-missing-in-range']));
});

test('field-missing-in-range: a fallback that is itself removed later is a finding (6.6 fix, 6.11 removal)', async () => {
  const code = `${CORE}
SEC("fentry/vfs_read")
int BPF_PROG(on_read, struct file *file)
{
    struct inode *inode = file->f_inode;
    if (bpf_core_field_exists(inode->__i_ctime))
        return inode->__i_ctime.tv_sec;
    return inode->i_ctime.tv_sec;
        // ^^^^^^^^^^^^^^ field-missing-in-range: \`inode.i_ctime\` is missing
}
`;
  const f = await check(code, ['field-missing-in-range']);
  assertFindings(code, f);
  assert.ok(
    f[0].kernels.every((n) => !/6\.(6|7|8)/.test(n.replace(/-.*/, ''))),
    'not on 6.6-6.10, where the guard takes the other branch',
  );
  assert.ok(f[0].kernels.includes('debian-6.12.117-amd64'), 'but on 6.11+, where neither field exists');
});

test('field-missing-in-range: CO-RE macro arguments and helper functions called only under a guard', async () => {
  const code = `${CORE}
static __always_inline u64 ctime_new(struct inode *inode)
{
    return BPF_CORE_READ(inode, i_ctime_sec);
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(on_read, struct file *file)
{
    struct inode *inode = BPF_CORE_READ(file, f_inode);
    u64 old = BPF_CORE_READ(inode, i_ctime.tv_sec);
           // ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ field-missing-in-range: \`inode.i_ctime\`
    if (bpf_core_field_exists(inode->i_ctime_sec))
        return ctime_new(inode);
    return old;
}
`;
  assertFindings(code, await check(code, ['field-missing-in-range']));
});

test('field-missing-in-range: version comparisons and #if on LINUX_VERSION_CODE narrow too', async () => {
  const code = `${CORE}
extern int LINUX_KERNEL_VERSION __kconfig;

SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    struct task_struct *t = bpf_get_current_task_btf();
    if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 14, 0))
        return t->__state;
    return 0;
}
`;
  assertFindings(code, await check(code, ['field-missing-in-range']));
});
