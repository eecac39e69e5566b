/**
 * Known kernel facts, asserted through the query API on the built database (kernel-db/data).
 * Each names the kernels it rests on; none of these values is typed into the database by hand:
 * the builder read them from those kernels' BTF, configs or DepSurf tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { defaultDataDir, KernelDb, type Kernel, type KernelAnswer } from '../../kernel-db/src/query/db';
import { KernelStore } from '../../kernel-db/src/store/store';

const db = KernelDb.open({ noUser: true });
const k = (name: string): Kernel => {
  const found = db.kernels.find((x) => x.name === name);
  assert.ok(found, `kernel ${name} is in the database`);
  return found;
};
const field = (s: string, f: string, name: string) => db.fieldOn(s, f, k(name));
const presence = (rows: KernelAnswer[]) => Object.fromEntries(rows.map((r) => [r.kernel.name, r.present]));

const U = (v: string) => `ubuntu-${v}-generic-amd64`;

test('task_struct.__state: absent up to 5.13, present from 5.14', () => {
  for (const n of [U('5.4.0-26'), 'debian-5.10.0-46-amd64', 'cilium-testdata-5.13.2-x86_64', U('5.13.0-19')]) {
    assert.equal(field('task_struct', '__state', n).present, false, n);
    assert.equal(field('task_struct', 'state', n).present, true, n);
  }
  for (const n of [U('5.15.0-25'), 'cilium-testdata-5.16-x86_64', 'debian-6.1.0-56-amd64', 'debian-7.3.4-arm64']) {
    assert.equal(field('task_struct', '__state', n).present, true, n);
    assert.equal(field('task_struct', 'state', n).present, false, n);
  }
  assert.equal(field('task_struct', '__state', 'debian-6.1.0-56-amd64').type, 'unsigned int');
  assert.equal(field('task_struct', 'state', 'debian-5.10.0-46-amd64').type, 'volatile long int');
});

test('task_struct.__state lists `state` as its rename candidate', () => {
  const r = db.field('task_struct', '__state', db.target('5.4-6.1', { arch: ['x86_64'] }));
  assert.equal(r.renameCandidates[0]?.name, 'state');
  assert.ok(r.renameCandidates[0].similarName);
  assert.ok(r.renameCandidates[0].kernels.includes('debian-5.10.0-46-amd64'));
});

test('task_struct.start_boottime from 5.5, real_start_time before', () => {
  for (const n of ['cilium-testdata-5.4-x86_64', U('5.4.0-26'), U('4.15.0-20')]) {
    assert.equal(field('task_struct', 'real_start_time', n).present, true, n);
    assert.equal(field('task_struct', 'start_boottime', n).present, false, n);
  }
  for (const n of [U('5.8.0-25'), 'debian-5.10.0-46-amd64', 'debian-6.12.117-amd64']) {
    assert.equal(field('task_struct', 'real_start_time', n).present, false, n);
    assert.equal(field('task_struct', 'start_boottime', n).present, true, n);
  }
});

test('bio.bi_disk 4.14-5.11, bio.bi_bdev before 4.14 and again from 5.12', () => {
  for (const n of [U('4.15.0-20'), 'debian-5.10.0-46-amd64', 'cilium-testdata-5.11-x86_64']) {
    assert.equal(field('bio', 'bi_disk', n).present, true, n);
    assert.equal(field('bio', 'bi_bdev', n).present, false, n);
  }
  for (const n of [U('4.13.0-16'), 'cilium-testdata-5.13.2-x86_64', 'debian-6.1.0-56-amd64']) {
    assert.equal(field('bio', 'bi_disk', n).present, false, n);
    assert.equal(field('bio', 'bi_bdev', n).present, true, n);
  }
  assert.equal(field('bio', 'bi_bdev', 'debian-6.1.0-56-amd64').type, 'struct block_device *');
  assert.equal(field('bio', 'bi_bdev', 'debian-6.1.0-56-amd64').ref, 'block_device');
});

test('sock.sk_protocol is an 8-bit bitfield before 5.6 and a u16 after', () => {
  for (const n of ['centos8-4.18.0-147.5.1.el8_1-arm64', 'cilium-testdata-5.4-x86_64']) {
    const f = field('sock', 'sk_protocol', n);
    assert.equal(f.bitfieldBits, 8, n);
    assert.equal(f.type, 'unsigned int', n);
  }
  for (const n of ['debian-5.10.0-46-amd64', 'debian-6.1.0-56-arm64']) {
    const f = field('sock', 'sk_protocol', n);
    assert.equal(f.bitfieldBits, 0, n);
    assert.equal(f.type, 'u16', n);
  }
});

test('inode.__i_ctime 6.6-6.10, inode.i_ctime_sec from 6.11, inode.i_ctime before 6.6', () => {
  for (const n of ['vanilla-ci-6.6.5-x86_64', 'vanilla-ci-6.8.4-x86_64', U('6.8.0-31')]) {
    assert.equal(field('inode', '__i_ctime', n).present, true, n);
    assert.equal(field('inode', 'i_ctime', n).present, false, n);
  }
  for (const n of ['vanilla-ci-6.11.1-x86_64', 'debian-6.12.117-amd64', 'debian-7.3.4-cloud-arm64']) {
    assert.equal(field('inode', 'i_ctime_sec', n).present, true, n);
    assert.equal(field('inode', '__i_ctime', n).present, false, n);
  }
  for (const n of ['debian-6.1.0-56-amd64', U('6.5.0-9')]) {
    assert.equal(field('inode', 'i_ctime', n).present, true, n);
    assert.equal(field('inode', '__i_ctime', n).present, false, n);
  }
});

test('mm_struct.rss_stat changes type in 6.2', () => {
  assert.equal(field('mm_struct', 'rss_stat', 'debian-6.1.0-56-amd64').type, 'struct mm_rss_stat');
  assert.equal(field('mm_struct', 'rss_stat', 'debian-6.12.117-amd64').type, 'struct percpu_counter[4]');
});

test('a layout is a property of a build: task_struct differs between 6.1 generic and cloud amd64', () => {
  const [g, c] = [k('debian-6.1.0-56-amd64'), k('debian-6.1.0-56-cloud-amd64')];
  const sizes = db.aggregate('task_struct', [g, c]).map((a) => a.size);
  assert.equal(sizes[0], 9792);
  assert.equal(sizes[1], 9728);
  const moved = db.fieldNames('task_struct', g).filter((f) => {
    const [x, y] = [db.fieldOn('task_struct', f, g), db.fieldOn('task_struct', f, c)];
    return x.present && y.present && x.offsetBits !== y.offsetBits;
  });
  assert.ok(moved.includes('kretprobe_instances'), `moved: ${moved.join(', ')}`);
  assert.equal(field('task_struct', 'comm', 'debian-6.1.0-56-amd64').type, 'char[16]');
});

test('fields inside anonymous unions are flattened as C sees them', () => {
  // sk_buff's `dev` sits in an anonymous union (with dev_scratch) inside an anonymous struct.
  const f = field('sk_buff', 'dev', 'debian-6.12.117-amd64');
  assert.equal(f.present, true);
  assert.equal(f.type, 'struct net_device *');
  assert.match(f.anon ?? '', /union/);
});

test('DepSurf kernels answer with their lower fidelity: no offsets', () => {
  const f = field('task_struct', 'pid', U('4.15.0-20'));
  assert.equal(f.present, true);
  assert.equal(f.basis, 'depsurf');
  assert.equal(f.offsetBits, undefined);
  assert.equal(k(U('4.15.0-20')).fidelity, 'depsurf');
});

test('helper bpf_ringbuf_output from 5.8 (per-kernel enum bpf_func_id)', () => {
  const h = db.helper('bpf_ringbuf_output', [
    k(U('5.4.0-26')),
    k(U('5.8.0-25')),
    k('debian-5.10.0-46-amd64'),
    k('cilium-testdata-5.4-x86_64'),
  ]);
  assert.deepEqual(
    h.kernels.map((x) => x.present),
    [false, true, true, false],
  );
  assert.ok(h.kernels.every((x) => x.basis !== 'facts'));
  assert.equal(h.since, '5.8');
  assert.equal(db.enumValue('bpf_func_id', 'BPF_FUNC_ringbuf_output', [k('debian-6.1.0-56-amd64')])[0].value, '130');
});

test('version numbers lie: openEuler 4.19 has bpf_probe_read_kernel, Ubuntu 4.18 does not', () => {
  const h = presence(
    db.helper('bpf_probe_read_kernel', [k('bclinux21.10u3-4.19.90-2107.6.0.0248.35.oe1.bclinux-x86_64'), k(U('4.18.0-10'))]).kernels,
  );
  assert.deepEqual(Object.values(h), [true, false]);
});

test('BPF_PROG_TYPE_LSM from 5.7; Kylin V10 SP3 4.19 has BPF_PROG_TYPE_TRACING backported', () => {
  const lsm = db.progType('BPF_PROG_TYPE_LSM', [k(U('5.4.0-26')), k(U('5.8.0-25')), k('debian-5.10.0-46-amd64')]);
  assert.deepEqual(
    lsm.kernels.map((x) => x.present),
    [false, true, true],
  );
  assert.equal(lsm.since, '5.7');
  const tracing = db.progType('tracing', [k('kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64'), k(U('4.18.0-10'))]);
  assert.deepEqual(
    tracing.kernels.map((x) => x.present),
    [true, false],
  );
});

test('BPF_MAP_TYPE_RINGBUF from 5.8', () => {
  const r = db.mapType('ringbuf', [k(U('5.4.0-26')), k(U('5.8.0-25')), k('debian-6.1.0-56-arm64')]);
  assert.deepEqual(
    r.kernels.map((x) => x.present),
    [false, true, true],
  );
});

test('do_sys_openat2 appears in 5.6 (kprobe target)', () => {
  const r = db.func('do_sys_openat2', [k(U('5.4.0-26')), k(U('5.8.0-25')), k('debian-6.1.0-56-amd64'), k('cilium-testdata-5.4-x86_64')]);
  assert.deepEqual(
    r.map((x) => x.present),
    [false, true, true, null],
  );
});

test('LSM hook bpf_lsm_file_open: absent on Ubuntu 5.8 (CONFIG_BPF_LSM=n), present from 5.11', () => {
  const r = db.lsmHook('file_open', [k(U('5.8.0-25')), k(U('5.11.0-16')), k('debian-6.1.0-56-amd64')]);
  assert.deepEqual(
    r.map((x) => x.present),
    [false, true, true],
  );
  assert.equal(r[2].proto, 'int bpf_lsm_file_open(struct file *file)');
  const sec = db.section('lsm/file_open', [k(U('5.4.0-26')), k(U('5.8.0-25')), k('debian-6.1.0-56-amd64')]);
  assert.equal(sec.progType, 'BPF_PROG_TYPE_LSM');
  assert.deepEqual(
    sec.kernels.map((x) => x.present),
    [false, false, true],
  );
  assert.ok(sec.configs.includes('CONFIG_BPF_LSM'));
});

test('kfunc bpf_task_acquire: tagged in 6.12 BTF, absent in 6.1', () => {
  const r = db.kfunc('bpf_task_acquire', [k('debian-6.1.0-56-amd64'), k('debian-6.12.117-amd64')]);
  assert.deepEqual(
    r.map((x) => x.present),
    [false, true],
  );
  assert.equal(r[1].kfunc, true);
});

test('CONFIG values per kernel, unknown where no config exists', () => {
  const r = db.config('CONFIG_DEBUG_INFO_BTF', [k(U('5.4.0-26')), k(U('5.8.0-25')), k('debian-6.1.0-56-amd64'), k('debian-7.0.13-amd64')]);
  assert.deepEqual(
    r.map((x) => x.present),
    [false, true, true, null],
  );
  assert.equal(r[2].value, 'y');
  assert.equal(db.config('BPF_LSM', [k('debian-6.1.0-56-amd64')])[0].value, 'y');
});

test('tracepoints: DepSurf tables for 4.x, btf_trace_* typedefs for BTF kernels', () => {
  const r = db.tracepoint('sched/sched_switch', [k(U('4.15.0-20')), k('debian-6.1.0-56-amd64'), k('centos8-4.18.0-147.5.1.el8_1-arm64')]);
  assert.deepEqual(
    r.map((x) => x.present),
    [true, true, null],
  );
  assert.equal(r[0].class, 'sched_switch');
  assert.match(
    db.typedef('btf_trace_sched_switch', [k('debian-6.1.0-56-amd64')])[0].value ?? '',
    /^void \(\*\)\(void \*, bool, struct task_struct \*/,
  );
  assert.equal(db.aggregate('trace_event_raw_sched_switch', [k('debian-6.1.0-56-amd64')])[0].present, true);
});

