/**
 * The analysis engine shared by the language server and the CLI: the kernel database, target
 * resolution per settings, local headers read from disk, and one call to analyse a document.
 */
import { type LoaderSource, type RuntimeChoices, runtimeChoices } from '../analysis/runtimeChoices';
import { readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tree } from 'web-tree-sitter';
import type { BpfMacroSite } from '../parse/sites';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { TargetError, TargetSpec } from '../../../kernel-db/src/query/target';
import { directives } from '../analysis/comments';
import { hoverAt, type HoverInfo } from '../analysis/hover';
import { AnalysisCache, analyze } from './analyze';
import { buildHeaderModel, type HeaderModel } from '../analysis/file';
import type { Finding } from '../analysis/model';
import { DEFAULT_SETTINGS, type Settings } from './settings';

/** Parses C text (with the BPF macro layer); returns undefined for text it will not parse. */
export type ParseFn = (text: string) => Tree | undefined;

/** Result of analysing one document. */
export interface DocumentResult {
  readonly findings: Finding[];
  readonly kernels: readonly Kernel[];
  /** Problems with settings (bad target spec…), to show the user once. */
  readonly problems: string[];
}

const MAX_HEADER_BYTES = 2 * 1024 * 1024;
/** User-space C files of one directory read to find a program's loader. */
const MAX_LOADER_FILES = 400;

/** An include a cached header resolved, with the fingerprint it had then. */
interface NestedInclude {
  readonly from: string;
  readonly path: string;
  readonly fingerprint: string;
}

/** Shared analysis state. */
export class Engine {
  private readonly targetCache = new Map<string, { kernels: Kernel[]; problem?: string }>();
  /**
   * Local headers by path: valid while the file's mtime and size are the same and every header it
   * includes still has the fingerprint it had (so a change two includes down is seen too).
   */
  private readonly headers = new Map<
    string,
    { mtimeMs: number; size: number; model: HeaderModel | undefined; tree?: Tree; nested: NestedInclude[] }
  >();
  private readonly caches = new Map<string, AnalysisCache>();
  /** User-space C read for loaders, by path: valid while its mtime and size are the same. */
  private readonly userSpace = new Map<string, { mtimeMs: number; size: number; text: string }>();
  /** What a BPF file's loader switches, by the BPF file's path: valid while its directory's C files are unchanged. */
  private readonly runtimeCache = new Map<string, { stamp: string; choices: RuntimeChoices | undefined }>();

  constructor(
    readonly db: KernelDb,
    private readonly parse: ParseFn,
  ) {}

  /** The kernels a document's settings select; a bad spec falls back to the default. */
  targets(settings: Settings): { kernels: Kernel[]; problem?: string } {
    const key = JSON.stringify([settings.targetKernels, settings.architectures, settings.distros]);
    let t = this.targetCache.get(key);
    if (!t) {
      const filters = { arch: settings.architectures, distro: settings.distros };
      try {
        const kernels = this.db.target(settings.targetKernels, filters);
        t = kernels.length
          ? { kernels }
          : {
              kernels: this.db.target(DEFAULT_SETTINGS.targetKernels),
              problem: `no kernels match target "${settings.targetKernels}" with those filters; using "${DEFAULT_SETTINGS.targetKernels}"`,
            };
      } catch (e) {
        if (!(e instanceof TargetError)) throw e;
        t = { kernels: this.db.target(DEFAULT_SETTINGS.targetKernels), problem: `${e.message}; using "${DEFAULT_SETTINGS.targetKernels}"` };
      }
      if (this.targetCache.size > 32) this.targetCache.clear();
      this.targetCache.set(key, t);
    }
    return t;
  }

  /**
   * Analyses a parsed document. With `reuse`, findings of functions unchanged since the
   * document's previous analysis are reused (the language server passes it; one-shot callers don't).
   */
  analyzeDocument(
    uri: string,
    text: string,
    tree: Tree,
    settings: Settings,
    reuse = false,
    sites?: readonly BpfMacroSite[],
  ): DocumentResult {
    const { kernels: configured, problem } = this.targets(settings);
    const kernels = fileTarget(text, configured);
    let cache = reuse ? this.caches.get(uri) : undefined;
    if (reuse && !cache) this.caches.set(uri, (cache = new AnalysisCache()));
    const findings = analyze({
      uri,
      text,
      tree,
      db: this.db,
      kernels,
      rules: settings.rules,
      cache,
      loader: settings.loader,
      sites,
      resolveInclude: (from, path) => this.header(from, path, 0),
      runtime: this.runtimeChoicesFor(uri),
    });
    return { findings, kernels, problems: problem ? [problem] : [] };
  }

