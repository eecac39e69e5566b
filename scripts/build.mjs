// Bundles the CLI (and, when present, the language server and the VS Code client) into dist/.
// esbuild does not type-check; `npm run typecheck` does.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const entries = [
  { in: 'cli/src/main.ts', out: 'cli' },
  { in: 'server/src/main.ts', out: 'server' },
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
console.log(`build: ${[...entries.map((e) => `dist/${e.out}.js`), ...wasm.map(([, to]) => `dist/${to}`)].join(', ')}`);
