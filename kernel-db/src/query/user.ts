/**
 * Kernels the user imports from their own fleet (`ebpf-portability db add <btf>`): each becomes a
 * one-kernel database file in a per-user folder, listed in `index.json`, and is used when a target
 * names it (or names `user`).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, release as osRelease } from 'node:os';
import { basename, join } from 'node:path';
import { loadBtfBytes } from '../btf/container';
import { extractKernelFacts, type KernelFacts } from '../btf/extract';
import { normalizeArch, parseConfig, configFilter } from '../build/inputs';
import { DbBuilder } from '../store/builder';
import type { KernelMeta } from '../store/schema';
import { KernelStore } from '../store/store';
import type { Facts } from './facts';
import { gunzipSync } from 'node:zlib';
import { BtfError } from '../btf/reader';
import { compareVersions } from '../version';

/** The per-user folder: `$EBPF_PORTABILITY_HOME`, else `$XDG_DATA_HOME/ebpf-portability`, else `~/.local/share/ebpf-portability`. */
export function defaultUserDir(): string {
  if (process.env.EBPF_PORTABILITY_HOME) return process.env.EBPF_PORTABILITY_HOME;
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'ebpf-portability');
}

interface IndexEntry {
  readonly meta: KernelMeta;
  readonly file: string;
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
}

/** The imported kernels of one user. */
export class UserKernels {
  readonly dir: string;
  constructor(dir?: string) {
    this.dir = dir ?? defaultUserDir();
  }

  private get indexPath() {
    return join(this.dir, 'index.json');
  }

  /** Imported kernels (metadata only; the data loads on first query). */
  list(): IndexEntry[] {
    if (!existsSync(this.indexPath)) return [];
    try {
      const doc = JSON.parse(readFileSync(this.indexPath, 'utf8')) as { kernels?: IndexEntry[] };
      return Array.isArray(doc.kernels) ? doc.kernels.filter((e) => e && e.meta && typeof e.meta.name === 'string') : [];
    } catch {
      throw new Error(`${this.indexPath}: imported-kernel index is corrupt; remove it and import the kernels again`);
    }
  }

  /** Loads one imported kernel's data. */
  load(name: string): KernelStore {
    const e = this.list().find((x) => x.meta.name === name);
    if (!e) throw new Error(`no imported kernel named ${name}`);
    return KernelStore.open(join(this.dir, e.file));
  }

