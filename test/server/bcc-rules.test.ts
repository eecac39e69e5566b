/**
 * BCC programs checked with BCC's semantics, in both forms a BCC program takes: a C file BCC
 * compiles, and the C a Python tool hands to `BPF(text=…)` (findings at the Python text's lines
 * and columns). Each test has the finding and a near miss that stays silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import type { Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, assertFindings } from './expect';

async function check(code: string, uri: string, rules?: string[], settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, { uri: `file:///snippets/${uri}`, settings, ...(rules ? { rules } : {}) });
}

/** The snippet without its caret lines (the same text a near miss checks again). */
const bare = (code: string) => code.replace(/\n *\/\/ +\^+[^\n]*/g, '');

// ---- a BCC program as a C file --------------------------------------------------------------------

const C_TOOL = `#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct data_t {
    u32 pid;
    u64 start;
};
    BPF_HASH(seen, u32, u64);
//  ^^^^^^^^ bcc-needs-kernel-headers: every host needs them (or kheaders)
BPF_PERF_OUTPUT(events);
    BPF_RINGBUF_OUTPUT(ring, 8);
//  ^^^^^^^^^^^^^^^^^^ map-type-unavailable: BCC cannot create the map there

int kprobe__do_sys_openat2(struct pt_regs *ctx)
//  ^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Kprobe target \`do_sys_openat2\`
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    struct data_t d = {};
    d.pid = t->tgid;
    d.start = t->real_start_time;
           // ^^^^^^^^^^^^^^^^^^ field-missing-in-range: BCC fails to compile the program there
    seen.update(&d.pid, &d.start);
    events.perf_submit(ctx, &d, sizeof(d));
    return 0;
}

TRACEPOINT_PROBE(kvm, kvm_exit)
{
    return args->exit_reason;
}
`;

test('bcc C file: plain member reads compile against the host, a gone member does not; map macros and probe prefixes checked', async () => {
  const f = await check(C_TOOL, 'tool.c');
  // t->tgid: BCC's rewriter reads it through a probe read at the host's offset (no
  // non-core-field-read, no unsafe-kernel-deref); kvm_exit is a module's tracepoint (kvm.ko on
  // x86 distributions), which no vmlinux lists: silent.
  assertFindings(C_TOOL, f);
  const missing = f.find((x) => x.rule === 'field-missing-in-range')!;
  assert.match(missing.message, /named `start_boottime` there/);
  assert.ok(missing.kernels.includes('debian-6.1.0-56-amd64') && !missing.kernels.includes('ubuntu-4.15.0-20-generic-amd64'));
  const ring = f.find((x) => x.rule === 'map-type-unavailable')!;
  assert.ok(ring.kernels.includes('ubuntu-5.4.0-26-generic-amd64') && !ring.kernels.includes('ubuntu-5.8.0-25-generic-amd64'));
  // The note: kheaders per kernel from their configs, install advice for the target's distributions.
  const note = f.find((x) => x.rule === 'bcc-needs-kernel-headers')!;
  assert.equal(note.severity, 'info');
  assert.match(note.message, /CONFIG_IKHEADERS is .*a module on .*Ubuntu/);
  assert.match(note.message, /apt-get install linux-headers-\$\(uname -r\)/);
  assert.match(note.message, /ships no headers package/);
});

