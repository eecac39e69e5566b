/**
 * The language server opens the database off the main thread (KernelDb.openAsync: the store and
 * the facts decompressed on zlib's threads, one output chunk of the trailer's size). It must read
 * exactly what the synchronous open reads, and refuse what it refuses with the same message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { KernelDb, defaultDataDir } from '../../kernel-db/src/query/db';
import { ContainerReader, ContainerWriter, readTwin, twinPath } from '../../kernel-db/src/store/container';
import { KernelStore } from '../../kernel-db/src/store/store';

test('openAsync reads the same kernels, answers and facts as open', async () => {
  const sync = KernelDb.open({ noUser: true });
  const async = await KernelDb.openAsync({ noUser: true });
  assert.deepEqual(
    async.kernels.map((k) => k.name),
    sync.kernels.map((k) => k.name),
  );
  const all = sync.target('*');
  const allAsync = async.target('*');
  for (const [agg, field] of [
    ['task_struct', '__state'],
    ['task_struct', 'state'],
    ['sk_buff', 'len'],
  ])
    assert.deepEqual(async.field(agg, field, allAsync), sync.field(agg, field, all));
  assert.deepEqual(async.helper('bpf_ringbuf_output', allAsync), sync.helper('bpf_ringbuf_output', all));
  // The facts were loaded with the store, and are the same.
  assert.deepEqual(async.facts.helper('bpf_ringbuf_output'), sync.facts.helper('bpf_ringbuf_output'));
});

test('decompress gives the bytes gunzip gives, for a container larger and smaller than one default chunk', async () => {
  for (const size of [10, 100_000, 3_000_000]) {
    const w = new ContainerWriter();
    const data = new Uint32Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 2654435761) >>> 0;
    w.add('col', 'u32', data);
    const bytes = w.finish({ n: size }, 1);
    const fromSync = new ContainerReader(bytes, 'x');
    const fromAsync = new ContainerReader(await ContainerReader.decompress(bytes, 'x'), 'x', true);
    assert.deepEqual(fromAsync.meta, fromSync.meta);
    assert.deepEqual(fromAsync.get('col', 'u32'), fromSync.get('col', 'u32'));
  }
});

test('openAsync refuses a damaged store as open does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-open-async-'));
  try {
    writeFileSync(join(dir, 'facts.json.gz'), readFileSync(join(defaultDataDir(), 'facts.json.gz')));
    // Not gzip at all, then gzip of something that is not a container.
    for (const [bytes, message] of [
      [Buffer.from('not a database'), /not a kernel database \(gzip/],
      [gzipSync(Buffer.from('EBPFKDB0 and more bytes than the header')), /not a kernel database \(bad magic\)/],
    ] as const) {
      writeFileSync(join(dir, 'kernels.kdb'), bytes);
      assert.throws(() => KernelDb.open({ dataDir: dir, noUser: true }), message);
      await assert.rejects(KernelDb.openAsync({ dataDir: dir, noUser: true }), message);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the store's decompressed twin is read only when it is that store's, and a damaged one is never trusted", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-twin-'));
  try {
    const w = new ContainerWriter();
    w.add('str.offsets', 'u32', new Uint32Array([0, 0]));
    w.add('str.data', 'bytes', new Uint8Array(0));
    w.add('kset.words', 'u32', new Uint32Array(0));
    const file = join(dir, 'kernels.kdb');
    const gz = w.finish({ kernels: [], ksetWords: 1, tag: 'a' }, 1);
    writeFileSync(file, gz);
    assert.equal(readTwin(file), undefined, 'no twin');
    const raw = gunzipSync(gz);
    const trailer = gz.subarray(gz.length - 8);
    writeFileSync(twinPath(file), Buffer.concat([raw, trailer]));
    assert.deepEqual(Buffer.from(readTwin(file)!.bytes), raw, 'its own twin');
    assert.equal((await KernelStore.openAsync(file)).meta.tag, 'a');
    // The store rebuilt: the old twin (another trailer) is not read.
    const other = new ContainerWriter();
    other.add('str.offsets', 'u32', new Uint32Array([0, 0]));
    other.add('str.data', 'bytes', new Uint8Array(0));
    other.add('kset.words', 'u32', new Uint32Array(0));
    writeFileSync(file, other.finish({ kernels: [], ksetWords: 1, tag: 'b' }, 1));
    assert.equal(readTwin(file), undefined, 'a stale twin');
    assert.equal(KernelStore.open(file).meta.tag, 'b');
    // A twin of the right size and trailer whose bytes are garbage: the store file decides.
    writeFileSync(file, gz);
    writeFileSync(twinPath(file), Buffer.concat([Buffer.alloc(raw.length, 0x41), trailer]));
    assert.equal(KernelStore.open(file).meta.tag, 'a');
    assert.equal((await KernelStore.openAsync(file)).meta.tag, 'a');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('enum constants are found in small enums and in the anonymous enums alike, and absent ones are not', () => {
  const db = KernelDb.open({ noUser: true });
  const all = db.target('*');
  // bpf_func_id is indexed by name; the anonymous enums are binary-searched.
  const ringbuf = db.enumValue('bpf_func_id', 'BPF_FUNC_ringbuf_output', all);
  assert.ok(ringbuf.some((v) => v.present) && ringbuf.some((v) => !v.present));
  assert.ok(db.enumValue('bpf_func_id', 'BPF_FUNC_no_such_helper', all).every((v) => !v.present));
  const anon = db.enumOf('BPF_F_CURRENT_CPU');
  assert.ok(anon.length > 0);
  assert.ok(db.enumValue(anon[0], 'BPF_F_CURRENT_CPU', all).some((v) => v.present));
  assert.ok(db.enumValue(anon[0], 'BPF_F_NO_SUCH_FLAG', all).every((v) => !v.present));
});

test('a store read from its twin reads the fields, functions, enum constants and strings in pages, and answers as the whole store does', (t) => {
  // The built-in store and a twin of its own, as `npm run build` writes it.
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-paged-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'kernels.kdb');
  const gz = readFileSync(join(defaultDataDir(), 'kernels.kdb'));
  writeFileSync(file, gz);
  writeFileSync(twinPath(file), Buffer.concat([gunzipSync(gz), gz.subarray(gz.length - 8)]));
  const twin = readTwin(file, new Set(['field.name', 'field.type', 'field.off', 'field.kset', 'str.data']));
  assert.ok(twin, 'the twin is read');
  assert.equal(twin.unread.size, 5);
  assert.ok(twin.fd !== undefined, 'the twin stays open for the unread sections');
  // The unread sections are zeros until asked for.
  const whole = new KernelStore(readFileSync(file), file);
  const paged = new ContainerReader(twin.bytes, file, true, twin);
  const full = new ContainerReader(gunzipSync(readFileSync(file)), file, true);
  const rows = full.get('field.off', 'i32').length;
  const probe = rows >> 1;
  assert.equal(paged.get('field.off', 'i32')[probe], 0);
  assert.notDeepEqual(paged.get('field.off', 'i32').subarray(probe, probe + 64), full.get('field.off', 'i32').subarray(probe, probe + 64));
  paged.ensureRows('field.off', probe, probe + 64);
  assert.deepEqual(paged.get('field.off', 'i32').subarray(probe, probe + 64), full.get('field.off', 'i32').subarray(probe, probe + 64));
  const bytes = full.get('str.data', 'bytes').length;
  const at = bytes >> 1;
  assert.ok(
    paged
      .get('str.data', 'bytes')
      .subarray(at, at + 256)
      .every((b) => b === 0),
  );
  paged.ensureRows('str.data', at, at + 256);
  assert.deepEqual(paged.get('str.data', 'bytes').subarray(at, at + 256), full.get('str.data', 'bytes').subarray(at, at + 256));
  // Other sections were read whole.
  assert.deepEqual(paged.get('field.agg', 'u32'), full.get('field.agg', 'u32'));
  // The store as opened (its twin, the field, function, enum constant and string tables in pages)
  // against the whole file: every 499th string, found by its text too; every field row of each
  // kernel of every 97th struct; the rows of every 211th function and every 97th enum constant.
  const store = KernelStore.open(file);
  const strings = full.get('str.offsets', 'u32').length - 1;
  for (let id = 1; id < strings; id += 499) {
    const text = whole.str(id);
    assert.equal(store.str(id), text, `string ${id}`);
    assert.equal(store.findString(text), id, `string ${id} found by its text`);
  }
  const names = whole.aggregateNames().filter((_, i) => i % 97 === 0);
  assert.ok(names.length > 100);
  for (const agg of names) {
    const a = store.fields(agg);
    const b = whole.fields(agg);
    assert.deepEqual([...a.keys()], [...b.keys()], agg);
    for (const [name, list] of b) {
      assert.deepEqual(a.get(name), list, `${agg}.${name}`);
      for (const r of list) assert.deepEqual(store.fieldRecord(r), whole.fieldRecord(r), `${agg}.${name} row ${r}`);
    }
  }
  const funcs = whole.distinct('func', 'name').filter((_, i) => i % 211 === 0);
  assert.ok(funcs.length > 100);
  for (const name of funcs) {
    const rows = store.rowsBy('func', 'name', name);
    assert.deepEqual(rows, whole.rowsBy('func', 'name', name), name);
    for (const c of ['kset', 'kfunc', 'inlined'])
      for (const r of rows) assert.equal(store.view(`func.${c}`, 'u32')[r], whole.col(`func.${c}`, 'u32')[r], `${name} ${c}`);
  }
  const enumOf = whole.col('enumv.enum', 'u32');
  const constant = whole.col('enumv.name', 'u32');
  assert.ok(enumOf.length > 97 * 100);
  for (let row = 0; row < enumOf.length; row += 97) {
    const [e, n] = [whole.str(enumOf[row]), whole.str(constant[row])];
    const rows = store.enumRows(e, n);
    assert.deepEqual(rows, whole.enumRows(e, n), `${e} ${n}`);
    for (const r of rows) {
      assert.equal(store.view('enumv.value', 'f64')[r], whole.col('enumv.value', 'f64')[r], `${e} ${n} value`);
      assert.equal(store.view('enumv.big', 'u32')[r], whole.col('enumv.big', 'u32')[r], `${e} ${n} big`);
      assert.equal(store.view('enumv.kset', 'u32')[r], whole.col('enumv.kset', 'u32')[r], `${e} ${n} kernels`);
    }
  }
  // The enums that have a constant: a scan for the first few look-ups, an index after.
  const byName = new Map<number, number[]>();
  for (let r = 0; r < constant.length; r++) byName.set(constant[r], [...(byName.get(constant[r]) ?? []), r]);
  let asked = 0;
  for (let row = 0; row < constant.length; row += 97, asked++) {
    const n = whole.str(constant[row]);
    assert.deepEqual(store.rowsBy('enumv', 'name', n), byName.get(constant[row]), n);
  }
  assert.ok(asked > 100);
  assert.deepEqual(store.rowsBy('enumv', 'name', 'NO_SUCH_CONSTANT_ANYWHERE'), []);
  // A whole column asked for is read whole, by a store that read none of it before.
  const fresh = KernelStore.open(file);
  assert.deepEqual(fresh.col('func.kset', 'u32'), whole.col('func.kset', 'u32'));
  assert.deepEqual(fresh.col('enumv.value', 'f64'), whole.col('enumv.value', 'f64'));
});
