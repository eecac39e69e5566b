/**
 * `npm run fuzz -- --count N --seed S [--no-corpus] [--seeds DIR]… [--save]`: a longer fuzzing run
 * than CI's (test/fuzz/fuzz.test.ts). `--seeds DIR` adds another project's BPF C (its `.c` and `.h`
 * files) to the texts mutated. Prints each broken input's cause; `--save` writes the inputs to
 * test/fixtures/fuzz/ as regression fixtures. Exits 1 when an input broke something.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, fuzz } from '../../test/fuzz/harness';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
  return v;
}

/** The directories after each `--seeds`; a missing one is a usage error, not a silent no-op. */
function seedDirs(): string[] {
  const dirs = process.argv.flatMap((a, i) => (a === '--seeds' ? [process.argv[i + 1] ?? ''] : []));
  for (const d of dirs)
    if (!d || d.startsWith('--') || !statSync(d, { throwIfNoEntry: false })?.isDirectory())
      throw new Error(`--seeds needs a directory, got "${d}"`);
  return dirs;
}

async function main() {
  const count = arg('--count', 20_000);
  const seed = arg('--seed', 1);
  const save = process.argv.includes('--save');
  const r = await fuzz({
    count,
    seed,
    withCorpus: !process.argv.includes('--no-corpus'),
    seedDirs: seedDirs(),
    onProgress: (n) => process.stderr.write(`${n} inputs\n`),
    onCrash: (c, i) => {
      console.log(`input ${i} (seed ${seed}): ${c.what}`);
      if (save) {
        mkdirSync(FIXTURES, { recursive: true });
        writeFileSync(join(FIXTURES, `seed${seed}-${i}.${c.python ? 'py' : 'bpf.c'}`), c.text);
      }
    },
  });
  console.log(
    `${r.inputs} inputs, ${r.crashes.length} broken, ${(r.ms / 1000).toFixed(1)} s (${(r.ms / r.inputs).toFixed(1)} ms per input)`,
  );
  process.exit(r.crashes.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