  /** Imports the BTF in `path` (raw, ELF, xz, gzip or a BTFHub `.tar.xz`). */
  async add(path: string, facts: Facts, reserved: (name: string) => boolean, opts: AddOptions = {}): Promise<KernelMeta> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(path));
    } catch (e) {
      throw new BtfError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const loaded = await loadBtfBytes(bytes, path);
    const facts1 = extractKernelFacts(loaded.btf);
    const running = path === '/sys/kernel/btf/vmlinux';
    const name =
      opts.name ??
      (running
        ? `local-${osRelease()}`
        : basename(path)
            .replace(/(\.btf)?(\.tar)?(\.(xz|gz))?$/, '')
            .replace(/^vmlinux-?/, '') || 'kernel');
    if (!/^[A-Za-z0-9_.+~:-]+$/.test(name))
      throw new Error(`kernel name "${name}" may only use letters, digits and _ . + ~ : -; pass --name`);
    if (reserved(name)) throw new Error(`"${name}" is a built-in kernel's name; pass --name to choose another`);
    if (!opts.force && this.list().some((e) => e.meta.name === name))
      throw new Error(`a kernel named "${name}" is already imported; pass --force to replace it`);
    const fromName = /(\d+\.\d+(?:\.\d+)?)/.exec(running ? osRelease() : name)?.[1];
    const estimated = !opts.version && !fromName;
    const version = opts.version ?? (fromName ? normalizeVersion(fromName) : estimateVersion(facts1, facts));
    const arch = normalizeArch(opts.arch ?? detectArch(facts1) ?? 'unknown');

    const b = new DbBuilder();
    let configText: string | undefined;
    const cfgPath = opts.config ?? (running ? ['/proc/config.gz', `/boot/config-${osRelease()}`].find((p) => existsSync(p)) : undefined);
    if (cfgPath) {
      const raw = readFileSync(cfgPath);
      configText = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
    }
    const meta: KernelMeta = {
      name,
      release: running ? osRelease() : name,
      version,
      arch,
      distro: opts.distro ?? 'user',
      flavour: 'user',
      fidelity: facts1.funcs.size > 0 ? 'btf' : 'btf-types-only',
      source:
        `imported from ${path}${loaded.layers.length ? ` (${loaded.layers.join(', ')})` : ''}` +
        (estimated ? `; version ${version} estimated from its BPF enums and kfuncs (a lower bound; pass --version)` : ''),
      hasConfig: configText !== undefined,
      hasHelperEnum: false,
      hasFuncs: facts1.funcs.size > 0,
      sha256: loaded.sha256,
    };
    const k = b.addKernel(meta);
    b.addKernelFacts(k, facts1);
    if (configText !== undefined) {
      const keep = configFilter(new Set());
      for (const [n, v] of parseConfig(configText)) if (keep(n)) b.addConfig(k, n, v);
    }
    // A fast gzip level: imports should take well under a second; size matters less here.
    const data = b.finish({ importedFrom: path }, 1);
    mkdirSync(this.dir, { recursive: true });
    const file = `${name}.kdb`;
    writeFileSync(join(this.dir, `${file}.tmp`), data);
    renameSync(join(this.dir, `${file}.tmp`), join(this.dir, file));
    const stored: KernelMeta = { ...meta, hasHelperEnum: facts1.enumValues.some((v) => v.enumName === 'bpf_func_id') };
    const rest = this.list().filter((e) => e.meta.name !== name);
    this.writeIndex([...rest, { meta: stored, file }]);
    return stored;
  }

  /** Removes an imported kernel. */
  remove(name: string): boolean {
    const all = this.list();
    const e = all.find((x) => x.meta.name === name);
    if (!e) return false;
    rmSync(join(this.dir, e.file), { force: true });
    this.writeIndex(all.filter((x) => x !== e));
    return true;
  }

  private writeIndex(entries: IndexEntry[]) {
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.indexPath}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ kernels: entries.sort((a, b) => (a.meta.name < b.meta.name ? -1 : 1)) }, null, 1)}\n`);
    renameSync(tmp, this.indexPath);
  }
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
function estimateVersion(kf: KernelFacts, facts: Facts): string {
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
  for (const v of kf.enumValues) {
    if (v.enumName === 'bpf_func_id') helpers.add(`bpf_${v.name.replace(/^BPF_FUNC_/, '')}`);
    else if (enums[v.enumName]) consider(enums[v.enumName].find((e) => e.name === v.name)?.since);
  }
  // The newest helper it has, as KernelDb.effectiveVersion counts it for a known kernel.
  consider(facts.newestHelperSince((h) => helpers.has(h.name), best));
  for (const f of kf.funcs.values()) if (f.kfunc) consider(facts.kfunc(f.name)?.since);
  return best;
}

/** The architecture, from the registers `struct pt_regs` has on each one. */
function detectArch(kf: KernelFacts): string | undefined {
  const regs = new Set((kf.aggregates.get('pt_regs')?.fields ?? []).map((f) => f.name));
  const wide = kf.typedefs.get('uintptr_t') !== 'unsigned int';
  if (regs.has('orig_ax')) return wide ? 'x86_64' : 'x86';
  if (regs.has('pstate') || regs.has('orig_x0')) return 'arm64';
  if (regs.has('uregs')) return 'arm';
  if (regs.has('psw')) return 's390x';
  if (regs.has('nip')) return 'ppc64le';
  if (regs.has('epc')) return 'riscv64';
  return undefined;
}
