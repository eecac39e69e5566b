// Bundles the CLI (and, when present, the language server and the VS Code client) into dist/.
// esbuild does not type-check; `npm run typecheck` does.
import { build } from 'esbuild';
import { existsSync, mkdirSync } from 'node:fs';
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
    sourcemap: true,
    external: e.external ?? [],
    logLevel: 'warning',
  });
}
console.log(`build: ${entries.map((e) => `dist/${e.out}.js`).join(', ')}`);