test('bcc C file, near miss: the same tool with the 5.x member name on kernels that have it stays silent but for the note', async () => {
  const code = bare(C_TOOL).replace('real_start_time', 'start_boottime');
  const f = await check(code, 'tool.c', undefined, { targetKernels: '5.11-7.x' });
  assert.deepEqual(
    f.map((x) => x.rule),
    ['bcc-needs-kernel-headers'],
  );
  // A libbpf program is not compiled on the host: no note.
  const libbpf = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("kprobe/do_exit")
int on_exit(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
`;
  assert.deepEqual(await check(libbpf, 'p.bpf.c', ['bcc-needs-kernel-headers']), []);
});

// ---- the same constructs in a Python tool ---------------------------------------------------------

const PY_TOOL = `#!/usr/bin/env python3
from bcc import BPF

prog = """
#include <linux/sched.h>
    BPF_HASH(seen, u32, u64);
//  ^^^^^^^^ bcc-needs-kernel-headers: every host needs them
    BPF_RINGBUF_OUTPUT(ring, 8);
//  ^^^^^^^^^^^^^^^^^^ map-type-unavailable: BCC cannot create the map there

int kprobe__do_exit(struct pt_regs *ctx, long code)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u32 pid = t->tgid;
    u32 s = t->STATE_FIELD;
    u64 start = t->real_start_time;
             // ^^^^^^^^^^^^^^^^^^ field-missing-in-range: kernels this code runs on
    if (FILTER)
        return 0;
    seen.update(&pid, &start);
    return s;
}
"""
if BPF.kernel_struct_has_field(b'task_struct', b'__state') == 1:
    prog = prog.replace('STATE_FIELD', '__state')
else:
    prog = prog.replace('STATE_FIELD', 'state')
if args.pid:
    prog = prog.replace('FILTER', 'pid != %s' % args.pid)
b = BPF(text=prog)
`;

test('bcc Python tool: findings at the Python lines and columns; placeholders and probe-chosen names silent', async () => {
  // The caret lines are C comments inside the Python string: part of the program, flagging the line above.
  const f = await check(PY_TOOL, 'tool.py');
  // STATE_FIELD becomes `__state` where the probe says task_struct has it and `state` elsewhere:
  // neither is reported. FILTER is replaced only under an option: the text is not a kernel name.
  assertFindings(PY_TOOL, f);
  const missing = f.find((x) => x.rule === 'field-missing-in-range')!;
  // Only in the variant for kernels without task_struct.__state (before 5.14) is the member's
  // absence provable (5.5 renamed it); the message says which variant.
  assert.match(missing.message, /kernel_struct_has_field\(b'task_struct', b'__state'\) is false/);
  assert.ok(missing.kernels.includes('ubuntu-5.8.0-25-generic-amd64'));
  assert.ok(!missing.kernels.includes('debian-6.1.0-56-amd64'), 'the __state variant runs there and is not the one reported');
  assert.equal(f.filter((x) => x.rule === 'bcc-needs-kernel-headers').length, 1, 'one note per file, not per variant');
});

test('bcc Python tool, near miss: a file that does not import bcc is not analysed; the member the host has is silent', async () => {
  assert.deepEqual(await check(bare(PY_TOOL).replace('from bcc import BPF', 'from x import BPF'), 'tool.py'), []);
  const fixed = bare(PY_TOOL).replace('t->real_start_time', 't->start_time');
  const f = await check(fixed, 'tool.py', undefined, { targetKernels: '5.8-7.x' });
  assert.deepEqual(
    f.map((x) => x.rule),
    ['bcc-needs-kernel-headers'],
  );
});

const FMOD_RET = `from bcc import BPF
if (not BPF.support_fmod_ret()):
    print("needs fmod_ret")
    exit()
prog = """
KMOD_RET(do_exit, long code, int ret)
{
    return 0;
}
"""
b = BPF(text=prog)
`;

test('bcc Python tool: a probe whose branch exits narrows the rest of the tool to the kernels where it holds', async () => {
  // support_fmod_ret() is kernel_enum_has_val(bpf_attach_type, BPF_MODIFY_RETURN): on kernels
  // without it the tool exits before compiling, so the missing tracing program type is not reported.
  const x86 = { architectures: ['x86_64'] };
  assert.deepEqual(await check(FMOD_RET, 'fmodret.py', ['prog-type-unavailable'], x86), []);
  // Near miss: without the exit the tool tries to load there.
  const unguarded = FMOD_RET.replace('    exit()\n', '');
  const f = await check(unguarded, 'fmodret.py', ['prog-type-unavailable'], x86);
  assert.equal(f.length, 1);
  assert.ok(f[0].kernels.includes('ubuntu-5.4.0-26-generic-amd64'));
  assert.equal(
    f[0].range.start.line,
    unguarded.split('\n').findIndex((l) => l.startsWith('KMOD_RET')),
    'on the Python line of the macro',
  );
  assert.equal(f[0].range.start.character, 'KMOD_RET('.length);
});

// ---- loops BCC tools write ------------------------------------------------------------------------

const LOOPS = `#include <uapi/linux/ptrace.h>
#define CMPMAX 16
BPF_HASH(seen, u32, u64);

static int cmp_n(const char *a, const char *b, int size)
{
    int len = 0;
    while (len++ < size) {
 // ^^^^^ verifier-bounded-loops: is bounded by parameter \`size\`
        if (*a++ != *b++)
            return 1;
    }
    return 0;
}

static int cmp16(const char *a, const char *b)
{
    int len = 0;
    while (len++ < CMPMAX) {
 // ^^^^^ verifier-bounded-loops: has a constant bound
        if (*a++ != *b++)
            return 1;
    }
    return 0;
}

int kprobe__do_exit(struct pt_regs *ctx)
{
    char x[16] = {}, y[16] = {};
    int n = PT_REGS_PARM1(ctx);
    while (n--)
 // ^^^^^ verifier-bounded-loops: trip count is not a compile-time constant
        x[0]++;
    return cmp_n(x, y, 16) + cmp16(x, y);
}
`;

test('verifier-bounded-loops in BCC code: `while (len++ < MAX)` is a constant bound, a helper parameter a warning', async () => {
  const f = await check(LOOPS, 'loops.c', ['verifier-bounded-loops'], { targetKernels: '4.15-5.4' });
  assertFindings(LOOPS, f);
  const sev = (words: string) => f.find((x) => x.message.includes(words))?.severity;
  assert.equal(sev('parameter `size`'), 'warning');
  assert.equal(sev('constant bound'), 'warning');
  assert.equal(sev('not a compile-time constant'), 'error');
  // Near miss: on kernels with bounded loops none of them is reported.
  assert.deepEqual(await check(bare(LOOPS), 'loops.c', ['verifier-bounded-loops'], { targetKernels: '5.3-7.x' }), []);
});

// ---- attach targets of modules ------------------------------------------------------------------

test('attach-target-missing-in-range: a tracepoint only developer builds have in vmlinux is a module (kvm), an arch-only one is missing', async () => {
  const code = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("tracepoint/kvm/kvm_exit")
int on_kvm_exit(void *ctx) { return 0; }
SEC("raw_tp/hcall_exit")
//  ^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Raw tracepoint \`hcall_exit\` is unavailable
int on_hcall_exit(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
`;
  // kvm_exit: kvm.ko on every x86 distribution kernel, built in on some CI and developer builds:
  // no x86 build's absence tells its history. hcall_exit is powerpc's: no x86 build has it.
  const f = await check(code, 'kvm.bpf.c', ['attach-target-missing-in-range'], { targetKernels: '5.8-7.x', architectures: ['x86_64'] });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('cilium-testdata-5.11-x86_64'));
});

// ---- config-required: fmod_ret targets in a BTF fmodret set ---------------------------------------

test('config-required: fmod_ret on update_socket_protocol (an fmodret BTF set) needs no error injection; another target does', async () => {
  const code = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
SEC("fmod_ret/update_socket_protocol")
int BPF_PROG(mptcpify, int family, int type, int protocol)
{
    return protocol;
}
SEC("fmod_ret/do_exit")
//  ^^^^^^^^^^^^^^^^^^ config-required: CONFIG_FUNCTION_ERROR_INJECTION
int BPF_PROG(on_exit, long code)
{
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;
  const f = await check(code, 'mptcpify.bpf.c', ['config-required'], { targetKernels: '6.12-7.x', architectures: ['x86_64'] });
  assertFindings(code, f);
});
