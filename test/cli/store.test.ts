/**
 * The imported-kernel store survives anything: `db add`, `db add --force` and `db remove` killed
 * (SIGKILL, through the test hook EBPF_PORTABILITY_STORE_CRASH_AT) at every write step leave a
 * store that `db list`, `db field` and `check` read as it was before or as it is after, never a
 * mix; the next writer cleans what the dead one left; two imports at once both land; a missing or
 * damaged data file drops only its kernel, with a message. Real BTF from the test fixtures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STORE_CRASH_ENV, STORE_SLOW_ENV, STORE_STEPS } from '../../kernel-db/src/query/user';

const root = join(__dirname, '..', '..');
const bin = join(root, 'bin', 'ebpf-portability.js');
const btf = join(root, 'test', 'fixtures', 'kernel-data-mini', 'btf');
/** task_struct has `state` on 5.10 and `__state` on 7.3: what tells the two imports apart in the data. */
const OLD_BLOB = join(btf, 'debian-5.10.0-46-amd64.btf.xz');
const NEW_BLOB = join(btf, 'debian-7.3.4-amd64.btf.xz');
/** `db add` arguments importing each blob, with its version (names carry none here). */
const OLD = [OLD_BLOB, '--version', '5.10.0'];
const NEW = [NEW_BLOB, '--version', '7.3.4'];
const scratch = mkdtempSync(join(tmpdir(), 'ebpf-store-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  assert.ok(existsSync(join(root, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 60000,
    env: { ...process.env, EBPF_PORTABILITY_HOME: join(scratch, 'unused'), ...env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** {@link cli} without blocking, so that independent runs overlap. */
function cliAsync(args: string[], env: NodeJS.ProcessEnv = {}, command = [bin]) {
  return new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((res) => {
    const p = spawn(process.execPath, [...command, ...args], {
      env: { ...process.env, EBPF_PORTABILITY_HOME: join(scratch, 'unused'), ...env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('close', (status, signal) => res({ status, signal, stdout, stderr }));
  });
}

/** A kprobe program: its attach-target check asks every kernel of the database, imported ones too. */
const program = join(scratch, 'probe.bpf.c');
writeFileSync(
  program,
  '#include <bpf/bpf_helpers.h>\nSEC("kprobe/do_unlinkat")\nint probe(void *ctx) { return 0; }\nchar LICENSE[] SEC("license") = "GPL";\n',
);

/**
 * What readers make of a store, in one process: `db list`, `db field task_struct.__state` and
 * `check` (default target) through the bundled CLI's entry point, each opening the store anew.
 */
const reader = join(scratch, 'reader.js');
writeFileSync(
  reader,
  `const { run } = require(${JSON.stringify(join(root, 'dist', 'cli.js'))});
const [dir, prog] = process.argv.slice(2);
const cap = async (argv) => { let out = '', err = ''; const status = await run(argv, { out: (s) => (out += s), err: (s) => (err += s) }); return { status, out, err }; };
(async () => {
  const list = await cap(['db', 'list', '--json', '--user-dir', dir]);
  const field = await cap(['db', 'field', 'task_struct.__state', '--json', '--target', '* user', '--user-dir', dir]);
  const check = await cap(['check', '--no-compile', '--format', 'json', '--user-dir', dir, prog]);
  process.stdout.write(JSON.stringify({ list, field, check }));
})();
`,
);

interface Seen {
  /** Imported kernel → its version in the list and whether its data has `__state`. */
  kernels: Record<string, { version: string; state: boolean | null }>;
  warnings: string;
}

async function read(dir: string): Promise<Seen> {
  const r = await cliAsync([dir, program], {}, [reader]);
  assert.equal(r.status, 0, r.stderr);
  const { list, field, check } = JSON.parse(r.stdout);
  assert.equal(list.status, 0, list.err);
  assert.equal(field.status, 0, field.err);
  assert.ok(check.status === 0 || check.status === 1, `check reads the store: ${check.status} ${check.err}`);
  assert.doesNotMatch(check.err + check.out, /ENOENT/);
  const imported = JSON.parse(list.out).kernels.filter((k: { imported: boolean }) => k.imported);
  const present = new Map(
    JSON.parse(field.out).kernels.map((k: { name: string; present: boolean | null }) => [k.name, k.present] as const),
  );
  const kernels: Seen['kernels'] = {};
  for (const k of imported) kernels[k.name] = { version: k.version, state: (present.get(k.name) as boolean | null) ?? null };
  return { kernels, warnings: list.err + check.err };
}

/** The kernel names the index lists. */
function indexed(dir: string): string[] {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { kernels: { meta: { name: string } }[] };
  return index.kernels.map((e) => e.meta.name).sort();
}

/** The files of a store apart from the index and the data files it names (what a dead writer left). */
function leftovers(dir: string): string[] {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { kernels: { file: string }[] };
  const named = new Set(['index.json', ...index.kernels.map((e) => e.file)]);
  return readdirSync(dir).filter((f) => !named.has(f));
}

const A_OLD = { version: '5.10.0', state: false };
const A_NEW = { version: '7.3.4', state: true };
const B = { version: '7.3.4', state: true };

const scenarios: {
  name: string;
  setup: string[][];
  run: string[];
  before: Seen['kernels'];
  after: Seen['kernels'];
}[] = [
  {
    name: 'db add',
    setup: [['db', 'add', ...NEW, '--name', 'node-b']],
    run: ['db', 'add', ...OLD, '--name', 'node-a'],
    before: { 'node-b': B },
    after: { 'node-a': A_OLD, 'node-b': B },
  },
  {
    name: 'db add --force',
    setup: [
      ['db', 'add', ...OLD, '--name', 'node-a'],
      ['db', 'add', ...NEW, '--name', 'node-b'],
    ],
    run: ['db', 'add', ...NEW, '--name', 'node-a', '--force'],
    before: { 'node-a': A_OLD, 'node-b': B },
    after: { 'node-a': A_NEW, 'node-b': B },
  },
  {
    name: 'db remove',
    setup: [
      ['db', 'add', ...OLD, '--name', 'node-a'],
      ['db', 'add', ...NEW, '--name', 'node-b'],
    ],
    run: ['db', 'remove', 'node-a'],
    before: { 'node-a': A_OLD, 'node-b': B },
    after: { 'node-b': B },
  },
];

for (const s of scenarios) {
  test(`${s.name} killed at every write step: readers see the store before or after, never a mix; the next writer cleans up`, async (t) => {
    // One store set up, copied for each step; the steps run side by side.
    const base = mkdtempSync(join(scratch, 'base-'));
    for (const a of s.setup) assert.equal(cli([...a, '--user-dir', base]).status, 0, a.join(' '));
    await Promise.all(
      STORE_STEPS.map((stepName) =>
        t.test(stepName, async () => {
          const dir = mkdtempSync(join(scratch, 'store-'));
          cpSync(base, dir, { recursive: true });
          const r = await cliAsync([...s.run, '--user-dir', dir], { [STORE_CRASH_ENV]: stepName });
          const committed = STORE_STEPS.indexOf(stepName) >= STORE_STEPS.indexOf('index-renamed');
          // `remove` writes no data: it passes the data steps and finishes.
          const passes = !(s.name === 'db remove' && stepName.startsWith('data-'));
          if (passes) assert.equal(r.signal, 'SIGKILL', `${s.name} at ${stepName}: killed (${r.status} ${r.stderr})`);
          else assert.equal(r.status, 0, r.stderr);
          const expected = committed || !passes ? s.after : s.before;
          const seen = await read(dir);
          assert.deepEqual(seen.kernels, expected, `${s.name} killed at ${stepName}`);
          assert.equal(seen.warnings, '', `${s.name} killed at ${stepName}: nothing damaged`);
          // The next writer takes over the dead one's lock and deletes its leftovers.
          const next = await cliAsync(['db', 'add', ...OLD, '--name', 'node-z', '--user-dir', dir]);
          assert.equal(next.status, 0, `${s.name} at ${stepName}: the next writer runs (${next.stderr})`);
          assert.deepEqual(leftovers(dir), [], `${s.name} at ${stepName}: no orphans, temporary files or lock`);
          assert.deepEqual(indexed(dir), [...Object.keys(expected), 'node-z'].sort());
        }),
      ),
    );
  });
}

test('two imports at once both land (the index write slowed down, the lock serialises them)', async () => {
  const dir = mkdtempSync(join(scratch, 'concurrent-'));
  const start = (name: string, blob: string[]) =>
    new Promise<{ status: number | null; stderr: string; ms: number }>((res) => {
      const t0 = Date.now();
      const p = spawn(process.execPath, [bin, 'db', 'add', ...blob, '--name', name, '--user-dir', dir], {
        env: { ...process.env, [STORE_SLOW_ENV]: '1500' },
      });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += String(d)));
      p.on('close', (status) => res({ status, stderr, ms: Date.now() - t0 }));
    });
  const t0 = Date.now();
  const [c, d] = await Promise.all([start('node-c', OLD), start('node-d', NEW)]);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(d.status, 0, d.stderr);
  assert.ok(Date.now() - t0 >= 3000, 'the two slowed index writes ran one after the other');
  assert.deepEqual((await read(dir)).kernels, { 'node-c': A_OLD, 'node-d': B });
  assert.deepEqual(leftovers(dir), []);
});

test('a lock whose process is gone is taken over', async () => {
  const dir = mkdtempSync(join(scratch, 'stale-'));
  assert.equal(cli(['db', 'add', ...OLD, '--name', 'node-a', '--user-dir', dir]).status, 0);
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(dir, 'index.lock'), `${gone.stdout}\n${require('node:os').hostname()}\n`);
  const r = cli(['db', 'remove', 'node-a', '--user-dir', dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((await read(dir)).kernels, {});
  assert.deepEqual(leftovers(dir), []);
});

test('a missing or damaged data file drops that kernel alone, with a message; check with the default target still runs', async () => {
  const dir = mkdtempSync(join(scratch, 'damaged-'));
  assert.equal(cli(['db', 'add', ...OLD, '--name', 'node-a', '--user-dir', dir]).status, 0);
  assert.equal(cli(['db', 'add', ...NEW, '--name', 'node-b', '--user-dir', dir]).status, 0);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { kernels: { meta: { name: string }; file: string }[] };
  const fileOf = (n: string) => join(dir, index.kernels.find((e) => e.meta.name === n)!.file);

  const damage: [string, () => void, RegExp][] = [
    ['truncated', () => truncateSync(fileOf('node-a'), 100), /100 bytes instead of/],
    [
      'same size, other bytes',
      () => {
        const b = readFileSync(fileOf('node-a'));
        b[b.length >> 1] ^= 0xff;
        writeFileSync(fileOf('node-a'), b);
      },
      /does not match its hash/,
    ],
    ['gone', () => rmSync(fileOf('node-a')), /the file is gone/],
  ];
  for (const [what, hurt, why] of damage) {
    const keep = readFileSync(fileOf('node-a'));
    hurt();
    const seen = await read(dir);
    assert.deepEqual(seen.kernels, { 'node-b': B }, what);
    assert.match(seen.warnings, /imported kernel node-a is left out: its data .* is missing or damaged/, what);
    assert.match(seen.warnings, why, what);
    // A default-target check (which asks every kernel about the kprobe's target) says it too.
    const check = cli(['check', '--no-compile', '--user-dir', dir, program]);
    assert.ok(check.status === 0 || check.status === 1, `${what}: ${check.stderr}`);
    assert.match(check.stderr, /warning: imported kernel node-a is left out/, what);
    writeFileSync(fileOf('node-a'), keep);
  }
  // `db remove` drops the entry of a damaged kernel too.
  rmSync(fileOf('node-a'));
  assert.equal(cli(['db', 'remove', 'node-a', '--user-dir', dir]).status, 0);
  const after = await read(dir);
  assert.deepEqual(after.kernels, { 'node-b': B });
  assert.equal(after.warnings, '');
});
