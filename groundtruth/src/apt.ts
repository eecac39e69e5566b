/**
 * A private apt configuration for Debian's archive: its own sources list, package lists and
 * download cache under the matrix cache, so that suites the machine does not use (bullseye,
 * trixie-backports, sid…) can be queried and downloaded from without touching the machine's apt
 * state. Only `apt-get update`, `apt-cache` and `apt-get download` are used; nothing is installed.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostError, run, sha256, which } from './host';

/** The suites kernels and guest tools come from, oldest first; `security` ones come from the security archive. */
const SUITE_NAMES: readonly string[] = [
  'bullseye',
  'bullseye-security',
  'bookworm',
  'bookworm-security',
  'bookworm-backports',
  'trixie',
  'trixie-security',
  'trixie-backports',
  'sid',
];

/** The Debian architectures whose packages the lists hold: the matrix boots amd64 and arm64 kernels. */
export const ARCHITECTURES = ['amd64', 'arm64'] as const;

/** Debian's own addresses, used when neither the environment nor the machine's apt sources name a mirror. */
const DEFAULT_MIRRORS = { main: 'http://deb.debian.org/debian', security: 'http://deb.debian.org/debian-security' };

/** Release code names a Debian apt source may name (a suite is one of these, or one with a `-suffix`). */
const DEBIAN_CODENAMES = /^(buster|bullseye|bookworm|trixie|forky|duke|sid|stable|testing|unstable|oldstable)(-[a-z-]+)?$/;

/**
 * The Debian archive and security archive to download from: `EBPF_MATRIX_DEBIAN_MIRROR` and
 * `EBPF_MATRIX_DEBIAN_SECURITY_MIRROR` when set, else the first Debian sources of the machine's
 * own apt configuration (`/etc/apt/sources.list`, `sources.list.d/*.list` and deb822 `*.sources`),
 * so a local mirror the machine uses serves the matrix too; else deb.debian.org.
 */
export function debianMirrors(env: NodeJS.ProcessEnv = process.env, etc = '/etc/apt'): { main: string; security: string; from: string } {
  const found: { main?: string; security?: string } = {};
  const note = (uri: string, suite: string) => {
    const m = DEBIAN_CODENAMES.exec(suite);
    if (!m || !/^(https?|file):/.test(uri)) return;
    const key = m[2] === '-security' || /\/updates$/.test(suite) ? 'security' : 'main';
    found[key] ??= uri.replace(/\/+$/, '');
  };
  const files: string[] = [];
  if (existsSync(join(etc, 'sources.list'))) files.push(join(etc, 'sources.list'));
  const dir = join(etc, 'sources.list.d');
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(dir, f));
  for (const f of files) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    if (f.endsWith('.sources')) {
      // deb822 stanzas: Types, URIs, Suites (and Enabled: no to skip one).
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1].trim() ?? '';
        if (!/\bdeb\b/.test(field('Types')) || /^no$/i.test(field('Enabled'))) continue;
        for (const uri of field('URIs').split(/\s+/).filter(Boolean))
          for (const suite of field('Suites').split(/\s+/).filter(Boolean)) note(uri, suite);
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) note(m[1], m[2]);
      }
    }
  }
  const main = env.EBPF_MATRIX_DEBIAN_MIRROR || found.main || DEFAULT_MIRRORS.main;
  const security = env.EBPF_MATRIX_DEBIAN_SECURITY_MIRROR || found.security || DEFAULT_MIRRORS.security;
  const from = env.EBPF_MATRIX_DEBIAN_MIRROR ? 'the environment' : found.main ? "this machine's apt sources" : "Debian's default";
  return { main, security, from };
}

/** The suites with the mirror each comes from. */
export function suites(mirrors: { main: string; security: string } = debianMirrors()): { suite: string; mirror: string }[] {
  return SUITE_NAMES.map((suite) => ({ suite, mirror: suite.endsWith('-security') ? mirrors.security : mirrors.main }));
}

/** One version of a package in one suite, as `apt-cache madison` lists it. */
export interface AptVersion {
  readonly package: string;
  readonly version: string;
  readonly suite: string;
}

/** The lists are refreshed when older than this (kernels move on weekly at most). */
const LISTS_MAX_AGE_MS = 24 * 3600_000;

/** apt-get and apt-cache with a private configuration rooted at `dir`. */
export class PrivateApt {
  private readonly opts: string[];

  constructor(readonly dir: string) {
    this.opts = [
      '-o',
      `Dir::Etc::SourceList=${join(dir, 'etc', 'sources.list')}`,
      '-o',
      'Dir::Etc::SourceParts=/dev/null',
      '-o',
      `Dir::Etc::Preferences=${join(dir, 'etc', 'preferences')}`,
      '-o',
      'Dir::Etc::PreferencesParts=/dev/null',
      '-o',
      `Dir::State::Lists=${join(dir, 'lists')}`,
      '-o',
      `Dir::Cache=${join(dir, 'cache')}`,
      '-o',
      'Dir::State::status=/dev/null',
      '-o',
      'APT::Architectures::=amd64',
      '-o',
      'APT::Architectures::=arm64',
      '-o',
      'APT::Architecture=amd64',
      '-o',
      'Debug::NoLocking=1',
      // Root's downloads otherwise switch to the _apt user, who cannot write into a root-owned cache.
      '-o',
      `APT::Sandbox::User=${process.getuid?.() === 0 ? 'root' : '_apt'}`,
      '-o',
      'Acquire::Retries=3',
    ];
  }

