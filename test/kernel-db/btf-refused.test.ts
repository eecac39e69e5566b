/**
 * Nonsense that is well-formed is refused too: a BTF whose header claims no types (it imported as
 * "version 0.0.0, unknown"), a header claiming gigabytes of types, and compressed layers that
 * unpack past the bound are refused with a clear error, before anything that size is held.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadBtfBytes, unwrapBtf } from '../../kernel-db/src/btf/container';
import { BtfError } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import { minimalBtf } from './helpers';

const root = join(__dirname, '..', '..');

async function refused(p: Promise<unknown>, defect: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BtfError, String(e));
    assert.match(e.message, /^refused\/vmlinux\.btf: /);
    assert.match(e.message, defect);
    return true;
  });
}

test('a BTF whose header claims zero types is refused, in the loader and by db add', async () => {
  const empty = writeBtf([]);
  await refused(loadBtfBytes(empty, 'refused/vmlinux.btf'), /claims no types .*not a kernel's BTF/);
  // The near miss: one type is a BTF the loader takes.
  assert.equal((await loadBtfBytes(minimalBtf().bytes, 'refused/vmlinux.btf')).btf.count > 0, true);

  assert.ok(existsSync(join(root, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
  const dir = mkdtempSync(join(tmpdir(), 'btf-refused-'));
  try {
    writeFileSync(join(dir, 'empty.btf'), empty);
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin', 'ebpf-portability.js'), 'db', 'add', join(dir, 'empty.btf'), '--user-dir', join(dir, 'store')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /empty\.btf: BTF header claims no types/);
    assert.equal(existsSync(join(dir, 'store', 'index.json')), false, 'nothing imported');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a header claiming gigabytes of types is refused before anything that size is held', async () => {
  const { bytes } = minimalBtf();
  const huge = new Uint8Array(bytes);
  new DataView(huge.buffer).setUint32(12, 0xfffffff0, true);
  const before = process.memoryUsage().rss;
  await refused(loadBtfBytes(huge, 'refused/vmlinux.btf'), /type section .* runs past the end of the blob/);
  assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'nothing gigabyte-sized was allocated');
});

test('compressed layers that unpack past the bound are refused as they are read', async () => {
  const big = new Uint8Array(3 * 1024 * 1024);
  big.set(minimalBtf().bytes);
  const limit = 1024 * 1024;
  await refused(unwrapBtf(gzipSync(big), 'refused/vmlinux.btf', limit), /gzip data unpacks to more than 1 MB/);
  const xz = spawnSync('xz', ['-c', '-0'], { input: big });
  if (xz.status === 0)
    await refused(unwrapBtf(new Uint8Array(xz.stdout), 'refused/vmlinux.btf', limit), /xz data unpacks to more than 1 MB/);
  // The near miss: within the bound, the same layers unpack.
  assert.equal((await unwrapBtf(gzipSync(big), 'refused/vmlinux.btf', 4 * limit)).raw.length, big.length);
  if (xz.status === 0) assert.equal((await unwrapBtf(new Uint8Array(xz.stdout), 'refused/vmlinux.btf', 4 * limit)).raw.length, big.length);
});
