/**
 * `npm run kernel-db:build [INPUT_DIR] [--out DIR]`: builds the kernel database from real kernel
 * BTF, kernel configs, DepSurf tables and curated facts. INPUT_DIR defaults to
 * `../shared/kernel-data` beside the project; output goes to `kernel-db/data/`.
 *
 * The output is deterministic: the same inputs give the same bytes.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildDatabase } from './build';

const repoRoot = resolve(__dirname, '..', '..', '..');

async function main(argv: string[]): Promise<number> {
  let input = resolve(repoRoot, '..', 'shared', 'kernel-data');
  let out = join(repoRoot, 'kernel-db', 'data');
  let quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') out = resolve(argv[++i] ?? '');
    else if (a === '--quiet') quiet = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: kernel-db:build [INPUT_DIR] [--out DIR] [--quiet]\n');
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`kernel-db:build: unknown option ${a}\n`);
      return 2;
    } else input = resolve(a);
  }
  if (!existsSync(input)) {
    process.stderr.write(`kernel-db:build: input directory ${input} does not exist\n`);
    return 2;
  }
  const t0 = Date.now();
  const result = await buildDatabase(input, quiet ? () => {} : (m) => process.stderr.write(`${m}\n`));
  mkdirSync(out, { recursive: true });
  for (const [name, bytes] of Object.entries(result.files)) writeFileSync(join(out, name), bytes);
  process.stderr.write(
    `kernel-db:build: ${result.kernelCount} kernels → ${out} (${Object.entries(result.files)
      .map(([n, b]) => `${n} ${(b.length / 1e6).toFixed(2)} MB`)
      .join(', ')}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`kernel-db:build: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