  /** Whether apt-get and apt-cache exist on this machine. */
  static available(): boolean {
    return which('apt-get') !== undefined && which('apt-cache') !== undefined;
  }

  /**
   * Writes the sources list and fetches the package lists unless ones younger than `maxAgeMs`
   * are there (default a day; `Infinity` reuses any lists, for runs that need no new kernels).
   */
  update(log: (s: string) => void, maxAgeMs = LISTS_MAX_AGE_MS): void {
    for (const d of ['etc', 'lists/partial', 'cache/archives/partial']) mkdirSync(join(this.dir, d), { recursive: true });
    const mirrors = debianMirrors();
    const list = suites(mirrors)
      .map((s) => `deb [trusted=yes arch=${ARCHITECTURES.join(',')}] ${s.mirror} ${s.suite} main\n`)
      .join('');
    const listFile = join(this.dir, 'etc', 'sources.list');
    // Lists fetched from another mirror are not this configuration's.
    const same = existsSync(listFile) && readFileSync(listFile, 'utf8') === list;
    writeFileSync(listFile, list);
    writeFileSync(join(this.dir, 'etc', 'preferences'), '');
    const newest = this.listsMtime();
    if (same && newest !== undefined && Date.now() - newest < maxAgeMs) return;
    log(`apt-get update (private configuration in ${this.dir}; ${mirrors.main} from ${mirrors.from})`);
    run('apt-get', [...this.opts, '-qq', 'update'], { timeout: 600_000 });
    if (this.listsMtime() === undefined) throw new HostError(`apt-get update fetched no package lists into ${join(this.dir, 'lists')}`);
  }

  /**
   * What identifies the current lists: each Packages file with its time. apt dates a list by the
   * archive's Last-Modified, so lists added later (another architecture's) can be older than
   * those there before; only the whole set tells answers of other lists apart.
   */
  private listsStamp(): string {
    const dir = join(this.dir, 'lists');
    if (!existsSync(dir)) return 'none';
    const files = readdirSync(dir)
      .filter((f) => f.includes('_Packages'))
      .sort();
    return sha256(files.map((f) => `${f} ${statSync(join(dir, f)).mtimeMs}`).join('\n'));
  }

  private listsMtime(): number | undefined {
    const dir = join(this.dir, 'lists');
    if (!existsSync(dir)) return undefined;
    const files = readdirSync(dir).filter((f) => f.includes('_Packages'));
    if (files.length < SUITE_NAMES.length * ARCHITECTURES.length) return undefined;
    return Math.min(...files.map((f) => statSync(join(dir, f)).mtimeMs));
  }

  /** Every package name the lists know (real and virtual) that starts with `prefix`. */
  packageNames(prefix: string): string[] {
    const memo = this.memo();
    const key = `names:${prefix}`;
    if (!memo.entries[key]) {
      memo.entries[key] = run('apt-cache', [...this.opts, 'pkgnames', prefix])
        .stdout.split('\n')
        .filter(Boolean);
      this.saveMemo(memo);
    }
    return memo.entries[key] as string[];
  }

  /** Every version of the given packages, with the suite each comes from. */
  versions(packages: string[]): AptVersion[] {
    const memo = this.memo();
    const unresolved = packages.filter((p) => !memo.entries[`v:${p}`]);
    // apt-cache madison takes many names at once; each run reads all lists, so one run per 500.
    for (let i = 0; i < unresolved.length; i += 500) {
      const batch = unresolved.slice(i, i + 500);
      for (const p of batch) memo.entries[`v:${p}`] = [];
      const r = run('apt-cache', [...this.opts, 'madison', ...batch]);
      for (const line of r.stdout.split('\n')) {
        const cols = line.split('|').map((c) => c.trim());
        if (cols.length < 3) continue;
        const m = /\s(\S+)\/\S+\s+\S+\s+Packages$/.exec(cols[2]);
        if (!m || !memo.entries[`v:${cols[0]}`]) continue;
        (memo.entries[`v:${cols[0]}`] as AptVersion[]).push({ package: cols[0], version: cols[1], suite: m[1] });
      }
    }
    if (unresolved.length) this.saveMemo(memo);
    return packages.flatMap((p) => memo.entries[`v:${p}`] as AptVersion[]);
  }

  private memoCache?: { stamp: string; entries: Record<string, AptVersion[] | string[]> };

  /**
   * Answers of apt-cache for the current lists, kept in a file beside them: every apt-cache run
   * reads all nine suites' lists (seconds each), and the answers only change with the lists.
   */
  private memo(): { stamp: string; entries: Record<string, AptVersion[] | string[]> } {
    const stamp = this.listsStamp();
    if (this.memoCache?.stamp === stamp) return this.memoCache;
    const file = join(this.dir, 'answers.json');
    let m: { stamp: string; entries: Record<string, AptVersion[] | string[]> } = { stamp, entries: {} };
    try {
      const read = JSON.parse(readFileSync(file, 'utf8')) as typeof m;
      if (read.stamp === stamp && read.entries) m = read;
    } catch {
      // No answers yet, or a file from an interrupted write: start afresh.
    }
    this.memoCache = m;
    return m;
  }

