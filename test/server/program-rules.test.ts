/**
 * Program-level rules with real kernel facts from the built database: program types and
 * trampolines (`prog-type-unavailable`), map types (`map-type-unavailable`), attach targets
 * (`attach-target-missing-in-range`) and CONFIG options (`config-required`). Each has a finding
 * that names the kernels that break, a near miss that stays silent, and a guarded or optional
 * variant that stays silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import type { Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, assertFindings, builtinDb } from './expect';

const db = builtinDb;

/** Findings of the given rules only (other rules have their own tests). */
async function check(
  code: string,
  rules: string[],
  settings: Partial<Settings> = {},
  uri = 'file:///snippets/prog.bpf.c',
): Promise<Finding[]> {
  return analyzeSnippet(code, { rules, settings, uri });
}

/** The snippet without its caret lines, for near misses checked against other settings. */
const bare = (code: string) => code.replace(/\n *\/\/ +\^+[^\n]*/g, '');

const CORE = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
`;

// ---- prog-type-unavailable ----------------------------------------------------------------------

test('prog-type-unavailable: fentry needs BPF_PROG_TYPE_TRACING, and arm64 trampolines from 6.0', async () => {
  const code = `${CORE}
SEC("fentry/do_exit")
//  ^^^^^^^^^^^^^^^^ prog-type-unavailable: BPF_PROG_TYPE_TRACING is missing on
int BPF_PROG(on_exit, long code)
{
    return 0;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit_kprobe, long code)
{
    return 0;
}
`;
  const f = await check(code, ['prog-type-unavailable']);
  assertFindings(code, f);
  const ks = f[0].kernels;
  assert.ok(ks.includes('ubuntu-5.4.0-26-generic-amd64'), 'no tracing programs before 5.5');
  assert.ok(
    ks.includes('debian-5.10.0-32-arm64') && !ks.includes('debian-5.10.0-46-amd64'),
    'arm64 5.10 has the program type but no trampoline JIT',
  );
  assert.ok(!ks.includes('debian-6.1.0-56-arm64'), 'the arm64 JIT builds trampolines from 6.0');
  // Kylin's 4.19 has tracing programs backported, but its arm64 JIT builds no trampolines.
  assert.match(
    f[0].message,
    /the arm64 JIT builds BPF trampolines only from 6\.0 on [^;]*kylin-v10sp3-4\.19\.90-52\.22\.v2207\.ky10-arm64[^;]*debian-5\.10\.0-32-arm64/,
  );
  // Near miss: x86-64 kernels from 5.5 on can all load it.
  assert.deepEqual(await check(bare(code), ['prog-type-unavailable'], { targetKernels: '5.8-7.x', architectures: ['x86_64'] }), []);
});

test('SEC written out as __attribute__((section(…), used)) declares programs, the license and maps as SEC does', async () => {
  // Tetragon declares its programs and license so: the license is not global data, and the
  // programs are programs (their sections checked, in the report).
  const code = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] __attribute__((section("license"), used)) = "Dual BSD/GPL";
int counter __attribute__((used));
//  ^^^^^^^ verifier-global-data: counter

__attribute__((section(("raw_tracepoint/cgroup_rmdir")), used)) int
tg_cgroup_rmdir(struct bpf_raw_tracepoint_args *ctx)
{
    return counter;
}

static __attribute__((section("fentry/proc_task_name"), used)) int
//                            ^^^^^^^^^^^^^^^^^^^^^^^ prog-type-unavailable: BPF_PROG_TYPE_TRACING is missing on
tg_fentry(void *ctx)
{
    return 0;
}
`;
  const f = await check(code, ['prog-type-unavailable', 'verifier-global-data'], { targetKernels: '4.19-7.x' });
  assertFindings(code, f);
});

test('prog-type-unavailable: SEC("?…") programs are optional and stay silent', async () => {
  const code = `${CORE}
SEC("?fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
    return 0;
}

SEC("?lsm/file_open")
int BPF_PROG(on_open, struct file *file)
{
    return 0;
}
`;
  assertFindings(code, await check(code, ['prog-type-unavailable', 'attach-target-missing-in-range', 'config-required']));
});

