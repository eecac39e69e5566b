/**
 * The kernel matrix's machinery without QEMU: serial-output parsing and the verdict rules (with
 * lines taken from real boots), the cpio writer, Debian version order, kernel choice, the
 * known-limitations table (including the real one in docs/ground-truth.md), ELF program listing
 * and the comparison.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type Kernel, KernelDb } from '../../kernel-db/src/query/db';
import { compareDebVersions, debianMirrors, suites, type AptVersion } from '../../groundtruth/src/apt';
import {
  compare,
  compareHooks,
  comparePrograms,
  type Hook,
  loaderSizedMaps,
  parseLimitations,
  renderKernelTable,
  renderMatrix,
  type LinterVerdict,
  type MatrixResults,
} from '../../groundtruth/src/differential';
import { netAttachType, objectPrograms } from '../../groundtruth/src/elf';
import { parseLddOutput } from '../../groundtruth/src/guest';
import { which } from '../../groundtruth/src/host';
import { buildInitramfs, cpioNewc, initScript, MARK, NET_ATTACH_FAILED, RETRY_LINE } from '../../groundtruth/src/initramfs';
import { bzImageRelease, chooseKernels, compareRelease, imagesFromPath, nearestBuild } from '../../groundtruth/src/kernels';
import { parseSerial, qemuArgs } from '../../groundtruth/src/qemu';

const root = join(__dirname, '..', '..');

/** Serial output as the guest prints it: console noise, then marker lines. */
function serial(objects: Record<string, { log: string[]; result: string }>, done = true): string {
  const lines = [
    'SeaBIOS (version 1.16.2-debian-1.16.2-1)',
    'Booting from ROM...',
    `\x1bc\x1b[?7l\x1b[2J${MARK} kernel 6.1.0-56-amd64`,
    `${MARK} btf-sha256 ${'ab'.repeat(32)}`,
    `${MARK} bpftool bpftool v7.8.0 using libbpf v1.8 features: crypto `,
  ];
  for (const [id, o] of Object.entries(objects)) {
    for (const l of o.log) lines.push(`${MARK} log ${id} ${l}`);
    lines.push(`${MARK} result ${id} ${o.result}`);
  }
  if (done) lines.push(`${MARK} done`, '[    2.217776] reboot: Power down');
  return lines.join('\r\n');
}

test('serial output: a CO-RE relocation failure is load-failed, with the verifier lines that explain it', () => {
  const r = parseSerial(
    serial({
      state: {
        log: [
          "libbpf: prog 'st': BPF program load failed: -EINVAL",
          "libbpf: prog 'st': -- BEGIN PROG LOAD LOG --",
          '0: (85) call bpf_get_current_task#35',
          '1: <invalid CO-RE relocation>',
          'failed to resolve CO-RE relocation <byte_off> [17] struct task_struct.__state (0:1 @ offset 24)',
          'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
          '-- END PROG LOAD LOG --',
          "libbpf: prog 'st': failed to load: -EINVAL",
          'Error: failed to load object file',
        ],
        result: '255 1.98 2.17 -',
      },
    }),
    ['state'],
  );
  assert.equal(r.release, '6.1.0-56-amd64');
  assert.equal(r.btfSha256, 'ab'.repeat(32));
  assert.equal(r.complete, true);
  const o = r.objects.state;
  assert.equal(o.verdict, 'load-failed');
  assert.equal(o.program, 'st');
  assert.equal(o.seconds, 0.19);
  assert.ok(
    o.explain.includes('verifier: failed to resolve CO-RE relocation <byte_off> [17] struct task_struct.__state (0:1 @ offset 24)'),
    o.explain.join('\n'),
  );
  assert.ok(!o.explain.some((l) => l.includes('processed 2 insns')), 'the instruction count explains nothing');
  assert.equal(o.reason, 'failed to resolve CO-RE relocation <byte_off> [17] struct task_struct.__state (0:1 @ offset 24)');
});

