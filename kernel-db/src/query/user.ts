/**
 * Kernels the user imports from their own fleet (`ebpf-portability db add <btf>`): each becomes a
 * one-kernel database file in a per-user folder, listed in `index.json`, and is used when a target
 * names it (or names `user`).
 *
 * The folder is transactional, whatever crashes when:
 * - a data file is named by its content (`<sha256>.kdb`), written to a temporary file, synced and
 *   renamed into place, and never rewritten: a name always means the same bytes;
 * - `index.json` is the one commit point: a new one is written to a temporary file, synced, and
 *   renamed over the old one only after the data it names is in place; readers see the old index
 *   or the new one, each naming data that exists;
 * - writers (`add`, `remove`) hold `index.lock` (created with `O_EXCL`, holding the writer's pid
 *   and host; a lock whose process is gone is taken over) from reading the index to writing it,
 *   so two imports at once both land;
 * - each writer, under the lock, deletes what no index entry names: data files of replaced or
 *   removed kernels and temporary files of writers that died;
 * - a reader checks each entry's data file (its size and content hash): a missing or damaged one
 *   leaves out that kernel alone, with a message.
 */
import {
  closeSync,
  constants,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir, hostname, release as osRelease } from 'node:os';
import { basename, join } from 'node:path';
import { loadBtfBytes } from '../btf/container';
import { extractKernelColumns, type KernelColumns } from '../btf/extract';
import { normalizeArch, parseConfig, configFilter } from '../build/inputs';
import { DbBuilder } from '../store/builder';
import type { KernelMeta } from '../store/schema';
import { KernelStore } from '../store/store';
import type { Facts } from './facts';
import { gunzipSync } from 'node:zlib';
import { BtfError } from '../btf/reader';
import { compareVersions } from '../version';
import { readBoundedBytes, syncDir, tempNameFor, writeNewFileSynced } from '../files';

/** The per-user folder: `$EBPF_PORTABILITY_HOME`, else `$XDG_DATA_HOME/ebpf-portability`, else `~/.local/share/ebpf-portability`. */
export function defaultUserDir(): string {
  if (process.env.EBPF_PORTABILITY_HOME) return process.env.EBPF_PORTABILITY_HOME;
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'ebpf-portability');
}

interface IndexEntry {
  readonly meta: KernelMeta;
  readonly file: string;
  /** The data file's size and SHA-256 (entries written before these were kept have neither). */
  readonly size?: number;
  readonly sha256?: string;
}

/** An imported kernel whose data file checked out, with a loader for its data. */
export interface UserKernel {
  readonly meta: KernelMeta;
  load(): KernelStore;
}

/** Options of an import. */
export interface AddOptions {
  /** Kernel name (default: from the file name, or `local-<uname -r>` for the running kernel). */
  readonly name?: string;
  /** `M.m.p` (default: from the name, else estimated from the newest helper in the BTF). */
  readonly version?: string;
  readonly arch?: string;
  readonly distro?: string;
  /** A kernel `.config` (plain or gzip) to import with it. */
  readonly config?: string;
  /** Replace a kernel of the same name. */
  readonly force?: boolean;
  /**
   * Awaited between the import's steps (read, decompress, extract, build) and last before the
   * store is written: throwing there (a cancelled import) leaves the store untouched.
   */
  readonly checkpoint?: () => Promise<void>;
}

/** The running kernel's BTF. */
export const RUNNING_KERNEL_BTF = '/sys/kernel/btf/vmlinux';

/**
 * The name and version an import of `path` takes unless told otherwise: `local-<uname -r>` for
 * the running kernel, else the file name without `vmlinux-` and its `.btf`/`.tar`/`.xz`/`.gz`
 * endings; the version from the name (or the release), when it has one (else the import estimates
 * it from the BTF); the architecture the name spells (`amd64`, `aarch64`, …), for a caller to
 * pass on (the import itself takes the architecture from the BTF, else `--arch`).
 */