  private saveMemo(m: { stamp: string; entries: Record<string, AptVersion[] | string[]> }): void {
    const file = join(this.dir, 'answers.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(m));
    renameSync(`${file}.tmp`, file);
  }

  /** The Depends field of package versions, as package names (alternatives: the first). */
  depends(wanted: readonly { package: string; version: string }[]): Map<string, string[]> {
    const memo = this.memo();
    const key = (w: { package: string; version: string }) => `d:${w.package}=${w.version}`;
    const unresolved = wanted.filter((w) => !memo.entries[key(w)]);
    if (unresolved.length) {
      // One apt-cache run for all of them: it prints one record per package, blank-line separated.
      const r = run('apt-cache', [...this.opts, 'show', ...unresolved.map((w) => `${w.package}=${w.version}`)]);
      for (const w of unresolved) memo.entries[key(w)] = [];
      for (const rec of r.stdout.split(/\n\n+/)) {
        const pkg = /^Package: (\S+)$/m.exec(rec)?.[1];
        const ver = /^Version: (\S+)$/m.exec(rec)?.[1];
        const dep = /^Depends: (.*)$/m.exec(rec)?.[1];
        const arch = /^Architecture: (\S+)$/m.exec(rec)?.[1];
        // A package of another architecture was asked for as `pkg:arch`; its record says `Package: pkg`.
        const asked = unresolved.find((w) => {
          const [base, want = 'amd64'] = w.package.split(':');
          return base === pkg && w.version === ver && (arch === want || arch === 'all');
        });
        if (!asked) continue;
        memo.entries[key(asked)] = dep
          ? dep
              .split(',')
              .map(
                (d) =>
                  d
                    .split('|')[0]
                    .trim()
                    .split(/[\s(:]/)[0],
              )
              .filter(Boolean)
          : [];
      }
      this.saveMemo(memo);
    }
    return new Map(wanted.map((w) => [w.package, memo.entries[key(w)] as string[]]));
  }

  /** Downloads `pkg=version` (`pkg:arm64=version` for an arm64 package) into `dir`; returns the .deb's path (reused when already there). */
  download(pkg: string, version: string, dir: string): string {
    mkdirSync(dir, { recursive: true });
    const existing = findDeb(dir, pkg, version);
    if (existing) return existing;
    run('apt-get', [...this.opts, '-qq', 'download', `${pkg}=${version}`], { cwd: dir, timeout: 1_200_000 });
    const got = findDeb(dir, pkg, version);
    if (!got) throw new HostError(`apt-get download ${pkg}=${version} left no .deb in ${dir}`);
    return got;
  }
}

/** apt names a downloaded file `<pkg>_<version with : as %3a>_<arch>.deb`. */
function findDeb(dir: string, pkg: string, version: string): string | undefined {
  const ver = version.replace(/:/g, '%3a');
  // `pkg:arm64` downloads as `pkg_<version>_arm64.deb` (or `_all.deb`).
  const [base, arch] = pkg.split(':');
  const name = readdirSync(dir).find(
    (f) => f.startsWith(`${base}_${ver}_`) && f.endsWith('.deb') && (!arch || f.endsWith(`_${arch}.deb`) || f.endsWith('_all.deb')),
  );
  return name ? join(dir, name) : undefined;
}

/**
 * Compares Debian versions (epoch:upstream-revision) the way dpkg does: `~` sorts before
 * everything, letters before non-letters, digit runs numerically.
 */
export function compareDebVersions(a: string, b: string): number {
  const split = (v: string) => {
    const e = /^(\d+):/.exec(v);
    const epoch = e ? Number(e[1]) : 0;
    const rest = e ? v.slice(e[0].length) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, upstream: dash < 0 ? rest : rest.slice(0, dash), revision: dash < 0 ? '' : rest.slice(dash + 1) };
  };
  const x = split(a);
  const y = split(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return comparePart(x.upstream, y.upstream) || comparePart(x.revision, y.revision);
}

function order(c: string): number {
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, character by character (end of string sorts after `~`, before the rest).
    while ((i < a.length && !/\d/.test(a[i])) || (j < b.length && !/\d/.test(b[j]))) {
      const ca = i < a.length && !/\d/.test(a[i]) ? order(a[i]) : 0;
      const cb = j < b.length && !/\d/.test(b[j]) ? order(b[j]) : 0;
      if (ca !== cb) return ca - cb;
      i++;
      j++;
    }
    let da = '';
    let db = '';
    while (i < a.length && /\d/.test(a[i])) da += a[i++];
    while (j < b.length && /\d/.test(b[j])) db += b[j++];
    const na = Number(da || '0');
    const nb = Number(db || '0');
    if (na !== nb) return na - nb;
  }
  return 0;
}
