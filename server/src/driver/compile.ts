/**
 * Compiling a BPF C file the way its project does, for the object pass: clang with the project's
 * own arguments (compile_commands.json or compile_flags.txt, then the configuration file's and the
 * caller's flags), or libbpf's usual defaults (`-g -O2 -target bpf -D__TARGET_ARCH_<arch>`, the
 * system's headers after the include paths). The object goes to a temporary directory and is read
 * back as bytes; clang's first errors come back as positions and messages, never as a crash.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Project } from './project';

/** `__TARGET_ARCH_<x>` for each database architecture, and the Debian multiarch include directory. */
const ARCH: Readonly<Record<string, { target: string; multiarch: string }>> = {
  x86_64: { target: 'x86', multiarch: 'x86_64-linux-gnu' },
  arm64: { target: 'arm64', multiarch: 'aarch64-linux-gnu' },
  arm: { target: 'arm', multiarch: 'arm-linux-gnueabihf' },
  ppc64le: { target: 'powerpc', multiarch: 'powerpc64le-linux-gnu' },
  riscv64: { target: 'riscv', multiarch: 'riscv64-linux-gnu' },
  s390x: { target: 's390', multiarch: 's390x-linux-gnu' },
};

/** A compile's outcome. */
export type CompileResult =
  | { readonly ok: true; readonly object: Uint8Array; readonly args: readonly string[] }
  | { readonly ok: false; readonly reason: string; readonly errors: readonly CompileError[] };