test('prog-type-unavailable: SEC("tc/ingress") is tcx (6.6) with libbpf 1.3; SEC("tc") is legacy cls_bpf', async () => {
  const code = `${CORE}
SEC("tc/ingress")
//  ^^^^^^^^^^^^ prog-type-unavailable: BPF_TCX_INGRESS is missing on
int on_ingress(struct __sk_buff *skb)
{
    return 0;
}

SEC("tc")
int on_tc(struct __sk_buff *skb)
{
    return 0;
}
`;
  const f = await check(code, ['prog-type-unavailable']);
  assertFindings(code, f);
  assert.match(f[0].message, /tcx program \(BPF_TCX_INGRESS, kernel 6\.6\)/);
  // A tc classifier loads on older kernels (the attach type is not checked at load); attaching fails.
  assert.match(f[0].message.split('\n')[0], /loads but cannot attach on/);
  // Near miss: a cgroup socket-address program's attach type is checked at load.
  const unix = await check(
    `${CORE}\nSEC("cgroup/connect_unix")\nint on_connect(struct bpf_sock_addr *ctx)\n{\n    return 1;\n}\n`,
    ['prog-type-unavailable'],
    { loader: { kind: 'libbpf', minVersion: '1.3' } },
  );
  assert.equal(unix.length, 1);
  assert.match(unix[0].message.split('\n')[0], /cannot load on .*BPF_CGROUP_UNIX_CONNECT is missing/);
  assert.match(f[0].message, /Only libbpf 1\.3 and later know this section, and the minimum libbpf in the settings is 1\.0/);
  assert.ok(f[0].kernels.includes('debian-6.1.0-56-amd64') && !f[0].kernels.includes('ubuntu-6.8.0-31-generic-amd64'));
  // With libbpf >= 1.3 the libbpf note goes; on 6.6+ kernels nothing is left.
  const newer = await check(code, ['prog-type-unavailable'], { loader: { kind: 'libbpf', minVersion: '1.3' } });
  assert.equal(newer.length, 1);
  assert.doesNotMatch(newer[0].message, /Only libbpf/);
  assert.deepEqual(
    await check(bare(code), ['prog-type-unavailable'], { targetKernels: '6.6-7.x', loader: { kind: 'libbpf', minVersion: '1.3' } }),
    [],
  );
  // On 6.6+ with the default minimum libbpf, the section is still newer than libbpf 1.0: a warning.
  const old = await check(bare(code), ['prog-type-unavailable'], { targetKernels: '6.6-7.x' });
  assert.equal(old.length, 1);
  assert.equal(old[0].severity, 'warning');
  assert.match(old[0].message, /set ebpfPortability\.loader to "libbpf>=1\.3"/);
});

test('prog-type-unavailable: an unknown SEC name is a warning; lsm/ says what the linter cannot check', async () => {
  const code = `${CORE}
SEC("xdp_prog")
//  ^^^^^^^^^^ prog-type-unavailable: libbpf does not know SEC("xdp_prog")
int on_xdp(struct xdp_md *ctx)
{
    return 2;
}

SEC("lsm/file_open")
//  ^^^^^^^^^^^^^^^ prog-type-unavailable: BPF_PROG_TYPE_LSM is missing on
int BPF_PROG(on_open, struct file *file)
{
    return 0;
}

SEC("xdp")
int on_xdp_ok(struct xdp_md *ctx)
{
    return 2;
}
`;
  const f = await check(code, ['prog-type-unavailable']);
  assertFindings(code, f);
  assert.equal(f[0].severity, 'warning');
  assert.equal(f[1].severity, 'error');
  assert.match(f[1].message, /`lsm=` on the kernel command line\), which the linter cannot check/);
  assert.ok(f[1].kernels.includes('debian-5.10.0-32-arm64'), 'BPF LSM attaches through trampolines');
  // The cilium/ebpf loader has its own section table: no libbpf warning.
  assert.equal(
    (await check(code, ['prog-type-unavailable'], { loader: { kind: 'cilium/ebpf' } })).filter((x) => x.severity === 'warning').length,
    0,
  );
});

// ---- map-type-unavailable -----------------------------------------------------------------------

