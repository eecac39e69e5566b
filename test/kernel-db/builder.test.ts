/**
 * The builder's ways of holding rows give the same store: rows of a one-kernel store are appended
 * and sorted by string ids, rows of a multi-kernel build are keyed by their cells, and `db add`
 * hands over one kernel's facts as columns of string ids. The keyed way is the reference, which
 * the committed database's rebuild checks as well.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadBtfFile } from '../../kernel-db/src/btf/container';
import { extractKernelColumns, extractKernelFacts } from '../../kernel-db/src/btf/extract';
import type { Btf } from '../../kernel-db/src/btf/reader';
import { DbBuilder, distinctInOrder } from '../../kernel-db/src/store/builder';
import type { KernelMeta } from '../../kernel-db/src/store/schema';
import { MINI_DATA, NO_SHARED_DATA, sharedKernelData } from './helpers';

const meta = (name: string): KernelMeta => ({
  name,
  release: name,
  version: '6.1.0',
  arch: 'x86_64',
  distro: 'user',
  flavour: 'user',
  fidelity: 'btf',
  source: 'test',
  hasConfig: true,
  hasHelperEnum: false,
  hasFuncs: true,
  sha256: '',
});

/** The store both ways, decompressed (a difference then points at bytes, not at gzip). */
function bothWays(fill: (b: DbBuilder, k: number) => void): { appended: Buffer; keyed: Buffer } {
  const make = (keyed: boolean) => {
    const b = new DbBuilder({ keyed });
    fill(b, b.addKernel(meta('k')));
    return gunzipSync(b.finish({ importedFrom: 'test' }, 1));
  };
  return { appended: make(false), keyed: make(true) };
}

function assertSame({ appended, keyed }: { appended: Buffer; keyed: Buffer }, what: string): void {
  if (Buffer.compare(appended, keyed) === 0) return;
  let at = 0;
  while (at < appended.length && appended[at] === keyed[at]) at++;
  assert.fail(`${what}: the one-kernel store differs from the keyed one at byte ${at} of ${keyed.length}`);
}

/** The store of one kernel's BTF as `db add` makes it (columns), decompressed, with an option set. */
function columnsWay(btf: Btf): Buffer {
  const b = new DbBuilder();
  const k = b.addKernel(meta('k'));
  b.addKernelColumns(k, extractKernelColumns(btf));
  b.addConfig(k, 'CONFIG_BPF', 'y');
  return gunzipSync(b.finish({ importedFrom: 'test' }, 1));
}

/** The same through facts keyed by their cells. */
function keyedWay(btf: Btf): Buffer {
  const b = new DbBuilder({ keyed: true });
  const k = b.addKernel(meta('k'));
  b.addKernelFacts(k, extractKernelFacts(btf));
  b.addConfig(k, 'CONFIG_BPF', 'y');
  return gunzipSync(b.finish({ importedFrom: 'test' }, 1));
}

test('one kernel: repeated rows, numbers ordered as text, big enum values and non-ASCII names as the keyed way', () => {
  const stores = bothWays((b, k) => {
    // Two definitions of one field at different offsets: 128 sorts before 64 as text.
    b.addAggregate(k, 'zeta', 'struct', 16, [
      { name: 'x', type: 'int', tags: '', offsetBits: 64, bitfieldBits: 0, size: 4, anon: '', ref: '' },
      { name: 'x', type: 'int', tags: '', offsetBits: 128, bitfieldBits: 0, size: 4, anon: '', ref: '' },
      { name: 'x', type: 'int', tags: '', offsetBits: 64, bitfieldBits: 0, size: 4, anon: '', ref: '' },
      { name: 'é', type: 'struct alpha *', tags: 'rcu', offsetBits: 0, bitfieldBits: 3, size: 8, anon: 'union', ref: 'alpha' },
    ]);
    b.addAggregate(k, 'alpha', 'union', 8, [
      { name: 'a', type: 'long', tags: '', offsetBits: 0, bitfieldBits: 0, size: 8, anon: '', ref: '' },
    ]);
    // The same constant in two anonymous enums, once as a bigint of the same value.
    b.addEnumValue(k, '', 'FLAG', 1);
    b.addEnumValue(k, '', 'FLAG', 1);
    b.addEnumValue(k, '', 'FLAG', 1n);
    b.addEnumValue(k, '', 'FLAG', 10);
    b.addEnumValue(k, '', 'FLAG', 9);
    b.addEnumValue(k, 'big', 'HUGE', 2n ** 63n);
    b.addEnumValue(k, 'big', 'SMALL', -1);
    b.addEnumValue(k, 'bpf_func_id', 'BPF_FUNC_map_lookup_elem', 1);
    b.addFunc(k, 'bpf_obj_new_impl', { kfunc: true });
    b.addFunc(k, 'bpf_obj_new_impl', { kfunc: true });
    b.addFunc(k, 'a_func');
    b.addProto(k, 'bpf_obj_new_impl', 'void *bpf_obj_new_impl(u64 local_type_id__k, void *meta__ign)');
    b.addVar(k, 'runqueues', 'struct rq');
    b.addTypedef(k, 'u64', 'long long unsigned int');
    b.addTypedef(k, 'btf_trace_sched_switch', 'void (*)(void *, bool)');
    b.addTracepoint(k, 'sched_switch', '');
    b.addConfig(k, 'CONFIG_BPF', 'y');
    b.addConfig(k, 'CONFIG_BPF', 'y');
    b.addConfig(k, 'CONFIG_A', 'm');
  });
  assertSame(stores, 'synthetic rows');
  // The near miss: a store that really differs is told apart.
  const other = bothWays((b, k) => b.addConfig(k, 'CONFIG_A', 'm'));
  assert.notEqual(Buffer.compare(other.appended, stores.keyed), 0);
});

