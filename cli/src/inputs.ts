/**
 * What `check` and `requirements` share about their inputs: the target kernels (an architecture
 * or distro that no kernel has is named with the valid ones; `user` without imported kernels
 * says how to import one), and the BPF C files of the paths given (directories walked with their
 * `.gitignore` files applied).
 */
import { readdirSync, type Stats, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Kernel, KernelDb } from '../../kernel-db/src/query/db';
import { readBoundedBytes } from '../../kernel-db/src/files';
import { decodeSource } from '../../server/src/analysis/fixall';
import { isBpfDocument } from '../../server/src/analysis/bpfDocument';
import { unanalysable } from '../../server/src/parse/inputLimits';
import { UsageError } from './args';
import { gitignoresAbove, ignoredBy, type IgnoreFile, readGitignore } from './gitignore';

/** Files larger than this are not read. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

/**
 * The kernels of `spec` filtered by `arch` and `distro`, or a usage error that says what is wrong:
 * an architecture or distro family no kernel has (with the valid ones), `user` with nothing
 * imported (with `db add`), or a target that selects nothing.
 */
export function targetKernels(
  db: KernelDb,
  spec: string,
  arch: readonly string[] | undefined,
  distro: readonly string[] | undefined,
): Kernel[] {
  const known = (key: 'arch' | 'distro', values: readonly string[] | undefined, option: string) => {
    const valid = [...new Set(db.kernels.map((k) => k[key]))].sort();
    for (const v of values ?? [])
      if (!valid.includes(v))
        throw new UsageError(
          `${option}: no kernel has ${key === 'arch' ? 'architecture' : 'distro family'} "${v}" (valid: ${valid.join(', ')})`,
        );
  };
  known('arch', arch, '--arch');
  known('distro', distro, '--distro');
  const kernels = db.target(spec, { arch: arch ? [...arch] : undefined, distro: distro ? [...distro] : undefined });
  if (kernels.length) return kernels;
  if (/(^|[\s,])user($|[\s,])/.test(spec) && !db.kernels.some((k) => k.user))
    throw new UsageError(
      `target "${spec}": no kernel is imported yet; import one with \`ebpf-portability db add /sys/kernel/btf/vmlinux\` (or a BTFHub .btf.tar.xz)`,
    );
  const imported = db.kernels.filter((k) => k.user);
  if (/(^|[\s,])user($|[\s,])/.test(spec) && arch?.length && imported.every((k) => !arch.includes(k.arch)))
    throw new UsageError(
      `target "${spec}": the imported kernels' architectures (${[...new Set(imported.map((k) => k.arch))].join(', ')}) are not among ${arch.join(',')}; pass --arch '*' (or import with --arch)`,
    );
  const filters = [arch?.length ? `--arch ${arch.join(',')}` : '', distro?.length ? `--distro ${distro.join(',')}` : ''].filter(Boolean);
  throw new UsageError(`no kernels match target "${spec}"${filters.length ? ` with ${filters.join(' ')}` : ''}`);
}

/** A file to check, or a path that cannot be read. */
export type Input = { path: string } | { path: string; error: string };

/**
 * The files to check: named files as given, directories searched for BPF C files. Hidden entries
 * and `node_modules` are not entered, and neither is anything a `.gitignore` ignores (those of the
 * directory and below, and those above it up to the repository's root). What is not a regular
 * file (a FIFO, a socket, a device named `*.c`), is too large, or holds binary or generated text
 * (inputLimits.ts) is skipped and said through `skip`.
 */
export function collectInputs(paths: readonly string[], skip: (message: string) => void): Input[] {
  const out: Input[] = [];
  const walk = (dir: string, depth: number, ignores: readonly IgnoreFile[]) => {
    if (depth > 20) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    const own = readGitignore(dir);
    const active = own ? [...ignores, own] : ignores;
    for (const n of names) {
      if (n === 'node_modules' || n.startsWith('.')) continue;
      const p = join(dir, n);
      let st: Stats;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (ignoredBy(active, p, st.isDirectory())) continue;
      if (st.isDirectory()) walk(p, depth + 1, active);
      else if (/\.(c|py)$/.test(n)) {
        const shown = relative(process.cwd(), p) || p;
        const read = readBoundedBytes(p, MAX_FILE_BYTES);
        if ('error' in read) skip(`${shown}: skipped: ${read.error}`);
        else {
          const text = decodeSource(read.bytes).text;
          if (!isBpfDocument(p, text)) continue;
          // Found by the walk, a binary or generated file is a warning, not a file that failed.
          const why = unanalysable(text);
          if (why) skip(`${shown}: skipped: ${why}`);
          else out.push({ path: shown });
        }
      }
    }
  };
  for (const p of paths) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch (e) {
      out.push({ path: p, error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      continue;
    }
    if (st.isDirectory()) walk(p, 0, gitignoresAbove(p));
    else out.push({ path: p });
  }
  return out;
}

/** The usage error for paths that hold no BPF C file at all (a CI job pointed at the wrong path). */
export function noInputError(paths: readonly string[]): UsageError {
  return new UsageError(
    `no BPF C files found in ${paths.map((p) => `"${p}"`).join(', ')} (looked for *.bpf.c and C files with BPF headers, SEC() or BCC macros; .gitignore'd paths are skipped)`,
  );
}