test("serial output: the verifier's reason is the line after the last instruction, before 7.x's long report", () => {
  const log = (lines: string[]) => [
    "libbpf: prog 'trace_exit': BPF program load failed: -EACCES",
    "libbpf: prog 'trace_exit': -- BEGIN PROG LOAD LOG --",
    ...lines,
    'processed 9 insns (limit 1000000)',
    '-- END PROG LOAD LOG --',
    "libbpf: prog 'trace_exit': failed to load: -EACCES",
    'Error: failed to load object file',
  ];
  const r = parseSerial(
    serial({
      v7: {
        log: log([
          '8: (15) if r6 == 0x0 goto pc+21       ; R6=ringbuf_mem(id=3,sz=32) refs=3',
          '; e->pid = task->tgid; @ process-tracer.bpf.c:30',
          '9: (61) r1 = *(u32 *)(r7 +2876)',
          "R7 invalid mem access 'scalar'",
          '',
          'Verification failed: Register Type Safety: Invalid dereference',
          '',
          'Reason:',
          '  R7 is an integer scalar here, not a pointer to memory.',
          '',
          'Suggestion:',
          '  arithmetic, helper calls, or other operations that can invalidate it.',
        ]),
        result: '255 1 2 -',
      },
      v5: { log: log(['9: (61) r1 = *(u32 *)(r7 +2236)', "R7 invalid mem access 'inv'"]), result: '255 1 2 -' },
      early: { log: log(["number of funcs in func_info doesn't match number of subprogs"]), result: '255 1 2 -' },
      nolog: {
        log: [
          "libbpf: prog 'accept_all': BPF program load failed: -EINVAL",
          "libbpf: prog 'accept_all': failed to load: -EINVAL",
          'Error: failed to load object file',
        ],
        result: '255 1 2 -',
      },
    }),
    ['v7', 'v5', 'early', 'nolog'],
  );
  assert.equal(r.objects.v7.reason, "R7 invalid mem access 'scalar'");
  assert.ok(r.objects.v7.explain.includes('verifier: ; e->pid = task->tgid; @ process-tracer.bpf.c:30'), r.objects.v7.explain.join('\n'));
  assert.ok(r.objects.v7.explain.includes('verifier: Verification failed: Register Type Safety: Invalid dereference'));
  assert.ok(!r.objects.v7.explain.some((l) => l.includes('Suggestion')));
  assert.equal(r.objects.v5.reason, "R7 invalid mem access 'inv'");
  assert.equal(r.objects.early.reason, "number of funcs in func_info doesn't match number of subprogs");
  assert.equal(r.objects.nolog.reason, "libbpf: prog 'accept_all': BPF program load failed: -EINVAL");
});

test('serial output: a failed kprobe attachment is attach-failed; "does not support autoattach" alone is not', () => {
  const r = parseSerial(
    serial({
      kp: {
        log: [
          "libbpf: prog 'switch_done': failed to create kprobe 'finish_task_switch+0x0' perf event: -ENOENT",
          'Program switch_done does not support autoattach, falling back to pinning',
        ],
        result: '0 2.6 2.9 -',
      },
      nf: { log: ['Program accept_all does not support autoattach, falling back to pinning'], result: '0 3.0 3.1 -' },
    }),
    ['kp', 'nf'],
  );
  assert.equal(r.objects.kp.verdict, 'attach-failed');
  assert.equal(r.objects.kp.program, 'switch_done');
  assert.equal(r.objects.nf.verdict, 'loaded');
  assert.deepEqual(r.objects.nf.explain, []);
});

test('serial output: an unpinnable perf-event link is judged by the plain reload', () => {
  const ok = parseSerial(serial({ a: { log: ['Error: failed to pin all programs', RETRY_LINE], result: '255 1.0 1.4 0' } }), ['a']);
  assert.equal(ok.objects.a.verdict, 'loaded');
  const attachThenPin = parseSerial(
    serial({
      a: {
        log: ["libbpf: prog 'exit_multi': failed to attach: -EINVAL", 'Error: failed to pin all programs', RETRY_LINE],
        result: '255 1.0 1.4 0',
      },
    }),
    ['a'],
  );
  assert.equal(attachThenPin.objects.a.verdict, 'attach-failed');
  const reloadFails = parseSerial(
    serial({
      a: {
        log: [
          'Error: failed to pin all programs',
          RETRY_LINE,
          "libbpf: map 'm': failed to create: -EINVAL",
          'Error: failed to load object file',
        ],
        result: '255 1.0 1.4 255',
      },
    }),
    ['a'],
  );
  assert.equal(reloadFails.objects.a.verdict, 'load-failed');
  assert.deepEqual(reloadFails.objects.a.explain, ["libbpf: map 'm': failed to create: -EINVAL", 'Error: failed to load object file']);
});

test('serial output: a failed bpftool net attach is attach-failed; objects never reported are no-result', () => {
  const r = parseSerial(
    serial(
      {
        tcx: {
          log: [
            'Program count_ingress does not support autoattach, falling back to pinning',
            'Error: interface tcx_ingress attach failed: Invalid argument',
            `${NET_ATTACH_FAILED} tcx_ingress count_ingress`,
          ],
          result: '0 1 2 -',
        },
      },
      false,
    ),
    ['tcx', 'later'],
  );
  assert.equal(r.objects.tcx.verdict, 'attach-failed');
  assert.ok(r.objects.tcx.explain.includes('Error: interface tcx_ingress attach failed: Invalid argument'));
  assert.equal(r.objects.later.verdict, 'no-result');
  assert.equal(r.complete, false);
  assert.ok(r.tail.length > 0);
});

