// Bundles the CLI (and, when present, the language server and the VS Code client) into dist/.
// esbuild does not type-check; `npm run typecheck` does.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const entries = [
  { in: 'cli/src/main.ts', out: 'cli' },
  // The server's bundle, and its launcher (dist/server.js) that runs it from V8's code cache.
  { in: 'server/src/main.ts', out: 'server-bundle' },
  { in: 'server/src/boot.ts', out: 'server' },
  { in: 'client/src/extension.ts', out: 'extension', external: ['vscode'] },
].filter((e) => existsSync(join(root, e.in)));

mkdirSync(join(root, 'dist'), { recursive: true });
for (const e of entries) {
  await build({
    entryPoints: [join(root, e.in)],
    outfile: join(root, 'dist', `${e.out}.js`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Minified, names kept (a failure names the function that threw). The source maps are
    // written beside the bundles for debugging here, without a sourceMappingURL comment: the
    // published package and the .vsix ship no maps, so a comment would point at nothing.
    minify: true,
    keepNames: true,
    sourcemap: 'external',
    external: e.external ?? [],
    logLevel: 'warning',
  });
}
// The parser loads its WASM files from next to the bundle (server/src/parse/cParser.ts), so both
// are copied into dist/ with every build.
const wasm = [
  ['node_modules/web-tree-sitter/tree-sitter.wasm', 'tree-sitter.wasm'],
  ['grammars/tree-sitter-c.wasm', 'tree-sitter-c.wasm'],
];
for (const [from, to] of wasm) copyFileSync(join(root, from), join(root, 'dist', to));

// The kernel database's decompressed twin (kernel-db/src/store/container.ts, `readTwin`): the
// store's bytes and the gzip file's 8-byte trailer, so start-up reads instead of decompressing.
// Written only when missing or made from another store; never committed (.gitignore).
const kdb = join(root, 'kernel-db', 'data', 'kernels.kdb');
let twinNote = '';
if (existsSync(kdb)) {
  const gz = readFileSync(kdb);
  const trailer = gz.subarray(gz.length - 8);
  const twin = `${kdb}.raw`;
  const current =
    existsSync(twin) && statSync(twin).size === trailer.readUInt32LE(4) + 8 && readFileSync(twin).subarray(-8).equals(trailer);
  if (!current) {
    writeFileSync(`${twin}.tmp`, Buffer.concat([gunzipSync(gz), trailer]));
    renameSync(`${twin}.tmp`, twin);
    twinNote = ', kernel-db/data/kernels.kdb.raw';
  }
}
console.log(`build: ${[...entries.map((e) => `dist/${e.out}.js`), ...wasm.map(([, to]) => `dist/${to}`)].join(', ')}${twinNote}`);
