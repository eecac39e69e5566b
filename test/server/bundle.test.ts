/**
 * The bundled parser finds its WASM files next to the bundle, and fails clearly without them; the
 * build puts both files in dist/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from './helpers';

const WASM = [
  ['node_modules/web-tree-sitter/tree-sitter.wasm', 'tree-sitter.wasm'],
  ['grammars/tree-sitter-c.wasm', 'tree-sitter-c.wasm'],
] as const;

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parse-bundle-'));
  const entry = join(dir, 'probe.ts');
  writeFileSync(
    entry,
    `import { DocumentStore, loadCParser } from ${JSON.stringify(join(REPO_ROOT, 'server/src/parse/documents'))};
loadCParser().then((parser) => {
  const store = new DocumentStore(parser);
  const doc = store.open('file:///p.bpf.c', 'char LICENSE[] SEC("license") = "GPL";', 1);
  console.log(JSON.stringify({ abi: parser.abiVersion, tree: doc.tree!.rootNode.toString(), sites: doc.sites.map((s) => s.kind) }));
  store.dispose();
}, (e: Error) => { console.error(e.message); process.exit(3); });
`,
  );
  // The same options as scripts/build.mjs uses for the server.
  await build({
    entryPoints: [entry],
    outfile: join(dir, 'with', 'probe.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
  });
  copyFileSync(join(dir, 'with', 'probe.js'), join(dir, 'probe.js'));
  for (const [from, to] of WASM) copyFileSync(join(REPO_ROOT, from), join(dir, 'with', to));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the bundle parses with the WASM files next to it', () => {
  const r = spawnSync(process.execPath, [join(dir, 'with', 'probe.js')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    abi: 15,
    tree: '(translation_unit (declaration type: (primitive_type) declarator: (init_declarator declarator: (array_declarator declarator: (identifier)) value: (string_literal (string_content)))))',
    sites: ['section'],
  });
});

test('the bundle without its WASM files fails with a message naming the missing file', () => {
  const r = spawnSync(process.execPath, [join(dir, 'probe.js')], { encoding: 'utf8' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cannot find tree-sitter\.wasm; looked in: /);
  assert.ok(r.stderr.includes(join(dir, 'tree-sitter.wasm')), r.stderr);
});

test('the build copies both WASM files into dist/, next to the bundled server', (t) => {
  if (!existsSync(join(REPO_ROOT, 'dist', 'server.js'))) {
    t.skip('dist/server.js is not built (npm test builds it first)');
    return;
  }
  for (const [from, to] of WASM) {
    const built = join(REPO_ROOT, 'dist', to);
    assert.ok(existsSync(built), `dist/${to} is missing: run npm run build`);
    assert.ok(readFileSync(built).equals(readFileSync(join(REPO_ROOT, from))), `dist/${to} is stale: run npm run build`);
  }
});
