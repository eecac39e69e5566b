/**
 * The curated facts the rules rest on: every feature a rule asks the facts for exists with a
 * version and a source, which helpers take a callback comes from their prototypes, and the
 * query layer's derived answers (a kernel's effective version, trusted call results) behave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KernelDb, type Kernel } from '../../kernel-db/src/query/db';
import { compareVersions } from '../../kernel-db/src/version';

const db = KernelDb.open({ noUser: true });
const RULES_DIR = join(__dirname, '..', '..', 'server', 'src', 'rules');
const kernel = (name: string): Kernel => {
  const k = db.kernels.find((x) => x.name === name);
  assert.ok(k, `kernel ${name} is in the database`);
  return k;
};

/** Every `featureSince('id')` the rule code asks; each call must name its feature literally, so none escapes the scan. */
function askedFeatures(): Map<string, string[]> {
  const asked = new Map<string, string[]>();
  for (const file of readdirSync(RULES_DIR).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(RULES_DIR, file), 'utf8');
    for (const m of text.matchAll(/\bfeatureSince\(([^)]*)\)/g)) {
      const id = /^\s*'([a-z0-9_]+)'\s*$/.exec(m[1]);
      assert.ok(id, `${file}: featureSince(${m[1]}) must name its feature as a literal`);
      asked.set(id[1], [...(asked.get(id[1]) ?? []), file]);
    }
  }
  return asked;
}

test('every feature the rules ask the facts for exists, with a version and a source', () => {
  const asked = askedFeatures();
  for (const id of ['bounded_loops', 'open_coded_iterators', 'global_data', 'atomics', 'arena', 'spin_lock', 'bpf_timer', 'callbacks']) {
    assert.ok(asked.has(id), `the scan finds the rules' use of ${id}`);
  }
  for (const [id, files] of asked) {
    const f = db.facts.feature(id);
    assert.ok(f, `feature ${id} (asked by ${files.join(', ')}) is in the facts`);
    assert.match(f.since ?? '', /^\d+\.\d+$/, `feature ${id} has a version`);
    assert.ok(f.source, `feature ${id} names its source`);
    assert.equal(db.facts.featureSince(id), f.since);
  }
  assert.equal(db.facts.featureSince('no_such_feature'), undefined);
});

test('helpers that take a callback come from their prototypes; their floor is the callbacks feature', () => {
  assert.deepEqual(db.facts.callbackHelpers().sort(), [
    'bpf_find_vma',
    'bpf_for_each_map_elem',
    'bpf_loop',
    'bpf_timer_set_callback',
    'bpf_user_ringbuf_drain',
  ]);
  assert.ok(!db.facts.takesCallback('bpf_ringbuf_output'));
  assert.equal(db.facts.featureSince('callbacks'), '5.13');
  // The feature came with bpf_for_each_map_elem, the first helper to take one.
  assert.equal(db.facts.helper('bpf_for_each_map_elem')?.since, db.facts.featureSince('callbacks'));
});

test('effectiveVersion: a kernel with backported helpers counts as the version of its newest helper', () => {
  const oe = db.kernels.find((k) => k.name.startsWith('bclinux') && k.version.startsWith('4.19'));
  assert.ok(oe);
  assert.ok(compareVersions(db.effectiveVersion(oe), '5.5') >= 0, `${oe.name} counts as ${db.effectiveVersion(oe)}`);
  const centos = kernel('centos8-4.18.0-147.5.1.el8_1-arm64');
  assert.equal(db.effectiveVersion(centos), '5.0');
  const deb = kernel('debian-6.1.0-56-amd64');
  assert.equal(db.effectiveVersion(deb), deb.version, 'a kernel is never older than its version');
  for (const k of db.kernels) {
    const v = db.effectiveVersion(k);
    assert.ok(compareVersions(v, k.version) >= 0, k.name);
    if (!k.hasHelperEnum) assert.equal(v, k.version, `${k.name} has no helper list: its version stands`);
  }
  assert.deepEqual(
    db.olderThan([oe, centos, deb], '5.3').map((k) => k.name),
    [centos.name],
  );
});

test('trusted call results: curated helpers and KF_ACQUIRE kfuncs, typed by the data', () => {
  assert.deepEqual(db.trustedReturn('bpf_get_current_task_btf'), { kind: 'struct', name: 'task_struct' });
  assert.deepEqual(db.trustedReturn('bpf_task_acquire'), { kind: 'struct', name: 'task_struct' });
  assert.deepEqual(db.trustedReturn('bpf_task_from_pid'), { kind: 'struct', name: 'task_struct' });
  assert.deepEqual(db.trustedReturn('bpf_cgroup_acquire'), { kind: 'struct', name: 'cgroup' });
  assert.deepEqual(db.trustedReturn('bpf_cgroup_from_id'), { kind: 'struct', name: 'cgroup' });
  assert.ok(db.facts.kfuncAcquires('bpf_task_acquire'));
  assert.equal(db.trustedReturn('bpf_task_release'), undefined, 'KF_RELEASE returns nothing to read');
  assert.equal(db.trustedReturn('bpf_get_current_task'), undefined, 'an integer, not a BTF pointer');
  assert.equal(db.trustedReturn('not_a_function'), undefined);
});

test('the analysis facts name a source for every row', () => {
  const a = db.facts.analysis;
  const rows = [...a.trusted_return_helpers, ...a.implied_configs, ...a.trampoline_configs, ...a.config_exemptions];
  assert.ok(rows.length >= 4);
  for (const r of rows) assert.ok(typeof r.source === 'string' && r.source.length > 20, JSON.stringify(r));
  for (const h of a.trusted_return_helpers) assert.ok(db.facts.helper(h.name), `${h.name} is a helper of the facts`);
  // The explicit probe-read helpers' floor, which legacy-probe-read quotes.
  assert.equal(db.facts.helper('bpf_probe_read_kernel')?.since, '5.5');
});

test('clone-only functions: each read from the curated table on first use, the same object after', () => {
  const table = JSON.parse(readFileSync(join(__dirname, '..', '..', 'kernel-db', 'curated', 'clone-only-functions.json'), 'utf8')) as {
    kernels: string[];
    functions: Record<string, (string | number)[]>;
  };
  const [name, [suffix, ...at]] = Object.entries(table.functions)[0];
  const entry = db.facts.cloneOnly(name);
  assert.equal(entry?.clone, `${name}${suffix}`);
  assert.deepEqual([...(entry?.kernels ?? [])].sort(), at.map((i) => table.kernels[i as number]).sort());
  assert.equal(db.facts.cloneOnly(name), entry);
  // Names the table lacks, including those every object inherits.
  for (const missing of ['do_sys_openat2_not_there', 'constructor', 'toString', '__proto__'])
    assert.equal(db.facts.cloneOnly(missing), undefined);
});
