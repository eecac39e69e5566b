/**
 * Host tools the kernel matrix needs (apt-get, dpkg-deb, qemu, clang, bpftool), found on PATH or
 * in the sbin directories a non-root PATH often lacks, and small process helpers that turn a
 * failed command into one message naming the command and its output.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The cache directory: downloads, extracted kernels, guest tools and results (never in the repo). */
export function cacheDir(): string {
  return process.env.EBPF_MATRIX_CACHE || join(homedir(), '.cache', 'ebpf-portability-matrix');
}

/** The absolute path of `cmd` on PATH or in /usr/sbin and /sbin; undefined when absent. */
export function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.map((d) => join(d, cmd)).find((p) => existsSync(p));
}

/** An error from a host command, with the command line and the tail of its output. */
export class HostError extends Error {}

/** Runs a command to completion; throws a {@link HostError} with its output when it fails. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
  if (r.error) throw new HostError(`${cmd} could not run: ${r.error.message}`);
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (r.status !== 0) {
    const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new HostError(`${[cmd, ...args].join(' ')} failed (status ${r.status ?? r.signal}):\n${tail}`);
  }
  return { stdout, stderr };
}

/** sha256 of a file, hex. */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** sha256 of bytes or text, hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Whether this process may install packages (root with apt-get). */
export function canInstall(): boolean {
  return process.getuid?.() === 0 && which('apt-get') !== undefined;
}

/**
 * Installs Debian packages with the machine's own apt configuration (`apt-get update` first),
 * for the host tools the matrix needs. Returns what could not be installed.
 */
export function aptInstall(packages: string[], log: (s: string) => void): string[] {
  if (packages.length === 0) return [];
  if (!canInstall()) return packages;
  log(`installing ${packages.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env, timeout: 600_000 });
  if (upd.status !== 0) log(`apt-get update failed: ${String(upd.stderr).trim().split('\n').slice(-3).join(' ')}`);
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
    encoding: 'utf8',
    env,
    timeout: 1_200_000,
  });
  if (r.status !== 0) log(`apt-get install failed: ${String(r.stderr).trim().split('\n').slice(-5).join(' ')}`);
  return packages.filter((p) => !installedCheck(p));
}

/** The host command each installable package provides, to see whether an install worked. */
const PROVIDES: Record<string, () => boolean> = {
  'qemu-system-x86': () => which('qemu-system-x86_64') !== undefined,
  clang: () => which('clang') !== undefined,
  bpftool: () => which('bpftool') !== undefined,
  'libbpf-dev': () => existsSync('/usr/include/bpf/bpf_helpers.h'),
};

function installedCheck(pkg: string): boolean {
  return PROVIDES[pkg]?.() ?? false;
}

/** Seconds with one decimal, for logs and tables. */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
