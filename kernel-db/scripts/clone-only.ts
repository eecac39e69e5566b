/**
 * Writes `kernel-db/curated/clone-only-functions.json`: the kernel functions that exist only as
 * compiler clones (`finish_task_switch.isra.0`, `.constprop.N`, `.part.N`, `.cold`, `.llvm.N`) on
 * the kernels the matrix booted. BTF still has a FUNC record of the plain name, but kallsyms has
 * no symbol of it, so fentry finds no address and a kprobe no symbol. The names come from each
 * booted kernel's own `/proc/kallsyms` (`npm run matrix` records them), kept only for the
 * database kernel of the exact build (same BTF) and only where that kernel's BTF has the function.
 * Every architecture's last results are read (latest.json for amd64, latest-arm64.json beside it).
 *
 *   node --import tsx kernel-db/scripts/clone-only.ts [results.json…]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { MatrixResults } from '../../groundtruth/src/differential';
import { KernelDb } from '../src/query/db';

const root = join(__dirname, '..', '..');
const dir = join(process.env.EBPF_MATRIX_CACHE ?? join(homedir(), '.cache', 'ebpf-portability-matrix'), 'results');
const inputs =
  process.argv.length > 2 ? process.argv.slice(2) : ['latest.json', 'latest-arm64.json'].map((f) => join(dir, f)).filter(existsSync);
const runs = inputs.map((f) => JSON.parse(readFileSync(f, 'utf8')) as MatrixResults);
const input = inputs.join(', ');
const db = KernelDb.open({ noUser: true });

const kernels: string[] = [];
const functions = new Map<string, { clone: string; kernels: number[] }>();
for (const k of runs.flatMap((r) => r.kernels)) {
  if (!k.cloneOnly || !k.dbName || k.btfMatchesDb !== true) continue;
  const dbk = db.kernels.find((x) => x.name === k.dbName);
  if (!dbk) continue;
  const at = kernels.push(k.dbName) - 1;
  for (const [name, clone] of Object.entries(k.cloneOnly)) {
    if (db.func(name, [dbk])[0].present !== true) continue;
    let f = functions.get(name);
    if (!f) functions.set(name, (f = { clone, kernels: [] }));
    f.kernels.push(at);
  }
}
if (kernels.length === 0) throw new Error(`${input} has no kernel with kallsyms clone data matching a database build`);
const out = {
  source:
    "Each booted kernel's /proc/kallsyms (npm run matrix, guest init): functions whose only text symbols are compiler clones (name.isra.N, .constprop.N, .part.N, .cold, .llvm.N), kept where the database kernel of the same build (same BTF sha256) has a BTF FUNC of the name. Regenerate with: node --import tsx kernel-db/scripts/clone-only.ts",
  generated: runs
    .map((r) => r.generated)
    .sort()
    .pop(),
  kernels,
  // name → [the clone's suffix after the name, then the indexes of the kernels]
  functions: Object.fromEntries(
    [...functions].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, f]) => [name, [f.clone.slice(name.length), ...f.kernels]]),
  ),
};
const file = join(root, 'kernel-db', 'curated', 'clone-only-functions.json');
writeFileSync(file, `${JSON.stringify(out)}\n`);
console.log(`${file}: ${functions.size} functions on ${kernels.length} kernels`);