test('one kernel: each BTF of the miniature kernel data imports the same both ways', async () => {
  const dir = join(MINI_DATA, 'btf');
  const blobs = readdirSync(dir).filter((f) => f.endsWith('.btf.xz'));
  assert.ok(blobs.length >= 3, `expected the miniature BTFs in ${dir}`);
  for (const f of blobs) {
    const { btf } = await loadBtfFile(join(dir, f));
    const facts = extractKernelFacts(btf);
    assert.ok(facts.aggregates.size > 5 && facts.enumValues.length > 5, `${f}: expected aggregates and enum constants`);
    assertSame(
      bothWays((b, k) => b.addKernelFacts(k, facts)),
      f,
    );
    assertSame({ appended: columnsWay(btf), keyed: keyedWay(btf) }, `${f} as columns`);
  }
});

test('one kernel: a whole distro BTF imports the same both ways', { skip: sharedKernelData() ? false : NO_SHARED_DATA }, async () => {
  const file = join(sharedKernelData()!, 'btf', 'debian-7.3.4-arm64.btf.xz');
  const { btf } = await loadBtfFile(file);
  const facts = extractKernelFacts(btf);
  assertSame(
    bothWays((b, k) => b.addKernelFacts(k, facts)),
    file,
  );
  assertSame({ appended: columnsWay(btf), keyed: keyedWay(btf) }, `${file} as columns`);
});

test('an import compressed in pieces at once is one gzip member holding the same bytes as the sequential way', async () => {
  const dir = join(MINI_DATA, 'btf');
  const f = readdirSync(dir).find((x) => x.endsWith('.btf.xz'))!;
  const facts = extractKernelFacts((await loadBtfFile(join(dir, f))).btf);
  const make = () => {
    const b = new DbBuilder();
    b.addKernelFacts(b.addKernel(meta('k')), facts);
    return b;
  };
  const sequential = make().finish({ importedFrom: 'test' }, 1);
  const pieces = await make().finishAsync({ importedFrom: 'test' }, 1);
  const raw = gunzipSync(sequential);
  assert.equal(Buffer.compare(gunzipSync(pieces), raw), 0, 'the same store either way');
  // One member: the trailer's size is the whole store's (readers size buffers and check twins by it).
  const view = new DataView(pieces.buffer, pieces.byteOffset, pieces.byteLength);
  assert.equal(view.getUint32(pieces.length - 4, true), raw.length);
  assert.deepEqual([pieces[0], pieces[1]], [0x1f, 0x8b]);
  // Reproducible: the cuts are fixed.
  assert.equal(Buffer.compare(Buffer.from(await make().finishAsync({ importedFrom: 'test' }, 1)), Buffer.from(pieces)), 0);
  // The near miss: a damaged piece is caught by the whole-store CRC.
  const bad = new Uint8Array(pieces);
  bad[pieces.length - 8] ^= 1;
  assert.throws(() => gunzipSync(bad), /check|crc/i);
});

test('rows are ordered and made distinct the same way whether or not their second cell fits the packed number', () => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (const [n, ranks] of [
    [2000, 7],
    [5000, 300],
    [300, 3],
  ] as const) {
    const first = Int32Array.from({ length: n }, () => rnd(ranks));
    const second = Int32Array.from({ length: n }, () => rnd(ranks));
    const third = Array.from({ length: n }, () => rnd(4) * 50);
    // Numbers compare as their decimal text, as in a row's key: 100 before 50.
    const compare = (a: number, b: number) =>
      second[a] - second[b] || (String(third[a]) < String(third[b]) ? -1 : String(third[a]) > String(third[b]) ? 1 : 0);
    const reference = Array.from({ length: n }, (_, i) => i)
      .sort((a, b) => first[a] - first[b] || compare(a, b) || a - b)
      .filter((r, i, all) => i === 0 || first[all[i - 1]] !== first[r] || compare(all[i - 1], r) !== 0);
    const packed = Array.from(distinctInOrder(n, first, second, compare));
    const unpacked = Array.from(distinctInOrder(n, first, second, compare, 0));
    assert.deepEqual(packed, reference, `${n} rows of ${ranks} ranks, cell 1 packed`);
    assert.deepEqual(unpacked, reference, `${n} rows of ${ranks} ranks, cell 1 compared`);
    assert.ok(reference.length < n, 'repeated rows were dropped');
  }
});
