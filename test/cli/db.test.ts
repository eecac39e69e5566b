/** The `db` commands of the bundled CLI, run as a user runs them: a separate process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const bin = join(root, 'bin', 'ebpf-portability.js');

function cli(...args: string[]): { status: number; stdout: string; stderr: string } {
  assert.ok(existsSync(join(root, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, EBPF_PORTABILITY_HOME: join(tmpdir(), 'ebpf-portability-test-none') },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function json(...args: string[]) {
  const r = cli(...args, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('db list --json lists the built-in kernels with the documented keys', () => {
  const doc = json('db', 'list');
  assert.ok(doc.kernels.length >= 40);
  for (const k of doc.kernels) {
    for (const key of ['name', 'release', 'version', 'arch', 'distro', 'flavour', 'fidelity', 'source'])
      assert.ok(key in k, `${k.name} has ${key}`);
    assert.match(k.version, /^\d+\.\d+\.\d+$/);
  }
  assert.ok(doc.kernels.some((k: { fidelity: string }) => k.fidelity === 'depsurf'));
});

test('db field --json: per-kernel presence, type, offset, and rename candidates', () => {
  const doc = json('db', 'field', 'task_struct.__state', '--target', '5.10-5.16', '--arch', 'x86_64');
  assert.equal(doc.struct, 'task_struct');
  assert.equal(doc.field, '__state');
  const d510 = doc.kernels.find((k: { name: string }) => k.name === 'debian-5.10.0-46-amd64');
  assert.deepEqual(d510, {
    name: 'debian-5.10.0-46-amd64',
    version: '5.10.262',
    arch: 'x86_64',
    present: false,
    structPresent: true,
    fidelity: 'btf',
  });
  const c516 = doc.kernels.find((k: { name: string }) => k.name === 'cilium-testdata-5.16-x86_64');
  assert.equal(c516.present, true);
  assert.equal(c516.type, 'unsigned int');
  assert.equal(typeof c516.offsetBits, 'number');
  assert.equal(doc.renameCandidates[0].name, 'state');
});

test('db field text output summarises the versions it is present on', () => {
  const r = cli('db', 'field', 'bio.bi_bdev', '--target', '4.14-6.1', '--distro', 'debian,ubuntu');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /bio\.bi_bdev: present on \d+ of \d+ kernels \(5\.13/);
  assert.match(r.stdout, /rename candidate: bi_disk/);
});

test('db helper, sec, struct, kfunc, config', () => {
  const h = json('db', 'helper', 'bpf_ringbuf_output', '--target', '5.4-5.8', '--distro', 'ubuntu', '--arch', 'x86_64');
  const byVersion = Object.fromEntries(h.kernels.map((k: { version: string; present: boolean }) => [k.version, k.present]));
  assert.equal(byVersion['5.4.0'], false);
  assert.equal(byVersion['5.8.0'], true);
  const sec = json('db', 'sec', 'lsm/file_open', '--target', '6.1', '--distro', 'debian');
  assert.equal(sec.progType, 'BPF_PROG_TYPE_LSM');
  assert.equal(sec.target, 'file_open');
  assert.ok(sec.kernels.every((k: { present: boolean; configs: Record<string, string> }) => k.present && k.configs.CONFIG_BPF_LSM === 'y'));
  const st = cli('db', 'struct', 'bio', '--target', '5.10-5.15', '--distro', 'debian,ubuntu');
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, /bi_disk/);
  const kf = json('db', 'kfunc', 'bpf_task_acquire', '--target', '6.1-6.12', '--distro', 'debian', '--arch', 'x86_64');
  assert.deepEqual(
    kf.kernels.map((k: { present: boolean }) => k.present),
    [false, false, true, true],
  );
  const cfg = json('db', 'config', 'CONFIG_BPF_LSM', '--target', '7.0', '--arch', 'x86_64', '--distro', 'debian');
  assert.ok(
    cfg.kernels.every((k: { present: null; value: null }) => k.present === null && k.value === null),
    'no config: unknown, not absent',
  );
});

test('bad usage and malformed targets exit 2 with a clear message', () => {
  const cases: [string[], RegExp][] = [
    [['db', 'field', 'task_struct'], /expected STRUCT\.FIELD/],
    [['db', 'field', 'task_struct.comm', '--target', '4.14-'], /malformed target "4\.14-"/],
    [['db', 'field', 'task_struct.comm', '--target', 'nosuchkernel'], /unknown kernel "nosuchkernel"/],
    [['db', 'field', 'task_struct.comm', '--bogus'], /unknown option --bogus/],
    [['db', 'frobnicate'], /unknown db command/],
    [['frobnicate'], /unknown command/],
    [['db', 'field', 'task_struct.comm', '--target', '9.x'], /no kernels match/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('db add imports a BTF file, queries use it by name, and bad files get a clear error', (t) => {
  const fixtures = join(root, 'test', 'fixtures', 'kernel-data-mini', 'btf');
  const blob = existsSync(fixtures) ? readdirSync(fixtures).find((f) => f.endsWith('.btf.xz')) : undefined;
  if (!blob) {
    t.skip('no BTF fixture in test/fixtures/kernel-data-mini/btf');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-cli-'));
  try {
    const add = cli('db', 'add', join(fixtures, blob), '--name', 'node-a', '--version', '6.12.1', '--arch', 'x86_64', '--user-dir', dir);
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /imported node-a \(version 6\.12\.1/);
    const list = JSON.parse(cli('db', 'list', '--target', 'user', '--json', '--user-dir', dir).stdout);
    assert.deepEqual(
      list.kernels.map((k: { name: string; imported: boolean }) => [k.name, k.imported]),
      [['node-a', true]],
    );
    const f = JSON.parse(
      cli('db', 'field', 'task_struct.comm', '--target', 'node-a,6.12', '--arch', 'x86_64,arm64', '--json', '--user-dir', dir).stdout,
    );
    assert.equal(f.kernels.find((k: { name: string }) => k.name === 'node-a').present, true);
    assert.ok(f.kernels.length > 1, 'built-in 6.12 kernels come along');
    const again = cli('db', 'add', join(fixtures, blob), '--name', 'node-a', '--user-dir', dir);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already imported; pass --force/);
    assert.equal(cli('db', 'remove', 'node-a', '--user-dir', dir).status, 0);
    assert.equal(
      JSON.parse(cli('db', 'list', '--target', '*', '--json', '--user-dir', dir).stdout).kernels.some(
        (k: { name: string }) => k.name === 'node-a',
      ),
      false,
    );

    const junk = join(dir, 'junk.btf');
    writeFileSync(junk, Buffer.from('this is not BTF at all, just text'));
    const bad = cli('db', 'add', junk, '--user-dir', dir);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /junk\.btf: not a BTF file/);
    const missing = cli('db', 'add', join(dir, 'nope.btf'), '--user-dir', dir);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /nope\.btf: cannot read: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