/** One of clang's errors in the compiled file. */
export interface CompileError {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** The oldest clang whose objects carry CO-RE relocations in `.BTF.ext` the way libbpf reads them. */
export const MIN_CLANG = 10;

/** clang's major version (`clang --version`); undefined when it cannot say. */
export function clangMajor(clang: string): number | undefined {
  const r = spawnSync(clang, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /clang version (\d+)\./.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/** clang from the setting, or from PATH; undefined when there is none. */
export function findClang(configured?: string): string | undefined {
  if (configured) return existsSync(configured) ? configured : undefined;
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    // A relative PATH entry ('.', 'bin') names the workspace's own programs: never taken.
    if (!isAbsolute(d)) continue;
    const p = join(d, 'clang');
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * Options of a project's build (a workspace file says them) that would make clang run or load a
 * program other than itself: another assembler or linker (`-B`, `-fno-integrated-as`,
 * `--gcc-toolchain`…), plugins (`-fplugin`, `-fpass-plugin`, `-Xclang -load`), options handed to
 * other tools (`-Wa,`, `-Xassembler`…), configuration and response files that could add any of
 * these. Dropped, so the object pass runs the configured clang and nothing from the workspace.
 * The value is the number of separate arguments each takes (joined forms take none).
 */
const RUNS_OTHER_PROGRAMS: ReadonlyArray<readonly [RegExp, number]> = [
  [/^-B$|^--prefix$/, 1],
  [/^-B.|^--prefix=/, 0],
  [/^-f(no-)?integrated-as$|^-no-integrated-as$|^-fno-integrated-cc1$/, 0],
  [/^-fplugin|^-fpass-plugin/, 0],
  [/^-X(clang|assembler|linker|preprocessor|openmp-target|arch_device|cuda-ptxas|cuda-fatbinary)$/, 1],
  [/^-W[apl],/, 0],
  [/^--config$|^-gcc-toolchain$|^--gcc-toolchain$/, 1],
  [/^--config[=-]|^--gcc-toolchain=|^--gcc-install-dir=|^--gcc-triple=|^-ccc-|^-fuse-ld=|^--ld-path=|^--driver-mode=|^-save-temps/, 0],
  [/^@/, 0],
];

/** A project's compiler arguments without those that would run or load another program ({@link RUNS_OTHER_PROGRAMS}). */
export function withoutOtherPrograms(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const hit = RUNS_OTHER_PROGRAMS.find(([re]) => re.test(args[i]));
    if (hit) i += hit[1];
    else out.push(args[i]);
  }
  return out;
}

/** Arguments that are the compile's own input and output, dropped from the project's. */
function withoutIo(args: readonly string[], file: string, dir: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o' || a === '-MF' || a === '-MT' || a === '-MQ') {
      i++;
      continue;
    }
    if (a === '-c' || a === '-MD' || a === '-MMD' || a.startsWith('-o')) continue;
    if (!a.startsWith('-') && resolve(dir, a) === file) continue;
    out.push(a);
  }
  return out;
}

/**
 * Compiles `file` for `arch` with `clang` in a child process (the caller's event loop keeps
 * running); at most `timeoutMs`. `signal` stops it: clang is killed and the result says so.
 */
export async function compileBpf(
  clang: string,
  file: string,
  project: Project,
  arch: string,
  timeoutMs = 60_000,
  signal?: AbortSignal,
): Promise<CompileResult> {
  const a = ARCH[arch];
  const own = project.command ? withoutOtherPrograms(withoutIo(project.command.args, file, project.command.dir)) : [];
  const has = (re: RegExp) => own.some((x) => re.test(x));
  const args = [
    ...(has(/^-target$|^--target=/) ? [] : ['-target', 'bpf']),
    ...(has(/^-g/) ? [] : ['-g']),
    ...(has(/^-O/) ? [] : ['-O2']),
    ...(has(/^-D__TARGET_ARCH_/) || !a ? [] : [`-D__TARGET_ARCH_${a.target}`]),
    ...own,
    // The system's headers (asm/types.h lives in the multiarch directory) after the project's.
    ...(a && existsSync(`/usr/include/${a.multiarch}`) ? ['-idirafter', `/usr/include/${a.multiarch}`] : []),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-portability-object-'));
  try {
    const out = join(dir, 'object.o');
    const r = await run(clang, [...args, '-c', file, '-o', out], project.command?.dir, timeoutMs, signal);
    if (r.error) return { ok: false, reason: `clang could not run: ${r.error}`, errors: [] };
    if (r.status !== 0 || !existsSync(out)) {
      const errors = clangErrors(r.stderr, file);
      const first = r.stderr.split('\n').find((l) => /\b(fatal )?error:/.test(l));
      return {
        ok: false,
        reason: first ? `does not compile: ${first.replace(/^.*?: (fatal )?error: /, '')}` : `clang exited with ${r.status}`,
        errors,
      };
    }
    return { ok: true, object: new Uint8Array(readFileSync(out)), args };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compilers running now: a server or CLI that exits takes them with it (no orphan keeps a core busy). */
const running = new Set<ReturnType<typeof spawn>>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/**
 * Runs a command, collecting stderr (at most 1 MB) and its exit status, killed after `timeoutMs`
 * or when `signal` aborts.
 */
function run(
  cmd: string,
  args: string[],
  cwd: string | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ status: number | null; stderr: string; error?: string }> {
  return new Promise((done) => {
    if (signal?.aborted) {
      done({ status: null, stderr: '', error: 'cancelled' });
      return;
    }
    let stderr = '';
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      done({ status: null, stderr: '', error: (e as Error).message });
      return;
    }
    running.add(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const cancel = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', cancel, { once: true });
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 1 << 20) stderr += b.toString();
    });
    child.on('error', (e) => {
      running.delete(child);
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
      done({ status: null, stderr, error: e.message });
    });
    child.on('close', (status, killedBy) => {
      running.delete(child);
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
      done(
        timedOut
          ? { status, stderr, error: `timed out after ${timeoutMs / 1000} s` }
          : signal?.aborted
            ? { status, stderr, error: 'cancelled' }
            : killedBy
              ? { status, stderr, error: `killed by ${killedBy}` }
              : { status, stderr },
      );
    });
  });
}

/** clang's first errors located in `file` (`file:line:col: error: message`). */
export function clangErrors(stderr: string, file: string): CompileError[] {
  const out: CompileError[] = [];
  for (const l of stderr.split('\n')) {
    const m = /^(.*?):(\d+):(\d+): (?:fatal )?error: (.*)$/.exec(l);
    if (!m || resolve(m[1]) !== resolve(file)) continue;
    out.push({ line: Number(m[2]), column: Number(m[3]), message: m[4] });
    if (out.length === 3) break;
  }
  return out;
}
