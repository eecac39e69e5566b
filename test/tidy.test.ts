/**
 * The architecture, enforced: imports flow one way (CLI / LSP → driver → rules → analysis →
 * parse, all → kernel-db), only the VS Code client imports `vscode`, only the protocol edge knows
 * LSP, and no two source files import each other, however indirectly. ARCHITECTURE.md describes
 * the same layers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '..');

/** The layers, from the bottom; each may import itself and the layers listed for it. */
const LAYERS: Record<string, readonly string[]> = {
  'kernel-db': ['kernel-db'],
  parse: ['parse', 'kernel-db'],
  analysis: ['analysis', 'parse', 'kernel-db'],
  rules: ['rules', 'analysis', 'parse', 'kernel-db'],
  driver: ['driver', 'rules', 'analysis', 'parse', 'kernel-db'],
  lsp: ['lsp', 'driver', 'analysis', 'parse', 'kernel-db'],
  groundtruth: ['groundtruth', 'driver', 'analysis', 'parse', 'kernel-db'],
  cli: ['cli', 'groundtruth', 'driver', 'analysis', 'parse', 'kernel-db'],
  client: ['client'],
};

/** The layer of a repository path, or undefined for code outside the product (scripts, tests). */
function layerOf(path: string): string | undefined {
  // The database's code and the data files it reads.
  if (path.startsWith('kernel-db/src/') || (path.startsWith('kernel-db/') && !/\.(ts|mts)$/.test(path))) return 'kernel-db';
  if (path.startsWith('groundtruth/src/')) return 'groundtruth';
  if (path.startsWith('cli/src/')) return 'cli';
  if (path.startsWith('client/src/')) return 'client';
  if (path === 'server/src/main.ts' || path === 'server/src/boot.ts' || path.startsWith('server/src/lsp/')) return 'lsp';
  const m = /^server\/src\/(parse|analysis|rules|driver)\//.exec(path);
  return m?.[1];
}

interface Import {
  readonly from: string;
  readonly spec: string;
  /** The imported repository file, for relative imports. */
  readonly file?: string;
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*'([^']+)'|(?:^|\n)\s*import\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)|\brequire\(\s*'([^']+)'\s*\)/g;

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const p = join(dir, name);
      if (name === 'node_modules' || name === 'fixtures' || name.startsWith('.')) continue;
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const d of ['kernel-db/src', 'server/src', 'cli/src', 'client/src', 'groundtruth/src']) if (existsSync(join(root, d))) walk(d);
  return out;
}