test('map-type-unavailable: a ring buffer is missing before 5.8; a perf event array is not', async () => {
  const code = `${CORE}
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
              // ^^^^^^^^^^^^^^^^^^^^ map-type-unavailable: BPF_MAP_TYPE_RINGBUF (map \`events\`) is missing on
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} perf SEC(".maps");

struct bpf_map_def SEC("maps") legacy = {
    .type = BPF_MAP_TYPE_QUEUE,
         // ^^^^^^^^^^^^^^^^^^ map-type-unavailable: BPF_MAP_TYPE_QUEUE (map \`legacy\`)
    .max_entries = 16,
};
`;
  const f = await check(code, ['map-type-unavailable']);
  assertFindings(code, f);
  const ring = f[0].kernels;
  assert.ok(ring.includes('ubuntu-5.4.0-26-generic-amd64') && !ring.includes('ubuntu-5.8.0-25-generic-amd64'));
  assert.match(f[0].message, /upstream since 5\.8/);
  assert.ok(
    f[1].kernels.includes('ubuntu-4.18.0-10-generic-amd64') && !f[1].kernels.includes('ubuntu-5.0.0-13-generic-amd64'),
    'queue maps: 4.20',
  );
  // Near miss: a target from 5.8 has ring buffers everywhere (and queues).
  assert.deepEqual(await check(bare(code), ['map-type-unavailable'], { targetKernels: '5.8-7.x' }), []);
});

test('map-type-unavailable: BCC map macros and BPF_TABLE type strings', async () => {
  const code = `#include <uapi/linux/ptrace.h>

    BPF_RINGBUF_OUTPUT(events, 8);
 // ^^^^^^^^^^^^^^^^^^ map-type-unavailable: BPF_MAP_TYPE_RINGBUF (map \`events\`)
    BPF_TASK_STORAGE(starts, u64);
 // ^^^^^^^^^^^^^^^^ map-type-unavailable: BPF_MAP_TYPE_TASK_STORAGE
    BPF_TABLE("lru_hash", u32, u64, seen, 1024);
    BPF_PERF_OUTPUT(perf);

int kprobe__do_exit(struct pt_regs *ctx)
{
    return 0;
}
`;
  const f = await check(code, ['map-type-unavailable'], {}, 'file:///snippets/bcc.c');
  assertFindings(code, f);
  assert.match(f[0].message, /BCC cannot create the map there/);
  assert.ok(f[1].kernels.includes('debian-5.10.0-46-amd64'), 'task storage: 5.11');
});

// ---- attach-target-missing-in-range -------------------------------------------------------------

test('attach-target-missing-in-range: do_sys_openat2 appears in 5.6; do_sys_open is everywhere', async () => {
  const code = `${CORE}
SEC("kprobe/do_sys_openat2")
//  ^^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Kprobe target \`do_sys_openat2\` is unavailable
int BPF_KPROBE(open2, int dfd)
{
    return 0;
}

SEC("kprobe/do_sys_open")
int BPF_KPROBE(open1, int dfd)
{
    return 0;
}

SEC("?kprobe/do_sys_openat2")
int BPF_KPROBE(open2_optional, int dfd)
{
    return 0;
}
`;
  const f = await check(code, ['attach-target-missing-in-range']);
  assertFindings(code, f);
  const ks = f[0].kernels;
  assert.ok(ks.includes('ubuntu-5.4.0-26-generic-amd64') && !ks.includes('ubuntu-5.8.0-25-generic-amd64'));
  assert.ok(ks.includes('debian-5.10.0-32-arm64') && !ks.includes('debian-5.10.0-46-amd64'), 'not a symbol on Debian 5.10 arm64');
  assert.deepEqual(
    await check(bare(code), ['attach-target-missing-in-range'], { targetKernels: '5.8-7.x', architectures: ['x86_64'] }),
    [],
  );
});

test('attach-target-missing-in-range: a function the booted kernels have only as a compiler clone (kallsyms)', async () => {
  const code = `${CORE}
SEC("fentry/finish_task_switch")
//  ^^^^^^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: compiled only as a clone (\`finish_task_switch.isra.0\`)
int BPF_PROG(switched, struct task_struct *prev)
{
    return 0;
}

SEC("kprobe/finish_task_switch.isra.0")
int BPF_KPROBE(switched_clone)
{
    return 0;
}
`;
  const f = await check(code, ['attach-target-missing-in-range'], { targetKernels: '6.12-7.x', architectures: ['x86_64'] });
  assertFindings(code, f);
  // The Debian generic builds the matrix booted; their cloud builds' kallsyms were not read.
  assert.ok(f[0].kernels.includes('debian-6.12.117-amd64') && f[0].kernels.includes('debian-7.3.4-amd64'), f[0].kernels.join(' '));
  assert.ok(!f[0].kernels.some((n) => n.includes('cloud')));
  // Near miss: 5.10 has the function under its own name.
  assert.deepEqual(await check(bare(code), ['attach-target-missing-in-range'], { targetKernels: '5.10', architectures: ['x86_64'] }), []);
});

