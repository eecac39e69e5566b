/**
 * What the disk said (stat answers, directory listings) is reused for a moment in the language
 * server and never in the CLI: `FsMeta` with and without a lifetime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsMeta } from '../../server/src/driver/fsMeta';

function scratch(t: { after: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-fsmeta-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('without a lifetime every question goes to the disk', (t) => {
  const dir = scratch(t);
  const f = join(dir, 'a.h');
  const fs = new FsMeta();
  assert.equal(fs.stat(f), undefined);
  writeFileSync(f, 'x');
  assert.equal(fs.stat(f)?.size, 1);
  writeFileSync(f, 'xyz');
  assert.equal(fs.stat(f)?.size, 3);
  assert.deepEqual([...fs.names(dir)], ['a.h']);
  writeFileSync(join(dir, 'b.h'), '');
  assert.deepEqual([...fs.names(dir)].sort(), ['a.h', 'b.h']);
  assert.equal(fs.size, 0, 'nothing kept');
});

test('with a lifetime answers are reused until cleared or expired', async (t) => {
  const dir = scratch(t);
  const f = join(dir, 'a.h');
  writeFileSync(f, 'x');
  const fs = new FsMeta(60_000);
  assert.equal(fs.stat(f)?.size, 1);
  assert.equal(fs.stat(join(dir, 'missing.h')), undefined);
  assert.deepEqual([...fs.names(dir)], ['a.h']);
  writeFileSync(f, 'xyz');
  writeFileSync(join(dir, 'missing.h'), '');
  // Within the lifetime: the answers given before.
  assert.equal(fs.stat(f)?.size, 1);
  assert.equal(fs.stat(join(dir, 'missing.h')), undefined);
  assert.deepEqual([...fs.names(dir)], ['a.h']);
  assert.equal(fs.size, 3);
  fs.clear();
  assert.equal(fs.size, 0);
  assert.equal(fs.stat(f)?.size, 3);
  assert.ok(fs.stat(join(dir, 'missing.h')));
  assert.deepEqual([...fs.names(dir)].sort(), ['a.h', 'missing.h']);

  // Expired: asked again.
  const short = new FsMeta(20);
  assert.equal(short.stat(f)?.size, 3);
  writeFileSync(f, 'xyzw');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(short.stat(f)?.size, 4);
});

test('a failure other than a missing file is given again, with its code, while kept', (t) => {
  const dir = scratch(t);
  const loop = join(dir, 'loop.h');
  symlinkSync('loop.h', loop);
  for (const fs of [new FsMeta(), new FsMeta(60_000)]) {
    for (let i = 0; i < 2; i++)
      assert.throws(
        () => fs.stat(loop),
        (e: NodeJS.ErrnoException) => e.code === 'ELOOP',
      );
    assert.throws(
      () => fs.names(join(dir, 'no-such-dir')),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
  }
});

test('answers kept stay bounded however many paths are asked', (t) => {
  const dir = scratch(t);
  const fs = new FsMeta(60_000);
  for (let i = 0; i < 10_000; i++) fs.stat(join(dir, `h${i}.h`));
  assert.ok(fs.size <= 8192, `${fs.size} kept`);
  assert.ok(fs.size > 0);
});
