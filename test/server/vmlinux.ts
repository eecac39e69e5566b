/**
 * A `vmlinux.h` for tests that compile BPF C with clang: dumped by bpftool from this machine's BTF,
 * or from a real Debian blob beside the project when the machine has none.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { xzDecompress } from '../../kernel-db/src/btf/container';

const root = join(__dirname, '..', '..');

/** Writes vmlinux.h into `dir` with `bpftool`; false when no BTF is reachable or bpftool fails. */
export async function writeVmlinuxH(dir: string, bpftool: string): Promise<boolean> {
  let btf = '/sys/kernel/btf/vmlinux';
  if (!existsSync(btf)) {
    const blob = join(root, '..', 'shared', 'kernel-data', 'btf', 'debian-6.12.117-amd64.btf.xz');
    if (!existsSync(blob)) return false;
    btf = join(dir, 'vmlinux.btf');
    writeFileSync(btf, await xzDecompress(new Uint8Array(readFileSync(blob)), blob));
  }
  const r = spawnSync(bpftool, ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) return false;
  writeFileSync(join(dir, 'vmlinux.h'), r.stdout);
  return true;
}
