/**
 * Compiled objects: the ELF, `.BTF` and `.BTF.ext` of an object clang builds in the test, and its
 * CO-RE relocations resolved per kernel as libbpf resolves them (names from the local types,
 * `___flavor` stripped, kind compatibility at each step). Needs clang (`.ci/run` installs it);
 * says it is skipped without it. Malformed `.BTF.ext` is refused with a clear message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BtfExtError, CoreReloKind, lineOf, parseBtfExt } from '../../kernel-db/src/btf/ext';
import { readBpfObject } from '../../kernel-db/src/btf/object';
import { parseBtf } from '../../kernel-db/src/btf/reader';
import { essentialName, RELO_KIND_NAMES, resolveRelo } from '../../kernel-db/src/query/coreRelo';
import { KernelDb } from '../../kernel-db/src/query/db';
import { checkObject, checkObjectSteps } from '../../server/src/rules/object';
import { compareVersions } from '../../kernel-db/src/version';

const root = join(__dirname, '..', '..');
const clang = [...(process.env.PATH ?? '').split(':'), '/usr/bin'].map((d) => join(d, 'clang')).find((p) => existsSync(p));
const db = KernelDb.open({ noUser: true });

/** Compiles test/fixtures/objects/<name>.bpf.c into a directory removed after the test. */
function compile(t: { after(fn: () => void): void }, name = 'relocations'): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-object-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, `${name}.o`);
  const src = join(root, 'test', 'fixtures', 'objects', `${name}.bpf.c`);
  const r = spawnSync(clang!, ['-target', 'bpf', '-O2', '-g', '-c', src, '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return new Uint8Array(readFileSync(out));
}

test('object: programs, license, and every CO-RE relocation with its source line', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const o = readBpfObject(compile(t), 'relocations.o');
  assert.deepEqual(
    o.programs.map((p) => [p.section, p.name, p.offset]),
    [['kprobe/do_exit', 'prog', 0]],
  );
  assert.equal(o.license, 'GPL');
  // Source lines come from line_info: inside the program's body (clang may schedule a relocated
  // instruction on a neighbouring line).
  const lines = o.ext!.coreRelos.map((r) => lineOf(o.ext!, r.section, r.insnOff)?.line ?? 0);
  assert.ok(
    lines.every((l) => l >= 14 && l <= 21),
    lines.join(' '),
  );
  assert.deepEqual([...new Set(o.ext!.coreRelos.map((r) => RELO_KIND_NAMES[r.kind]))].sort(), [
    'byte_off',
    'enumval_exists',
    'field_exists',
    'type_exists',
  ]);
});

test('object: relocations resolved per kernel — renamed, retyped and flavoured members, enum values, types', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const o = readBpfObject(compile(t), 'relocations.o');
  const kernels = db.target('4.14-7.x', { arch: ['x86_64'] });
  const failing = (kind: CoreReloKind, text: string) => {
    const r = o.ext!.coreRelos.map((x) => resolveRelo(db, o.btf, x, kernels)).find((x) => x.relo.kind === kind && x.query?.text === text);
    assert.ok(r, `a ${RELO_KIND_NAMES[kind]} relocation of ${text}`);
    return kernels.filter((_, i) => r.outcomes[i] === 'fail').map((k) => k.name);
  };
  // Near miss: members every kernel has.
  assert.deepEqual(failing(CoreReloKind.FieldByteOffset, 'struct task_struct: real_parent'), []);
  assert.deepEqual(failing(CoreReloKind.FieldByteOffset, 'struct task_struct: tgid'), []);
  // task_struct___old.state: the flavour is task_struct; state became __state in 5.14.
  const state = failing(CoreReloKind.FieldByteOffset, 'struct task_struct: state');
  assert.ok(state.includes('debian-6.1.0-56-amd64') && !state.includes('debian-5.10.0-46-amd64'));
  assert.deepEqual(failing(CoreReloKind.FieldExists, 'struct task_struct: state'), state);
  // mm_struct.rss_stat became an array of percpu_counter in 6.2: a struct is not an array.
  const rss = failing(CoreReloKind.FieldByteOffset, 'struct mm_struct: rss_stat.count');
  assert.ok(rss.includes('debian-6.12.117-amd64') && !rss.includes('debian-6.1.0-56-amd64'));
  // The helper's id exists where the kernel has the helper (5.8, and openEuler's backport).
  const ringbuf = failing(CoreReloKind.EnumvalExists, 'enum bpf_func_id::BPF_FUNC_ringbuf_output');
  assert.ok(ringbuf.includes('ubuntu-5.4.0-26-generic-amd64') && !ringbuf.some((k) => k.startsWith('debian-')));
  assert.equal(
    failing(CoreReloKind.TypeExists, 'struct trace_event_raw_nope').length,
    kernels.filter((k) => k.fidelity !== 'depsurf' || true).length,
  );
});

