/**
 * Installing outside the clone: `npm pack`, then `npm install -g` of the tarball into a scratch
 * prefix and `npx` of it, run from a folder that is not the clone; the bundles carry no
 * source-map comment that points at a file the package lacks; `vsce package` never prompts and
 * ships the marketplace README and the icon. Skipped, with the reason, where npm is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'ebpf-install-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

const npmVersion = spawnSync('npm', ['--version'], { encoding: 'utf8' });
const noNpm = npmVersion.status === 0 ? undefined : `npm is not available (${npmVersion.error?.message ?? npmVersion.stderr})`;

/** npm with a private cache and no network chatter (the tarball has no dependencies). */
function npm(args: string[], cwd: string) {
  const r = spawnSync('npm', [...args, '--no-audit', '--no-fund', '--cache', join(scratch, 'npm-cache')], {
    encoding: 'utf8',
    cwd,
    timeout: 240000,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('npm pack, then npm install -g and npx of the tarball work outside the clone', { skip: noNpm, timeout: 600000 }, () => {
  assert.ok(existsSync(join(root, 'dist', 'cli.js')), 'dist/cli.js is missing: run `npm run build` (npm test does)');
  const pack = npm(['pack', '--json', '--pack-destination', scratch], root);
  assert.equal(pack.status, 0, pack.stderr);
  const info = JSON.parse(pack.stdout)[0] as { filename: string; files: { path: string }[] };
  const tarball = join(scratch, info.filename);
  const files = info.files.map((f) => f.path);
  for (const f of [
    'bin/ebpf-portability.js',
    'dist/cli.js',
    'dist/server.js',
    'dist/server-bundle.js',
    'dist/tree-sitter.wasm',
    'kernel-db/data/kernels.kdb',
    // The store's decompressed twin that `npm run build` writes: start-up reads it instead of gunzip.
    'kernel-db/data/kernels.kdb.raw',
    'docs/rules/helper-unavailable.md',
  ])
    assert.ok(files.includes(f), `${f} is in the package`);
  assert.deepEqual(
    files.filter((f) => /\.map$|^(server|cli|client|test|node_modules)\//.test(f)),
    [],
    'no sources, tests or source maps',
  );
  // No bundle points at a source map the package does not have.
  for (const f of files.filter((x) => x.endsWith('.js'))) {
    const text = readFileSync(join(root, f), 'utf8');
    const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text);
    assert.ok(!m || files.includes(join(f, '..', m[1])), `${f} names ${m?.[1]}, which is not shipped`);
  }

  const prefix = join(scratch, 'prefix');
  const install = npm(['install', '-g', '--prefix', prefix, '--offline', tarball], scratch);
  assert.equal(install.status, 0, install.stderr);
  const bin = join(prefix, 'bin', 'ebpf-portability');
  const work = mkdtempSync(join(scratch, 'work-'));
  copyFileSync(join(root, 'examples', 'process-tracer.bpf.c'), join(work, 'process-tracer.bpf.c'));
  const run = (...args: string[]) => {
    const r = spawnSync(bin, args, { encoding: 'utf8', cwd: work, env: { ...process.env, EBPF_PORTABILITY_HOME: join(scratch, 'home') } });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  assert.equal(run('--version').stdout, `ebpf-portability ${pkg.version}\n`);
  const check = run('check', '--no-compile', '.');
  assert.equal(check.status, 1, check.stderr);
  assert.match(check.stdout, /^process-tracer\.bpf\.c:\d+:\d+: error: .*\[unsafe-kernel-deref\]$/m);
  assert.match(check.stdout, /^1 file checked against \d+ kernels/m);
  assert.equal(run('explain', 'helper-unavailable').status, 0, 'the rule docs are shipped');
  assert.equal(run('requirements', '--no-compile', '.', '--format', 'csv').status, 0);

  const npx = spawnSync(
    'npm',
    ['exec', '--yes', '--offline', '--cache', join(scratch, 'npm-cache'), '--package', tarball, '--', 'ebpf-portability', '--version'],
    {
      encoding: 'utf8',
      cwd: work,
      timeout: 240000,
    },
  );
  assert.equal(npx.status, 0, npx.stderr);
  assert.equal(npx.stdout.trim(), `ebpf-portability ${pkg.version}`);
});

test('vsce package never prompts, and ships the marketplace README and the icon', { skip: noNpm, timeout: 600000 }, () => {
  const out = join(scratch, 'x.vsix');
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules', '@vscode', 'vsce', 'vsce'),
      'package',
      '--no-dependencies',
      '--no-rewrite-relative-links',
      '--readme-path',
      'README.marketplace.md',
      '--out',
      out,
    ],
    { encoding: 'utf8', cwd: root, timeout: 240000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /\[y\/N\]/);
  // A zip's local headers name each entry in plain text.
  const zip = readFileSync(out).toString('latin1');
  for (const name of [
    'extension/readme.md',
    'extension/images/icon.png',
    'extension/dist/server.js',
    'extension/dist/server-bundle.js',
    'extension/kernel-db/data/kernels.kdb',
    'extension/kernel-db/data/kernels.kdb.raw',
  ])
    assert.ok(zip.includes(name), `${name} is in the .vsix`);
  assert.ok(!zip.includes('.js.map'), 'no source maps');
  assert.ok(!zip.includes('extension/README.md'), "the developers' README stays out");
  assert.ok(readdirSync(scratch).includes('x.vsix'));
});

test('the shipped database holds no kernel of the machine that built it', () => {
  const sources = JSON.parse(readFileSync(join(root, 'kernel-db', 'data', 'sources.json'), 'utf8')) as {
    kernels: { name: string; distro: string; origin: string }[];
  };
  assert.ok(sources.kernels.length > 40);
  assert.deepEqual(
    sources.kernels.filter((k) => k.distro === 'local' || /^\/sys\/kernel\/btf\//.test(k.origin)).map((k) => k.name),
    [],
  );
});

test('the marketplace README lists every rule, with links that work outside the clone', () => {
  const text = readFileSync(join(root, 'README.marketplace.md'), 'utf8');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
  const docs = readdirSync(join(root, 'docs', 'rules')).filter((f) => f.endsWith('.md'));
  assert.ok(docs.length > 20);
  for (const f of docs) assert.ok(text.includes(`](${repo}/blob/main/docs/rules/${f})`), `${f} is linked absolutely`);
  assert.doesNotMatch(text, /\]\((?!https:\/\/)[^)]*\)/, 'no relative links (they do nothing in the Extensions view)');
});