test('attach-target-missing-in-range: a function one distribution never has in vmlinux is its build, not its history', async () => {
  // md_flush_request is built in on Ubuntu (4.4-6.8) and in md-mod on every Debian kernel; it was
  // never removed. inotify_handle_event was (5.11): Ubuntu 5.8 has it, no kernel after it does.
  const code = `${CORE}
SEC("kprobe/md_flush_request")
int BPF_KPROBE(md_flush, void *mddev, void *bio)
{
    return 0;
}

SEC("kprobe/inotify_handle_event")
//  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Kprobe target \`inotify_handle_event\` is unavailable
int BPF_KPROBE(inotify_event)
{
    return 0;
}
`;
  const f = await check(code, ['attach-target-missing-in-range'], { targetKernels: '5.10-7.x', architectures: ['x86_64'] });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('debian-6.1.0-56-amd64') && !f[0].kernels.includes('ubuntu-5.8.0-25-generic-amd64'));
});

test('attach-target-missing-in-range: blk_account_io_start is inlined on 5.16-6.8 kernels', async () => {
  const code = `${CORE}
SEC("kprobe/blk_account_io_start")
//  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: fully inlined, with no symbol to attach to
int BPF_KPROBE(io_start, struct request *rq)
{
    return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(rq_issue, struct request *rq)
{
    return 0;
}
`;
  const f = await check(code, ['attach-target-missing-in-range']);
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('ubuntu-5.19.0-21-generic-amd64') && f[0].kernels.includes('debian-6.1.0-56-amd64'));
  assert.ok(!f[0].kernels.includes('ubuntu-5.15.0-25-generic-amd64') && !f[0].kernels.includes('debian-6.12.117-amd64'));
});

test('attach-target-missing-in-range: syscalls through ksyscall and syscall tracepoints; BCC probes', async () => {
  const code = `${CORE}
SEC("ksyscall/openat2")
//  ^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Syscall \`openat2\` (ksyscall target)
int BPF_KSYSCALL(o2, int dfd)
{
    return 0;
}

SEC("ksyscall/openat")
int BPF_KSYSCALL(o1, int dfd)
{
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
//  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: of tracepoint \`syscalls/sys_enter_openat2\`
int tp_o2(void *ctx)
{
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_o1(void *ctx)
{
    return 0;
}
`;
  const f = await check(code, ['attach-target-missing-in-range']);
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('ubuntu-5.4.0-26-generic-amd64') && !f[0].kernels.includes('ubuntu-5.8.0-25-generic-amd64'));

  const bcc = `#include <uapi/linux/ptrace.h>

int kprobe__do_sys_openat2(struct pt_regs *ctx)
//  ^^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Kprobe target \`do_sys_openat2\`
{
    return 0;
}

int kprobe__sys_openat2(struct pt_regs *ctx)
//  ^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Syscall \`openat2\`
{
    return 0;
}

TRACEPOINT_PROBE(block, block_io_start)
//               ^^^^^^^^^^^^^^^^^^^^^ attach-target-missing-in-range: Tracepoint \`block/block_io_start\`
{
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_issue)
{
    return 0;
}
`;
  const b = await check(bcc, ['attach-target-missing-in-range'], {}, 'file:///snippets/bcc.c');
  assertFindings(bcc, b);
  assert.ok(
    b[2].kernels.includes('ubuntu-6.2.0-20-generic-amd64') && !b[2].kernels.includes('ubuntu-6.5.0-9-generic-amd64'),
    'block_io_start: 6.5',
  );
});

test('attach-target-missing-in-range: a build difference (a module on some builds) is not counted', async () => {
  // ext4 is a module in Debian's generic kernels and built in elsewhere.
  const code = `${CORE}
SEC("kprobe/ext4_file_open")
int BPF_KPROBE(ext4_open, struct inode *inode)
{
    return 0;
}

SEC("kprobe/no_such_function_anywhere")
int BPF_KPROBE(typo, int x)
{
    return 0;
}
`;
  assert.equal(
    db.func('ext4_file_open', db.target('6.1', { distro: ['debian'], arch: ['x86_64'] })).filter((a) => a.present === false).length,
    1,
    'absent from one Debian 6.1 build',
  );
  assertFindings(code, await check(code, ['attach-target-missing-in-range']));
});