  /**
   * What the user-space loader beside a BPF file switches at run time: the `.c` files of its
   * directory that include its skeleton (`<name>.skel.h`) are its loaders, the directory's other
   * user-space C may define the wrappers they call. Undefined when no loader is found.
   */
  private runtimeChoicesFor(uri: string): RuntimeChoices | undefined {
    const path = toPath(uri);
    if (!path || !/\.bpf\.c$/.test(path)) return undefined;
    const dir = dirname(path);
    const base = basename(path).replace(/\.bpf\.c$/, '');
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((n) => n.endsWith('.c') && !n.endsWith('.bpf.c'))
        .sort();
    } catch {
      return undefined;
    }
    const sources: LoaderSource[] = [];
    let stamp = '';
    for (const n of names.slice(0, MAX_LOADER_FILES)) {
      const file = join(dir, n);
      let st: Stats;
      try {
        st = statSync(file);
      } catch {
        continue;
      }
      if (!st.isFile() || st.size > MAX_HEADER_BYTES) continue;
      stamp += `${n}\u0000${st.mtimeMs}\u0000${st.size}\u0000`;
      let cached = this.userSpace.get(file);
      if (!cached || cached.mtimeMs !== st.mtimeMs || cached.size !== st.size) {
        cached = { mtimeMs: st.mtimeMs, size: st.size, text: readFileSync(file, 'utf8') };
        this.userSpace.set(file, cached);
      }
      sources.push({ path: n, text: cached.text });
    }
    const hit = this.runtimeCache.get(path);
    if (hit && hit.stamp === stamp) return hit.choices;
    const skeleton = new RegExp(
      `^[ \\t]*#[ \\t]*include[ \\t]*[<"](?:[^>"]*/)?${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.skel\\.h[>"]`,
      'm',
    );
    const loaders = sources.filter((s) => skeleton.test(s.text));
    const choices = loaders.length
      ? runtimeChoices(
          loaders,
          sources.filter((s) => !loaders.includes(s)),
        )
      : undefined;
    this.runtimeCache.set(path, { stamp, choices });
    return choices;
  }

  /** The model of a local header `#include "path"` seen from document `from`, read from disk. */
  private header(from: string, path: string, depth: number): HeaderModel | undefined {
    const fromPath = toPath(from);
    if (!fromPath || depth > 8) return undefined;
    const file = isAbsolute(path) ? path : resolve(dirname(fromPath), path);
    if (/(^|\/)vmlinux[^/]*\.h$/.test(path)) {
      // vmlinux.h is generated by bpftool with the CO-RE pragma around every type: no need to parse it.
      return {
        fingerprint: 'vmlinux.h',
        vmlinux: true,
        kernelHeaders: false,
        coreReadIncluded: false,
        noPreserveAccessIndex: false,
        structs: new Map(),
        typedefs: new Map(),
        macros: new Map(),
        guardFunctions: new Map(),
      };
    }
    let st: Stats;
    try {
      st = statSync(file);
    } catch {
      return undefined;
    }
    const cached = this.headers.get(file);
    if (
      cached &&
      cached.mtimeMs === st.mtimeMs &&
      cached.size === st.size &&
      cached.nested.every((n) => (this.header(n.from, n.path, depth + 1)?.fingerprint ?? '-') === n.fingerprint)
    )
      return cached.model;
    let model: HeaderModel | undefined;
    let tree: Tree | undefined;
    const nested: NestedInclude[] = [];
    if (st.isFile() && st.size <= MAX_HEADER_BYTES) {
      const text = readFileSync(file, 'utf8');
      tree = this.parse(text);
      const uri = `file://${file}`;
      // Guard against include cycles while this header is being read.
      this.headers.set(file, { mtimeMs: st.mtimeMs, size: st.size, model: undefined, nested: [] });
      if (tree) {
        model = buildHeaderModel(uri, text, tree, (f, p) => {
          const h = this.header(f, p, depth + 1);
          nested.push({ from: f, path: p, fingerprint: h?.fingerprint ?? '-' });
          return h;
        });
      }
    }
    cached?.tree?.delete();
    this.headers.set(file, { mtimeMs: st.mtimeMs, size: st.size, model, tree, nested });
    return model;
  }

  /** Availability of what is at `offset` (a member, helper, kfunc, struct or SEC name), for hovers. */
  hover(uri: string, text: string, tree: Tree, settings: Settings, offset: number): HoverInfo | undefined {
    const kernels = fileTarget(text, this.targets(settings).kernels);
    return hoverAt(uri, text, tree, this.db, kernels, offset, (from, path) => this.header(from, path, 0));
  }

  /** Drops what was kept for a document (it was closed). */
  forget(uri: string): void {
    this.caches.delete(uri);
  }

  /** Reuse statistics of a document's last analysis. */
  cacheStats(uri: string): AnalysisCache['stats'] | undefined {
    return this.caches.get(uri)?.stats;
  }

  /** Frees parsed headers. */
  dispose(): void {
    for (const h of this.headers.values()) h.tree?.delete();
    this.headers.clear();
  }
}

/**
 * The kernels of `configured` that a `// ebpf-portability: target=…` comment keeps (it narrows,
 * it never widens); a malformed comment keeps them all (invalid-lint-comment reports it).
 */
function fileTarget(text: string, configured: Kernel[]): Kernel[] {
  const d = directives(text).find((x) => x.kind === 'target');
  if (!d?.spec) return configured;
  try {
    const keep = new Set(
      TargetSpec.parse(d.spec)
        .select(configured)
        .map((k) => k.name),
    );
    return keep.size ? configured.filter((k) => keep.has(k.name)) : configured;
  } catch {
    return configured;
  }
}

/** A filesystem path from a `file://` URI or a plain path; undefined for other schemes. */
export function toPath(uri: string): string | undefined {
  if (uri.startsWith('file://')) {
    try {
      return fileURLToPath(uri);
    } catch {
      return undefined;
    }
  }
  return /^[a-z][a-z0-9+.-]*:/i.test(uri) ? undefined : isAbsolute(uri) ? uri : join(process.cwd(), uri);
}