function importsOf(file: string): Import[] {
  // Comments may quote import lines; drop them first.
  const text = readFileSync(join(root, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"])\/\/[^\n]*/g, '$1');
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (!spec.startsWith('.')) {
      out.push({ from: file, spec });
      continue;
    }
    const base = resolve(root, dirname(file), spec);
    const hit = [`${base}.ts`, join(base, 'index.ts'), base].find((p) => existsSync(p) && statSync(p).isFile());
    out.push({ from: file, spec, ...(hit ? { file: relative(root, hit) } : {}) });
  }
  return out;
}

const FILES = sources();
const IMPORTS = new Map(FILES.map((f) => [f, importsOf(f)]));

test('tidy: every relative import resolves to a file', () => {
  const bad = [...IMPORTS.values()].flat().filter((i) => i.spec.startsWith('.') && !i.file);
  assert.deepEqual(
    bad.map((i) => `${i.from} → ${i.spec}`),
    [],
  );
});

/** Imports that go against the layers. */
function layerViolations(graph: ReadonlyMap<string, readonly Import[]>): string[] {
  const bad: string[] = [];
  for (const [file, imports] of graph) {
    const from = layerOf(file);
    if (!from) continue;
    for (const i of imports) {
      if (!i.file) continue;
      const to = layerOf(i.file);
      if (to && !LAYERS[from].includes(to)) bad.push(`${file} (${from}) imports ${i.file} (${to})`);
      if (!to) bad.push(`${file} (${from}) imports ${i.file}, which is outside the product's layers`);
    }
  }
  return bad;
}

test('tidy: imports flow one way between layers', () => {
  assert.deepEqual(layerViolations(IMPORTS), []);
});

test('tidy: only the client imports vscode, and only the protocol edge imports LSP libraries', () => {
  const bad: string[] = [];
  for (const [file, imports] of IMPORTS) {
    const layer = layerOf(file);
    for (const i of imports) {
      if (i.spec === 'vscode' && layer !== 'client') bad.push(`${file} imports vscode`);
      if (/^vscode-(languageserver|jsonrpc)/.test(i.spec) && layer !== 'lsp') bad.push(`${file} imports ${i.spec}`);
      if (/^vscode-languageclient/.test(i.spec) && layer !== 'client') bad.push(`${file} imports ${i.spec}`);
    }
  }
  assert.deepEqual(bad, []);
});

/** The import cycles of a file graph: its strongly connected components of more than one file. */
function importCycles(graph: ReadonlyMap<string, readonly Import[]>): string[][] {
  // Tarjan's strongly connected components over the file graph.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const i of graph.get(v) ?? []) {
      const w = i.file;
      if (!w || !graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const f of graph.keys()) if (!index.has(f)) visit(f);
  return cycles;
}

test('tidy: no import cycle between source files', () => {
  assert.deepEqual(importCycles(IMPORTS), []);
});

test('tidy: the checks see a wrong-way import and a cycle (near misses stay silent)', () => {
  const imp = (from: string, file: string): Import => ({ from, spec: file, file });
  const graph = new Map<string, Import[]>([
    [
      'server/src/rules/a.ts',
      [imp('server/src/rules/a.ts', 'server/src/driver/d.ts'), imp('server/src/rules/a.ts', 'server/src/analysis/b.ts')],
    ],
    ['server/src/driver/d.ts', [imp('server/src/driver/d.ts', 'server/src/rules/a.ts')]],
    ['server/src/analysis/b.ts', []],
    ['cli/src/c.ts', [imp('cli/src/c.ts', 'server/src/lsp/server.ts'), imp('cli/src/c.ts', 'server/src/driver/d.ts')]],
  ]);
  assert.deepEqual(layerViolations(graph), [
    'server/src/rules/a.ts (rules) imports server/src/driver/d.ts (driver)',
    'cli/src/c.ts (cli) imports server/src/lsp/server.ts (lsp)',
  ]);
  assert.deepEqual(importCycles(graph), [['server/src/driver/d.ts', 'server/src/rules/a.ts']]);
  assert.equal(layerOf('scripts/bench/main.ts'), undefined, 'scripts are outside the layers');
});

test('tidy: every cache is an owned cache or an object field, and ARCHITECTURE.md lists each', async () => {
  // Load every module that declares owned caches.
  await import('../server/src/rules');
  await import('../server/src/analysis/layout');
  await import('../server/src/analysis/calls');
  await import('../server/src/lsp/convert');
  await import('../server/src/lsp/wire');
  const { ownedCaches } = await import('../server/src/analysis/memo');
  const arch = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
  const section = arch.slice(arch.indexOf('## Caches'), arch.indexOf('## Invariants'));
  assert.ok(section.length > 100, 'ARCHITECTURE.md has a Caches section');
  const names = ownedCaches().map((c) => c.name);
  assert.ok(names.length >= 10, 'the owned caches are registered');
  assert.deepEqual(
    names.filter((n) => !section.includes(`\`${n}\``)),
    [],
    'owned caches missing from the table',
  );
  const loose: string[] = [];
  const fields: string[] = [];
  for (const file of FILES.filter(
    (f) => /^(server\/src|kernel-db\/src\/query)\//.test(f) && !/analysis\/memo\.ts$|query\/answers\.ts$/.test(f),
  )) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(/^(?:export )?(?:const|let) ([a-z]\w*)\s*(?::[^=]*)?=\s*new (?:Weak)?Map\b/gm))
      loose.push(`${file}: ${m[1]}`);
    for (const m of text.matchAll(/^\s+(?:private|protected|readonly)\s+(?:readonly\s+)?(\w*[cC]ache\w*)\??\s*[:=]/gm)) fields.push(m[1]);
  }
  assert.deepEqual(loose, [], 'module-level maps: use OwnedCache (server/src/analysis/memo.ts)');
  assert.deepEqual(
    [...new Set(fields)].filter((f) => !section.includes(f)),
    [],
    'cache fields missing from the table',
  );
});

test('tidy: the default settings are stated once (package.json contributes what DEFAULT_SETTINGS says)', async () => {
  const { DEFAULT_SETTINGS } = await import('../server/src/driver/settings');
  const props = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).contributes.configuration.properties;
  assert.equal(props['ebpfPortability.targetKernels'].default, DEFAULT_SETTINGS.targetKernels);
  assert.deepEqual(props['ebpfPortability.architectures'].default, [...DEFAULT_SETTINGS.architectures]);
  assert.deepEqual(props['ebpfPortability.distros'].default, [...DEFAULT_SETTINGS.distros]);
  assert.equal(props['ebpfPortability.loader'].default, DEFAULT_SETTINGS.loader.kind);
  assert.equal(props['ebpfPortability.compile'].default, DEFAULT_SETTINGS.compile);
  assert.equal(props['ebpfPortability.clangPath'].default, DEFAULT_SETTINGS.clangPath);
  // Code outside the settings module names no default target of its own.
  const offenders = FILES.filter((f) => f !== 'server/src/driver/settings.ts').filter((f) =>
    /'4\.14-7\.x'/.test(readFileSync(join(root, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '')),
  );
  assert.deepEqual(offenders, []);
});
