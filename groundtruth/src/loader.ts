/**
 * The matrix's per-program loader (`groundtruth/loader/loader.c`), built for the guest: a static
 * binary linked against Debian's libbpf and the libraries it needs (`libbpf-dev`, `libelf-dev`,
 * `zlib1g-dev`, `libzstd-dev`, with `libc6-dev` and `linux-libc-dev` of the same release as a
 * sysroot), with this machine's gcc (for arm64 guests Debian's cross compiler,
 * `aarch64-linux-gnu-gcc`, against the arm64 packages). Cached by architecture, the package
 * versions and the source's hash.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareDebVersions, type AptVersion, type PrivateApt } from './apt';
import { ARCHES, debPackage, type ArchSpec } from './arch';
import { HostError, run, sha256, which } from './host';

const SOURCE = join(__dirname, '..', 'loader', 'loader.c');
const PACKAGES = ['libbpf-dev', 'libelf-dev', 'zlib1g-dev', 'libzstd-dev', 'libc6-dev', 'linux-libc-dev'];

/** A built loader. */
export interface GuestLoader {
  readonly path: string;
  /** The libbpf it links, `M.m`. */
  readonly libbpf: string;
  /** The packages it was built from. */
  readonly origin: string;
  /** libbpf's headers of the same version (`<bpf/bpf_helpers.h>`), for compiling programs that need them. */
  readonly includeDir: string;
}

function family(suite: string): string {
  return suite.replace(/-(security|backports|updates|proposed-updates)$/, '');
}

/**
 * Builds (or finds in the cache) the loader against the newest libbpf-dev of the archive, the
 * other packages from the same release. Throws a {@link HostError} saying what is missing.
 */
export function buildLoader(apt: PrivateApt, cache: string, log: (s: string) => void, spec: ArchSpec = ARCHES.x86_64): GuestLoader {
  const gcc = which(spec.gcc);
  if (!gcc) throw new HostError(`${spec.gcc} is needed to build the ${spec.arch} per-program loader (Debian package ${spec.gccPackage})`);
  // Each package of the architecture (`libbpf-dev:arm64`), or the architecture-independent one
  // (linux-libc-dev is `Architecture: all` from Debian's 6.x kernels, with every architecture's asm/).
  const qualified = PACKAGES.map((p) => debPackage(spec, p));
  const versions = [...apt.versions(qualified), ...apt.versions(PACKAGES.filter((p) => p !== debPackage(spec, p)))];
  const named = (p: string) => versions.filter((v) => v.package === debPackage(spec, p) || v.package === p);
  const libbpf = named('libbpf-dev').sort((a, b) => compareDebVersions(b.version, a.version))[0];
  if (!libbpf) throw new HostError(`the Debian archive lists no ${debPackage(spec, 'libbpf-dev')}`);
  const fam = family(libbpf.suite);
  const chosen: AptVersion[] = PACKAGES.map((p) => {
    const v = named(p)
      .filter((x) => family(x.suite) === fam)
      .sort((a, b) => compareDebVersions(b.version, a.version))[0];
    if (!v) throw new HostError(`no ${debPackage(spec, p)} in Debian ${fam} to build the loader with`);
    return v;
  });
  const source = readFileSync(SOURCE, 'utf8');
  // The amd64 key is the one it always was, so an existing build stays cached.
  const key = sha256(
    `${source}\n${chosen.map((v) => `${v.package}=${v.version}`).join('\n')}${spec.debian === 'amd64' ? '' : `\n${gcc}`}`,
  ).slice(0, 16);
  const dir = join(cache, 'guest', `loader-${spec.debian === 'amd64' ? '' : `${spec.debian}-`}${key}`);
  const bin = join(dir, 'loader');
  const origin = `built from groundtruth/loader/loader.c${spec.debian === 'amd64' ? '' : ` with ${spec.gcc}`} against Debian ${fam} ${chosen.map((v) => `${v.package} ${v.version}`).join(', ')}`;
  const version = /^(?:\d+:)?(\d+\.\d+)/.exec(libbpf.version)?.[1] ?? libbpf.version;
  const includeDir = join(dir, 'include');
  if (existsSync(bin) && existsSync(join(includeDir, 'bpf'))) return { path: bin, libbpf: version, origin, includeDir };
  rmSync(dir, { recursive: true, force: true });
  const root = join(dir, 'sysroot');
  const debs = join(dir, 'debs');
  mkdirSync(root, { recursive: true });
  log(`building the per-program loader: ${origin}`);
  for (const v of chosen) run('dpkg-deb', ['-x', apt.download(v.package, v.version, debs), root]);
  const lib = join(root, 'usr', 'lib', spec.triplet);
  const tmp = `${bin}.tmp`;
  run(gcc, [
    `--sysroot=${root}`,
    '-isystem',
    join(root, 'usr', 'include'),
    // The sysroot's own multiarch headers (bits/, sys/) before a cross compiler's C library
    // headers (/usr/aarch64-linux-gnu/include, searched ahead of the sysroot's multiarch
    // directory): sid's glibc 2.43 stdio.h uses macros bookworm's 2.36 sys/cdefs.h lacks.
    '-isystem',
    join(root, 'usr', 'include', spec.triplet),
    `-L${lib}`,
    // A cross compiler looks for the C runtime's start files (crt1.o…) in its own directory; the sysroot's are these.
    ...(spec.debian === 'amd64' ? [] : [`-B${lib}`]),
    '-static',
    '-O2',
    '-Wall',
    '-o',
    tmp,
    SOURCE,
    '-lbpf',
    '-lelf',
    '-lz',
    '-lzstd',
  ]);
  renameSync(tmp, bin);
  mkdirSync(includeDir, { recursive: true });
  renameSync(join(root, 'usr', 'include', 'bpf'), join(includeDir, 'bpf'));
  rmSync(debs, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
  writeFileSync(join(dir, 'origin.txt'), `${origin}\n`);
  return { path: bin, libbpf: version, origin, includeDir };
}
