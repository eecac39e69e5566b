/**
 * `npm run bench`: prints figures for the kernel database. Times are medians of repeated runs in
 * this process; ratios compare against a baseline measured in the same run (bpftool), since
 * absolute times on shared machines are noisy. Nothing here asserts: it reports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { xzDecompress } from '../../kernel-db/src/btf/container';
import { KernelDb, defaultDataDir } from '../../kernel-db/src/query/db';
import { UserKernels } from '../../kernel-db/src/query/user';
import { benchLsp, benchObject } from './lsp';
import { isolated } from './isolated';
import { benchHuge } from './huge';
import { benchScaling } from './scaling';
import { printTable, record } from './table';

const root = join(__dirname, '..', '..');
const shared = join(root, '..', 'shared', 'kernel-data');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(n: number, fn: () => void): number {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    xs.push(performance.now() - t);
  }
  return median(xs);
}

async function timeAsync(n: number, fn: () => Promise<void>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return median(xs);
}

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(1)} ms`);
const row = (k: string, v: string) => console.log(`${k.padEnd(44)} ${v}`);

async function main() {
  const dir = defaultDataDir();
  console.log('# kernel database');
  const files = ['kernels.kdb', 'facts.json.gz', 'sources.json'];
  const total = files.reduce((a, f) => a + statSync(join(dir, f)).size, 0);
  row('size on disk (kernels.kdb + facts + manifest)', `${(total / 1e6).toFixed(2)} MB`);
  row('kernels.kdb decompressed', `${(gunzipSync(readFileSync(join(dir, 'kernels.kdb'))).length / 1e6).toFixed(2)} MB`);
  const loadMs = time(10, () => KernelDb.open({ noUser: true }));
  const db = KernelDb.open({ noUser: true });
  row('kernels', String(db.kernels.length));
  row('load (open, median of 10)', fmt(loadMs));

  // A cold process pays module loading too: measure a whole `db field` CLI run for reference.
  const cli = join(root, 'bin', 'ebpf-portability.js');
  if (existsSync(join(root, 'dist', 'cli.js'))) {
    const cliMs = time(3, () => execFileSync(process.execPath, [cli, 'db', 'field', 'task_struct.comm', '--json'], { stdio: 'pipe' }));
    row('CLI `db field` end to end (median of 3)', fmt(cliMs));
  }

  const all = db.target('*');
  const firstMs = (() => {
    const t = performance.now();
    db.fieldOn('sk_buff', 'len', all[all.length - 1]);
    return performance.now() - t;
  })();
  row('first field lookup (builds the index)', fmt(firstMs));
  const n = 100_000;
  const names = ['comm', 'pid', 'tgid', '__state', 'real_parent', 'cred', 'mm', 'flags'];
  const warm =
    time(5, () => {
      for (let i = 0; i < n; i++) db.fieldOn('task_struct', names[i & 7], all[i % all.length]);
    }) / n;
  row('field lookup, one kernel (warm)', fmt(warm));
  row('field availability, all kernels', fmt(time(50, () => db.field('task_struct', '__state', all))));
  row('helper availability, all kernels', fmt(time(50, () => db.helper('bpf_ringbuf_output', all))));
  row('SEC availability, all kernels', fmt(time(50, () => db.section('lsm/file_open', all))));

  console.log('\n# BTF import (db add)');
  const blob = join(shared, 'btf', 'debian-7.3.4-arm64.btf.xz');
  if (!existsSync(blob)) {
    console.log(`skipped: ${blob} is absent (the import benchmark uses a real 6.7 MB kernel BTF from ../shared)`);
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'ebpf-bench-'));
  try {
    const raw = join(tmp, 'vmlinux-7.3.4-arm64.btf');
    writeFileSync(raw, await xzDecompress(new Uint8Array(readFileSync(blob)), blob));
    row('input', `${raw.split('/').pop()} (${(statSync(raw).size / 1e6).toFixed(2)} MB raw BTF)`);
    const user = new UserKernels(join(tmp, 'user'));
    const importMs = await timeAsync(3, async () => {
      await user.add(raw, db.facts, () => false, { name: 'bench', force: true });
    });
    row('import (parse + extract + write, median of 3)', fmt(importMs));
    const bpftool = ['/usr/sbin/bpftool', '/usr/bin/bpftool', '/sbin/bpftool'].find((p) => existsSync(p));
    if (!bpftool) {
      console.log('bpftool not found: no baseline ratio (install Debian package bpftool)');
      record({
        figure: 'db add of a 6.7 MB BTF',
        ours: fmt(importMs),
        baseline: 'bpftool not found',
        ratio: '—',
        target: '<= 3x bpftool',
        met: undefined,
      });
      return;
    }
    const bpftoolMs = time(3, () => {
      const r = spawnSync(bpftool, ['btf', 'dump', 'file', raw, 'format', 'raw'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        maxBuffer: 1 << 30,
      });
      if (r.status !== 0) throw new Error(`bpftool failed: ${r.stderr}`);
    });
    row('bpftool btf dump file X format raw (median of 3)', fmt(bpftoolMs));
    row('ratio import / bpftool dump', `${(importMs / bpftoolMs).toFixed(2)}x`);
    record({
      figure: 'db add of a 6.7 MB BTF',
      ours: fmt(importMs),
      baseline: `bpftool raw dump ${fmt(bpftoolMs)}`,
      ratio: `${(importMs / bpftoolMs).toFixed(1)}x`,
      target: '<= 3x bpftool',
      met: importMs / bpftoolMs <= 3,
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main()
  .then(() => benchLsp())
  .then(() => isolated('targets'))
  .then(() => benchObject())
  .then(() => benchScaling())
  .then(() => benchHuge())
  .then(() => printTable())
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