test('struct availability: bpf_iter_meta appears with BPF iterators (5.8)', () => {
  const r = db.aggregate('bpf_iter_meta', [k(U('5.4.0-26')), k(U('5.8.0-25')), k('debian-5.10.0-46-amd64')]);
  assert.deepEqual(
    r.map((x) => x.present),
    [false, true, true],
  );
  assert.equal(r[2].kind, 'struct');
  assert.ok((r[2].size ?? 0) > 0);
});

test('typedef-named anonymous structs resolve for member chains (atomic_t.counter)', () => {
  const f = field('atomic_t', 'counter', 'debian-6.1.0-56-amd64');
  assert.equal(f.type, 'int');
  assert.equal(field('task_struct', 'usage', 'debian-5.10.0-46-amd64').ref, 'refcount_struct');
});

test('the default set covers 40+ kernels from 4.4 to 7.3 on x86_64 and arm64', () => {
  assert.ok(db.kernels.length >= 40);
  const versions = db.kernels.map((x) => x.version);
  assert.ok(versions.includes('4.4.0') && versions.includes('7.3.4'));
  assert.ok(db.target('*', { arch: ['arm64'] }).length >= 10);
  const mins = db.kernels.filter((x) => x.fidelity === 'btf-minimal-config').map((x) => x.distro);
  assert.ok(mins.length > 0 && mins.every((d) => d === 'vanilla'));
});

