/**
 * The analysis engine shared by the language server and the CLI: the kernel database, target
 * resolution per settings, local headers read from disk, and one call to analyse a document.
 */
import { type LoaderSource, type RuntimeChoices, runtimeChoices } from '../analysis/runtimeChoices';
import type { Stats } from 'node:fs';
import { FsMeta } from './fsMeta';
import { describeBytes, readBounded, readBoundedText } from './files';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Tree } from 'web-tree-sitter';
import type { BpfMacroSite } from '../parse/sites';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { TargetError, TargetSpec } from '../../../kernel-db/src/query/target';
import { normalizeArch } from '../../../kernel-db/src/build/inputs';
import { directives } from '../analysis/comments';
import { hoverAt, type HoverInfo } from '../analysis/hover';
import { type AnalysisFailure, AnalysisCache, analyzeSteps, drain } from './analyze';
import { buildHeaderModel, type HeaderModel } from '../analysis/file';
import type { Finding } from '../analysis/model';
import { DEFAULT_SETTINGS, type Settings, validateSettings } from './settings';
import { NO_PROJECT, type Project, ProjectFiles, type ProjectOptions } from './project';
import type { ObjectPass } from './objectPass';
import { analyzePython, isPythonDocument } from './bccPython';
import type { BuildContext } from '../analysis/file';
import { quoted } from '../../../kernel-db/src/strings';

/** The settings that choose the target kernels. */
type TargetSettings = Pick<Settings, 'targetKernels' | 'architectures' | 'distros'>;

/** Parses C text (with the BPF macro layer); returns undefined for text it will not parse. */
export type ParseFn = (text: string) => Tree | undefined;

/** Result of analysing one document. */
export interface DocumentResult {
  readonly findings: Finding[];
  readonly kernels: readonly Kernel[];
  /** Problems with settings (bad target spec…), to show the user once. */
  readonly problems: string[];
  /** The settings the analysis used: the caller's, with the project's configuration applied. */
  readonly settings: Settings;
  /** The project files that applied (`.ebpf-portability.json`, `compile_commands.json`…). */
  readonly projectFiles: string[];
  /**
   * What threw: a rule (its findings alone are missing) or, without `rule`, the analysis of the
   * file itself (no findings). Empty when everything ran.
   */
  readonly failures: AnalysisFailure[];
}

/** Settings keys a caller may pin against the project's configuration (the CLI's explicit options). */
export type SettingKey = keyof Settings;

/**
 * libbpf's own headers, known by name (what they define is built into the analysis): never read,
 * wherever an include path finds them.
 */
const LIBRARY_HEADER = /^bpf\/(bpf_helpers|bpf_helper_defs|bpf_core_read|bpf_tracing|bpf_endian|usdt\.bpf|bpf_tracing_net)\.h$/;
/**
 * Kernel and C library headers: their effect is known by name (kernel headers without CO-RE), and
 * a kernel source tree on the include path would have thousands of them. `<net/…>` and
 * `<trace/…>` are read when a project directory has them (projects name their own so too).
 */
const SYSTEM_HEADER =
  /^(linux|asm|asm-generic|uapi|generated|sys|bits|gnu)\/|^(std\w*|string|stddef|stdint|stdbool|limits|errno|assert|ctype|endian)\.h$/;

const MAX_HEADER_BYTES = 2 * 1024 * 1024;
/**
 * Includes followed at most one inside another (clang's own limit is 200): deeper ones are not
 * read, the same way when a header is read and when it is checked, so nothing is read twice.
 */
const MAX_INCLUDE_DEPTH = 200;
/** A `vmlinux.h` by name (bpftool's, or a project's per-version copy). */
const VMLINUX = /(^|\/)vmlinux[^/]*\.h$/;
/** The largest `vmlinux.h` scanned (bpftool's are 2-4 MB). */
const MAX_VMLINUX_BYTES = 64 * 1024 * 1024;

/**
 * A file-scope variable with an initializer on a line of its own, from its first column, in a
 * vmlinux.h (bpftool's has none): `const int NAME = …;`, `static const u32 NAME = …;` (a local of
 * an inline function there is indented).
 */
const VMLINUX_VARIABLE =
  /^(?:static[ \t]+)?(?:const[ \t]+|volatile[ \t]+)*(?:(?:unsigned|signed|long|short|int|char|_Bool|bool|__[us](?:8|16|32|64)|[us](?:8|16|32|64))[ \t]+)+([A-Za-z_]\w*)[ \t]*=/gm;

