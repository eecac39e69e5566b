/**
 * Debian amd64 and arm64 generic kernel images for the matrix: which package to boot for each upstream
 * major.minor (the exact build the linter's database was made from when the archive still has
 * it, else the newest), downloaded through the private apt configuration and reduced to the
 * `vmlinuz` file, cached by release.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kernel } from '../../kernel-db/src/query/db';
import { compareDebVersions, type AptVersion, type PrivateApt } from './apt';
import { ARCHES, debPackage, isDebianGeneric, type ArchSpec } from './arch';
import { HostError, run, sha256File } from './host';

/** A kernel image to boot. */
export interface KernelImage {
  /** Upstream major.minor, e.g. `6.12`. */
  readonly majorMinor: string;
  /** `uname -r` of the build (from the package name). */
  readonly release: string;
  /** Debian package and version the image comes from; absent for images given as files. */
  readonly package?: string;
  readonly version?: string;
  readonly suite?: string;
  /** The linter database's kernel of this exact build, when it has one. */
  readonly dbName?: string;
  /** Why the build differs from the database's, when it does. */
  readonly note?: string;
  /** Path of the vmlinuz file (an x86 bzImage, an arm64 Image). */
  readonly vmlinuz: string;
  /** Time this run spent downloading and extracting it (0 when cached). */
  readonly downloadMs?: number;
}

/** A kernel chosen from the archive, before its download. */
export interface KernelChoice extends AptVersion {
  readonly majorMinor: string;
  readonly release: string;
  readonly dbName?: string;
  readonly note?: string;
}

/**
 * Generic images of an architecture: `linux-image-5.10.0-46-amd64`, `linux-binary-7.3.4+deb13-arm64`
 * (not `-cloud-`, `-rt-`, `-arm64-16k` or `-unsigned` builds), with `:arm64` when apt names it so.
 */
export function imageName(spec: ArchSpec = ARCHES.x86_64): RegExp {
  return new RegExp(
    `^linux-(image|binary)-((\\d+)\\.(\\d+)\\.\\d+(?:-0\\.deb\\d+\\.\\d+|-\\d+|\\+deb\\d+(?:\\.\\d+)?)?-${spec.debian})(?::${spec.debian})?$`,
  );
}

/** The database's Debian generic kernels of an architecture, with the package each was built from. */
export function databaseBuilds(
  kernels: readonly Kernel[],
  spec: ArchSpec = ARCHES.x86_64,
): { kernel: Kernel; package: string; version: string; suite: string }[] {
  const out: { kernel: Kernel; package: string; version: string; suite: string }[] = [];
  for (const k of kernels) {
    if (!isDebianGeneric(k, spec)) continue;
    const m = /^Debian (\S+) package (\S+) (\S+)$/.exec(k.source);
    if (m) out.push({ kernel: k, suite: m[1], package: m[2], version: m[3] });
  }
  return out;
}

/**
 * Chooses one image per wanted major.minor: the database's exact package version when the
 * archive has it, otherwise the newest build of that major.minor (with a note). From 6.19 the
 * bootable image is in `linux-binary-*` (`linux-image-*` is an empty wrapper), so a release with
 * both uses `linux-binary-*`.
 */
export function chooseKernels(
  available: readonly AptVersion[],
  wanted: readonly string[],
  db: readonly Kernel[],
  spec: ArchSpec = ARCHES.x86_64,
): { chosen: KernelChoice[]; missing: string[] } {
  const byRelease = new Map<string, AptVersion[]>();
  const name = imageName(spec);
  for (const v of available) {
    const m = name.exec(v.package);
    if (!m) continue;
    const list = byRelease.get(m[2]) ?? [];
    list.push(v);
    byRelease.set(m[2], list);
  }
  const candidates: KernelChoice[] = [];
  for (const [release, versions] of byRelease) {
    const binary = versions.filter((v) => v.package.startsWith('linux-binary-'));
    const pool = binary.length ? binary : versions;
    const mm = /^(\d+\.\d+)/.exec(release)![1];
    for (const v of pool) candidates.push({ ...v, release, majorMinor: mm });
  }
  const builds = databaseBuilds(db, spec);
  const chosen: KernelChoice[] = [];
  const missing: string[] = [];
  for (const mm of wanted) {
    const pool = candidates.filter((c) => c.majorMinor === mm);
    if (pool.length === 0) {
      missing.push(mm);
      continue;
    }
    const newest = [...pool].sort((a, b) => compareDebVersions(b.version, a.version) || a.package.localeCompare(b.package))[0];
    const dbBuild = builds.find((b) => b.kernel.version.startsWith(`${mm}.`));
    const exact = dbBuild && pool.find((c) => c.package.split(':')[0] === dbBuild.package && c.version === dbBuild.version);
    if (exact) {
      chosen.push({ ...exact, dbName: dbBuild.kernel.name });
    } else {
      const note = dbBuild
        ? `the database has ${dbBuild.kernel.name} (${dbBuild.package} ${dbBuild.version}), which the archive no longer offers; booted ${newest.package} ${newest.version} instead`
        : `the database has no Debian ${spec.debian} generic ${mm} kernel`;
      chosen.push({ ...newest, note });
    }
  }
  return { chosen, missing };
}

