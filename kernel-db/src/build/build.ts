/**
 * The database build: gathers every input kernel, orders them, reads each one's facts into a
 * {@link DbBuilder} and produces the files of `kernel-db/data/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadBtfFile } from '../btf/container';
import { extractKernelFacts } from '../btf/extract';
import { DbBuilder } from '../store/builder';
import type { KernelMeta } from '../store/schema';
import { compareVersions } from '../version';
import { addDepsurf, depsurfKernels } from './depsurf';
import { archiveInputs, configFilter, debianInputs, listFiles, readConfig, sha256File, type BtfInput } from './inputs';

/** The curated fact tables copied into the database, by file name. */
export const FACT_FILES = [
  'helpers',
  'prog_types',
  'attach_types',
  'map_types',
  'link_types',
  'sections',
  'features',
  'core_macros',
  'bcc_conventions',
  'configs',
  'kfuncs',
] as const;

/** Result of a build: file name → bytes. */
export interface BuildResult {
  readonly files: Record<string, Uint8Array>;
  readonly kernelCount: number;
}

/** Builds the database from the inputs in `dir`. */
export async function buildDatabase(dir: string, log: (m: string) => void): Promise<BuildResult> {
  const facts = readFacts(dir);
  const keepConfig = configFilter(facts.configNames);

  type Pending = {
    meta: Omit<KernelMeta, 'sha256' | 'hasHelperEnum' | 'hasFuncs'> & { hasFuncs?: boolean };
    btf?: BtfInput;
    depsurfImage?: number;
  };
  const pending: Pending[] = [
    ...debianInputs(dir).map((btf) => ({ meta: btf.meta, btf })),
    ...archiveInputs(dir).map((btf) => ({ meta: btf.meta, btf })),
  ];
  const ds = depsurfKernels(dir);
  for (const d of ds) pending.push({ meta: d.meta, depsurfImage: d.image.index });
  if (pending.length === 0) throw new Error(`no kernels found in ${dir} (expected btf/MANIFEST*.json or depsurf/images.json)`);
  pending.sort(
    (a, b) =>
      compareVersions(a.meta.version, b.meta.version) ||
      cmp(a.meta.distro, b.meta.distro) ||
      cmp(a.meta.flavour, b.meta.flavour) ||
      cmp(a.meta.arch, b.meta.arch) ||
      cmp(a.meta.name, b.meta.name),
  );

  const b = new DbBuilder();
  const depsurfSha = existsSync(join(dir, 'depsurf', 'structs.jsonl.xz')) ? sha256File(join(dir, 'depsurf', 'structs.jsonl.xz')) : '';
  for (const p of pending) {
    b.addKernel({ ...p.meta, sha256: p.btf ? '' : depsurfSha, hasHelperEnum: false, hasFuncs: p.meta.hasFuncs ?? false });
  }

  const sources: Record<string, unknown>[] = [];
  for (let k = 0; k < pending.length; k++) {
    const p = pending[k];
    if (!p.btf) continue;
    const t0 = Date.now();
    const loaded = await loadBtfFile(p.btf.btfPath);
    if (p.btf.expectedSha256 && loaded.sha256 !== p.btf.expectedSha256) {
      throw new Error(`${p.btf.btfPath}: sha256 ${loaded.sha256} differs from the manifest's ${p.btf.expectedSha256}`);
    }
    const kf = extractKernelFacts(loaded.btf);
    b.addKernelFacts(k, kf);
    b.updateKernel(k, { sha256: loaded.sha256, hasFuncs: kf.funcs.size > 0 });
    let configSha: string | undefined;
    if (p.btf.configPath) {
      configSha = sha256File(p.btf.configPath);
      for (const [n, v] of await readConfig(p.btf.configPath)) if (keepConfig(n)) b.addConfig(k, n, v);
    }
    sources.push({
      ...describe(b.kernels[k]),
      origin: p.btf.origin,
      input: relative(dir, p.btf.btfPath),
      ...(configSha ? { config: relative(dir, p.btf.configPath!), configSha256: configSha } : {}),
    });
    log(
      `  ${p.meta.name}: ${loaded.btf.count} types, ${kf.aggregates.size} aggregates, ${kf.funcs.size} functions (${Date.now() - t0} ms)`,
    );
  }

  let depsurfFiles: { file: string; sha256: string }[] = [];
  if (ds.length) {
    const byImage = new Map(pending.flatMap((p, k) => (p.depsurfImage === undefined ? [] : [[p.depsurfImage, k] as const])));
    depsurfFiles = await addDepsurf(
      dir,
      b,
      (i) => {
        const k = byImage.get(i);
        if (k === undefined) throw new Error(`depsurf: unknown image index ${i}`);
        return k;
      },
      ds.map((d) => d.image),
      keepConfig,
    );
    for (const d of ds) {
      const k = byImage.get(d.image.index)!;
      sources.push({ ...describe(b.kernels[k]), origin: b.kernels[k].source, input: 'depsurf/' });
    }
    log(`  depsurf: ${ds.length} Ubuntu images`);
  }
  sources.sort((x, y) => cmp(String(x.name), String(y.name)));

  const db = b.finish({ builtFrom: 'kernel-db/src/build', kernelCount: b.kernels.length });
  const manifest = {
    description: 'Inputs of kernel-db/data/kernels.kdb, one entry per kernel; regenerate with `npm run kernel-db:build`.',
    kernels: sources,
    depsurf: depsurfFiles,
    facts: facts.files,
  };
  return {
    files: {
      'kernels.kdb': db,
      'sources.json': Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`, 'utf8'),
      'facts.json.gz': new Uint8Array(gzipSync(Buffer.from(JSON.stringify(facts.tables), 'utf8'), { level: 9 })),
    },
    kernelCount: b.kernels.length,
  };
}

function describe(k: KernelMeta) {
  return {
    name: k.name,
    release: k.release,
    version: k.version,
    distro: k.distro,
    flavour: k.flavour,
    arch: k.arch,
    fidelity: k.fidelity,
    sha256: k.sha256,
    hasConfig: k.hasConfig,
  };
}

/** Reads the curated fact tables that exist in `dir/facts`. */
function readFacts(dir: string): { tables: Record<string, unknown>; files: { file: string; sha256: string }[]; configNames: Set<string> } {
  const tables: Record<string, unknown> = {};
  const files: { file: string; sha256: string }[] = [];
  const configNames = new Set<string>();
  const fdir = join(dir, 'facts');
  const present = new Set(listFiles(fdir, '.json'));
  for (const name of FACT_FILES) {
    if (!present.has(`${name}.json`)) continue;
    const path = join(fdir, `${name}.json`);
    const text = readFileSync(path, 'utf8');
    tables[name] = JSON.parse(text);
    files.push({ file: `facts/${name}.json`, sha256: sha256File(path) });
    for (const m of text.matchAll(/"(CONFIG_[A-Z0-9_]+)"/g)) configNames.add(m[1]);
  }
  if (existsSync(join(fdir, 'SOURCES.md'))) {
    tables.SOURCES = readFileSync(join(fdir, 'SOURCES.md'), 'utf8');
    files.push({ file: 'facts/SOURCES.md', sha256: sha256File(join(fdir, 'SOURCES.md')) });
  }
  return { tables, files, configNames };
}

function relative(dir: string, p: string): string {
  return p.startsWith(dir) ? p.slice(dir.length).replace(/^\/+/, '') : p;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