/**
 * The largest vmlinux.h searched for {@link VMLINUX_VARIABLE}: a project's own trimmed header (Tracee's
 * is 24 KB); bpftool's full dumps, 2-4 MB, are types only.
 */
const MAX_OWN_VMLINUX_CHARS = 1024 * 1024;

const NONE: ReadonlySet<string> = new Set();
/** Parsed headers kept at most (a project with more is parsed again when they come back). */
const MAX_HEADERS = 2000;
/** User-space C files of one directory read to find a program's loader. */
const MAX_LOADER_FILES = 400;

/** An include a cached header resolved, with the fingerprint it had then. */
interface NestedInclude {
  readonly from: string;
  readonly path: string;
  readonly system: boolean;
  readonly fingerprint: string;
}

/** Shared analysis state. */
export class Engine {
  private readonly targetCache = new Map<string, { kernels: Kernel[]; problem?: string; used: TargetSettings }>();
  /**
   * Local headers by path: valid while the file's mtime and size are the same and every header it
   * includes still has the fingerprint it had (so a change two includes down is seen too).
   */
  private readonly headers = new Map<
    string,
    {
      mtimeMs: number;
      size: number;
      model: HeaderModel | undefined;
      tree?: Tree;
      nested: NestedInclude[];
      text?: string;
      /** The analysis ({@link generation}) that last found it and its includes unchanged. */
      checked?: number;
      /** Why it was not read (a FIFO, a device, a directory, too large…), said with every analysis that includes it. */
      problem?: string;
    }
  >();
  /** Headers the current analysis could not read, and why (its problems). */
  private headerProblems = new Set<string>();
  /**
   * The text of a file as an editor has it, when it is open there (the language server sets it):
   * headers are read from it instead of the disk.
   */
  overlay?: (path: string) => string | undefined;
  private readonly caches = new Map<string, AnalysisCache>();
  /** User-space C read for loaders, by path: valid while its mtime and size are the same. */
  private readonly userSpace = new Map<string, { mtimeMs: number; size: number; text: string }>();
  /** What a BPF file's loader switches, by the BPF file's path: valid while its directory's C files are unchanged. */
  private readonly runtimeCache = new Map<string, { stamp: string; choices: RuntimeChoices | undefined }>();

  private readonly projects: ProjectFiles;
  /**
   * What the disk says of include candidates, headers, project files and loaders; the language
   * server keeps answers for a moment ({@link FsMeta}) and clears them when files change.
   */
  readonly fsMeta = new FsMeta();
  /** What a `vmlinux.h` found on disk says about CO-RE, by path: valid while its mtime and size are the same. */
  private readonly vmlinuxScans = new Map<
    string,
    {
      stamp: string;
      noPreserveAccessIndex: boolean;
      globals: ReadonlySet<string>;
      /** The real header a wrapper includes, as it was read. */
      inner?: { path: string; system: boolean; fingerprint: string };
    }
  >();
  /** Counts analyses and hovers: headers are checked against the disk once in each. */
  private generation = 0;

  constructor(
    readonly db: KernelDb,
    private readonly parse: ParseFn,
    projectOptions: ProjectOptions = {},
  ) {
    this.projects = new ProjectFiles(projectOptions, this.fsMeta);
  }

  /** The project of a document (its configuration file and compiler flags); none for other schemes. */
  project(uri: string): Project {
    const path = toPath(uri);
    return path ? this.projects.forFile(path) : NO_PROJECT;
  }

  /**
   * The settings for a document: the caller's, with the project's configuration file applied
   * over them (the nearest file wins over user settings), except the keys in `pinned` (options
   * given on the command line). The architecture the flags build for narrows the target when
   * neither sets it.
   */
  effectiveSettings(
    project: Project,
    settings: Settings,
    pinned: ReadonlySet<SettingKey> = new Set(),
  ): { settings: Settings; problems: string[] } {
    const problems: string[] = [];
    let out: Settings = settings;
    for (const [key, value] of Object.entries(project.settings)) {
      if (pinned.has(key as SettingKey)) continue;
      const v = validateSettings({ [key]: value });
      if (v.problems.length) {
        problems.push(...v.problems.map((p) => `${project.configFile}: ${p.replace(/^ebpfPortability\./, '')}`));
        // A bad key keeps its default; of the rules, only the bad entries are left out.
        if (key !== 'rules') continue;
      }
      const k = key as SettingKey;
      out = { ...out, [k]: k === 'rules' ? { ...out.rules, ...v.settings.rules } : v.settings[k] };
    }
    // Rules given on the command line win rule by rule; the project's others still apply.
    if (pinned.has('rules') && 'rules' in project.settings) {
      const v = validateSettings({ rules: project.settings.rules });
      out = { ...out, rules: { ...v.settings.rules, ...settings.rules } };
    }
    if (project.flags.arch && !('architectures' in project.settings) && !pinned.has('architectures'))
      out = { ...out, architectures: [project.flags.arch] };
    return { settings: out, problems };
  }