export function importDefaults(path: string): { name: string; version?: string; arch?: string } {
  const running = path === RUNNING_KERNEL_BTF;
  const name = running
    ? `local-${osRelease()}`
    : basename(path)
        .replace(/(\.btf)?(\.tar)?(\.(xz|gz))?$/, '')
        .replace(/^vmlinux-?/, '') || 'kernel';
  const fromName = /(\d+\.\d+(?:\.\d+)?)/.exec(running ? osRelease() : name)?.[1];
  const arch = running ? undefined : /(?:^|[-_.])(amd64|x86_64|x64|arm64|aarch64|ppc64le|ppc64el|riscv64|s390x)(?=$|[-_.])/.exec(name)?.[1];
  return { name, ...(fromName ? { version: normalizeVersion(fromName) } : {}), ...(arch ? { arch: normalizeArch(arch) } : {}) };
}

/** The largest BTF input read (raw BTF is 5-10 MB; an ELF vmlinux with its BTF more). */
const MAX_INPUT_BYTES = 1 << 30;
/** The largest kernel config read. */
const MAX_CONFIG_BYTES = 64 << 20;
/** The largest data file a reader accepts (imports are a few MB). */
const MAX_DATA_BYTES = 1 << 30;
/** How long a writer waits for another writer's lock. */
const LOCK_WAIT_MS = 60_000;

/**
 * Test hooks, read by the tests of the store only: the process kills itself (SIGKILL) at the
 * named write step, or sleeps that many milliseconds before writing the index (with the lock).
 */
export const STORE_CRASH_ENV = 'EBPF_PORTABILITY_STORE_CRASH_AT';
export const STORE_SLOW_ENV = 'EBPF_PORTABILITY_STORE_SLOW_INDEX_MS';
/** The write steps, in order; `add` passes through all, `remove` through the lock and index ones and `cleaned`. */
export const STORE_STEPS = ['locked', 'data-written', 'data-renamed', 'index-written', 'index-renamed', 'cleaned'] as const;
type Step = (typeof STORE_STEPS)[number];