test("one member's rows, found by a binary search, are the rows of the aggregate's whole field index", () => {
  // Two readers of the built-in store: one builds each aggregate's whole field index, the other
  // answers one member at a time before any index exists (the store is sorted by aggregate, then
  // member name, so the rows are found without decoding the names).
  const file = join(defaultDataDir(), 'kernels.kdb');
  const whole = KernelStore.open(file);
  const point = KernelStore.open(file);
  let checked = 0;
  for (const agg of ['task_struct', 'sock', 'inode', 'bio', 'mm_struct', 'sk_buff', 'pt_regs', 'no_such_struct']) {
    const index = whole.fields(agg);
    for (const [name, rows] of index) {
      assert.deepEqual([...point.fieldRows(agg, name)], rows, `${agg}.${name}`);
      checked++;
    }
    // Near misses: no member of that name, and a prefix of a real one.
    assert.deepEqual([...point.fieldRows(agg, 'no_such_member')], []);
    const first = [...index.keys()][0];
    if (first && first.length > 1) assert.deepEqual([...point.fieldRows(agg, first.slice(0, -1))], index.get(first.slice(0, -1)) ?? []);
  }
  assert.ok(checked > 700, `${checked} members compared`);
  // Once the whole index exists, it answers.
  assert.deepEqual(whole.fieldRows('task_struct', 'pid'), whole.fields('task_struct').get('pid'));
});