test('object: ___flavor names are essential names as libbpf takes them', () => {
  assert.equal(essentialName('task_struct___old'), 'task_struct');
  assert.equal(essentialName('a___b___c'), 'a___b');
  assert.equal(essentialName('plain'), 'plain');
  assert.equal(essentialName('trailing___'), 'trailing___');
});

test('object: a malformed .BTF.ext is refused with what is wrong', () => {
  // A BTF blob with only the empty string, for the string offsets.
  const btfBytes = new Uint8Array([0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  const btf = parseBtf(btfBytes);
  assert.throws(
    () => parseBtfExt(new Uint8Array(8), btf),
    (e: Error) => e instanceof BtfExtError && /shorter than its header/.test(e.message),
  );
  const header = new Uint8Array(32);
  const v = new DataView(header.buffer);
  v.setUint16(0, 0xeb9f, true);
  v.setUint8(2, 1);
  v.setUint32(4, 32, true);
  // line_info claims 64 bytes that are not there.
  v.setUint32(16, 0, true);
  v.setUint32(20, 64, true);
  assert.throws(
    () => parseBtfExt(header, btf),
    (e: Error) => e instanceof BtfExtError && /line_info .* runs past the end/.test(e.message),
  );
  v.setUint8(2, 2);
  assert.throws(() => parseBtfExt(header, btf), /version 2 is not 1/);
  v.setUint8(2, 1);
  v.setUint32(20, 0, true);
  assert.deepEqual(parseBtfExt(header, btf), { funcInfo: [], lineInfo: [], coreRelos: [] });
});

test('object pass: a failing relocation or helper call counts only where the verifier reaches it', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-object-pass-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const build = (name: string) => {
    const out = join(dir, `${name}.o`);
    const r = spawnSync(
      clang!,
      ['-target', 'bpf', '-O2', '-g', '-c', join(root, 'test', 'fixtures', 'objects', `${name}.bpf.c`), '-o', out],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    return readBpfObject(new Uint8Array(readFileSync(out)), `${name}.o`);
  };
  const kernels = db.target('4.14-7.x', { arch: ['x86_64'] });
  const loader = { kind: 'libbpf' as const, minVersion: '1.0' };
  const lines = (o: ReturnType<typeof build>) => checkObject(db, o, kernels, loader).verdicts.map((v) => `${v.line} ${v.rule}`);
  // relocations.bpf.c: the read of task_struct___old.state sits under its field_exists check and
  // is never reached where `state` is gone; rss_stat.count is read unguarded and fails from 6.2.
  const rel = checkObject(db, build('relocations'), kernels, loader).verdicts;
  assert.deepEqual(
    rel.map((v) => v.rule),
    ['field-missing-in-range'],
  );
  assert.match(rel[0].message, /rss_stat/);
  assert.ok(
    rel[0].kernels.some((k) => k.name === 'debian-6.12.117-amd64') && !rel[0].kernels.some((k) => k.name === 'debian-6.1.0-56-amd64'),
  );
  // guards.bpf.c: bpf_ringbuf_output under bpf_core_enum_value_exists is silent, the bare call is not.
  assert.deepEqual(lines(build('guards')), ['13 helper-unavailable']);
});

test('object pass: a CO-RE type no kernel has is the program own (relocated against BTF its loader brings): no verdict', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-object-own-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'own.o');
  const r = spawnSync(
    clang!,
    ['-target', 'bpf', '-O2', '-g', '-c', join(root, 'test', 'fixtures', 'objects', 'own-types.bpf.c'), '-o', out],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const o = readBpfObject(new Uint8Array(readFileSync(out)), 'own.o');
  const kernels = db.target('5.10-7.x', { arch: ['x86_64'] });
  const results = o.ext!.coreRelos.map((x) => resolveRelo(db, o.btf, x, kernels));
  const field = results.find((x) => x.relo.kind === CoreReloKind.FieldByteOffset)!;
  assert.ok(
    field.outcomes.every((v) => v === 'unknown'),
    'the member read is not answered from kernels',
  );
  // Its existence is: no kernel has it, so the check is 0 there.
  const exists = results.find((x) => x.relo.kind === CoreReloKind.TypeExists)!;
  assert.ok(exists.outcomes.every((v) => v === 'fail'));
  assert.deepEqual(checkObject(db, o, kernels, { kind: 'libbpf', minVersion: '1.0' }).verdicts, []);
});

test('object pass: programs link their subprograms and callbacks; kconfig values, weak kfunc checks and prototypes per kernel', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const src = join(root, 'test', 'fixtures', 'objects', 'linked.bpf.c');
  const o = readBpfObject(compile(t, 'linked'), 'linked.o');
  // Two programs share a section; `.text` holds subprograms, not programs.
  assert.deepEqual(
    o.programs.map((p) => `${p.section} ${p.name}`),
    ['kprobe/do_exit first', 'kprobe/do_exit second'],
  );
  assert.deepEqual(o.externs.map((e) => `${e.kind} ${e.name}${e.weak ? ' weak' : ''}`).sort(), [
    'kconfig LINUX_KERNEL_VERSION',
    'ksym bpf_rcu_read_lock weak',
    'ksym bpf_task_acquire',
    'ksym bpf_task_release weak',
  ]);
  const kernels = db.target('4.14-7.x', { arch: ['x86_64'] });
  const check = checkObject(db, o, kernels, { kind: 'libbpf', minVersion: '1.0' });
  const text = readFileSync(src, 'utf8').split('\n');
  const lineOfText = (s: string) => text.findIndex((l) => l.includes(s)) + 1;
  const reached = (s: string) => {
    const byLine = [...check.lines.entries()].find(([f]) => f.endsWith('linked.bpf.c'))?.[1];
    return [...(byLine?.get(lineOfText(s)) ?? [])].map((i) => kernels[i]);
  };
  const before = (k: { version: string }, v: string) => compareVersions(k.version, v) < 0;
  // emit() is called only under LINUX_KERNEL_VERSION >= 5.8: libbpf's value of the extern decides it.
  const emit = reached('return bpf_ringbuf_output');
  assert.ok(emit.length > 0 && emit.every((k) => !before(k, '5.8')));
  assert.ok(emit.length === kernels.filter((k) => !before(k, '5.8')).length);
  // So its ringbuf call fails nowhere; a static function nothing calls is not in the object at all.
  assert.deepEqual(reached('return bpf_get_func_ip(ctx);'), []);
  // The callback is linked in through the address bpf_loop() takes, and its helper is checked.
  assert.equal(reached('return bpf_get_func_ip(ctx) ?').length, kernels.length);
  // `if (bpf_rcu_read_lock)` on a __weak kfunc: the call runs only where libbpf resolves it.
  const rcu = reached('        bpf_rcu_read_lock();');
  const has = db.kfunc('bpf_rcu_read_lock', kernels);
  assert.ok(rcu.length > 0 && rcu.length < kernels.length);
  // (A kernel whose data cannot say keeps both ways.)
  assert.ok(rcu.every((k) => has[kernels.indexOf(k)].present !== false));
  assert.ok(kernels.every((k, i) => has[i].present !== true || rcu.includes(k)));
  const verdicts = check.verdicts.map((v) => `${v.line} ${v.rule} ${v.subject}`).sort();
  assert.deepEqual(verdicts, [
    `${lineOfText('return bpf_get_func_ip(ctx) ?')} helper-unavailable bpf_get_func_ip`,
    `${lineOfText('bpf_loop(4')} helper-unavailable bpf_loop`,
    `${lineOfText('bpf_task_acquire((struct')} kfunc-unavailable bpf_task_acquire`,
  ]);
  // The strong kfunc declared with an extra parameter is refused wherever the kernel has a
  // prototype for it; bpf_task_release's declaration matches the kernel's and is not (near miss).
  const proto = check.verdicts.find((v) => v.subject === 'bpf_task_acquire')!;
  assert.match(proto.message, /2 parameters here, 1 in the kernel's `struct task_struct \*bpf_task_acquire\(struct task_struct \*p\)`/);
  const protos = db.kfunc('bpf_task_acquire', kernels);
  assert.deepEqual(
    proto.kernels.map((k) => k.name),
    kernels.filter((_, i) => protos[i].present === true && protos[i].proto).map((k) => k.name),
  );
});

test('object pass: bitfield relocations (offset, size, signedness, shifts) fail where the member is gone, and only where reached', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const src = join(root, 'test', 'fixtures', 'objects', 'bitfields.bpf.c');
  const o = readBpfObject(compile(t, 'bitfields'), 'bitfields.o');
  assert.deepEqual([...new Set(o.ext!.coreRelos.map((x) => RELO_KIND_NAMES[x.kind]))].sort(), [
    'byte_off',
    'byte_sz',
    'field_exists',
    'lshift_u64',
    'rshift_u64',
    'signed',
  ]);
  const kernels = db.target('4.14-7.x', { arch: ['x86_64'] });
  const has = db.field('sock', 'sk_gso_disabled', kernels).kernels;
  const lacking = kernels.filter((_, i) => has[i].present === false).map((k) => k.name);
  assert.ok(lacking.length > 0 && lacking.length < kernels.length);
  const check = checkObject(db, o, kernels, { kind: 'libbpf', minVersion: '1.0' });
  const text = readFileSync(src, 'utf8').split('\n');
  const unguarded = text.findIndex((l) => l.startsWith('    v += READ_BITFIELD(sk, sk_gso_disabled)')) + 1;
  // Every relocated kind of the unguarded read fails on the kernels without the member; the read
  // of sk_kern_sock (on every kernel) and the guarded read (never reached there) do not.
  assert.ok(check.verdicts.length >= 1);
  for (const v of check.verdicts) {
    assert.equal(v.rule, 'field-missing-in-range');
    // (clang merges the guarded and unguarded reads' identical relocated constants and may place
    // them on a neighbouring line of the function.)
    assert.ok(v.line! >= unguarded - 4 && v.line! <= unguarded, `${v.line}: ${v.message}`);
    assert.match(v.subject, /sk_gso_disabled/);
    assert.deepEqual(
      v.kernels.map((k) => k.name),
      lacking,
    );
  }
});

test('object pass: the check runs in steps (per relocation record, kernel and program walk) that end in its verdicts', {
  skip: clang ? false : 'skipped: clang is not installed',
}, (t) => {
  const kernels = db.target('4.14-7.x', { arch: ['x86_64'] });
  const loader = { kind: 'libbpf' as const, minVersion: '1.0' };
  for (const name of ['relocations', 'linked']) {
    const o = readBpfObject(compile(t, name), `${name}.o`);
    const steps = checkObjectSteps(db, o, kernels, loader);
    let yields = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) yields++;
    // At least one step per kernel's patching and one per program's first walk.
    assert.ok(yields >= kernels.length + o.programs.length, `${name}: ${yields} steps for ${kernels.length} kernels`);
    assert.deepEqual(r.value, checkObject(db, o, kernels, loader), name);
  }
});