test("attach-target-missing-in-range: an LSM hook where BPF LSM is configured out is config-required's", async () => {
  const code = `${CORE}
SEC("lsm/file_open")
//  ^^^^^^^^^^^^^^^ config-required: CONFIG_BPF_LSM is off on ubuntu-5.8.0-25-generic-amd64
int BPF_PROG(on_open, struct file *file)
{
    return 0;
}
`;
  const f = await check(code, ['attach-target-missing-in-range', 'config-required'], {
    targetKernels: '5.8-6.8',
    architectures: ['x86_64'],
  });
  assertFindings(code, f);
});

// ---- config-required ----------------------------------------------------------------------------

test('config-required: one gap shared by several programs is one finding, with every program that has it as the code that fails', async () => {
  const code = `${CORE}
SEC("fentry/vfs_read")
//  ^^^^^^^^^^^^^^^^^ config-required: CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS is off on debian-6.1.0-56-arm64
int BPF_PROG(on_read)
{
    return 0;
}

SEC("fexit/vfs_write")
int BPF_PROG(on_write)
{
    return 0;
}

SEC("kprobe/vfs_open")
int BPF_KPROBE(on_open)
{
    return 0;
}
`;
  const f = await check(code, ['config-required'], { targetKernels: 'debian-6.1.0-56-arm64,debian-7.3.4-arm64', architectures: ['arm64'] });
  assertFindings(code, f);
  // Both trampoline programs fail there (the kernel matrix: -ENOTSUPP when attaching each); the kprobe does not.
  assert.deepEqual(
    f[0].uses?.map((u) => code.split('\n')[u.start.line]),
    ['int BPF_PROG(on_read)', 'int BPF_PROG(on_write)'],
  );
  assert.deepEqual(
    f[0].related?.map((r) => [code.split('\n')[r.range.start.line], r.message]),
    [['int BPF_PROG(on_write)', 'another program that needs the same kernel options']],
  );
});

test('config-required: related information stops at 20 places, the last saying how many more; every use is kept', async () => {
  const programs = Array.from({ length: 23 }, (_, i) => `SEC("fentry/vfs_read")\nint BPF_PROG(on_read_${i})\n{\n    return 0;\n}\n`);
  const code = `${CORE}\n${programs.join('\n')}`;
  const f = await check(code, ['config-required'], { targetKernels: 'debian-6.1.0-56-arm64,debian-7.3.4-arm64', architectures: ['arm64'] });
  assert.equal(f.length, 1);
  assert.equal(f[0].uses?.length, 23);
  const related = f[0].related ?? [];
  assert.equal(related.length, 20);
  assert.equal(related[0].message, 'another program that needs the same kernel options');
  assert.equal(related[19].message, 'another program that needs the same kernel options (and 2 more)');
  // In source order: the second program to the twenty-first.
  assert.deepEqual(
    [related[0], related[19]].map((r) => code.split('\n')[r.range.start.line]),
    ['int BPF_PROG(on_read_1)', 'int BPF_PROG(on_read_20)'],
  );
});

test('config-required: bpf_override_return needs CONFIG_BPF_KPROBE_OVERRIDE; a __kconfig guard keeps it silent', async () => {
  const code = `${CORE}
extern bool CONFIG_BPF_KPROBE_OVERRIDE __kconfig __weak;

SEC("kprobe/should_fail_bio")
int BPF_KPROBE(fail_bio, struct bio *bio)
{
    bpf_override_return(ctx, -5);
 // ^^^^^^^^^^^^^^^^^^^ config-required: CONFIG_BPF_KPROBE_OVERRIDE is off on
    return 0;
}

SEC("kprobe/should_fail_bio")
int BPF_KPROBE(fail_bio_guarded, struct bio *bio)
{
    if (CONFIG_BPF_KPROBE_OVERRIDE)
        bpf_override_return(ctx, -5);
    return 0;
}

SEC("kprobe/should_fail_bio")
int BPF_KPROBE(no_override, struct bio *bio)
{
    return bpf_get_smp_processor_id() == 0;
}
`;
  // Debian and Ubuntu: the local 6.18 build has no kprobes at all, which would be a second finding.
  const f = await check(code, ['config-required'], { targetKernels: '5.10-7.x', architectures: ['x86_64'], distros: ['debian', 'ubuntu'] });
  assertFindings(code, f);
  assert.ok(f[0].kernels.includes('debian-6.12.117-amd64') && !f[0].kernels.includes('ubuntu-5.15.0-25-generic-amd64'));
  assert.match(f[0].message, /have no known config and may lack it too/);
});