  /**
   * The kernels a document's settings select; a bad spec falls back to the default. `used` is the
   * target and filters they were selected by: the settings' own, or the fallback's.
   */
  targets(settings: Settings): { kernels: Kernel[]; problem?: string; used: TargetSettings } {
    const key = JSON.stringify([settings.targetKernels, settings.architectures, settings.distros]);
    let t = this.targetCache.get(key);
    if (!t) {
      // A filter no kernel passes is named as such, and left out of the fallback; a bad target
      // falls back to the default target with the filters kept.
      const all = this.db.target('*');
      const known = (key: 'arch' | 'distro') => [...new Set(all.map((k) => k[key]))].sort();
      const bad = (key: 'arch' | 'distro', values: readonly string[]) => {
        const ok = new Set(known(key));
        const wrong = values.filter((v) => !ok.has(key === 'arch' ? normalizeArch(v) : v.toLowerCase()));
        return wrong.length === values.length && values.length > 0 ? wrong : [];
      };
      const badArch = bad('arch', settings.architectures);
      const badDistro = bad('distro', settings.distros);
      const filters = {
        arch: badArch.length ? DEFAULT_SETTINGS.architectures : settings.architectures,
        distro: badDistro.length ? DEFAULT_SETTINGS.distros : settings.distros,
      };
      const filterProblems = [
        ...(badArch.length
          ? [
              `architectures: no kernel is ${badArch.map((a) => quoted(a)).join(' or ')} (known: ${known('arch').join(', ')}); using ${DEFAULT_SETTINGS.architectures.join(', ')}`,
            ]
          : []),
        ...(badDistro.length
          ? [`distros: no kernel is from ${badDistro.map((a) => quoted(a)).join(' or ')} (known: ${known('distro').join(', ')}); using all`]
          : []),
      ];
      const fallback = (why: string) => ({
        kernels: this.db.target(DEFAULT_SETTINGS.targetKernels, filters),
        problem: [...filterProblems, `${why}; using "${DEFAULT_SETTINGS.targetKernels}"`].join('; '),
        used: { targetKernels: DEFAULT_SETTINGS.targetKernels, architectures: filters.arch, distros: filters.distro },
      });
      try {
        const kernels = this.db.target(settings.targetKernels, filters);
        t = kernels.length
          ? {
              kernels,
              ...(filterProblems.length ? { problem: filterProblems.join('; ') } : {}),
              used: { targetKernels: settings.targetKernels, architectures: filters.arch, distros: filters.distro },
            }
          : fallback(`targetKernels: no kernels match ${quoted(settings.targetKernels)} with those filters`);
      } catch (e) {
        if (!(e instanceof TargetError)) throw e;
        t = fallback(`targetKernels: ${e.message}`);
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
  analyzeDocument(...args: Parameters<Engine['analyzeDocumentSteps']>): DocumentResult {
    return drain(this.analyzeDocumentSteps(...args));
  }

  /**
   * {@link analyzeDocument} in steps (analyze.ts, `analyzeSteps`): the language server runs it in
   * time slices. Headers are read, and their problems collected, before the first yield.
   */
  *analyzeDocumentSteps(
    uri: string,
    text: string,
    tree: Tree,
    settings: Settings,
    reuse = false,
    sites?: readonly BpfMacroSite[],
    pinned?: ReadonlySet<SettingKey>,
    object?: ObjectPass,
    /** Narrows the target kernels (a BCC tool's variant, chosen by the probes its Python makes). */
    narrow?: (kernels: Kernel[]) => Kernel[],
  ): Generator<number, DocumentResult, void> {
    // A BCC tool in Python: its programs are analysed as C, their findings put on the Python text.
    if (isPythonDocument(uri)) return analyzePython(this, this.parse, uri, text, settings, pinned, reuse);
    this.generation++;
    // This analysis's own set: another document's analysis, run between this one's steps, starts its own.
    const headerProblems = new Set<string>();
    this.headerProblems = headerProblems;
    const project = this.project(uri);
    const applied = this.effectiveSettings(project, settings, pinned);
    settings = applied.settings;
    const { kernels: configured, problem: targetProblem, used } = this.targets(settings);
    // What the result says it was analysed against: a refused target is not the one used.
    settings = { ...settings, ...used };
    // A target the project file set is named with the file.
    const fromProject =
      project.configFile &&
      ['targetKernels', 'architectures', 'distros'].some((k) => k in project.settings && !pinned?.has(k as SettingKey));
    const problem = targetProblem && fromProject ? `${project.configFile}: ${targetProblem}` : targetProblem;
    const kernels = narrow ? narrow(fileTarget(text, configured)) : fileTarget(text, configured);
    let cache = reuse ? this.caches.get(uri) : undefined;
    if (reuse && !cache) this.caches.set(uri, (cache = new AnalysisCache()));
    const failures: AnalysisFailure[] = [];
    let findings: Finding[] = [];
    try {
      findings = yield* analyzeSteps({
        uri,
        text,
        tree,
        db: this.db,
        kernels,
        rules: settings.rules,
        cache,
        loader: settings.loader,
        sites,
        resolveInclude: (from, path, system) => this.header(from, path, system, project, 0),
        runtime: this.loaderChoices(uri),
        build: { ...buildContext(project), ...(settings.loader.kind === 'bcc' ? { bcc: true } : {}) },
        ...(object ? { object } : {}),
        failures,
      });
    } catch (e) {
      // The file model or a step every rule needs threw: no findings, and the failure said.
      const err = e instanceof Error ? e : new Error(String(e));
      failures.push({ message: `analysis failed: ${err.message}`, ...(err.stack ? { stack: err.stack } : {}) });
    }
    const projectFiles = [project.configFile, project.flagsFile].filter((f): f is string => !!f);
    return {
      findings,
      kernels,
      problems: [...project.problems, ...applied.problems, ...(problem ? [problem] : []), ...this.db.problems, ...headerProblems],
      settings,
      projectFiles,
      failures,
    };
  }

  /**
   * What the user-space loader beside a BPF file switches at run time: the `.c` files of its
   * directory that include its skeleton (`<name>.skel.h`) are its loaders, the directory's other
   * user-space C may define the wrappers they call. Undefined when no loader is found. (The
   * kernel matrix reads it too, to know which programs are one hook's variants.)
   */
  loaderChoices(uri: string): RuntimeChoices | undefined {
    const path = toPath(uri);
    if (!path || !/\.bpf\.c$/.test(path)) return undefined;
    const dir = dirname(path);
    const base = basename(path).replace(/\.bpf\.c$/, '');
    let names: string[];
    try {
      names = this.fsMeta
        .names(dir)
        .filter((n) => n.endsWith('.c') && !n.endsWith('.bpf.c'))
        .sort();
    } catch {
      return undefined;
    }
    const sources: LoaderSource[] = [];
    let stamp = '';
    for (const n of names.slice(0, MAX_LOADER_FILES)) {
      const file = join(dir, n);
      let st: Stats | undefined;
      try {
        st = this.fsMeta.stat(file);
      } catch {
        continue;
      }
      if (!st?.isFile() || st.size > MAX_HEADER_BYTES) continue;
      stamp += `${n}\u0000${st.mtimeMs}\u0000${st.size}\u0000`;
      let cached = this.userSpace.get(file);
      if (!cached || cached.mtimeMs !== st.mtimeMs || cached.size !== st.size) {
        const text = readBounded(file, MAX_HEADER_BYTES);
        if (text === undefined) continue;
        cached = { mtimeMs: st.mtimeMs, size: st.size, text };
        this.userSpace.set(file, cached);
      }
      sources.push({ path: n, text: cached.text });
    }
    // An Inspektor Gadget's WASM module (build.yaml `wasm: go/program.go`) chooses attachments.
    let gadget: string | undefined;
    try {
      const yaml = join(dir, 'build.yaml');
      const st = this.fsMeta.stat(yaml);
      if (st?.isFile() && st.size <= MAX_HEADER_BYTES) {
        stamp += `build.yaml\u0000${st.mtimeMs}\u0000${st.size}`;
        const m = /^wasm:[ \t]*["']?([^\s"'#]+)/m.exec(readBounded(yaml, MAX_HEADER_BYTES) ?? '');
        if (m) gadget = `the gadget's WASM module, build.yaml: wasm: ${m[1]}`;
      }
    } catch {
      // No build.yaml.
    }
    const hit = this.runtimeCache.get(path);
    if (hit && hit.stamp === stamp) return hit.choices;
    const skeleton = new RegExp(
      `^[ \\t]*#[ \\t]*include[ \\t]*[<"](?:[^>"]*/)?${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.skel\\.h[>"]`,
      'm',
    );
    const loaders = sources.filter((s) => skeleton.test(s.text));
    let choices = loaders.length
      ? runtimeChoices(
          loaders,
          sources.filter((s) => !loaders.includes(s)),
        )
      : undefined;
    if (gadget) choices = { ...(choices ?? runtimeChoices([], [])), attachments: gadget };
    this.runtimeCache.set(path, { stamp, choices });
    return choices;
  }

  /**
   * The file an include names, as the compiler searches: `"x.h"` in the including file's
   * directory, then `-iquote`, then the include paths; `<x.h>` in the include paths only. libbpf's,
   * the kernel's and the C library's headers are known by name and never read.
   */
  private locate(fromPath: string, path: string, system: boolean, project: Project): string | undefined {
    if (isAbsolute(path)) return path;
    if (system && (LIBRARY_HEADER.test(path) || SYSTEM_HEADER.test(path))) return undefined;
    const dirs = system ? project.flags.include : [dirname(fromPath), ...project.flags.quote, ...project.flags.include];
    for (const d of dirs) {
      const f = resolve(d, path);
      try {
        // Most candidates do not exist: no exception for those.
        if (this.fsMeta.stat(f)?.isFile()) return f;
      } catch {
        // Not in this directory.
      }
    }
    // Quoted includes nothing finds keep the including file's directory (reported as unreadable).
    return system ? undefined : resolve(dirname(fromPath), path);
  }

  /** The model of a header `path` included from document `from` in `project`, read from disk. */
  private header(from: string, path: string, system: boolean, project: Project, depth: number): HeaderModel | undefined {
    const fromPath = toPath(from);
    if (!fromPath || depth > MAX_INCLUDE_DEPTH) return undefined;
    if (VMLINUX.test(path)) return this.vmlinux(fromPath, path, system, project, depth);
    const file = this.locate(fromPath, path, system, project);
    if (!file) return undefined;
    // A header open in the editor is read as the editor has it, saved or not.
    const open = this.overlay?.(file);
    let st: Pick<Stats, 'mtimeMs' | 'size'> & { isFile(): boolean };
    if (open !== undefined) st = { mtimeMs: -1, size: open.length, isFile: () => true };
    else {
      try {
        const found = this.fsMeta.stat(file);
        // A missing header is the compiler's to report.
        if (!found) return undefined;
        st = found;
      } catch (e) {
        // A link loop or a refusal is said here.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR')
          this.headerProblems.add(headerProblem(file, code === 'ELOOP' ? 'a loop of symbolic links' : `cannot read (${code})`));
        return undefined;
      }
    }
    // A header's nested includes resolve through its project's include paths.
    const key = `${project.key}\u0000${file}`;
    const cached = this.headers.get(key);
    // Checked once per analysis: a header many others include is not walked again for each.
    if (cached?.problem && cached.mtimeMs === st.mtimeMs && cached.size === st.size && cached.text === open)
      this.headerProblems.add(headerProblem(file, cached.problem));
    if (cached && cached.checked === this.generation && cached.mtimeMs === st.mtimeMs && cached.size === st.size && cached.text === open)
      return cached.model;
    if (
      cached &&
      cached.mtimeMs === st.mtimeMs &&
      cached.size === st.size &&
      cached.text === open &&
      cached.nested.every((n) => (this.header(n.from, n.path, n.system, project, depth + 1)?.fingerprint ?? '-') === n.fingerprint)
    ) {
      cached.checked = this.generation;
      return cached.model;
    }
    let model: HeaderModel | undefined;
    let tree: Tree | undefined;
    const nested: NestedInclude[] = [];
    // What stat says of /proc files and the like is not trusted: the read itself is bounded, of
    // regular files only (checked on the open file), and never waits (a FIFO opens non-blocking).
    let text = open;
    let problem: string | undefined;
    if (text === undefined) {
      if (st.isFile() && st.size > MAX_HEADER_BYTES) problem = `larger than ${describeBytes(MAX_HEADER_BYTES)} (${describeBytes(st.size)})`;
      else {
        const r = readBoundedText(file, MAX_HEADER_BYTES);
        if ('text' in r) text = r.text;
        else problem = r.error;
      }
      if (problem) this.headerProblems.add(headerProblem(file, problem));
    }
    if (text !== undefined) {
      tree = this.parse(text);
      const uri = pathToFileURL(file).toString();
      // Guard against include cycles while this header is being read.
      this.headers.set(key, { mtimeMs: st.mtimeMs, size: st.size, model: undefined, nested: [] });
      if (tree) {
        model = buildHeaderModel(uri, text, tree, (f, p, sys) => {
          const h = this.header(f, p, sys, project, depth + 1);
          nested.push({ from: f, path: p, system: sys, fingerprint: h?.fingerprint ?? '-' });
          return h;
        });
      }
    }
    cached?.tree?.delete();
    if (this.headers.size > MAX_HEADERS) {
      for (const h of this.headers.values()) h.tree?.delete();
      this.headers.clear();
    }
    this.headers.set(key, {
      mtimeMs: st.mtimeMs,
      size: st.size,
      model,
      tree,
      nested,
      checked: this.generation,
      ...(open !== undefined ? { text: open } : {}),
      ...(problem ? { problem } : {}),
    });
    return model;
  }

  /**
   * A `vmlinux.h`: never parsed as C. bpftool's puts every type under the CO-RE pragma unless
   * `BPF_NO_PRESERVE_ACCESS_INDEX` is defined; a project's own may define it, or have no pragma
   * at all (fixed layouts), or only include the real one (`#include "x86/vmlinux_601.h"`). Found on
   * the include path, it is scanned for that (once per file version); not found, it is taken to be
   * bpftool's.
   */
  private vmlinux(fromPath: string, path: string, system: boolean, project: Project, depth: number): HeaderModel {
    const model = (fingerprint: string, noPreserveAccessIndex: boolean, globals: ReadonlySet<string> = NONE): HeaderModel => ({
      fingerprint,
      vmlinux: true,
      kernelHeaders: false,
      coreReadIncluded: false,
      noPreserveAccessIndex,
      structs: new Map(),
      typedefs: new Map(),
      globals,
      macros: new Map(),
      conditionalMacros: new Set(),
      functionMacros: new Map(),
      offsetofSteps: [],
      guardFunctions: new Map(),
    });
    const file = isAbsolute(path) ? path : this.locate(fromPath, path, system, project);
    let st: Stats | undefined;
    try {
      st = file ? this.fsMeta.stat(file) : undefined;
    } catch {
      st = undefined;
    }
    if (!file || !st?.isFile() || depth > MAX_INCLUDE_DEPTH) return model('vmlinux.h', false);
    const stamp = `${st.mtimeMs}\u0000${st.size}`;
    const hit = this.vmlinuxScans.get(file);
    // A wrapper's answer holds while the header it includes is the one it was read with.
    const innerNow = hit?.inner && this.vmlinux(file, hit.inner.path, hit.inner.system, project, depth + 1).fingerprint;
    if (hit && hit.stamp === stamp && innerNow === hit.inner?.fingerprint)
      return model(`vmlinux.h\u0000${file}\u0000${stamp}\u0000${innerNow ?? ''}`, hit.noPreserveAccessIndex, hit.globals);
    let noPreserveAccessIndex = false;
    let globals: ReadonlySet<string> = NONE;
    let innerRead: { path: string; system: boolean; fingerprint: string } | undefined;
    if (st.size <= MAX_VMLINUX_BYTES) {
      const text = readBounded(file, MAX_VMLINUX_BYTES, 'latin1') ?? '';
      // A project's own vmlinux.h may declare constants beside the types (Tracee's
      // `const int TRACE_EVENT_FL_TRACEPOINT = (1 << TRACE_EVENT_FL_TRACEPOINT_BIT);`); bpftool's
      // dumps declare none and are not searched (~9 ms for 4 MB).
      const names = text.length <= MAX_OWN_VMLINUX_CHARS ? [...text.matchAll(VMLINUX_VARIABLE)].map((m) => m[1]) : [];
      if (/^[ \t]*#[ \t]*define[ \t]+BPF_NO_PRESERVE_ACCESS_INDEX\b/m.test(text)) noPreserveAccessIndex = true;
      else if (!text.includes('preserve_access_index')) {
        // A wrapper that includes the real one, or a header of fixed-layout types.
        const inner = /^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]*vmlinux[^>"/]*\.h)[>"]/m.exec(text);
        const real = inner ? this.vmlinux(file, inner[2], inner[1] === '<', project, depth + 1) : undefined;
        noPreserveAccessIndex = real ? real.noPreserveAccessIndex : true;
        names.push(...(real?.globals ?? []));
        if (inner && real) innerRead = { path: inner[2], system: inner[1] === '<', fingerprint: real.fingerprint };
      }
      if (names.length) globals = new Set(names);
    }
    if (this.vmlinuxScans.size > 64) this.vmlinuxScans.clear();
    this.vmlinuxScans.set(file, { stamp, noPreserveAccessIndex, globals, ...(innerRead ? { inner: innerRead } : {}) });
    return model(`vmlinux.h\u0000${file}\u0000${stamp}\u0000${innerRead?.fingerprint ?? ''}`, noPreserveAccessIndex, globals);
  }

  /** The settings and target kernels a document is analysed with (its project and per-file target applied). */
  documentTarget(uri: string, text: string, settings: Settings): { settings: Settings; kernels: Kernel[]; project: Project } {
    const project = this.project(uri);
    const eff = this.effectiveSettings(project, settings).settings;
    const { kernels, used } = this.targets(eff);
    return { settings: { ...eff, ...used }, kernels: fileTarget(text, kernels), project };
  }

  /** Availability of what is at `offset` (a member, helper, kfunc, struct or SEC name), for hovers. */
  hover(uri: string, text: string, tree: Tree, settings: Settings, offset: number): HoverInfo | undefined {
    this.generation++;
    const project = this.project(uri);
    const kernels = fileTarget(text, this.targets(this.effectiveSettings(project, settings).settings).kernels);
    return hoverAt(
      uri,
      text,
      tree,
      this.db,
      kernels,
      offset,
      (from, path, system) => this.header(from, path, system, project, 0),
      buildContext(project),
    );
  }

  /** Drops what was kept for a document (it was closed), a BCC tool's programs (`uri#bcc-N`) with it. */
  forget(uri: string): void {
    this.caches.delete(uri);
    for (const key of this.caches.keys()) if (key.startsWith(`${uri}#`)) this.caches.delete(key);
  }

  /**
   * Drops everything read from disk (headers and their trees, loaders, `vmlinux.h` scans): the
   * language server calls it when no document is open any more, so nothing stays for files no
   * one edits.
   */
  release(): void {
    for (const h of this.headers.values()) h.tree?.delete();
    this.headers.clear();
    this.userSpace.clear();
    this.runtimeCache.clear();
    this.vmlinuxScans.clear();
    this.fsMeta.clear();
  }

  /** What is kept now: parsed headers (and their trees), documents with reuse caches, loader files, disk answers. */
  stats(): { headers: number; headerTrees: number; analyses: number; loaderFiles: number; diskAnswers: number } {
    let headerTrees = 0;
    for (const h of this.headers.values()) if (h.tree) headerTrees++;
    return {
      headers: this.headers.size,
      headerTrees,
      analyses: this.caches.size,
      loaderFiles: this.userSpace.size,
      diskAnswers: this.fsMeta.size,
    };
  }

  /** Reuse statistics of a document's last analysis. */
  cacheStats(uri: string): AnalysisCache['stats'] | undefined {
    return this.caches.get(uri)?.stats;
  }

  /** Frees parsed headers. */
  dispose(): void {
    this.release();
  }
}

/** A header that was not read, in words the user can act on. */
function headerProblem(file: string, why: string): string {
  return `header ${file} not read: ${why}`;
}

/** What the analysis needs of a project's flags. */
function buildContext(project: Project): BuildContext {
  const f = project.flags;
  return { defines: f.defines, undefines: f.undefines, forced: f.forced, ...(f.arch ? { arch: f.arch } : {}) };
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
