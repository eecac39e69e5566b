/**
 * `ebpf-portability verify`: usage errors and missing tools end in one clear message (status 2);
 * with QEMU and two cached kernel images it boots them, compiles a .bpf.c, and reports each
 * kernel's verdict beside the linter's, as a table and as JSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../cli/src/main';
import { cacheDir, which } from '../../groundtruth/src/host';

const root = join(__dirname, '..', '..');

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    const code = await run(['verify', ...argv], { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('verify: usage errors exit 2 with a hint', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: ebpf-portability verify <object\.o \| file\.bpf\.c>/);
  assert.match(help.out, /--kernels SPEC/);
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.match(none.err, /verify takes one object/);
  assert.match(none.err, /see ebpf-portability verify --help/);
  const missing = await cli(['/nonexistent/x.bpf.c']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /no such file: \/nonexistent\/x\.bpf\.c/);
  const dir = mkdtempSync(join(tmpdir(), 'verify-usage-'));
  try {
    writeFileSync(join(dir, 'notes.txt'), 'x');
    const wrong = await cli([join(dir, 'notes.txt')]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /neither an object \(\.o\) nor a C file/);
    const timeout = await cli([join(dir, 'notes.txt'), '--timeout', '1']);
    assert.equal(timeout.code, 2);
    const unknown = await cli([join(dir, 'notes.txt'), '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown option --bogus/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: without QEMU it says which package to install', async () => {
  const r = await cli([join(root, 'test', 'matrix', 'programs', 'state-unguarded.bpf.c')], { PATH: '/nonexistent' });
  assert.equal(r.code, 2);
  assert.match(r.err, /qemu-system-x86_64 is not installed: install QEMU \(Debian\/Ubuntu: apt-get install qemu-system-x86/);
});

test('verify: an unknown kernel name is a usage error naming db list, before any download', async (t) => {
  if (!which('qemu-system-x86_64') || !which('clang') || !existsSync('/usr/include/bpf/bpf_helpers.h')) {
    t.skip('needs qemu-system-x86_64, clang and libbpf-dev to get past the tool checks');
    return;
  }
  const r = await cli([join(root, 'test', 'matrix', 'programs', 'state-unguarded.bpf.c'), '--kernels', '5.10,debian-9.9-nope']);
  assert.equal(r.code, 2);
  assert.match(r.err, /"debian-9\.9-nope" is neither a directory, a major\.minor version nor a kernel of the database/);
  assert.doesNotMatch(r.err, /apt-get update|downloading/);
});

test("verify: boots two cached kernels and reports the kernel's verdict beside the linter's", async (t) => {
  const kernels = join(cacheDir(), 'kernels');
  const wanted = ['5.10.0-46-amd64', '7.3.4+deb13-amd64'];
  const guestCached = existsSync(join(cacheDir(), 'guest'));
  if (!which('qemu-system-x86_64') || !wanted.every((r) => existsSync(join(kernels, r, 'vmlinuz'))) || !guestCached || !which('clang')) {
    const msg = `needs QEMU, clang and the matrix cache (kernels ${wanted.join(', ')} and the guest tools in ${cacheDir()}); run \`npm run matrix\` first`;
    if (process.env.EBPF_MATRIX_REQUIRED === '1') assert.fail(msg);
    t.skip(msg);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'verify-run-'));
  try {
    // A directory of images, as a user would give it: no download needed.
    for (const r of wanted) symlinkSync(join(kernels, r, 'vmlinuz'), join(dir, `vmlinuz-${r}`));
    const src = join(dir, 'state.bpf.c');
    writeFileSync(src, readFileSync(join(root, 'test', 'matrix', 'programs', 'state-unguarded.bpf.c')));
    const text = await cli([src, '--kernels', dir]);
    assert.equal(text.code, 1, `${text.out}\n${text.err}`);
    assert.match(text.out, /^KERNEL\s+VERDICT\s+LINTER\s+WHY$/m);
    assert.match(
      text.out,
      /^debian-5\.10\.0-46-amd64\s+load-failed\s+fails\s+exit_state: failed to resolve CO-RE relocation .*task_struct\.__state/m,
    );
    assert.match(text.out, /^debian-7\.3\.4-amd64\s+loaded\s+loads$/m);
    assert.match(text.out, /state\.bpf\.c: loads on 1 of 2 kernels; fails on debian-5\.10\.0-46-amd64/);
    assert.match(text.err, /compiled state\.bpf\.c against vmlinux\.h from 7\.3\.4\+deb13-amd64's BTF/);
    const json = await cli([src, '--kernels', dir, '--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.out) as {
      version: number;
      kernels: { kernel: string; verdict: string; reason: string; linter?: { fails: boolean } }[];
    };
    assert.equal(doc.version, 1);
    assert.deepEqual(
      doc.kernels.map((k) => [k.kernel, k.verdict, k.linter?.fails]),
      [
        ['debian-5.10.0-46-amd64', 'load-failed', true],
        ['debian-7.3.4-amd64', 'loaded', false],
      ],
    );
    assert.match(doc.kernels[0].reason, /task_struct\.__state/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