/** Sorts major.minor strings numerically. */
export function sortMajorMinor(xs: Iterable<string>): string[] {
  const key = (s: string) => s.split('.').map(Number);
  return [...new Set(xs)].sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1]);
}

/** Every generic image of an architecture the archive offers, with versions and suites. */
export function archiveImages(apt: PrivateApt, spec: ArchSpec = ARCHES.x86_64): AptVersion[] {
  const name = imageName(spec);
  const names = [...apt.packageNames('linux-image-'), ...apt.packageNames('linux-binary-')].filter((n) => name.test(n));
  return apt.versions(names.map((n) => debPackage(spec, n)));
}

/**
 * Downloads a chosen kernel (unless cached) and keeps only its `vmlinuz`; the .deb is deleted
 * after extraction because only the image is ever booted.
 */
export function fetchKernel(apt: PrivateApt, choice: KernelChoice, cache: string, log: (s: string) => void): KernelImage {
  const dir = join(cache, 'kernels', choice.release);
  const meta = join(dir, 'image.json');
  const vmlinuz = join(dir, 'vmlinuz');
  if (existsSync(meta) && existsSync(vmlinuz)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { package: string; version: string; sha256: string };
    if (m.package === choice.package && m.version === choice.version) return { ...imageOf(choice, vmlinuz), downloadMs: 0 };
  }
  const t0 = performance.now();
  const tmp = join(cache, 'tmp', `dl-${process.pid}-${choice.release}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    log(`downloading ${choice.package} ${choice.version} (${choice.suite})`);
    const deb = apt.download(choice.package, choice.version, tmp);
    const root = join(tmp, 'root');
    mkdirSync(root);
    // Only the image is extracted: 5.10's package carries some 300 MB of modules beside it.
    run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards --no-anchored "vmlinuz*"', 'sh', deb, root]);
    const found = findVmlinuz(root, choice.release);
    if (!found)
      throw new HostError(
        `${choice.package} ${choice.version} has no vmlinuz for ${choice.release} (looked in /boot and /usr/lib/modules/${choice.release})`,
      );
    mkdirSync(dir, { recursive: true });
    renameSync(found, vmlinuz);
    writeFileSync(
      meta,
      `${JSON.stringify({ package: choice.package, version: choice.version, suite: choice.suite, sha256: sha256File(vmlinuz) }, null, 2)}\n`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { ...imageOf(choice, vmlinuz), downloadMs: Math.round(performance.now() - t0) };
}

function imageOf(c: KernelChoice, vmlinuz: string): KernelImage {
  return {
    majorMinor: c.majorMinor,
    release: c.release,
    package: c.package,
    version: c.version,
    suite: c.suite,
    vmlinuz,
    ...(c.dbName ? { dbName: c.dbName } : {}),
    ...(c.note ? { note: c.note } : {}),
  };
}

function findVmlinuz(root: string, release: string): string | undefined {
  const candidates = [
    join(root, 'boot', `vmlinuz-${release}`),
    join(root, 'usr', 'lib', 'modules', release, 'vmlinuz'),
    join(root, 'lib', 'modules', release, 'vmlinuz'),
  ];
  return candidates.find((p) => existsSync(p) && statSync(p).isFile() && statSync(p).size > 1024 * 1024);
}

/**
 * Kernel images given as files: a directory is searched (one level deep) for `vmlinuz*` files
 * and `*.deb` kernel packages; the release comes from the file name or, failing that, from the
 * bzImage header's version string.
 */
export function imagesFromPath(path: string, cache: string, log: (s: string) => void): KernelImage[] {
  const st = statSync(path);
  const files = st.isDirectory()
    ? readdirSync(path)
        .sort()
        .flatMap((n) => {
          const p = join(path, n);
          if (statSync(p).isDirectory())
            return readdirSync(p)
              .sort()
              .map((m) => join(p, m));
          return [p];
        })
    : [path];
  const out: KernelImage[] = [];
  for (const f of files) {
    const base = f.split('/').pop()!;
    if (base.endsWith('.deb')) {
      const m = /^(linux-(?:image|binary)-[^_]+)_([^_]+)_amd64\.deb$/.exec(base);
      if (!m) continue;
      const rel = imageName().exec(m[1])?.[2] ?? m[1].replace(/^linux-(image|binary)-/, '');
      const dir = join(cache, 'kernels', `file-${rel}`);
      mkdirSync(dir, { recursive: true });
      const vmlinuz = join(dir, 'vmlinuz');
      if (!existsSync(vmlinuz)) {
        log(`extracting vmlinuz from ${f}`);
        const root = join(dir, 'root');
        rmSync(root, { recursive: true, force: true });
        mkdirSync(root);
        run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards --no-anchored "vmlinuz*"', 'sh', f, root]);
        const found = findVmlinuz(root, rel);
        if (!found) throw new HostError(`${f} has no vmlinuz`);
        renameSync(found, vmlinuz);
        rmSync(root, { recursive: true, force: true });
      }
      out.push({ majorMinor: /^(\d+\.\d+)/.exec(rel)?.[1] ?? '?', release: rel, vmlinuz, package: m[1], version: m[2] });
    } else if (/^vmlinuz/.test(base) || /^bzImage/.test(base)) {
      const rel = base.startsWith('vmlinuz-') ? base.slice('vmlinuz-'.length) : bzImageRelease(f);
      if (!rel) continue;
      out.push({ majorMinor: /^(\d+\.\d+)/.exec(rel)?.[1] ?? '?', release: rel, vmlinuz: f });
    }
  }
  // One image per release: a package and the vmlinuz extracted from it (or two copies of one
  // image) are the same kernel; the entry that names its package wins.
  const byRelease = new Map<string, KernelImage>();
  for (const img of out) {
    const had = byRelease.get(img.release);
    if (!had || (!had.package && img.package)) byRelease.set(img.release, img);
  }
  return [...byRelease.values()].sort((a, b) => compareRelease(a.release, b.release));
}

/**
 * The database kernel an image stands for when its exact build is not in the database: the
 * nearest release of the same major.minor, distribution (Debian), architecture (`-arm64` releases
 * are arm64, others x86_64) and flavour (`-cloud-` builds are cloud, others generic); undefined
 * when there is none.
 */
export function nearestBuild(release: string, kernels: readonly Kernel[]): Kernel | undefined {
  const mm = /^(\d+\.\d+)/.exec(release)?.[1];
  if (!mm) return undefined;
  const arch = /-arm64$/.test(release) ? 'arm64' : 'x86_64';
  const flavour = /-cloud-(amd64|arm64)$/.test(release) ? 'cloud' : 'generic';
  const same = kernels.filter((k) => k.distro === 'debian' && k.arch === arch && k.flavour === flavour && k.version.startsWith(`${mm}.`));
  const distance = (k: Kernel) => Math.abs(compareRelease(k.release, release));
  return same.sort((a, b) => distance(a) - distance(b) || compareRelease(b.release, a.release))[0];
}

/** Orders kernel releases by their numbers: 5.10.0-46 < 6.1.0-56 < 6.12.117+deb13. */
export function compareRelease(a: string, b: string): number {
  const pa = a
    .split(/[^\d]+/)
    .filter(Boolean)
    .map(Number);
  const pb = b
    .split(/[^\d]+/)
    .filter(Boolean)
    .map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * The release string of a bzImage: the boot protocol header at 0x20e points (minus 0x200) to a
 * NUL-terminated "6.1.0-56-amd64 (debian-kernel@…) #1 SMP …" string.
 */
export function bzImageRelease(file: string): string | undefined {
  const b = readFileSync(file);
  if (b.length < 0x300 || b.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const off = b.readUInt16LE(0x20e) + 0x200;
  if (off >= b.length) return undefined;
  const end = b.indexOf(0, off);
  const s = b.toString('latin1', off, end < 0 ? Math.min(b.length, off + 256) : end);
  return /^(\S+)/.exec(s)?.[1];
}