test('serial output: a kernel message on the same line before a marker does not hide it', () => {
  const text = `[   3.1] random: crng init done${MARK} result a 0 1.00 1.50 -\n${MARK} done\n`;
  const r = parseSerial(text, ['a']);
  assert.equal(r.objects.a.verdict, 'loaded');
  assert.equal(r.objects.a.seconds, 0.5);
});

test('the QEMU command line is the TCG one', () => {
  assert.deepEqual(qemuArgs('/k', '/i'), [
    '-accel',
    'tcg',
    '-cpu',
    'max',
    '-m',
    '512',
    '-nographic',
    '-no-reboot',
    '-kernel',
    '/k',
    '-initrd',
    '/i',
    '-append',
    'console=ttyS0 panic=-1 quiet',
  ]);
});

/** Reads a newc archive back: name → { mode, data, rdev }. */
function readCpio(b: Buffer): Map<string, { mode: number; data: Buffer; rdev: [number, number] }> {
  const out = new Map<string, { mode: number; data: Buffer; rdev: [number, number] }>();
  let off = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    assert.equal(b.toString('latin1', off, off + 6), '070701', `magic at ${off}`);
    const f = (i: number) => parseInt(b.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const size = f(6);
    const nameSize = f(11);
    const name = b.toString('latin1', off + 110, off + 110 + nameSize - 1);
    const dataAt = align(off + 110 + nameSize);
    if (name === 'TRAILER!!!') break;
    out.set(name, { mode: f(1), data: b.subarray(dataAt, dataAt + size), rdev: [f(9), f(10)] });
    off = align(dataAt + size);
  }
  return out;
}

