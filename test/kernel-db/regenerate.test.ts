/**
 * Generated data is up to date: building the database from its inputs gives exactly the committed
 * bytes. The miniature fixture is always checked; the real database only on request, because
 * reading 64 kernels and the DepSurf tables takes a while.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildDatabase } from '../../kernel-db/src/build/build';
import { MINI_DATA, NO_SHARED_DATA, REPO_ROOT, sharedKernelData } from './helpers';

const MINI_STALE =
  'stale generated data: run npm run kernel-db:build -- test/fixtures/kernel-data-mini --out test/fixtures/kernel-data-mini/expected';
const REAL_STALE = 'stale generated data: run npm run kernel-db:build';

/**
 * Asserts that the files of a build equal those in `dir`, byte for byte. A mismatch names the
 * file and the first differing byte; for gzip files it also says whether only the compression
 * differs, which points at a different zlib rather than at changed data.
 */
function assertSameFiles(built: Record<string, Uint8Array>, dir: string, stale: string): void {
  // The store's decompressed twin (`*.raw`) is `npm run build`'s, never committed (.gitignore).
  const committed = readdirSync(dir)
    .filter((f) => !f.endsWith('.raw'))
    .sort();
  assert.deepEqual(Object.keys(built).sort(), committed, `${stale} (the build's file names differ from ${dir})`);
  for (const name of committed) {
    const want = new Uint8Array(readFileSync(join(dir, name)));
    const got = built[name];
    if (Buffer.compare(got, want) === 0) continue;
    let at = 0;
    while (at < got.length && at < want.length && got[at] === want[at]) at++;
    let note = '';
    if (got[0] === 0x1f && got[1] === 0x8b) {
      const same = Buffer.compare(gunzipSync(got), gunzipSync(want)) === 0;
      note = same
        ? '; the uncompressed contents are identical, so only the gzip encoding differs (another zlib?)'
        : '; the uncompressed contents differ too';
    }
    assert.fail(`${stale}\n${name}: built ${got.length} bytes, committed ${want.length} bytes; first difference at byte ${at}${note}`);
  }
}

test('the miniature fixture rebuilds to the committed expected files byte for byte', async () => {
  const result = await buildDatabase(MINI_DATA, () => {});
  assert.equal(result.kernelCount, 3);
  assertSameFiles(result.files, join(MINI_DATA, 'expected'), MINI_STALE);
});

test('the real database rebuilds to kernel-db/data byte for byte', { timeout: 15 * 60_000 }, async (t) => {
  const shared = sharedKernelData();
  if (!shared) return t.skip(NO_SHARED_DATA);
  if (process.env.EBPF_FULL_REBUILD !== '1') {
    return t.skip('rebuilding the real database reads every kernel and takes minutes; set EBPF_FULL_REBUILD=1 to run it');
  }
  const data = join(REPO_ROOT, 'kernel-db', 'data');
  assert.ok(existsSync(join(data, 'kernels.kdb')), `${data}/kernels.kdb does not exist: ${REAL_STALE}`);
  const result = await buildDatabase(shared, () => {});
  assertSameFiles(result.files, data, REAL_STALE);
});