test('config-required: BPF LSM configured out (Ubuntu 5.8) or left out of CONFIG_LSM; fmod_ret and error injection', async () => {
  const code = `${CORE}
SEC("lsm/file_open")
//  ^^^^^^^^^^^^^^^ config-required: CONFIG_BPF_LSM is off on ubuntu-5.8.0-25-generic-amd64
int BPF_PROG(on_open, struct file *file)
{
    return 0;
}

SEC("fmod_ret/security_file_open")
int BPF_PROG(fm_security, struct file *file)
{
    return 0;
}

SEC("fmod_ret/do_sys_openat2")
//  ^^^^^^^^^^^^^^^^^^^^^^^^^ config-required: CONFIG_FUNCTION_ERROR_INJECTION is off on
int BPF_PROG(fm_open, int dfd)
{
    return 0;
}
`;
  const f = await check(code, ['config-required'], { architectures: ['x86_64'] });
  assertFindings(code, f);
  assert.match(f[0].message, /CONFIG_LSM leaves `bpf` out of the active LSMs/);
  assert.ok(f[1].kernels.includes('debian-6.1.0-56-amd64') && !f[1].kernels.includes('ubuntu-6.8.0-31-generic-amd64'));
  // Where BPF LSM is built in everywhere, what is left is the information about CONFIG_LSM.
  const later = await check(bare(code), ['config-required'], {
    targetKernels: '5.10-6.8',
    architectures: ['x86_64'],
    distros: ['debian', 'ubuntu'],
  });
  assert.deepEqual(
    later.map((x) => x.severity),
    ['info', 'error'],
  );
  assert.deepEqual(later[0].kernels, []);
});

test('config-required: arm64 fentry on Debian 6.1 lacks ftrace direct calls; the gap is reported once per file', async () => {
  const code = `${CORE}
SEC("fentry/do_exit")
//  ^^^^^^^^^^^^^^^^ config-required: CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS is off on debian-6.1.0-56-cloud-arm64, debian-6.1.0-56-arm64
int BPF_PROG(on_exit, long code)
{
    return 0;
}

SEC("fexit/do_exit")
int BPF_PROG(on_exit_ret, long code)
{
    return 0;
}
`;
  const f = await check(code, ['config-required'], { targetKernels: '5.10-7.x', architectures: ['arm64'] });
  assertFindings(code, f);
  assert.match(f[0].message, /have no known config/);
  // Near miss: the same program on x86-64, where every kernel with a config has direct calls.
  assert.deepEqual(await check(bare(code), ['config-required'], { targetKernels: '5.10-7.x', architectures: ['x86_64'] }), []);
});

test('program rules: the bundled examples', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const rules = ['prog-type-unavailable', 'map-type-unavailable', 'attach-target-missing-in-range', 'config-required'];
  const read = (n: string) => readFileSync(join(__dirname, '..', '..', 'examples', n), 'utf8');
  const pt = await check(read('process-tracer.bpf.c'), rules);
  assert.ok(pt.some((f) => f.rule === 'map-type-unavailable' && f.message.startsWith('BPF_MAP_TYPE_RINGBUF (map `events`)')));
  assert.ok(pt.some((f) => f.rule === 'prog-type-unavailable' && f.message.startsWith('SEC("tp_btf/sched_process_fork")')));
  const bcc = await check(read('bcc-opensnoop.c'), rules, {}, 'file:///examples/bcc-opensnoop.c');
  assert.ok(bcc.some((f) => f.rule === 'attach-target-missing-in-range' && f.message.includes('`do_sys_openat2`')));
});

test('attach-target-missing-in-range: before the syscall wrappers (4.17 on x86-64), an unlisted SyS_ name is unknown, not absent', async () => {
  const code = `${CORE}
SEC("tracepoint/syscalls/sys_enter_umount")
int tp_umount(void *ctx)
{
    return 0;
}
`;
  // Ubuntu 4.15's function table lists neither __x64_sys_umount (no wrappers yet) nor SyS_umount.
  assert.deepEqual(await check(code, ['attach-target-missing-in-range'], { targetKernels: '4.15', architectures: ['x86_64'] }), []);
  // Near miss: from 4.17 on, a missing wrapper is a missing syscall (openat2 came in 5.6).
  const f = await check(code.replaceAll('umount', 'openat2'), ['attach-target-missing-in-range'], {
    targetKernels: '4.18-5.4',
    architectures: ['x86_64'],
  });
  assert.equal(f.length, 1);
  assert.ok(f[0].kernels.some((k) => k.startsWith('ubuntu-5.4')));
});
