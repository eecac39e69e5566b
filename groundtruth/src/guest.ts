/**
 * The tools that run inside the booted kernel: a static busybox for the shell and mounts, and
 * bpftool with the exact shared libraries its dynamic loader resolves. They come from Debian's
 * archive (the newest bpftool, whose `prog loadall … autoattach` also attaches what it loads,
 * with libraries from the same release) or, without apt, from this machine (`ldd`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareDebVersions, type AptVersion, type PrivateApt } from './apt';
import { readElf } from '../../kernel-db/src/elf';
import { ARCHES, debPackage, type ArchSpec } from './arch';
import { HostError, run, which } from './host';

const SHT_DYNAMIC = 6;
const DT_NEEDED = 1;

/** A file to place in the guest: its path there and its source on the host. */
export interface GuestFile {
  readonly guestPath: string;
  readonly hostPath: string;
}

/** The guest's toolset. */
export interface GuestTools {
  /** Where bpftool and the libraries came from, e.g. `Debian trixie-backports bpftool 7.8.0+7.3.4-1~bpo13+1`. */
  readonly origin: string;
  /** `bpftool version` output's first lines (bpftool and libbpf versions). */
  readonly bpftoolVersion: string;
  /** The Debian version of the bpftool package, when it came from the archive. */
  readonly bpftoolPackage?: string;
  /** libbpf version inside bpftool, `M.m`, when known. */
  readonly libbpfVersion?: string;
  /** Whether `prog loadall` takes `autoattach`. */
  readonly autoattach: boolean;
  /** Host path of a bpftool that runs on this machine (to dump vmlinux.h with the same tool). */
  readonly hostRunnable?: { cmd: string; args: string[] };
  readonly files: GuestFile[];
}

/** Where a sysroot extracted from an architecture's .debs keeps its libraries. */
function libDirs(spec: ArchSpec): string[] {
  return [`usr/lib/${spec.triplet}`, `lib/${spec.triplet}`, 'usr/lib64', 'lib64', 'usr/lib', 'lib'];
}

/** Packages whose files the guest needs: libraries, not their data, headers or plugins. */
function isRuntimeLibrary(pkg: string): boolean {
  return (/^lib/.test(pkg) || pkg === 'zlib1g') && !/-(dev|bin|common|data|base|doc)$|gconv|provider|^libc-/.test(pkg);
}

/** The release family of a suite: `trixie-backports` → `trixie`. */
function family(suite: string): string {
  return suite.replace(/-(security|backports|updates|proposed-updates)$/, '');
}

/** Newest version of `pkg` among suites of one release family. */
function newestIn(versions: readonly AptVersion[], pkg: string, fam: string): AptVersion | undefined {
  return versions.filter((v) => v.package === pkg && family(v.suite) === fam).sort((a, b) => compareDebVersions(b.version, a.version))[0];
}

/**
 * Downloads the newest Debian bpftool of an architecture, the libraries it depends on and
 * busybox-static from the same release, extracts them into a sysroot under the cache (one per
 * architecture and bpftool version) and lists the files the guest needs. An arm64 bpftool cannot
 * run on this machine: `host`, the amd64 tools of the same bpftool version, then says what the
 * version prints and whether `prog loadall` takes `autoattach` (one source, one answer).
 */
