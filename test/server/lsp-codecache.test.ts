/**
 * The launcher (dist/server.js) runs the server's bundle from V8's code cache: a first server
 * compiles and writes the cache when it exits, the next runs from it with the same diagnostics, a
 * damaged cache is refused by V8 and written again, an unwritable cache folder costs nothing but
 * the cache, and `EBPF_PORTABILITY_CODE_CACHE=off` neither reads nor writes one. The launcher
 * also caps V8's young generation while the server runs, without making its cache unusable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { YOUNG_GENERATION_CAP } from '../../server/src/lsp/memoryFlags';
import { bigFile } from '../../scripts/bench/lsp';
import { TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const example = readFileSync(join(root, 'examples', 'tcp-connect.bpf.c'), 'utf8');

/** One server's code-cache state, young generation and diagnostics of `text` (the example), under `home`. */
async function run(
  home: string,
  extra: NodeJS.ProcessEnv = {},
  text = example,
): Promise<{ codeCache: string; youngGeneration: number; diagnostics: string[] }> {
  const c = await TestClient.start(undefined, true, { ...process.env, EBPF_PORTABILITY_HOME: home, ...extra });
  try {
    c.settings = { compile: 'off' };
    const uri = 'file:///t/tcp-connect.bpf.c';
    c.open(uri, text);
    const d = await c.diagnostics(uri);
    const stats = await c.conn.sendRequest<{ codeCache: string; youngGeneration: number }>('ebpfPortability/stats');
    return {
      codeCache: stats.codeCache,
      youngGeneration: stats.youngGeneration,
      diagnostics: d.map((x) => `${x.range.start.line}:${x.code}:${x.message}`),
    };
  } finally {
    await c.stop();
  }
}

const caches = (home: string) => {
  try {
    return readdirSync(join(home, 'cache')).filter((f) => f.endsWith('.v8cache'));
  } catch {
    return [];
  }
};

test('the server runs from its code cache after the first start, with the same diagnostics', { timeout: 120000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ebpf-codecache-'));
  try {
    const first = await run(home);
    assert.equal(first.codeCache, 'written');
    assert.ok(first.diagnostics.length > 0);
    assert.equal(caches(home).length, 1, 'written when the server exits');
    const second = await run(home);
    assert.equal(second.codeCache, 'used');
    assert.deepEqual(second.diagnostics, first.diagnostics);
    // Damaged: V8 refuses it, the server runs compiled, and writes a good one.
    const file = join(home, 'cache', caches(home)[0]);
    const bytes = readFileSync(file);
    bytes.fill(0x5a, 0, Math.min(64, bytes.length));
    writeFileSync(file, bytes);
    const third = await run(home);
    assert.equal(third.codeCache, 'written');
    assert.deepEqual(third.diagnostics, first.diagnostics);
    assert.equal((await run(home)).codeCache, 'used');
    // Off: neither read nor written.
    const off = mkdtempSync(join(tmpdir(), 'ebpf-codecache-off-'));
    try {
      const r = await run(off, { EBPF_PORTABILITY_CODE_CACHE: 'off' });
      assert.equal(r.codeCache, 'off');
      assert.deepEqual(r.diagnostics, first.diagnostics);
      assert.deepEqual(caches(off), []);
    } finally {
      rmSync(off, { recursive: true, force: true });
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a cache folder that cannot be written costs only the cache', { timeout: 120000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ebpf-codecache-ro-'));
  try {
    // A file where the folder should be.
    writeFileSync(join(home, 'cache'), 'not a folder');
    const r = await run(home);
    assert.equal(r.codeCache, 'written');
    assert.ok(r.diagnostics.length > 0);
    assert.equal((await run(home)).codeCache, 'written', 'nothing could be kept');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a server whose young generation reached its cap writes a cache the next start uses', { timeout: 120000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ebpf-codecache-young-'));
  try {
    // 2,000 lines: V8 would grow the young generation to 32 MiB analysing them.
    const big = bigFile();
    const first = await run(home, {}, big);
    assert.equal(first.codeCache, 'written');
    assert.ok(
      first.youngGeneration > 0 && first.youngGeneration <= YOUNG_GENERATION_CAP,
      `young generation ${first.youngGeneration} bytes`,
    );
    // The growth factor changed while it ran; the cache is written under the flags it started with.
    const second = await run(home, {}, big);
    assert.equal(second.codeCache, 'used');
    assert.deepEqual(second.diagnostics, first.diagnostics);
    // Without the launcher's flags V8 grows it past the cap: the check above can tell.
    const free = await run(home, { EBPF_PORTABILITY_V8_FLAGS: 'off', EBPF_PORTABILITY_CODE_CACHE: 'off' }, big);
    assert.ok(free.youngGeneration > YOUNG_GENERATION_CAP, `young generation ${free.youngGeneration} bytes`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
