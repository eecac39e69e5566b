/**
 * `does-not-compile`: clang's errors in a file the object pass could not compile, at their lines;
 * a header clang cannot find is the include path's problem and makes no finding. Needs clang;
 * says it is skipped without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine } from '../../server/src/driver/engine';
import { objectPass } from '../../server/src/driver/objectPass';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { assertFindings, builtinDb } from './expect';

const clang = (process.env.PATH ?? '')
  .split(':')
  .map((d) => join(d, 'clang'))
  .find((p) => existsSync(p));

async function run(t: { after(fn: () => void): void }, code: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-does-not-compile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'prog.bpf.c');
  writeFileSync(file, code);
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (x) => parser.parseText(x), { config: false });
  const uri = pathToFileURL(file).href;
  const settings = { ...DEFAULT_SETTINGS, architectures: ['x86_64'] };
  const target = engine.documentTarget(uri, code, settings);
  const pass = await objectPass(builtinDb, clang!, file, code, target.project, target.settings, target.kernels);
  const tree = parser.parseText(code)!;
  try {
    return { pass, findings: engine.analyzeDocument(uri, code, tree, settings, false, undefined, undefined, pass).findings };
  } finally {
    tree.delete();
    engine.dispose();
  }
}

test('does-not-compile: clang errors at their lines; the source pass still runs', {
  skip: clang ? false : 'skipped: clang is not installed',
}, async (t) => {
  const code = `#define SEC(n) __attribute__((section(n), used))
SEC("kprobe/do_exit")
int prog(void *ctx)
{
    int x = ;
//          ^ does-not-compile: expected expression
    return x;
}
char LICENSE[] SEC("license") = "GPL";
`;
  const { pass, findings } = await run(t, code);
  assert.equal(pass.mode, 'source');
  assertFindings(
    code,
    findings.filter((f) => f.rule === 'does-not-compile'),
  );
});

test('does-not-compile: a header clang cannot find is no finding (the output says why the object pass did not run)', {
  skip: clang ? false : 'skipped: clang is not installed',
}, async (t) => {
  const code = '#include "vmlinux.h"\nchar LICENSE[] __attribute__((section("license"), used)) = "GPL";\n';
  const { pass, findings } = await run(t, code);
  assert.ok(pass.mode === 'source' && /'vmlinux\.h' file not found/.test(pass.reason));
  assert.deepEqual(
    findings.filter((f) => f.rule === 'does-not-compile'),
    [],
  );
});