export function debianGuestTools(
  apt: PrivateApt,
  cache: string,
  log: (s: string) => void,
  spec: ArchSpec = ARCHES.x86_64,
  host?: GuestTools,
): GuestTools {
  const native = spec.debian === 'amd64';
  if (!native && !host) throw new HostError(`the ${spec.arch} guest tools need the amd64 tools of the same bpftool version`);
  const name = debPackage(spec, 'bpftool');
  const all = apt.versions([name]);
  // Across architectures, the bpftool the amd64 guest has (its output stands for both).
  const bpftool = [...all]
    .filter((v) => native || host!.bpftoolPackage === undefined || v.version === host!.bpftoolPackage)
    .sort((a, b) => compareDebVersions(b.version, a.version))[0];
  if (!bpftool) throw new HostError(`the Debian archive lists no ${name} package${native ? '' : ` of version ${host!.bpftoolPackage}`}`);
  const fam = family(bpftool.suite);
  const dir = join(cache, 'guest', `${native ? '' : `${spec.debian}-`}bpftool-${bpftool.version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  const root = join(dir, 'root');
  const stamp = join(dir, 'packages.json');
  if (!existsSync(stamp)) {
    rmSync(dir, { recursive: true, force: true });
    const debs = join(dir, 'debs');
    const pkgs: AptVersion[] = [bpftool];
    const seen = new Set<string>(['bpftool']);
    // Breadth first, one apt-cache run per level: each run reads every suite's lists.
    let level: AptVersion[] = [bpftool];
    while (level.length) {
      const deps = apt.depends(level);
      const names = [...new Set([...deps.values()].flat())].filter((p) => !seen.has(p) && isRuntimeLibrary(p));
      names.forEach((n) => seen.add(n));
      const versions = apt.versions(names.map((n) => debPackage(spec, n)));
      level = names.map((p) => {
        const v = newestIn(versions, debPackage(spec, p), fam);
        if (!v) throw new HostError(`no ${debPackage(spec, p)} in Debian ${fam} for bpftool ${bpftool.version}`);
        return v;
      });
      pkgs.push(...level);
    }
    const bbName = debPackage(spec, 'busybox-static');
    const bb = newestIn(apt.versions([bbName]), bbName, fam);
    if (!bb) throw new HostError(`no ${bbName} in Debian ${fam}`);
    pkgs.push(bb);
    log(`guest tools (${spec.arch}): ${pkgs.map((p) => `${p.package} ${p.version}`).join(', ')}`);
    mkdirSync(root, { recursive: true });
    for (const p of pkgs) run('dpkg-deb', ['-x', apt.download(p.package, p.version, debs), root]);
    rmSync(debs, { recursive: true, force: true });
    writeFileSync(stamp, `${JSON.stringify(pkgs, null, 2)}\n`);
  }
  const interpName = spec.interpreter.split('/').pop()!;
  const interp = [`usr/${spec.interpreter}`, spec.interpreter, `usr/lib/${interpName}`, `lib/${interpName}`]
    .map((p) => join(root, p))
    .find(existsSync);
  const bin = ['usr/sbin/bpftool', 'sbin/bpftool'].map((p) => join(root, p)).find(existsSync);
  const busybox = ['usr/bin/busybox', 'bin/busybox'].map((p) => join(root, p)).find(existsSync);
  if (!interp || !bin || !busybox) throw new HostError(`the guest sysroot ${root} lacks the dynamic loader, bpftool or busybox`);
  const dirs = libDirs(spec)
    .map((d) => join(root, d))
    .filter(existsSync);
  let libs: { soname: string; hostPath?: string }[];
  let hostRunnable: GuestTools['hostRunnable'];
  let version: string;
  let help: string;
  if (native) {
    // The sysroot's own loader resolves bpftool's libraries, as `ldd` would inside the guest.
    libs = parseLddOutput(run(interp, ['--library-path', dirs.join(':'), '--list', bin]).stdout);
    hostRunnable = { cmd: interp, args: ['--library-path', dirs.join(':'), bin] };
    version = run(hostRunnable.cmd, [...hostRunnable.args, 'version']).stdout.trim();
    help = spawnText(hostRunnable.cmd, [...hostRunnable.args, 'prog', 'help']);
  } else {
    // Another architecture's loader cannot run here: its libraries are found as it would find
    // them, by following each ELF's DT_NEEDED entries through the sysroot's library directories.
    libs = neededLibraries(bin, dirs);
    hostRunnable = host!.hostRunnable;
    version = host!.bpftoolVersion;
    help = host!.autoattach ? 'autoattach' : '';
  }
  const missing = libs.filter((l) => !l.hostPath);
  if (missing.length) throw new HostError(`bpftool needs libraries the sysroot lacks: ${missing.map((l) => l.soname).join(', ')}`);
  const pkgs = JSON.parse(readFileSync(stamp, 'utf8')) as AptVersion[];
  return {
    origin: `Debian ${bpftool.suite} ${bpftool.package} ${bpftool.version} with ${pkgs
      .filter((p) => p !== pkgs[0])
      .map((p) => `${p.package} ${p.version}`)
      .join(', ')}`,
    bpftoolVersion: version,
    bpftoolPackage: bpftool.version,
    libbpfVersion: /libbpf v(\d+\.\d+)/.exec(version)?.[1],
    autoattach: /autoattach/.test(help),
    ...(hostRunnable ? { hostRunnable } : {}),
    files: [
      { guestPath: 'bin/busybox', hostPath: busybox },
      { guestPath: 'bin/bpftool', hostPath: bin },
      { guestPath: spec.interpreter, hostPath: realpathSync(interp) },
      ...libs.map((l) => ({ guestPath: `lib/${spec.triplet}/${l.soname}`, hostPath: realpathSync(l.hostPath!) })),
    ],
  };
}

/** An ELF file's DT_NEEDED entries (shared libraries it names), in order. */
export function elfNeeded(bytes: Uint8Array, file: string): string[] {
  const elf = readElf(bytes);
  const dyn = elf.sections.find((s) => s.type === SHT_DYNAMIC);
  if (!dyn) return [];
  const strtab = elf.sections[dyn.link];
  if (!strtab) throw new HostError(`${file}: the dynamic section's string table ${dyn.link} does not exist`);
  const data = elf.data(dyn);
  const entry = elf.is64 ? 16 : 8;
  const out: string[] = [];
  for (let o = 0; o + entry <= data.length; o += entry) {
    const at = dyn.offset + o;
    const tag = elf.is64 ? Number(elf.view.getBigInt64(at, elf.littleEndian)) : elf.view.getInt32(at, elf.littleEndian);
    if (tag === 0) break;
    if (tag !== DT_NEEDED) continue;
    const val = elf.is64 ? Number(elf.view.getBigUint64(at + 8, elf.littleEndian)) : elf.view.getUint32(at + 4, elf.littleEndian);
    out.push(elf.string(strtab, val));
  }
  return out;
}

/**
 * The shared libraries a binary needs, transitively (its DT_NEEDED, theirs…), each found in the
 * first of `dirs` that has it; `hostPath` is undefined for one no directory has. The dynamic
 * loader itself is not among them.
 */
export function neededLibraries(bin: string, dirs: readonly string[]): { soname: string; hostPath?: string }[] {
  const out: { soname: string; hostPath?: string }[] = [];
  const seen = new Set<string>();
  const queue = [bin];
  while (queue.length) {
    const file = queue.shift()!;
    for (const soname of elfNeeded(new Uint8Array(readFileSync(file)), file)) {
      if (seen.has(soname) || /^ld-linux/.test(soname)) continue;
      seen.add(soname);
      const hostPath = dirs.map((d) => join(d, soname)).find(existsSync);
      out.push(hostPath ? { soname, hostPath } : { soname });
      if (hostPath) queue.push(hostPath);
    }
  }
  return out;
}

/** This machine's bpftool and the libraries `ldd` finds for it, with a static busybox. */
export function hostGuestTools(): GuestTools {
  const bin = which('bpftool');
  if (!bin) throw new HostError('bpftool is not installed (Debian package bpftool)');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find(existsSync);
  if (!busybox) throw new HostError('busybox is not installed (Debian package busybox-static)');
  const bbLdd = spawnText('ldd', [busybox]);
  if (!/not a dynamic executable|statically linked/.test(bbLdd))
    throw new HostError(`${busybox} is dynamically linked; install busybox-static`);
  const out = run('ldd', [bin]).stdout;
  const libs = parseLddOutput(out);
  const interp = /^\s*(\/\S*ld-linux[^\s]*)/m.exec(out)?.[1];
  if (!interp) throw new HostError(`ldd ${bin} names no dynamic loader`);
  const missing = libs.filter((l) => !l.hostPath);
  if (missing.length) throw new HostError(`ldd ${bin} cannot find ${missing.map((l) => l.soname).join(', ')}`);
  const version = run(bin, ['version']).stdout.trim();
  const help = spawnText(bin, ['prog', 'help']);
  return {
    origin: `this machine's ${bin}`,
    bpftoolVersion: version,
    libbpfVersion: /libbpf v(\d+\.\d+)/.exec(version)?.[1],
    autoattach: /autoattach/.test(help),
    hostRunnable: { cmd: bin, args: [] },
    files: [
      { guestPath: 'bin/busybox', hostPath: busybox },
      { guestPath: 'bin/bpftool', hostPath: bin },
      { guestPath: 'lib64/ld-linux-x86-64.so.2', hostPath: realpathSync(interp) },
      ...libs.map((l) => ({ guestPath: `lib/x86_64-linux-gnu/${l.soname}`, hostPath: realpathSync(l.hostPath!) })),
    ],
  };
}

function spawnText(cmd: string, args: string[]): string {
  // Help and ldd's "not a dynamic executable" exit non-zero; their text is what matters here.
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`;
}

/**
 * The libraries in `ldd` / `ld.so --list` output: `libelf.so.1 => /path (0x…)`; the vdso and the
 * loader line are skipped. `hostPath` is undefined for "not found".
 */
export function parseLddOutput(text: string): { soname: string; hostPath?: string }[] {
  const out: { soname: string; hostPath?: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+=>\s+(\S+)/.exec(line);
    if (!m || m[1].startsWith('linux-vdso') || /ld-linux/.test(m[1])) continue;
    out.push(m[2] === 'not' ? { soname: m[1] } : { soname: m[1], hostPath: m[2] });
  }
  return out;
}