function step(s: Step): void {
  if (process.env[STORE_CRASH_ENV] === s) process.kill(process.pid, 'SIGKILL');
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const INDEX = 'index.json';
const LOCK = 'index.lock';

/** The imported kernels of one user. */
export class UserKernels {
  readonly dir: string;
  constructor(dir?: string) {
    this.dir = dir ?? defaultUserDir();
  }

  private get indexPath() {
    return join(this.dir, INDEX);
  }

  /** The index's entries; throws when it is not an index. */
  private readIndex(): IndexEntry[] {
    let text: string;
    try {
      text = readFileSync(this.indexPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(
        `${this.indexPath}: cannot read the imported-kernel index: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    try {
      const doc = JSON.parse(text) as { kernels?: IndexEntry[] };
      if (!Array.isArray(doc.kernels)) throw new Error('no kernel list');
      return doc.kernels.filter((e) => e && typeof e.file === 'string' && e.meta && typeof e.meta.name === 'string');
    } catch {
      throw new Error(`${this.indexPath}: imported-kernel index is corrupt; remove it and import the kernels again`);
    }
  }

  /** Imported kernels (metadata only); throws when the index is corrupt. */
  list(): IndexEntry[] {
    return this.readIndex();
  }

  /**
   * The imported kernels whose data files check out (size and content hash), each with its data
   * kept to load on first query; what is missing or damaged is left out and said in `problems`.
   */
  open(): { kernels: UserKernel[]; problems: string[] } {
    let entries: IndexEntry[];
    try {
      entries = this.readIndex();
    } catch (e) {
      return { kernels: [], problems: [`${(e as Error).message}; imported kernels are left out`] };
    }
    const kernels: UserKernel[] = [];
    const problems: string[] = [];
    for (const e of entries) {
      const path = join(this.dir, basename(e.file));
      const read = readBoundedBytes(path, MAX_DATA_BYTES);
      const defect =
        'error' in read
          ? read.error === 'cannot read: ENOENT'
            ? 'the file is gone'
            : read.error
          : e.size !== undefined && read.bytes.length !== e.size
            ? `${read.bytes.length} bytes instead of ${e.size}`
            : e.sha256 !== undefined && sha256(read.bytes) !== e.sha256
              ? 'its content does not match its hash'
              : undefined;
      if (defect !== undefined || !('bytes' in read)) {
        problems.push(
          `imported kernel ${e.meta.name} is left out: its data ${path} is missing or damaged (${defect}); ` +
            `import it again with \`db add --force --name ${e.meta.name}\` or drop it with \`db remove ${e.meta.name}\``,
        );
        continue;
      }
      const bytes = read.bytes;
      kernels.push({ meta: e.meta, load: () => new KernelStore(bytes, path) });
    }
    return { kernels, problems };
  }

  /** Loads one imported kernel's data. */
  load(name: string): KernelStore {
    const k = this.open().kernels.find((x) => x.meta.name === name);
    if (!k) throw new Error(`no usable imported kernel named ${name}`);
    return k.load();
  }

  /** Imports the BTF in `path` (raw, ELF, xz, gzip or a BTFHub `.tar.xz`). */
  async add(path: string, facts: Facts, reserved: (name: string) => boolean, opts: AddOptions = {}): Promise<KernelMeta> {
    const checkpoint = opts.checkpoint ?? (async () => undefined);
    const input = readBoundedBytes(path, MAX_INPUT_BYTES);
    if ('error' in input) throw new BtfError(path, input.error);
    await checkpoint();
    const loaded = await loadBtfBytes(new Uint8Array(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength), path);
    await checkpoint();
    const facts1 = extractKernelColumns(loaded.btf);
    const hasFuncs = facts1.func.name.length > 0;
    await checkpoint();
    const running = path === RUNNING_KERNEL_BTF;
    const defaults = importDefaults(path);
    const name = opts.name ?? defaults.name;
    if (!/^[A-Za-z0-9_.+~:-]+$/.test(name))
      throw new Error(`kernel name "${name}" may only use letters, digits and _ . + ~ : -; pass --name`);
    if (reserved(name)) throw new Error(`"${name}" is a built-in kernel's name; pass --name to choose another`);
    const taken = () => !opts.force && this.list().some((e) => e.meta.name === name);
    if (taken()) throw new Error(`a kernel named "${name}" is already imported; pass --force to replace it`);
    const fromName = /(\d+\.\d+(?:\.\d+)?)/.exec(running ? osRelease() : name)?.[1];
    const estimated = !opts.version && !fromName;
    const version = opts.version ?? (fromName ? normalizeVersion(fromName) : estimateVersion(facts1, facts));
    const arch = normalizeArch(opts.arch ?? detectArch(facts1) ?? 'unknown');

    const b = new DbBuilder();
    let configText: string | undefined;
    const cfgPath = opts.config ?? (running ? ['/proc/config.gz', `/boot/config-${osRelease()}`].find((p) => existsSync(p)) : undefined);
    if (cfgPath) {
      const cfg = readBoundedBytes(cfgPath, MAX_CONFIG_BYTES);
      if ('error' in cfg) throw new Error(`${cfgPath}: ${cfg.error}`);
      const raw = cfg.bytes;
      configText = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: MAX_CONFIG_BYTES }) : raw).toString('utf8');
    }
    const meta: KernelMeta = {
      name,
      release: running ? osRelease() : name,
      version,
      arch,
      distro: opts.distro ?? 'user',
      flavour: 'user',
      fidelity: hasFuncs ? 'btf' : 'btf-types-only',
      source:
        `imported from ${path}${loaded.layers.length ? ` (${loaded.layers.join(', ')})` : ''}` +
        (estimated ? `; version ${version} estimated from its BPF enums and kfuncs (a lower bound; pass --version)` : ''),
      hasConfig: configText !== undefined,
      // Worked out by the builder from the rows it stores (`b.kernels` once finished).
      hasHelperEnum: false,
      hasFuncs,
      sha256: loaded.sha256,
    };
    const k = b.addKernel(meta);
    b.addKernelColumns(k, facts1);
    if (configText !== undefined) {
      const keep = configFilter(new Set());
      for (const [n, v] of parseConfig(configText)) if (keep(n)) b.addConfig(k, n, v);
    }
    // A fast gzip level: imports should take well under a second; size matters less here.
    const data = await b.finishAsync({ importedFrom: path }, 1);
    const stored = b.kernels[k];
    const hash = sha256(data);
    const file = `${hash}.kdb`;
    await checkpoint();
    this.write(() => {
      // Another writer may have imported the name while this one parsed.
      if (taken()) throw new Error(`a kernel named "${name}" is already imported; pass --force to replace it`);
      const target = join(this.dir, file);
      const tmp = tempNameFor(target);
      writeNewFileSynced(tmp, data, 0o644);
      step('data-written');
      renameSync(tmp, target);
      syncDir(this.dir);
      step('data-renamed');
      const rest = this.list().filter((e) => e.meta.name !== name);
      return [...rest, { meta: stored, file, size: data.length, sha256: hash }];
    });
    return stored;
  }

  /** Removes an imported kernel. */
  remove(name: string): boolean {
    let found = false;
    this.write(() => {
      const all = this.list();
      found = all.some((x) => x.meta.name === name);
      return found ? all.filter((x) => x.meta.name !== name) : undefined;
    });
    return found;
  }

  /**
   * One transaction: under the lock, `change` puts data in place and returns the new index (or
   * undefined for no change); the index is replaced by rename; then what no entry names goes.
   */
  private write(change: () => IndexEntry[] | undefined): void {
    mkdirSync(this.dir, { recursive: true });
    const unlock = this.lock();
    try {
      step('locked');
      // Leftovers of a writer that died are cleaned before anything is decided on the index.
      this.clean(this.list());
      const entries = change();
      if (!entries) return;
      const slow = Number(process.env[STORE_SLOW_ENV] ?? 0);
      if (slow > 0) sleep(slow);
      const sorted = [...entries].sort((a, b) => (a.meta.name < b.meta.name ? -1 : a.meta.name > b.meta.name ? 1 : 0));
      const tmp = tempNameFor(this.indexPath);
      writeNewFileSynced(tmp, Buffer.from(`${JSON.stringify({ kernels: sorted }, null, 1)}\n`), 0o644);
      step('index-written');
      renameSync(tmp, this.indexPath);
      syncDir(this.dir);
      step('index-renamed');
      this.clean(sorted);
      step('cleaned');
    } finally {
      unlock();
    }
  }

  /** Deletes data files no entry names and temporary files (only a dead writer leaves them: the caller holds the lock). */
  private clean(entries: readonly IndexEntry[]): void {
    const named = new Set(entries.map((e) => basename(e.file)));
    for (const f of readdirSync(this.dir)) {
      const orphan = (f.endsWith('.kdb') && !named.has(f)) || (f.startsWith('.') && f.endsWith('.tmp')) || f.startsWith(`${LOCK}.stale`);
      if (orphan) rmSync(join(this.dir, f), { force: true });
    }
  }

  /** Takes the writers' lock (waiting for a live holder, taking over a dead one's); returns its release. */
  private lock(): () => void {
    const path = join(this.dir, LOCK);
    const me = `${process.pid}\n${hostname()}\n`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
        try {
          writeSync(fd, me);
        } finally {
          closeSync(fd);
        }
        return () => rmSync(path, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readHolder(path);
      if (holder && !holder.alive) {
        // Moved aside under a name of its own, then checked: only the stale lock is taken away.
        const aside = `${path}.stale.${process.pid}`;
        try {
          renameSync(path, aside);
          const moved = readHolder(aside);
          // A lock taken meanwhile was moved: put it back unless yet another one was taken.
          if (moved && moved.text !== holder.text) linkSync(aside, path);
        } catch {
          // Another writer moved it first: try again.
        }
        rmSync(aside, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(
          `${path}: another ebpf-portability db command (${holder?.text.trim().replace('\n', ' on ') ?? 'unknown'}) holds the lock`,
        );
      sleep(25);
    }
  }
}

/** A lock file's holder: its text, and whether its process is alive (on another host, assumed so). */
function readHolder(path: string): { text: string; alive: boolean } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const [pid, host] = text.split('\n');
  const n = Number(pid);
  // Created but not filled: its writer is between create and write, or died there (then it is old).
  if (!text) {
    try {
      return { text, alive: Date.now() - statSync(path).mtimeMs < 5000 };
    } catch {
      return undefined;
    }
  }
  if (!Number.isInteger(n) || n <= 0) return { text, alive: false };
  if (host !== hostname()) return { text, alive: true };
  try {
    process.kill(n, 0);
    return { text, alive: true };
  } catch (e) {
    return { text, alive: (e as NodeJS.ErrnoException).code === 'EPERM' };
  }
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function normalizeVersion(v: string): string {
  const p = v.split('.');
  while (p.length < 3) p.push('0');
  return p.slice(0, 3).join('.');
}

/**
 * A lower bound for the version of a kernel of unknown release: the newest helper, program,
 * map, attach or link type in its own BPF enums, and the newest kfunc it tags, each dated by
 * the facts (the way the test-data kernels were dated).
 */
function estimateVersion(kf: KernelColumns, facts: Facts): string {
  let best = '0.0.0';
  const consider = (since: string | undefined) => {
    if (since && compareVersions(since, best) > 0) best = normalizeVersion(since);
  };
  const enums: Record<string, readonly { name: string; since: string }[]> = {
    bpf_prog_type: facts.progTypes,
    bpf_map_type: facts.mapTypes,
    bpf_attach_type: facts.attachTypes,
    bpf_link_type: facts.linkTypes,
  };
  const helpers = new Set<string>();
  const s = kf.strings;
  kf.enumv.enumName.forEach((e, r) => {
    const enumName = s[e];
    const name = s[kf.enumv.name[r]];
    if (enumName === 'bpf_func_id') helpers.add(`bpf_${name.replace(/^BPF_FUNC_/, '')}`);
    else if (Object.hasOwn(enums, enumName)) consider(enums[enumName].find((x) => x.name === name)?.since);
  });
  // The newest helper it has, as KernelDb.effectiveVersion counts it for a known kernel.
  consider(facts.newestHelperSince((h) => helpers.has(h.name), best));
  kf.func.name.forEach((n, r) => {
    if (kf.func.kfunc[r] === 1) consider(facts.kfunc(s[n])?.since);
  });
  return best;
}

/** The architecture, from the registers `struct pt_regs` has on each one. */
function detectArch(kf: KernelColumns): string | undefined {
  const s = kf.strings;
  const regs = new Set<string>();
  kf.field.agg.forEach((a, r) => {
    if (s[a] === 'pt_regs') regs.add(s[kf.field.name[r]]);
  });
  const t = kf.typedefs.name.findIndex((n) => s[n] === 'uintptr_t');
  const wide = t < 0 || s[kf.typedefs.type[t]] !== 'unsigned int';
  if (regs.has('orig_ax')) return wide ? 'x86_64' : 'x86';
  if (regs.has('pstate') || regs.has('orig_x0')) return 'arm64';
  if (regs.has('uregs')) return 'arm';
  if (regs.has('psw')) return 's390x';
  if (regs.has('nip')) return 'ppc64le';
  if (regs.has('epc')) return 'riscv64';
  return undefined;
}
