/**
 * Compiles BPF C for the matrix: a `vmlinux.h` dumped by bpftool from a real kernel's BTF blob,
 * and `clang -target bpf -O2 -g` against it and the system's libbpf headers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { xzDecompress } from '../../kernel-db/src/btf/container';
import { ARCHES, type MatrixArch } from './arch';
import { HostError, sha256 } from './host';

/** How a tool is invoked: a command and the arguments before the tool's own. */
export interface Invocation {
  readonly cmd: string;
  readonly args: string[];
}

/**
 * The BTF blob vmlinux.h is made from: the newest Debian kernel's of the architecture (amd64 by
 * default), beside the project, as the database names it.
 */
export function defaultBtfBlob(root: string, arch: MatrixArch = 'x86_64'): string | undefined {
  const shared = join(root, '..', 'shared', 'kernel-data', 'btf', `debian-7.3.4-${arch === 'x86_64' ? 'amd64' : arch}.btf.xz`);
  return existsSync(shared) ? shared : undefined;
}

/**
 * Writes `<dir>/vmlinux.h` from a BTF blob (raw or `.xz`), reusing it when the blob and tool are
 * unchanged; returns the directory to pass to clang with `-I`.
 */
export async function vmlinuxHeader(blob: string, bpftool: Invocation, dir: string): Promise<string> {
  const bytes = new Uint8Array(readFileSync(blob));
  const raw = blob.endsWith('.xz') ? await xzDecompress(bytes, blob) : bytes;
  const key = sha256(`${sha256(raw)} ${bpftool.cmd} ${bpftool.args.join(' ')}`);
  const out = join(dir, `vmlinux-${key.slice(0, 16)}`);
  const header = join(out, 'vmlinux.h');
  if (existsSync(header)) return out;
  mkdirSync(out, { recursive: true });
  const btf = join(out, 'vmlinux.btf');
  writeFileSync(btf, raw);
  const r = spawnSync(bpftool.cmd, [...bpftool.args, 'btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 29 });
  if (r.status !== 0) throw new HostError(`bpftool btf dump file ${blob} failed: ${String(r.stderr).trim()}`);
  writeFileSync(header, r.stdout);
  return out;
}

/**
 * clang's flags. Kernels from 6.19 build with `-fms-extensions` and embed tagged anonymous
 * structs (`struct ns_tree;` as a member); their vmlinux.h needs the same flag or clang drops
 * those members and every later offset in the struct is wrong.
 */
export function clangFlags(includeDir: string, arch: MatrixArch = 'x86_64'): string[] {
  return [
    '-target',
    'bpf',
    '-O2',
    '-g',
    `-D__TARGET_ARCH_${ARCHES[arch].targetArch}`,
    '-fms-extensions',
    '-Wno-microsoft-anon-tag',
    '-I',
    includeDir,
  ];
}

/**
 * Compiles one BPF C file to `out` (with `extra` flags after the usual ones); rejects with clang's
 * diagnostics when it does not compile.
 */
export function compileBpf(
  clang: string,
  source: string,
  includeDir: string,
  out: string,
  extra: readonly string[] = [],
  arch: MatrixArch = 'x86_64',
): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(clang, [...clangFlags(includeDir, arch), '-I', dirname(source), ...extra, '-c', source, '-o', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString()));
    child.stderr.on('data', (b: Buffer) => (text += b.toString()));
    child.on('error', (e) => reject(new HostError(`clang could not run: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new HostError(`clang could not compile ${basename(source)}:\n${text.trim().split('\n').slice(0, 30).join('\n')}`));
    });
  });
}

/** Runs `fn` over `items`, at most `jobs` at a time, keeping the order of results. */
export async function pool<T, R>(items: readonly T[], jobs: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  return out;
}
