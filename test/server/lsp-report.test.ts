/**
 * The portability report and the code lenses over real LSP (stdio, the bundled server): the
 * `ebpfPortability/report` request gives one row per program, the programs × target kernels grid
 * (a kprobe whose function is missing fails its attach, not the other program's load) and the same
 * Markdown as `ebpf-portability requirements`; a code lens above each SEC() summarises the row and
 * follows edits; a program that loads everywhere gets "loads on N/N" (the near miss); a C file that
 * is not BPF gets neither.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { position, TestClient } from './lsp-client';

const root = join(__dirname, '..', '..');
const server = [join(root, 'dist', 'server.js'), '--stdio'];
const EDITOR = { showRuleDocCommand: true, statusNotification: true };
const SETTINGS = { targetKernels: '5.4-7.x', architectures: ['x86_64'], compile: 'off' };

type Outcome = 'loads' | 'fails' | 'attach-fails' | 'unknown';
interface Report {
  target: string;
  targetKernels: number;
  markdown: string;
  programs: { function: string; sec: string; failsOn: string[]; targetKernels: number; floor?: string }[];
  kernels: { name: string; version: string; arch: string }[];
  grid: { function: string; line: number; outcomes: Outcome[]; rules: string[][]; configsOff: string[] }[];
}
interface Lens {
  range: { start: { line: number } };
  command: { title: string; command: string; arguments: unknown[] };
}

// do_sys_openat2 appeared in 5.6: on the 5.4 kernels the kprobe cannot attach, and nothing fails the load.
const TWO = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(on_open)
{
    return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

const count = (outcomes: Outcome[], o: Outcome) => outcomes.filter((x) => x === o).length;

test('report: rows, the grid (attach fails only its own program) and the CLI requirements Markdown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-report-'));
  const c = await TestClient.start(server, true, undefined, EDITOR);
  try {
    c.settings = SETTINGS;
    const file = join(dir, 'report.bpf.c');
    writeFileSync(file, TWO);
    const uri = pathToFileURL(file).href;
    c.open(uri, TWO);
    const diags = await c.diagnostics(uri, (d) => d.some((x) => x.code === 'attach-target-missing-in-range'));
    const attach = diags.find((x) => x.code === 'attach-target-missing-in-range')!;
    assert.equal(attach.range.start.line, position(TWO, 'kprobe/do_sys_openat2').line);
    // The diagnostic counts the kernels that miss the target; the report names them.
    const failing = attach.data!.failing;
    assert.ok(failing > 0);

    const r = await c.conn.sendRequest<Report>('ebpfPortability/report', { uri, path: 'report.bpf.c' });
    assert.equal(r.target, '5.4-7.x');
    assert.deepEqual(
      r.programs.map((p) => [p.function, p.sec]),
      [
        ['on_open', 'kprobe/do_sys_openat2'],
        ['on_exec', 'tracepoint/sched/sched_process_exec'],
      ],
    );
    assert.ok(r.kernels.every((k) => k.arch === 'x86_64'));
    assert.equal(r.kernels.length, r.targetKernels);
    const [open, exec] = r.grid;
    assert.equal(open.line, position(TWO, 'kprobe/do_sys_openat2').line);
    assert.equal(exec.line, position(TWO, 'tracepoint/sched').line);
    // The kprobe: attach fails exactly where the diagnostic says, and the tracepoint still loads there.
    const missing = r.programs[0].failsOn;
    assert.equal(missing.length, failing, 'the report names as many kernels as the diagnostic counts');
    r.kernels.forEach((k, i) => {
      const gone = missing.includes(k.name);
      assert.equal(open.outcomes[i], gone ? 'attach-fails' : 'loads', `${k.name}: on_open`);
      assert.deepEqual(open.rules[i], gone ? ['attach-target-missing-in-range'] : [], k.name);
      assert.equal(exec.outcomes[i], 'loads', `${k.name}: on_exec`);
      if (gone) assert.match(k.version, /^5\.[45]\./);
    });
    assert.deepEqual(r.programs[1].failsOn, []);

    // The Markdown is what `ebpf-portability requirements` prints for the same file and target.
    const cli = spawnSync(
      process.execPath,
      [
        join(root, 'dist', 'cli.js'),
        'requirements',
        '--no-compile',
        '--no-config',
        '--target',
        '5.4-7.x',
        '--arch',
        'x86_64',
        'report.bpf.c',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(r.markdown, cli.stdout);
    assert.match(r.markdown, /\| report\.bpf\.c \| `on_open` \| `kprobe\/do_sys_openat2` \| kprobe \|/);
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('code lenses: the summary above each SEC(), following edits; a program that loads everywhere: "loads on N/N"', async () => {
  const c = await TestClient.start(server, true, undefined, EDITOR);
  try {
    c.settings = SETTINGS;
    const uri = 'file:///t/lenses.bpf.c';
    c.open(uri, TWO);
    const lenses = await c.conn.sendRequest<Lens[]>('textDocument/codeLens', { textDocument: { uri } });
    const r = await c.conn.sendRequest<Report>('ebpfPortability/report', { uri });
    const n = r.targetKernels;
    const loads = n - r.programs[0].failsOn.length;
    assert.ok(loads < n && loads > 0);
    assert.equal(count(r.grid[0].outcomes, 'loads'), loads);
    assert.deepEqual(
      lenses.map((l) => [l.range.start.line, l.command.title]),
      [
        [position(TWO, 'kprobe/do_sys_openat2').line, `loads on ${loads}/${n} target kernels · needs ≥ 4.1`],
        [position(TWO, 'tracepoint/sched').line, `loads on ${n}/${n} target kernels · needs ≥ 4.7`],
      ],
    );
    assert.deepEqual(lenses[0].command.arguments, [uri, 'on_open']);
    assert.equal(lenses[0].command.command, 'ebpfPortability.showReport');

    // The near miss: the kprobe on a function every target kernel has loads everywhere.
    const fixed = TWO.replace('kprobe/do_sys_openat2', 'kprobe/do_exit');
    c.change(uri, 2, [{ text: fixed }]);
    await c.diagnostics(uri, () => true, 2);
    const after = await c.conn.sendRequest<Lens[]>('textDocument/codeLens', { textDocument: { uri } });
    assert.deepEqual(
      after.map((l) => l.command.title),
      [`loads on ${n}/${n} target kernels · needs ≥ 4.1`, `loads on ${n}/${n} target kernels · needs ≥ 4.7`],
    );
    const report = await c.conn.sendRequest<Report>('ebpfPortability/report', { uri });
    assert.ok(report.grid.every((g) => g.outcomes.every((o) => o === 'loads')));

    // An LSM program needs CONFIG_BPF_LSM, off on some target kernels with a known config: the lens names it.
    const lsm = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("lsm/file_open")
int BPF_PROG(check_open, struct file *file)
{
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;
    const luri = 'file:///t/lsm.bpf.c';
    c.open(luri, lsm);
    const [l] = await c.conn.sendRequest<Lens[]>('textDocument/codeLens', { textDocument: { uri: luri } });
    const lr = await c.conn.sendRequest<Report>('ebpfPortability/report', { uri: luri });
    const lloads = lr.targetKernels - lr.programs[0].failsOn.length;
    assert.ok(lloads < lr.targetKernels);
    assert.match(l.command.title, new RegExp(`^loads on ${lloads}/${lr.targetKernels} target kernels · needs ≥ 5\\.7 · .*CONFIG_BPF_LSM`));
    // Kernels without a known config are neither loads nor fails where config-required speaks.
    assert.ok(lr.grid[0].outcomes.includes('fails'));

    // Not BPF: no report, no lenses.
    const plain = 'file:///t/plain.c';
    c.open(plain, 'int main(void) { return 0; }\n');
    assert.equal(await c.conn.sendRequest('ebpfPortability/report', { uri: plain }), null);
    assert.deepEqual(await c.conn.sendRequest('textDocument/codeLens', { textDocument: { uri: plain } }), []);
  } finally {
    await c.stop();
  }
});