test('the initramfs is a newc archive the kernel can unpack: devices, tools, objects, attach plans, /init', () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrix-cpio-'));
  try {
    writeFileSync(join(dir, 'busybox'), 'BB');
    writeFileSync(join(dir, 'x.o'), 'OBJECT!');
    const out = join(dir, 'initrd.gz');
    buildInitramfs(
      out,
      [{ guestPath: 'bin/busybox', hostPath: join(dir, 'busybox') }],
      [{ id: 'x', path: join(dir, 'x.o'), netAttach: [{ type: 'tcx_ingress', program: 'p' }] }],
      true,
    );
    const files = readCpio(gunzipSync(readFileSync(out)));
    assert.deepEqual(files.get('dev/console')?.rdev, [5, 1]);
    assert.equal(files.get('dev/console')!.mode & 0o170000, 0o020000);
    assert.equal(files.get('bin/busybox')?.data.toString(), 'BB');
    assert.equal(files.get('bin/busybox')!.mode & 0o777, 0o755);
    assert.equal(files.get('objs/x.o')?.data.toString(), 'OBJECT!');
    assert.equal(files.get('objs/x.attach')?.data.toString(), 'tcx_ingress p\n');
    assert.ok(files.get('init')?.data.toString().startsWith('#!/bin/busybox sh'));
    for (const d of ['bin', 'dev', 'proc', 'sys', 'objs', 'lib/x86_64-linux-gnu']) assert.equal(files.get(d)!.mode & 0o170000, 0o040000, d);
    assert.throws(() => buildInitramfs(out, [], [{ id: 'bad name', path: join(dir, 'x.o') }], true), /letters, digits/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Every entry starts 4-byte aligned, whatever the name and data lengths.
  const b = cpioNewc([
    { name: 'a', mode: 0o100644, data: new Uint8Array([1, 2, 3]) },
    { name: 'bb', mode: 0o100644, data: new Uint8Array(5) },
  ]);
  assert.equal(b.length % 4, 0);
  assert.deepEqual([...readCpio(b).keys()], ['a', 'bb']);
});

test('/init attaches with autoattach only when bpftool has it, and reloads unattached after a pin failure', () => {
  const on = initScript(true);
  const off = initScript(false);
  assert.match(on, /bpftool prog loadall "\$o" "\/sys\/fs\/bpf\/\$n" autoattach >/);
  assert.doesNotMatch(off, /autoattach >/);
  assert.match(on, /grep -q 'failed to pin'/);
  assert.ok(on.includes(RETRY_LINE) && on.includes(NET_ATTACH_FAILED));
  assert.match(on, /mount -t bpf bpf \/sys\/fs\/bpf/);
  assert.match(on, /poweroff -f/);
  // The shell script is valid sh.
  const sh = which('sh');
  if (sh) assert.equal(spawnSync(sh, ['-n', '-c', on]).status, 0);
});

test('Debian version order: epochs, tildes, revisions, digit runs', () => {
  const sorted = [
    '1:0.1',
    '7.3.4-1~bpo13+1',
    '7.3.4-1',
    '6.12.117-1~deb12u1',
    '6.12.117-1',
    '6.12.9-1',
    '6.1.192-2',
    '5.10.262-1',
    '5.10.223-1',
  ].sort(compareDebVersions);
  assert.deepEqual(sorted, [
    '5.10.223-1',
    '5.10.262-1',
    '6.1.192-2',
    '6.12.9-1',
    '6.12.117-1~deb12u1',
    '6.12.117-1',
    '7.3.4-1~bpo13+1',
    '7.3.4-1',
    '1:0.1',
  ]);
  assert.equal(compareDebVersions('1.0~rc1', '1.0'), -1 * Math.abs(compareDebVersions('1.0~rc1', '1.0')));
  assert.ok(compareDebVersions('1.0a', '1.0') > 0);
  assert.equal(compareDebVersions('2.0-1', '2.0-1'), 0);
});

test("kernel choice: the database's exact build, linux-binary over the empty linux-image wrapper, else the newest with a note", () => {
  const k = (name: string, version: string, source: string) =>
    ({ name, version, release: '', distro: 'debian', arch: 'x86_64', flavour: 'generic', source }) as unknown as Kernel;
  const db = [
    k('debian-6.1.0-56-amd64', '6.1.192', 'Debian bookworm-security package linux-image-6.1.0-56-amd64 6.1.192-2'),
    k('debian-7.3.4-amd64', '7.3.4', 'Debian trixie-backports package linux-binary-7.3.4+deb13-amd64 7.3.4-1~bpo13+1'),
    k('debian-6.12.100-amd64', '6.12.100', 'Debian trixie package linux-image-6.12.100+deb13-amd64 6.12.100-1'),
  ];
  const v = (pkg: string, version: string, suite: string): AptVersion => ({ package: pkg, version, suite });
  const archive = [
    v('linux-image-6.1.0-56-amd64', '6.1.192-2', 'bookworm-security'),
    v('linux-image-6.1.0-57-amd64', '6.1.193-1', 'bookworm-security'),
    v('linux-image-7.3.4+deb13-amd64', '7.3.4-1~bpo13+1', 'trixie-backports'),
    v('linux-binary-7.3.4+deb13-amd64', '7.3.4-1~bpo13+1', 'trixie-backports'),
    v('linux-image-6.12.117+deb13-amd64', '6.12.117-1', 'trixie-security'),
    v('linux-image-6.12.117+deb12-amd64', '6.12.117-1~deb12u1', 'bookworm-backports'),
    v('linux-image-6.12.117+deb13-cloud-amd64', '6.12.117-1', 'trixie-security'),
    v('linux-image-6.12.117+deb13-amd64-unsigned', '6.12.117-1', 'trixie-security'),
  ];
  const { chosen, missing } = chooseKernels(archive, ['6.1', '6.12', '7.3', '4.19'], db);
  assert.deepEqual(missing, ['4.19']);
  const by = Object.fromEntries(chosen.map((c) => [c.majorMinor, c]));
  assert.equal(by['6.1'].package, 'linux-image-6.1.0-56-amd64', 'the database build, though 6.1.0-57 is newer');
  assert.equal(by['6.1'].dbName, 'debian-6.1.0-56-amd64');
  assert.equal(by['7.3'].package, 'linux-binary-7.3.4+deb13-amd64');
  assert.equal(by['7.3'].release, '7.3.4+deb13-amd64');
  assert.equal(by['6.12'].package, 'linux-image-6.12.117+deb13-amd64');
  assert.equal(by['6.12'].dbName, undefined);
  assert.match(by['6.12'].note!, /debian-6\.12\.100-amd64 .*no longer offers; booted linux-image-6\.12\.117\+deb13-amd64 6\.12\.117-1/);
});

test('kernel releases sort by their numbers', () => {
  const sorted = ['7.3.4+deb13-amd64', '6.12.117+deb13-amd64', '5.10.0-46-amd64', '6.1.0-56-amd64', '6.12.9+deb13-amd64'].sort(
    compareRelease,
  );
  assert.deepEqual(sorted, ['5.10.0-46-amd64', '6.1.0-56-amd64', '6.12.9+deb13-amd64', '6.12.117+deb13-amd64', '7.3.4+deb13-amd64']);
});

test('bzImage release string from the boot protocol header', () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrix-bz-'));
  try {
    const b = Buffer.alloc(0x1000);
    b.write('HdrS', 0x202, 'latin1');
    b.writeUInt16LE(0x400, 0x20e);
    b.write('6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP', 0x600, 'latin1');
    writeFileSync(join(dir, 'vmlinuz'), b);
    assert.equal(bzImageRelease(join(dir, 'vmlinuz')), '6.1.0-56-amd64');
    writeFileSync(join(dir, 'junk'), Buffer.alloc(0x400));
    assert.equal(bzImageRelease(join(dir, 'junk')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ldd output: libraries with paths, missing ones without, no vdso or loader', () => {
  const libs = parseLddOutput(
    '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x1)\n\tlibz.so.1 => not found\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n',
  );
  assert.deepEqual(libs, [{ soname: 'libelf.so.1', hostPath: '/lib/x86_64-linux-gnu/libelf.so.1' }, { soname: 'libz.so.1' }]);
});

test('net attach types: tcx and XDP on lo; the rest is only loaded', () => {
  assert.equal(netAttachType('tcx/ingress'), 'tcx_ingress');
  assert.equal(netAttachType('tcx/egress'), 'tcx_egress');
  assert.equal(netAttachType('xdp'), 'xdpgeneric');
  assert.equal(netAttachType('xdp/devmap'), undefined);
  assert.equal(netAttachType('tc'), undefined);
  assert.equal(netAttachType('kprobe/do_exit'), undefined);
});

test('ELF programs of a compiled object: SEC name and function, not subprograms', (t) => {
  const clang = which('clang');
  if (!clang) {
    t.skip('clang is not installed (Debian package clang)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'matrix-elf-'));
  try {
    writeFileSync(
      join(dir, 'p.bpf.c'),
      `#define SEC(name) __attribute__((section(name), used))
static __attribute__((noinline)) int helper(long x) { return x + 1; }
SEC("tcx/ingress") int ingress(void *skb) { return helper((long)skb) > 0 ? -1 : 0; }
SEC("xdp") int pass(void *ctx) { return 2; }
char LICENSE[] SEC("license") = "GPL";
`,
    );
    // Little- and big-endian objects (bpfel, bpfeb) read alike.
    for (const target of ['bpfel', 'bpfeb']) {
      const r: SpawnSyncReturns<string> = spawnSync(
        clang,
        ['-target', target, '-O2', '-g', '-c', join(dir, 'p.bpf.c'), '-o', join(dir, `${target}.o`)],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(
        objectPrograms(join(dir, `${target}.o`)),
        [
          { sec: 'tcx/ingress', name: 'ingress' },
          { sec: 'xdp', name: 'pass' },
        ],
        target,
      );
    }
    assert.throws(() => objectPrograms(join(dir, 'p.bpf.c')), /not an ELF/);
    // A truncated object is one clear error naming the file, not a RangeError.
    const whole = readFileSync(join(dir, 'bpfel.o'));
    writeFileSync(join(dir, 'cut.o'), whole.subarray(0, whole.length - 10));
    assert.throws(
      () => objectPrograms(join(dir, 'cut.o')),
      (e: Error) => !(e instanceof RangeError) && /cut\.o: section header \d+ is past the end of the file/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the known-limitations table: the real one parses, and malformed rows are refused', () => {
  const real = parseLimitations(readFileSync(join(root, 'docs', 'ground-truth.md'), 'utf8'));
  assert.ok(real.length > 0);
  for (const l of real) assert.ok(existsSync(join(root, l.program)), `${l.program} exists`);
  const table = (row: string) =>
    `# x\n## Known limitations\n\n| program | kernels | linter | kernel | reason |\n| --- | --- | --- | --- | --- |\n${row}\n`;
  assert.deepEqual(parseLimitations(table('| `a.bpf.c` | 5.10, `6.1` | fails | loads | a reason long enough to read `x | y` |')), [
    { program: 'a.bpf.c', kernels: ['5.10', '6.1'], linter: 'fails', kernel: 'loads', reason: 'a reason long enough to read `x | y`' },
  ]);
  assert.throws(() => parseLimitations(table('| a | * | fails | fails | the same verdict is no disagreement |')), /agree/);
  assert.throws(() => parseLimitations(table('| a | * | maybe | loads | a reason long enough to read |')), /linter must be/);
  assert.throws(() => parseLimitations(table('| a | * | fails | loads | short |')), /reason in words/);
  assert.throws(() => parseLimitations('# nothing here'), /Known limitations/);
  assert.throws(() => parseLimitations('## Known limitations\n| program | kernel | reason |\n'), /columns/);
});

test('the comparison: agreements, documented and undocumented disagreements, unused rows, the matrix text', () => {
  const kern = (mm: string) => ({
    majorMinor: mm,
    release: `${mm}.0-1-amd64`,
    dbName: `debian-${mm}`,
    complete: true,
    timedOut: false,
    bootMs: 1,
    downloadMs: 0,
  });
  const res = (verdict: 'loaded' | 'load-failed' | 'attach-failed' | 'no-result') => ({
    verdict,
    explain: verdict === 'loaded' ? [] : ['why'],
    reason: verdict === 'loaded' ? '' : 'why',
    log: ['why'],
  });
  const results: MatrixResults = {
    version: 1,
    generated: '',
    guest: { origin: '', bpftool: '', autoattach: true },
    btf: { blob: '', sha256: '' },
    clang: '',
    timings: {},
    programs: [
      { id: 'a', source: 'a.bpf.c', sourceSha256: '' },
      { id: 'b', source: 'b.bpf.c', sourceSha256: '' },
    ],
    kernels: [kern('5.10'), kern('6.1')],
    results: {
      'a.bpf.c': { '5.10.0-1-amd64': res('load-failed'), '6.1.0-1-amd64': res('loaded') },
      'b.bpf.c': { '5.10.0-1-amd64': res('attach-failed'), '6.1.0-1-amd64': res('no-result') },
    },
  };
  const lv = (fails: boolean): LinterVerdict => ({ fails, alone: fails, because: fails ? ['rule: message (line 1)'] : [] });
  const linter = new Map([
    [
      'a.bpf.c',
      new Map([
        ['debian-5.10', lv(true)],
        ['debian-6.1', lv(true)],
      ]),
    ],
    [
      'b.bpf.c',
      new Map([
        ['debian-5.10', lv(false)],
        ['debian-6.1', lv(false)],
      ]),
    ],
  ]);
  const lim = parseLimitations(
    '## Known limitations\n| program | kernels | linter | kernel | reason |\n|-|-|-|-|-|\n| a.bpf.c | 6.1 | fails | loads | documented: the loader cannot see it |\n| b.bpf.c | 5.10 | fails | loads | the opposite of what happens on 5.10 |\n| c.bpf.c | 5.10 | loads | fails | about a program this run did not load |\n| a.bpf.c | 7.3 | fails | loads | about a kernel this run did not boot |\n',
  );
  const { cells, unused } = compare(results, linter, lim);
  assert.equal(cells.length, 3, 'no-result is not compared');
  const at = (p: string, mm: string) => cells.find((c) => c.program === p && c.kernel.majorMinor === mm)!;
  assert.equal(at('a.bpf.c', '5.10').agree, true);
  assert.equal(at('a.bpf.c', '6.1').agree, false);
  assert.equal(at('a.bpf.c', '6.1').limitation?.reason, 'documented: the loader cannot see it');
  assert.equal(at('b.bpf.c', '5.10').agree, false, 'attach-failed is a failure the linter missed');
  assert.equal(at('b.bpf.c', '5.10').limitation, undefined);
  assert.deepEqual(
    unused.map((l) => l.reason),
    ['the opposite of what happens on 5.10'],
    'only rows this run could have seen are stale',
  );
  const text = renderMatrix(results, cells);
  assert.match(text, /^a\.bpf\.c\s+fail\s+FP\*$/m);
  assert.match(text, /^b\.bpf\.c\s+FN\s+-$/m);
  const kernelText = renderKernelTable(results);
  assert.match(kernelText, /^a\.bpf\.c\s+FAIL\s+load$/m);
  assert.match(kernelText, /^b\.bpf\.c\s+ATTACH\s+\?$/m);
  assert.match(kernelText, /^ {2}a\.bpf\.c on 5\.10: FAIL: why$/m);
});

test('per program and per hook: a variant the loader may skip fails alone; a hook works where one of its variants loads', () => {
  const kern = (mm: string) => ({
    majorMinor: mm,
    release: `${mm}.0-1-amd64`,
    package: '',
    version: '',
    suite: '',
    dbName: `debian-${mm}`,
    complete: true,
    timedOut: false,
    bootMs: 1,
    downloadMs: 0,
  });
  const prog = (verdict: 'loaded' | 'load-failed' | 'attach-failed', section: string) => ({
    verdict,
    section,
    errno: verdict === 'loaded' ? 0 : 22,
    explain: [],
    reason: verdict === 'loaded' ? '' : 'why',
    log: [],
  });
  const obj = (fentry: 'loaded' | 'load-failed', kprobe: 'loaded' | 'attach-failed') => ({
    verdict: 'loaded' as const,
    explain: [],
    reason: '',
    log: [],
    programs: { on_fentry: prog(fentry, 'fentry/vfs_read'), on_kprobe: prog(kprobe, 'kprobe/vfs_read') },
  });
  // 5.4: no trampolines, the kprobe serves; 5.10: both load; 6.1: the function is gone, neither does.
  const results: MatrixResults = {
    version: 1,
    generated: '',
    guest: { origin: '', bpftool: '', autoattach: true },
    btf: { blob: '', sha256: '' },
    clang: '',
    timings: {},
    programs: [{ id: 'a', source: 'a.bpf.c', sourceSha256: '' }],
    kernels: [kern('5.4'), kern('5.10'), kern('6.1')],
    results: {
      'a.bpf.c': {
        '5.4.0-1-amd64': obj('load-failed', 'loaded'),
        '5.10.0-1-amd64': obj('loaded', 'loaded'),
        '6.1.0-1-amd64': obj('load-failed', 'attach-failed'),
      },
    },
  };
  const v = (fails: boolean, alone: boolean): LinterVerdict => ({ fails, alone, because: alone ? ['r: m (line 1)'] : [] });
  // The linter made the fentry failure on 5.4 a warning (the kprobe serves): it still fails alone.
  const perProgram = new Map([
    [
      'a.bpf.c',
      new Map([
        [
          'on_fentry',
          new Map([
            ['debian-5.4', v(false, true)],
            ['debian-5.10', v(false, false)],
            ['debian-6.1', v(true, true)],
          ]),
        ],
        [
          'on_kprobe',
          new Map([
            ['debian-5.4', v(false, false)],
            ['debian-5.10', v(false, false)],
            ['debian-6.1', v(true, true)],
          ]),
        ],
      ]),
    ],
  ]);
  const cells = comparePrograms(results, perProgram, []);
  assert.equal(cells.length, 6);
  // A program whose attach target the loader sets is not compared (the object names a placeholder).
  const retargeted = new Map([
    ['a.bpf.c', new Map([['on_fentry', new Map([['debian-5.4', { ...v(false, false), loaderSetsTarget: true }]])]])],
  ]);
  assert.equal(comparePrograms(results, retargeted, []).length, 0);
  assert.ok(
    cells.every((c) => c.agree),
    'the per-program loader sees what the linter says of each program alone',
  );
  // The hook, as the user reads it: an error only on 6.1.
  const hook = (fails61: boolean, fails54 = false): Hook => ({
    hook: 'entry:vfs_read',
    programs: ['on_fentry', 'on_kprobe'],
    linter: new Map([
      ['debian-5.4', v(fails54, fails54)],
      ['debian-5.10', v(false, false)],
      ['debian-6.1', v(fails61, fails61)],
    ]),
  });
  const hc = compareHooks(results, new Map([['a.bpf.c', [hook(true)]]]));
  assert.deepEqual(
    hc.map((c) => [c.kernel.majorMinor, c.loaded, c.agree]),
    [
      ['5.4', ['on_kprobe'], true],
      ['5.10', ['on_fentry', 'on_kprobe'], true],
      ['6.1', [], true],
    ],
  );
  // Near misses: silent where no variant loads, and an error where one does, both disagree.
  const wrong = compareHooks(results, new Map([['a.bpf.c', [hook(false, true)]]]));
  assert.deepEqual(
    wrong.filter((c) => !c.agree).map((c) => c.kernel.majorMinor),
    ['5.4', '6.1'],
  );
});

test('maps an object leaves for its loader to size: no max_entries, a stack-trace map without a value size', (t) => {
  const clang = which('clang');
  if (!clang) {
    t.skip('clang is not installed (Debian package clang)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'matrix-maps-'));
  try {
    writeFileSync(
      join(dir, 'm.bpf.c'),
      `#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
struct { __uint(type, 7); __uint(key_size, 4); } stacks SEC(".maps");
struct { __uint(type, 7); __uint(key_size, 4); __uint(value_size, 1016); __uint(max_entries, 64); } sized_stacks SEC(".maps");
struct { __uint(type, 1); __type(key, int); __type(value, long); } unsized_hash SEC(".maps");
struct { __uint(type, 1); __type(key, int); __type(value, long); __uint(max_entries, 8); } hash SEC(".maps");
struct { __uint(type, 4); __uint(key_size, 4); __uint(value_size, 4); } events SEC(".maps");
SEC("xdp") int pass(void *ctx) { return 2; }
char LICENSE[] SEC("license") = "GPL";
`,
    );
    const r = spawnSync(clang, ['-target', 'bpf', '-O2', '-g', '-c', join(dir, 'm.bpf.c'), '-o', join(dir, 'm.o')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // The perf event array libbpf sizes by itself; the sized ones are complete.
    assert.deepEqual([...loaderSizedMaps(join(dir, 'm.o'))].sort(), ['stacks', 'unsized_hash']);
    assert.equal(loaderSizedMaps(join(dir, 'm.bpf.c')).size, 0, 'not an object: nothing to say');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('groundtruth/ imports neither the CLI, the scripts, the client nor the LSP edge', () => {
  const dir = join(root, 'groundtruth', 'src');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const specs = [...readFileSync(join(dir, f), 'utf8').matchAll(/^\s*(?:import|export)\b[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
    assert.ok(specs.length > 0, f);
    for (const s of specs) {
      if (!s.startsWith('.')) continue;
      const target = relative(root, resolve(dir, s));
      assert.ok(!/^(cli|scripts|client)\/|^server\/src\/lsp\//.test(target), `${f} imports ${target}`);
      assert.ok(/^(groundtruth|kernel-db)\/|^server\/src\//.test(target), `${f} imports ${target}, outside the product libraries`);
    }
  }
});

test('serial output: the functions kallsyms has only as compiler clones, over several lines; malformed pairs are skipped', () => {
  const text = serial({ a: { log: [], result: '0 1.0 1.1 -' } }).replace(
    `${MARK} done`,
    [
      `${MARK} clone-only finish_task_switch=finish_task_switch.isra.0 cpu_util=cpu_util.constprop.0`,
      `[    1.2] some kernel message ${MARK} clone-only igmp_send_report=igmp_send_report.isra.0 =broken`,
      `${MARK} done`,
    ].join('\n'),
  );
  const r = parseSerial(text, ['a']);
  assert.deepEqual(r.cloneOnly, {
    finish_task_switch: 'finish_task_switch.isra.0',
    cpu_util: 'cpu_util.constprop.0',
    igmp_send_report: 'igmp_send_report.isra.0',
  });
  assert.equal(parseSerial(serial({ a: { log: [], result: '0 1.0 1.1 -' } }), ['a']).cloneOnly, undefined);
  // The guest's scan reads vmlinux text symbols only and leaves out the padding symbols.
  assert.match(initScript(true), /awk -v p="\$M clone-only" 'NF == 3 && \(\$2 == "t" \|\| \$2 == "T"\) && \$3 !~ \/\^__pfx_\//);
});

test('kernel images from a directory: one per release, the package entry first; the nearest database build of an unknown one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'matrix-images-'));
  try {
    mkdirSync(join(dir, 'sub'));
    for (const f of ['vmlinuz-6.1.0-40-amd64', 'sub/vmlinuz-6.1.0-40-amd64', 'vmlinuz-6.12.117+deb13-amd64', 'notes.txt'])
      writeFileSync(join(dir, f), 'not a real image');
    const images = imagesFromPath(dir, dir, () => {});
    assert.deepEqual(
      images.map((i) => i.release),
      ['6.1.0-40-amd64', '6.12.117+deb13-amd64'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const db = KernelDb.open({ noUser: true });
  // A newer or older Debian point release than the database's: the same major.minor and flavour.
  assert.equal(nearestBuild('6.1.0-40-amd64', db.kernels)?.name, 'debian-6.1.0-56-amd64');
  assert.equal(nearestBuild('6.1.0-40-cloud-amd64', db.kernels)?.name, 'debian-6.1.0-56-cloud-amd64');
  assert.equal(nearestBuild('4.19.0-27-amd64', db.kernels), undefined);
});

test("Debian mirrors: the environment, else the machine's apt sources (one-line and deb822), else deb.debian.org", () => {
  const etc = mkdtempSync(join(tmpdir(), 'matrix-apt-'));
  try {
    assert.deepEqual(debianMirrors({}, etc), {
      main: 'http://deb.debian.org/debian',
      security: 'http://deb.debian.org/debian-security',
      from: "Debian's default",
    });
    mkdirSync(join(etc, 'sources.list.d'));
    writeFileSync(
      join(etc, 'sources.list.d', 'debian.sources'),
      [
        'Types: deb',
        'URIs: http://mirror.local/debian/',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        '',
        'Types: deb',
        'URIs: http://mirror.local/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
      ].join('\n'),
    );
    // Other vendors' sources are not Debian's archive.
    writeFileSync(join(etc, 'sources.list.d', 'vendor.list'), 'deb https://packages.example.com/apt cloud-sdk-bookworm main\n');
    assert.deepEqual(debianMirrors({}, etc), {
      main: 'http://mirror.local/debian',
      security: 'http://mirror.local/debian-security',
      from: "this machine's apt sources",
    });
    const env = { EBPF_MATRIX_DEBIAN_MIRROR: 'http://other/debian', EBPF_MATRIX_DEBIAN_SECURITY_MIRROR: 'http://other/security' };
    assert.deepEqual(debianMirrors(env, etc), { main: 'http://other/debian', security: 'http://other/security', from: 'the environment' });
    const lines = suites(debianMirrors(env, etc));
    assert.equal(lines.find((x) => x.suite === 'trixie-security')?.mirror, 'http://other/security');
    assert.equal(lines.find((x) => x.suite === 'sid')?.mirror, 'http://other/debian');
  } finally {
    rmSync(etc, { recursive: true, force: true });
  }
});
