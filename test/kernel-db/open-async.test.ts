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
import { gzipSync } from 'node:zlib';
import { KernelDb, defaultDataDir } from '../../kernel-db/src/query/db';
import { ContainerReader, ContainerWriter } from '../../kernel-db/src/store/container';

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
