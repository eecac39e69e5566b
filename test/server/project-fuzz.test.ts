/**
 * A seeded fuzzer of what a project hands the analysis besides its C: `.ebpf-portability.json`,
 * `compile_commands.json`, `compile_flags.txt` and the editor's settings. Values of every JSON
 * type at every depth (objects whose `toString` is not a function, `__proto__` and `constructor`
 * keys, 100,000-character strings, NULs, nesting 20,000 deep), truncated files and odd flags.
 * Each case analyses an example through the engine, as the CLI and the language server do: it
 * must not throw, no rule may fail, and each problem is one bounded line of text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KernelDb } from '../../kernel-db/src/query/db';
import { Engine } from '../../server/src/driver/engine';
import { validateSettings } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { prng } from '../kernel-db/helpers';

const root = join(__dirname, '..', '..');
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');
const CASES = 1500;

const SETTING_KEYS = ['targetKernels', 'architectures', 'distros', 'rules', 'loader', 'compile', 'clangPath'];
const CONFIG_KEYS = [...SETTING_KEYS, 'includePaths', 'defines', 'flags', 'compileCommands', '$schema'];
const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '', 'k'.repeat(100_000), 'a\u0000b', '\ud800'];

function generator(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const strings = [
    '',
    ' ',
    'x'.repeat(100_000),
    'a\u0000b\nc',
    '\ud800',
    '6.x-4.14',
    '4.99',
    '5.8-7.x',
    '5.8+',
    '*',
    'user',
    'x86_64',
    'sparc',
    'debian',
    'libbpf>=1.3',
    'bcc',
    'onSave',
    'off',
    'error',
    'loud',
    'unsafe-kernel-deref',
    'verifier-feature-unavailable',
    '../../../etc',
    '/dev/zero',
    '$(touch pwned)',
    '-I',
    '-include',
    '-DX=1',
    '__proto__',
  ];
  const value = (depth: number): unknown => {
    const r = rand();
    if (r < 0.35 || depth > 3) return pick(strings);
    if (r < 0.45) return pick([0, -1, 1.5, 1e308, true, false, null]);
    if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0, n = Math.floor(rand() * 4); i < n; i++) o[rand() < 0.3 ? pick(ODD_KEYS) : pick(CONFIG_KEYS)] = value(depth + 1);
    // Neither is then a function: String(o) and `${o}` throw.
    if (rand() < 0.3) o[pick(['toString', 'valueOf'])] = pick<unknown>([1, 'x', null, {}]);
    return o;
  };
  /** JSON text of a value, sometimes spelled so that `__proto__` is an own key, truncated or deeply nested. */
  const json = (v: unknown): string => {
    const r = rand();
    if (r < 0.05) return `{"${pick(CONFIG_KEYS)}": ${'['.repeat(20_000)}1${']'.repeat(20_000)}}`;
    if (r < 0.1) return `{"${pick(['rules', 'defines', 'loader'])}": {"__proto__": ${JSON.stringify(value(2))}}}`;
    const text = JSON.stringify(v) ?? 'null';
    return r < 0.2 ? text.slice(0, Math.floor(rand() * text.length)) : text;
  };
  const flags = () =>
    Array.from({ length: Math.floor(rand() * 6) }, () =>
      pick([
        '-I',
        '-Iinc',
        '-D',
        '-DX=',
        '-D=1',
        '-DA(x)=x',
        '-U',
        '-include',
        '/dev/zero',
        '-isystem',
        '--',
        '-target',
        'bpf',
        '-xc++',
        `-D${pick(strings)}`,
      ]),
    );
  return { pick, value, json, flags };
}

test(`${CASES} seeded project files and settings: no throw, no rule fails, every problem one bounded line`, async () => {
  const parser = await loadCParser();
  const db = KernelDb.open();
  const rand = prng(20261207);
  const g = generator(rand);
  const base = mkdtempSync(join(tmpdir(), 'ebpf-project-fuzz-'));
  let problems = 0;
  try {
    for (let i = 0; i < CASES; i++) {
      const dir = join(base, String(i));
      mkdirSync(join(dir, 'src'), { recursive: true });
      const file = join(dir, 'src', 'p.bpf.c');
      writeFileSync(file, example);
      const config: Record<string, unknown> = {};
      for (let k = 0, n = 1 + Math.floor(rand() * 4); k < n; k++) config[g.pick(CONFIG_KEYS)] = g.value(0);
      const configText = g.json(config);
      if (rand() < 0.8) writeFileSync(join(dir, '.ebpf-portability.json'), configText);
      let projectText = '';
      if (rand() < 0.4) {
        const entries = Array.from({ length: Math.floor(rand() * 3) }, () => ({
          directory: rand() < 0.8 ? dir : g.value(1),
          file: rand() < 0.7 ? file : g.value(1),
          ...(rand() < 0.5 ? { arguments: rand() < 0.8 ? ['clang', ...g.flags(), '-c', file] : g.value(1) } : {}),
          ...(rand() < 0.5 ? { command: rand() < 0.8 ? `clang ${g.flags().join(' ')} -I"unterminated '\\ -c ${file}` : g.value(1) } : {}),
        }));
        projectText = g.json(rand() < 0.2 ? g.value(0) : entries);
        writeFileSync(join(dir, 'compile_commands.json'), projectText);
      } else if (rand() < 0.5) {
        projectText = g.flags().join('\n');
        writeFileSync(join(dir, 'compile_flags.txt'), projectText);
      }
      const raw = rand() < 0.3 ? g.value(0) : undefined;
      const checked = validateSettings(raw);
      const what = `case ${i}: ${configText.slice(0, 300)} | ${projectText.slice(0, 200)} | ${String(JSON.stringify(raw)).slice(0, 200)}`;
      const engine = new Engine(db, (t) => parser.parseText(t));
      const tree = parser.parseText(example);
      assert.ok(tree);
      try {
        const r = engine.analyzeDocument(pathToFileURL(file).href, example, tree, checked.settings, false);
        assert.deepEqual(r.failures, [], what);
        for (const p of [...checked.problems, ...r.problems]) {
          problems++;
          assert.equal(typeof p, 'string', what);
          assert.ok(p.length <= 2_000, `${what}: a problem of ${p.length} characters: ${p.slice(0, 300)}`);
          assert.doesNotMatch(p, /\n/, what);
        }
      } finally {
        tree.delete();
      }
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  // The generator reaches the checks: most cases have something to say.
  assert.ok(problems > CASES / 2, `${problems} problems in ${CASES} cases`);
});
