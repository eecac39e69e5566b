/**
 * Check This Machine and Import Kernel BTF over real LSP (stdio, the bundled server): the doctor
 * request reads the machine as `ebpf-portability doctor` does; importDefaults names a BTFHub-style
 * file as `db add` would; a cancelled import leaves the store untouched (the near miss: nothing
 * written), a completed one lands in the store `db add` writes, the database reloads and the
 * document's target counts one kernel more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const server = [join(root, 'dist', 'server.js'), '--stdio'];
const EDITOR = { showRuleDocCommand: true, statusNotification: true };
const blob = join(root, 'test', 'fixtures', 'kernel-data-mini', 'btf', 'debian-7.3.4-amd64.btf.xz');
const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');

interface DoctorResult {
  report: { items: { what: string; status: string; value: string }[]; configs: unknown[] };
  btf: string | null;
  name: string;
  imported: boolean;
}

test('doctor: the CLI doctor checks, the running kernel BTF to import and its name', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ebpf-home-'));
  const c = await TestClient.start(server, true, { ...process.env, EBPF_PORTABILITY_HOME: home }, EDITOR);
  try {
    const r = await c.conn.sendRequest<DoctorResult>('ebpfPortability/doctor');
    const cli = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'doctor', '--json'], { encoding: 'utf8' });
    assert.deepEqual(r.report, JSON.parse(cli.stdout));
    assert.ok(r.report.items.some((i) => i.what === 'kernel release'));
    const btfOk = r.report.items.some((i) => i.what === 'BTF' && i.status === 'ok');
    assert.equal(r.btf, btfOk ? '/sys/kernel/btf/vmlinux' : null);
    assert.match(r.name, /^local-/);
    assert.equal(r.imported, false);
  } finally {
    await c.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

test('import: defaults from the file name; cancelled leaves the store untouched; done, the target grows by one kernel', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ebpf-home-'));
  const c = await TestClient.start(server, true, { ...process.env, EBPF_PORTABILITY_HOME: home }, EDITOR);
  try {
    c.settings = { targetKernels: '7.0+,user', architectures: ['x86_64'], compile: 'off' };
    assert.deepEqual(await c.conn.sendRequest('ebpfPortability/importDefaults', { path: blob }), {
      name: 'debian-7.3.4-amd64',
      version: '7.3.4',
      arch: 'x86_64',
    });
    const uri = 'file:///t/machine.bpf.c';
    c.open(uri, example);
    const before = await c.status((s) => s.uri === uri);

    // Cancelled at once: the server sees it at the import's first step and writes nothing.
    const cts = new CancellationTokenSource();
    const cancelled = c.conn.sendRequest('ebpfPortability/importKernel', { path: blob, name: 'fleet-7.3.4' }, cts.token);
    cts.cancel();
    await assert.rejects(cancelled, (e: { code?: number }) => e.code === -32800);
    assert.deepEqual(existsSync(home) ? readdirSync(home) : [], []);

    const meta = await c.conn.sendRequest<{ name: string; version: string; arch: string }>('ebpfPortability/importKernel', {
      path: blob,
      name: 'fleet-7.3.4',
    });
    assert.deepEqual([meta.name, meta.version, meta.arch], ['fleet-7.3.4', '7.3.4', 'x86_64']);
    // The store `db add` writes, read by the CLI.
    const list = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'db', 'list', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, EBPF_PORTABILITY_HOME: home },
    });
    assert.match(list.stdout, /"fleet-7\.3\.4"/);
    // The database reloads: the document is analysed again against one kernel more.
    const after = await c.status((s) => s.uri === uri && s.kernels === before.kernels + 1);
    assert.equal(after.target, '7.0+,user');
    const doctor = await c.conn.sendRequest<DoctorResult>('ebpfPortability/doctor');
    assert.equal(doctor.imported, false);

    // A second import of the same name is refused with the store's reason.
    await assert.rejects(c.conn.sendRequest('ebpfPortability/importKernel', { path: blob, name: 'fleet-7.3.4' }), /already imported/);
  } finally {
    await c.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
