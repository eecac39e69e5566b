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
import { HostError, run, which } from './host';

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
  /** libbpf version inside bpftool, `M.m`, when known. */
  readonly libbpfVersion?: string;
  /** Whether `prog loadall` takes `autoattach`. */
  readonly autoattach: boolean;
  /** Host path of a bpftool that runs on this machine (to dump vmlinux.h with the same tool). */
  readonly hostRunnable?: { cmd: string; args: string[] };
  readonly files: GuestFile[];
}

const LIB_DIRS = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib64', 'lib64'];

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
 * Downloads the newest Debian bpftool, the libraries it depends on and busybox-static from the
 * same release, extracts them into a sysroot under the cache and lists the files the guest needs.
 */
export function debianGuestTools(apt: PrivateApt, cache: string, log: (s: string) => void): GuestTools {
  const all = apt.versions(['bpftool']);
  const bpftool = [...all].sort((a, b) => compareDebVersions(b.version, a.version))[0];
  if (!bpftool) throw new HostError('the Debian archive lists no bpftool package');
  const fam = family(bpftool.suite);
  const dir = join(cache, 'guest', `bpftool-${bpftool.version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
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
      const versions = apt.versions(names);
      level = names.map((p) => {
        const v = newestIn(versions, p, fam);
        if (!v) throw new HostError(`no ${p} in Debian ${fam} for bpftool ${bpftool.version}`);
        return v;
      });
      pkgs.push(...level);
    }
    const bb = newestIn(apt.versions(['busybox-static']), 'busybox-static', fam);
    if (!bb) throw new HostError(`no busybox-static in Debian ${fam}`);
    pkgs.push(bb);
    log(`guest tools: ${pkgs.map((p) => `${p.package} ${p.version}`).join(', ')}`);
    mkdirSync(root, { recursive: true });
    for (const p of pkgs) run('dpkg-deb', ['-x', apt.download(p.package, p.version, debs), root]);
    rmSync(debs, { recursive: true, force: true });
    writeFileSync(stamp, `${JSON.stringify(pkgs, null, 2)}\n`);
  }
  const interp = ['usr/lib64/ld-linux-x86-64.so.2', 'lib64/ld-linux-x86-64.so.2'].map((p) => join(root, p)).find(existsSync);
  const bin = ['usr/sbin/bpftool', 'sbin/bpftool'].map((p) => join(root, p)).find(existsSync);
  const busybox = ['usr/bin/busybox', 'bin/busybox'].map((p) => join(root, p)).find(existsSync);
  if (!interp || !bin || !busybox) throw new HostError(`the guest sysroot ${root} lacks the dynamic loader, bpftool or busybox`);
  const libPath = LIB_DIRS.map((d) => join(root, d))
    .filter(existsSync)
    .join(':');
  // The sysroot's own loader resolves bpftool's libraries, as `ldd` would inside the guest.
  const list = run(interp, ['--library-path', libPath, '--list', bin]).stdout;
  const libs = parseLddOutput(list);
  const missing = libs.filter((l) => !l.hostPath);
  if (missing.length) throw new HostError(`bpftool needs libraries the sysroot lacks: ${missing.map((l) => l.soname).join(', ')}`);
  const hostRunnable = { cmd: interp, args: ['--library-path', libPath, bin] };
  const version = run(hostRunnable.cmd, [...hostRunnable.args, 'version']).stdout.trim();
  const help = spawnText(hostRunnable.cmd, [...hostRunnable.args, 'prog', 'help']);
  const pkgs = JSON.parse(readFileSync(stamp, 'utf8')) as AptVersion[];
  return {
    origin: `Debian ${bpftool.suite} bpftool ${bpftool.version} with ${pkgs
      .filter((p) => p.package !== 'bpftool')
      .map((p) => `${p.package} ${p.version}`)
      .join(', ')}`,
    bpftoolVersion: version,
    libbpfVersion: /libbpf v(\d+\.\d+)/.exec(version)?.[1],
    autoattach: /autoattach/.test(help),
    hostRunnable,
    files: [
      { guestPath: 'bin/busybox', hostPath: busybox },
      { guestPath: 'bin/bpftool', hostPath: bin },
      { guestPath: 'lib64/ld-linux-x86-64.so.2', hostPath: realpathSync(interp) },
      ...libs.map((l) => ({ guestPath: `lib/x86_64-linux-gnu/${l.soname}`, hostPath: realpathSync(l.hostPath!) })),
    ],
  };
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
