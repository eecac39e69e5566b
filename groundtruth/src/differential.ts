/**
 * The differential check: for each program × kernel, the linter's verdict (an error-severity
 * finding whose failing kernels include that kernel) against the kernel's own (the object failed
 * to load or to attach). Disagreements are either listed in the known-limitations table of
 * docs/ground-truth.md, with a reason, or they fail the check.
 */
import type { Finding } from '../../server/src/analysis/model';
import type { RuntimeChoices } from '../../server/src/analysis/runtimeChoices';
import { hookOf } from '../../server/src/driver/alternatives';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KernelDb } from '../../kernel-db/src/query/db';
import { Engine } from '../../server/src/driver/engine';
import { loadCParser } from '../../server/src/parse/documents';
import { DEFAULT_SETTINGS, type Settings } from '../../server/src/driver/settings';
import { objectPass, programLines } from '../../server/src/driver/objectPass';
import { NO_PROJECT, parseFlags, type Project } from '../../server/src/driver/project';
import type { MatrixArch } from './arch';
import { clangFlags } from './compile';
import { readBpfObject } from '../../kernel-db/src/btf/object';
import { Kind } from '../../kernel-db/src/btf/reader';
import type { KernelImage } from './kernels';
import { reasonWithProgram, type KernelVerdict, type ObjectResult, type ProgramResult } from './qemu';

/** One kernel of a matrix run, as the results file records it. */
export interface MatrixKernel extends Pick<KernelImage, 'majorMinor' | 'release' | 'package' | 'version' | 'suite' | 'dbName' | 'note'> {
  /** The guest's BTF equals the database kernel's (same sha256). */
  readonly btfMatchesDb?: boolean;
  readonly complete: boolean;
  readonly timedOut: boolean;
  /** Boot + load + power-off wall time. */
  readonly bootMs: number;
  readonly downloadMs: number;
  /** vmlinux functions that exist only as compiler clones on this kernel (name → a clone's symbol). */
  readonly cloneOnly?: Record<string, string>;
}

/** One program of a matrix run. */
export interface MatrixProgram {
  /** Guest object id. */
  readonly id: string;
  /** Source path relative to the repository (or absolute for user files). */
  readonly source: string;
  readonly sourceSha256: string;
  /** What the program's `// matrix-expect:` line says the kernels should do. */
  readonly expect?: 'loads-everywhere' | 'fails-somewhere' | 'any';
  /** A real program of ../shared/corpus, with the flags its project compiles it with. */
  readonly corpus?: { readonly project: string; readonly flags: readonly string[] };
}

/** The results file `npm run matrix` writes. */
export interface MatrixResults {
  readonly version: 1;
  /** The architecture of the booted kernels (absent in files from before arm64: x86_64). */
  readonly arch?: MatrixArch;
  readonly generated: string;
  readonly guest: {
    origin: string;
    bpftool: string;
    libbpf?: string;
    autoattach: boolean;
    /** The per-program loader, when it could be built. */
    loader?: { origin: string; libbpf: string };
  };
  readonly btf: { blob: string; sha256: string };
  readonly clang: string;
  readonly programs: MatrixProgram[];
  readonly kernels: MatrixKernel[];
  /** program source → kernel release → result. */
  readonly results: Record<string, Record<string, ObjectResult>>;
  readonly timings: Record<string, number>;
}

/** The linter's verdict for one program on one kernel. */
export interface LinterVerdict {
  readonly fails: boolean;
  /**
   * The program fails when loaded by itself: an error finding names the kernel, or a warning the
   * loader's run-time choices made of one does (its `alone` kernels). What the per-program loader
   * sees, since it loads each program alone and runs none of the project's loader.
   */
  readonly alone: boolean;
  /** Error findings that name this kernel: `rule: message (line N)`; then those made warnings by run-time choices. */
  readonly because: string[];
  /**
   * The project's loader sets the program's attach target (`bpf_program__set_attach_target`): the
   * object names a placeholder, so what a kernel says of it loaded alone is not compared.
   */
  readonly loaderSetsTarget?: boolean;
}

/** One row of the known-limitations table. */
export interface Limitation {
  readonly program: string;
  /** `*` or kernel major.minor / database names. */
  readonly kernels: string[];
  readonly linter: 'fails' | 'loads';
  readonly kernel: 'fails' | 'loads';
  readonly reason: string;
}

/** One compared cell. */
export interface Cell {
  readonly program: string;
  readonly kernel: MatrixKernel;
  readonly linter: LinterVerdict;
  readonly verdict: KernelVerdict;
  readonly result: ObjectResult;
  readonly agree: boolean;
  readonly limitation?: Limitation;
}

/** The kernel's verdict in the linter's terms: did the program work there? */
export function kernelFails(v: KernelVerdict): boolean | undefined {
  return v === 'no-result' ? undefined : v !== 'loaded';
}

/** How the matrix compiles its programs, for the linter's object pass. */
export interface ObjectBuild {
  readonly clang: string;
  /** The directory of the vmlinux.h the programs are compiled against. */
  readonly includeDir: string;
}

/** What the linter found in one matrix program, for the verdicts per object and per program. */
interface Analysed {
  readonly program: MatrixProgram;
  readonly path: string;
  readonly findings: Finding[];
  /** 0-based line ranges of the file's function definitions. */
  readonly functions: readonly { start: number; end: number }[];
  /** What the project's loader switches at run time (exclusive alternatives), when one was found. */
  readonly runtime?: RuntimeChoices;
}

/** Analyses each matrix program as `check` would for the booted kernels (and compiles it for the object pass). */
async function analyseAll(
  root: string,
  programs: readonly MatrixProgram[],
  dbNames: readonly string[],
  libbpf: string | undefined,
  object: ObjectBuild | undefined,
  each: (a: Analysed) => void,
): Promise<void> {
  const db = KernelDb.open({ noUser: true });
  const parser = await loadCParser();
  // A busy machine must not turn a slow parse into a missing verdict: no parse deadline here.
  const parse = (t: string) => parser.parseText(t, { timeoutMs: 120_000 });
  const engine = new Engine(db, parse);
  // Corpus programs are analysed with their project's flags, as `npm run corpus` checks them.
  const engines = new Map<string, Engine>();
  const engineFor = (p: MatrixProgram): Engine => {
    if (!p.corpus) return engine;
    let e = engines.get(p.corpus.project);
    if (!e) engines.set(p.corpus.project, (e = new Engine(db, parse, { extraFlags: [...p.corpus.flags] })));
    return e;
  };
  // The booted kernels' architecture (the database's), as `check --arch` would narrow to it.
  const arches = [...new Set(dbNames.map((n) => db.kernels.find((k) => k.name === n)?.arch).filter((a): a is string => !!a))];
  const settings: Settings = {
    ...DEFAULT_SETTINGS,
    ...(arches.length ? { architectures: arches } : {}),
    targetKernels: dbNames.join(','),
    loader: { kind: 'libbpf', minVersion: libbpf ?? DEFAULT_SETTINGS.loader.minVersion },
  };
  try {
    for (const p of programs) {
      const path = resolve(root, p.source);
      const text = readFileSync(path, 'utf8');
      const tree = parse(text);
      if (!tree) throw new Error(`the linter cannot parse ${p.source}`);
      let findings: Finding[];
      const functions = tree.rootNode
        .descendantsOfType('function_definition')
        .flatMap((n) => (n ? [{ start: n.startPosition.row, end: n.endPosition.row }] : []));
      try {
        const uri = pathToFileURL(path).toString();
        const engine = engineFor(p);
        const r = engine.analyzeDocument(uri, text, tree, settings);
        findings = r.findings;
        if (object) {
          const args = clangFlags(object.includeDir, arches.length === 1 && arches[0] === 'arm64' ? 'arm64' : 'x86_64');
          const project: Project = { ...NO_PROJECT, key: 'matrix', flags: parseFlags(args), command: { args, dir: resolve(path, '..') } };
          const pass = await objectPass(db, object.clang, path, text, project, settings, r.kernels);
          if (pass.mode !== 'object') throw new Error(`the object pass could not compile ${p.source}: ${pass.reason}`);
          findings = engine.analyzeDocument(uri, text, tree, settings, false, undefined, undefined, pass).findings;
        }
      } finally {
        tree.delete();
      }
      const runtime = engineFor(p).loaderChoices(pathToFileURL(path).toString());
      each({ program: p, path, findings, functions, ...(runtime ? { runtime } : {}) });
    }
  } finally {
    engine.dispose();
    for (const e of engines.values()) e.dispose();
  }
}

function verdictOf(findings: readonly Finding[], name: string): LinterVerdict {
  const because = findings
    .filter((f) => f.severity === 'error' && f.kernels.includes(name))
    .map((f) => `${f.rule}: ${f.message} (line ${f.range.start.line + 1})`);
  const demoted = findings
    .filter((f) => f.alone?.includes(name) && !(f.severity === 'error' && f.kernels.includes(name)))
    .map((f) => `${f.rule} (alone): ${f.message} (line ${f.range.start.line + 1})`);
  return { fails: because.length > 0, alone: because.length + demoted.length > 0, because: [...because, ...demoted] };
}

/**
 * The linter's verdict per program source and database kernel: "fails" when an error finding
 * names the kernel. With `object`, each program is also compiled and the object pass's findings
 * replace the source pass's where it decides (the same as `check --compile`).
 */
export async function linterVerdicts(
  root: string,
  programs: readonly MatrixProgram[],
  dbNames: readonly string[],
  libbpf?: string,
  object?: ObjectBuild,
): Promise<Map<string, Map<string, LinterVerdict>>> {
  const out = new Map<string, Map<string, LinterVerdict>>();
  await analyseAll(root, programs, dbNames, libbpf, object, (a) => {
    out.set(a.program.source, new Map(dbNames.map((name) => [name, verdictOf(a.findings, name)])));
  });
  return out;
}

/**
 * The linter's verdict per program of each object (by the function's name), per database kernel.
 * A finding belongs to the programs whose linked code covers one of its lines (or of the lines
 * whose execution fails, its `uses`), or whose `SEC()` header it sits on; a finding outside every
 * function (a map, the license, a declaration) belongs to every program of the object; one inside
 * a function no program links in belongs to none. `objects` maps each source to its compiled object.
 */
export async function linterProgramVerdicts(
  root: string,
  programs: readonly MatrixProgram[],
  dbNames: readonly string[],
  objects: ReadonlyMap<string, string>,
  libbpf?: string,
): Promise<Map<string, Map<string, Map<string, LinterVerdict>>>> {
  const out = new Map<string, Map<string, Map<string, LinterVerdict>>>();
  await analyseAll(root, programs, dbNames, libbpf, undefined, (a) => {
    const progs = programFindings(a, objects);
    if (!progs) return;
    const retargeted = (name: string) => !!a.runtime?.retargeted.has(name);
    out.set(
      a.program.source,
      new Map(
        progs.map((p) => [
          p.name,
          new Map(
            dbNames.map((name) => [name, { ...verdictOf(p.findings, name), ...(retargeted(p.name) ? { loaderSetsTarget: true } : {}) }]),
          ),
        ]),
      ),
    );
  });
  return out;
}

/** One program of an object with the findings that belong to it (see {@link linterProgramVerdicts}). */
interface ProgramFindings {
  readonly name: string;
  readonly section: string;
  readonly findings: readonly Finding[];
}

function programFindings(a: Analysed, objects: ReadonlyMap<string, string>): ProgramFindings[] | undefined {
  const objPath = objects.get(a.program.source);
  if (!objPath) return undefined;
  const obj = readBpfObject(new Uint8Array(readFileSync(objPath)), objPath);
  const lines = programLines(obj);
  const sections = new Map(obj.programs.map((p) => [p.name, p.section]));
  const here = (file: string) => resolve(dirname(a.path), file) === a.path;
  const text = readFileSync(a.path, 'utf8').split('\n');
  // Its header: from its SEC() line to the line that names the function (the first instruction's
  // line may be that of an inlined helper shared by several programs, so it is not used).
  const headerOf = (name: string): [number, number] | undefined => {
    const named = new RegExp(`\\b${name.replace(/[^\w]/g, '')}\\b`);
    for (let i = 0; i < text.length; i++) {
      if (!named.test(text[i])) continue;
      for (let s = i; s >= 0 && i - s < 8; s--) if (/\bSEC\s*\(/.test(text[s])) return [s, i];
    }
    return undefined;
  };
  // Each program's covered lines in this file (0-based), and its header.
  const progs = [...lines].map(([name, l]) => {
    const covered = new Set<number>();
    for (const key of l.lines) {
      const at = key.lastIndexOf(':');
      if (here(key.slice(0, at))) covered.add(Number(key.slice(at + 1)) - 1);
    }
    // Its own definition's lines count too: clang may give a statement's instructions the line
    // of its last argument, so a call's first line need not be in the line info.
    const header = headerOf(name);
    const own = header ? a.functions.find((fn) => fn.start <= header[1] && header[1] <= fn.end) : undefined;
    if (own) for (let l = own.start; l <= own.end; l++) covered.add(l);
    return { name, covered, header };
  });
  const owners = (f: Finding): string[] | undefined => {
    const spots = [f.range, ...(f.uses ?? [])].map((r) => r.start.line);
    const mine = progs.filter((p) => spots.some((l) => p.covered.has(l) || (p.header && l >= p.header[0] && l <= p.header[1])));
    if (mine.length) return mine.map((p) => p.name);
    // Outside every function: the object's (maps, license, declarations); inside one: code no program runs.
    return spots.some((l) => a.functions.some((fn) => l >= fn.start && l <= fn.end)) ? [] : undefined;
  };
  return progs.map((p) => ({
    name: p.name,
    section: sections.get(p.name) ?? '',
    findings: a.findings.filter((f) => {
      const o = owners(f);
      return o === undefined || o.includes(p.name);
    }),
  }));
}

/** The programs of one object that serve one hook: at least one of them must load. */
export interface Hook {
  /** `entry:do_unlinkat`, `tp:sched_switch` ({@link hookOf}), or `loader:a|b` for the loader's own pairs. */
  readonly hook: string;
  readonly programs: readonly string[];
  /**
   * The linter's verdict for the hook per database kernel: `alone` when every one of its programs
   * fails loaded alone (no variant loads), `fails` when one of them has an error (after run-time
   * choices), which a user reads as "this kernel breaks the tool".
   */
  readonly linter: ReadonlyMap<string, LinterVerdict>;
}

/**
 * The hooks of each object that have variants: programs of one hook (an fentry program and its
 * kprobe twin, tp_btf and raw_tp of one tracepoint), or programs the project's loader switches in
 * the two branches of one `if … else`. Where the linter says one of them loads, one must load on
 * the kernel, and where it says none does, none may; an error on one of them (what a user reads as
 * "this kernel breaks the tool") where another loads is what a precise linter must never say.
 */
export async function linterHooks(
  root: string,
  programs: readonly MatrixProgram[],
  dbNames: readonly string[],
  objects: ReadonlyMap<string, string>,
  libbpf?: string,
): Promise<Map<string, Hook[]>> {
  const out = new Map<string, Hook[]>();
  await analyseAll(root, programs, dbNames, libbpf, undefined, (a) => {
    const progs = programFindings(a, objects);
    if (!progs) return;
    const byName = new Map(progs.map((p) => [p.name, p]));
    const groups = new Map<string, Set<string>>();
    for (const p of progs) {
      const h = hookOf(p.section.replace(/^\?/, ''));
      if (h) groups.set(h, (groups.get(h) ?? new Set()).add(p.name));
    }
    for (const [name, others] of a.runtime?.alternatives ?? []) {
      const members = [name, ...others].filter((n) => byName.has(n)).sort();
      // A pair already inside one hook adds nothing.
      if (members.length > 1 && ![...groups.values()].some((g) => members.every((m) => g.has(m))))
        groups.set(`loader:${members.join('|')}`, new Set(members));
    }
    const hooks: Hook[] = [];
    for (const [hook, names] of groups) {
      if (names.size < 2) continue;
      const members = [...names].sort();
      const linter = new Map(
        dbNames.map((db) => {
          const vs = members.map((m) => verdictOf(byName.get(m)!.findings, db));
          const because = vs.flatMap((v, i) => v.because.map((b) => `${members[i]}: ${b}`));
          return [
            db,
            {
              fails: vs.some((v) => v.fails),
              alone: vs.every((v) => v.alone),
              because,
              ...(members.some((m) => a.runtime?.retargeted.has(m)) ? { loaderSetsTarget: true } : {}),
            },
          ] as const;
        }),
      );
      hooks.push({ hook, programs: members, linter });
    }
    out.set(a.program.source, hooks);
  });
  return out;
}

/** One hook of an object on one kernel: does one of its programs load, and what the linter says. */
export interface HookCell {
  readonly program: string;
  readonly hook: Hook;
  readonly kernel: MatrixKernel;
  /** The programs that loaded (and attached) there. */
  readonly loaded: readonly string[];
  readonly linter: LinterVerdict;
  readonly agree: boolean;
}

/**
 * Compares each hook with variants with the kernel: it works where one of its programs, loaded
 * alone, loads and attaches. Kernels with no result for one of its programs are left out.
 */
export function compareHooks(
  results: MatrixResults,
  hooks: ReadonlyMap<string, readonly Hook[]>,
  objects?: ReadonlyMap<string, string>,
): HookCell[] {
  const cells: HookCell[] = [];
  for (const { p, k, dbName, progs, unsized } of programResults(results, objects)) {
    for (const hook of hooks.get(p.source) ?? []) {
      const rs = hook.programs.map((n) => progs[n]);
      const lv = hook.linter.get(dbName);
      if (!lv || lv.loaderSetsTarget || rs.some((r) => !r || r.verdict === 'open-failed' || needsItsLoader(r, unsized))) continue;
      const loaded = hook.programs.filter((_, i) => rs[i]!.verdict === 'loaded' || attachNeedsItsLoader(rs[i]!));
      cells.push({ program: p.source, hook, kernel: k, loaded, linter: lv, agree: lv.alone === (loaded.length === 0) });
    }
  }
  return cells;
}

/**
 * Reads the known-limitations table: the first Markdown table under a heading that contains
 * "Known limitations", with the columns program | kernels | linter | kernel | reason.
 */
export function parseLimitations(markdown: string): Limitation[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#+ .*known limitations/i.test(l));
  if (start < 0) throw new Error('no "Known limitations" heading');
  const out: Limitation[] = [];
  let header: string[] | undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i].trim();
    if (/^#+ /.test(l)) break;
    if (!l.startsWith('|')) {
      if (header && out.length) break;
      continue;
    }
    const cells = splitRow(l);
    if (!header) {
      header = cells.map((c) => c.toLowerCase());
      const want = ['program', 'kernels', 'linter', 'kernel', 'reason'];
      if (want.some((w, j) => header![j] !== w))
        throw new Error(`the known-limitations table needs the columns ${want.join(' | ')}, not ${cells.join(' | ')}`);
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    const bare = (c: string) => c.replace(/^`([^`]*)`$/, '$1');
    const [program, kernels, linter, kernel] = cells.slice(0, 4).map(bare);
    const reason = cells[4];
    if (linter !== 'fails' && linter !== 'loads')
      throw new Error(`known limitation for ${program}: linter must be "fails" or "loads", not "${linter}"`);
    if (kernel !== 'fails' && kernel !== 'loads')
      throw new Error(`known limitation for ${program}: kernel must be "fails" or "loads", not "${kernel}"`);
    if (linter === kernel)
      throw new Error(`known limitation for ${program}: linter and kernel agree ("${linter}"), so it is no disagreement`);
    if (!reason || reason.length < 20) throw new Error(`known limitation for ${program}: give the reason in words`);
    out.push({
      program,
      kernels: kernels
        .split(',')
        .map((k) => bare(k.trim()))
        .filter(Boolean),
      linter,
      kernel,
      reason,
    });
  }
  return out;
}

function splitRow(line: string): string[] {
  // Cells are separated by pipes outside backticks, so code may contain `|`.
  const cells: string[] = [];
  let cur = '';
  let code = false;
  for (const ch of line.slice(1, line.endsWith('|') ? -1 : undefined)) {
    if (ch === '`') code = !code;
    if (ch === '|' && !code) {
      cells.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

/** Whether a limitation row covers a kernel. */
function covers(l: Limitation, k: MatrixKernel): boolean {
  return l.kernels.some((p) => p === '*' || p === k.majorMinor || p === k.dbName || p === k.release);
}

/**
 * Compares every program × kernel with a kernel result and a database name; `unused` are the
 * known limitations this run could have seen but did not.
 */
export function compare(
  results: MatrixResults,
  linter: Map<string, Map<string, LinterVerdict>>,
  limitations: readonly Limitation[],
): { cells: Cell[]; unused: Limitation[] } {
  const cells: Cell[] = [];
  const used = new Set<Limitation>();
  for (const p of results.programs) {
    for (const k of results.kernels) {
      const r = results.results[p.source]?.[k.release];
      const lv = k.dbName ? linter.get(p.source)?.get(k.dbName) : undefined;
      if (!r || !lv) continue;
      const kf = kernelFails(r.verdict);
      if (kf === undefined) continue;
      const agree = kf === lv.fails;
      const limitation = agree
        ? undefined
        : limitations.find(
            (l) => l.program === p.source && covers(l, k) && (l.linter === 'fails') === lv.fails && (l.kernel === 'fails') === kf,
          );
      if (limitation) used.add(limitation);
      cells.push({ program: p.source, kernel: k, linter: lv, verdict: r.verdict, result: r, agree, ...(limitation ? { limitation } : {}) });
    }
  }
  // A row is stale only when this run had its program and one of its kernels and still never
  // needed it; a run on other kernels or programs says nothing about it.
  const applicable = (l: Limitation) => cells.some((c) => c.program === l.program && covers(l, c.kernel));
  return { cells, unused: limitations.filter((l) => !used.has(l) && applicable(l)) };
}

/** `BPF_MAP_TYPE_PERF_EVENT_ARRAY` and `BPF_MAP_TYPE_STACK_TRACE` (include/uapi/linux/bpf.h). */
const MAP_PERF_EVENT_ARRAY = 4;
const MAP_STACK_TRACE = 7;

/**
 * The maps an object leaves for its loader to size: no `max_entries` (libbpf sizes only a perf
 * event array by itself), or a stack-trace map with no value size (libbpf-tools' loaders call
 * `bpf_map__set_max_entries` and `bpf_map__set_value_size` before loading). Loaded without that
 * loader, the kernel refuses to create them (EINVAL) on every kernel: a fact about the harness,
 * not about the kernel, so such programs are not compared.
 */
export function loaderSizedMaps(objectPath: string): ReadonlySet<string> {
  const out = new Set<string>();
  let btf: ReturnType<typeof readBpfObject>['btf'];
  try {
    btf = readBpfObject(new Uint8Array(readFileSync(objectPath)), objectPath).btf;
  } catch {
    return out;
  }
  for (let id = 1; id <= btf.count; id++) {
    if (btf.kind(id) !== Kind.Datasec || btf.name(id) !== '.maps') continue;
    for (const v of btf.datasecVars(id)) {
      if (btf.kind(v.type) !== Kind.Var) continue;
      let def = btf.ref(v.type);
      while (btf.kind(def) === Kind.Typedef || btf.kind(def) === Kind.Const || btf.kind(def) === Kind.Volatile) def = btf.ref(def);
      if (btf.kind(def) !== Kind.Struct) continue;
      const members = new Map(btf.members(def).map((m) => [m.name, m.type]));
      // `__uint(type, N)` is a pointer to an array of N elements.
      const typeMember = members.get('type');
      const mapType = typeMember !== undefined && btf.kind(typeMember) === Kind.Ptr ? btf.arrayInfo(btf.ref(typeMember)).nelems : undefined;
      if (mapType === undefined) continue;
      const noEntries = !members.has('max_entries') && mapType !== MAP_PERF_EVENT_ARRAY;
      const noValue = mapType === MAP_STACK_TRACE && !members.has('value_size') && !members.has('value');
      if (noEntries || noValue) out.add(btf.name(v.type));
    }
  }
  return out;
}

/**
 * The per-program results of each object on each kernel the database knows, with the maps the
 * object leaves for its loader to size (read once per object).
 */
function* programResults(results: MatrixResults, objects: ReadonlyMap<string, string> | undefined) {
  for (const p of results.programs) {
    const obj = objects?.get(p.source);
    const unsized = obj ? loaderSizedMaps(obj) : undefined;
    for (const k of results.kernels) {
      const progs = results.results[p.source]?.[k.release]?.programs;
      if (progs && k.dbName) yield { p, k, dbName: k.dbName, progs, unsized };
    }
  }
}

/** A program whose load failed creating a map its loader sizes (see {@link loaderSizedMaps}). */
function needsItsLoader(r: ProgramResult, unsized: ReadonlySet<string> | undefined): boolean {
  if (r.verdict !== 'load-failed' || !unsized?.size) return false;
  const m = /map '([^']+)': failed to create/.exec(r.reason);
  return !!m && unsized.has(m[1]);
}

/**
 * A uprobe or USDT program that loaded but that libbpf's auto-attach could not attach: it needs
 * the binary (or process) the project's loader names, which the guest does not have. It loaded,
 * which is what the kernel says about it.
 */
function attachNeedsItsLoader(r: ProgramResult): boolean {
  return (
    r.verdict === 'attach-failed' && /^(uprobe|uretprobe|usdt|uprobe\.s|uretprobe\.s|uprobe\.multi|uretprobe\.multi)(\/|$)/.test(r.section)
  );
}

/** One program of an object (loaded alone) on one kernel, beside the linter's verdict for it. */
export interface ProgramCell {
  /** The object's source. */
  readonly program: string;
  /** The program's (function's) name. */
  readonly name: string;
  readonly kernel: MatrixKernel;
  readonly linter: LinterVerdict;
  readonly result: ProgramResult;
  readonly agree: boolean;
  readonly limitation?: Limitation;
}

/**
 * Compares every program loaded alone (the per-program loader's results) with the linter's verdict
 * for that program; a known limitation of the object's source covers its programs.
 */
export function comparePrograms(
  results: MatrixResults,
  linter: Map<string, Map<string, Map<string, LinterVerdict>>>,
  limitations: readonly Limitation[],
  objects?: ReadonlyMap<string, string>,
): ProgramCell[] {
  const cells: ProgramCell[] = [];
  for (const { p, k, dbName, progs, unsized } of programResults(results, objects)) {
    for (const [name, result] of Object.entries(progs)) {
      const lv = linter.get(p.source)?.get(name)?.get(dbName);
      if (!lv || lv.loaderSetsTarget || result.verdict === 'open-failed' || needsItsLoader(result, unsized)) continue;
      const kf = result.verdict !== 'loaded' && !attachNeedsItsLoader(result);
      const agree = kf === lv.alone;
      const limitation = agree
        ? undefined
        : limitations.find(
            (l) => l.program === p.source && covers(l, k) && (l.linter === 'fails') === lv.alone && (l.kernel === 'fails') === kf,
          );
      cells.push({ program: p.source, name, kernel: k, linter: lv, result, agree, ...(limitation ? { limitation } : {}) });
    }
  }
  return cells;
}

/**
 * The agreement matrix as text: one row per program, one column per kernel. `ok` both say it
 * loads, `fail` both say it fails, `FP` the linter reports an error the kernel does not have,
 * `FN` the kernel fails where the linter is silent; `*` marks a documented known limitation.
 */
export function renderMatrix(results: MatrixResults, cells: readonly Cell[]): string {
  const kernels = results.kernels.filter((k) => cells.some((c) => c.kernel === k));
  const programs = results.programs.map((p) => p.source).filter((s) => cells.some((c) => c.program === s));
  const width = Math.max(7, ...programs.map((p) => p.length));
  const col = (s: string) => s.padEnd(8);
  const lines = [`${'program'.padEnd(width)}  ${kernels.map((k) => col(k.majorMinor)).join('')}`];
  for (const p of programs) {
    const row = kernels.map((k) => {
      const c = cells.find((x) => x.program === p && x.kernel === k);
      if (!c) return col('-');
      const base = c.agree ? (c.linter.fails ? 'fail' : 'ok') : c.linter.fails ? 'FP' : 'FN';
      return col(`${base}${c.limitation ? '*' : ''}`);
    });
    lines.push(`${p.padEnd(width)}  ${row.join('')}`.trimEnd());
  }
  lines.push(
    '',
    'ok: both say it loads · fail: both say it fails · FP: linter error, kernel loads · FN: kernel fails, linter silent · *: known limitation (docs/ground-truth.md)',
  );
  return lines.join('\n');
}

/** A disagreement in words, with both sides' reasons. */
export function describeDisagreement(c: Cell): string {
  const k = `${c.kernel.dbName ?? c.kernel.release}`;
  if (c.linter.fails) {
    return `${c.program} on ${k}: the linter reports an error but the kernel ${c.verdict === 'loaded' ? 'loads and attaches it' : c.verdict}:\n    ${c.linter.because.join('\n    ')}`;
  }
  return `${c.program} on ${k}: the kernel says ${c.verdict}${c.result.program ? ` (program ${c.result.program})` : ''}${c.result.reason ? ` (${c.result.reason})` : ''} but the linter reports no error:\n    ${(c.result.explain.length ? c.result.explain : c.result.log).slice(0, 8).join('\n    ')}`;
}

/** Reads `// matrix-expect: …` from a program's text. */
export function expectation(text: string): MatrixProgram['expect'] {
  const m = /^\/\/ matrix-expect: (loads-everywhere|fails-somewhere|any)\s*$/m.exec(text);
  return m ? (m[1] as MatrixProgram['expect']) : undefined;
}

/** The kernel's verdicts: one row per program, one column per kernel. */
export function renderKernelTable(m: MatrixResults): string {
  const w = Math.max(7, ...m.programs.map((p) => p.source.length));
  const mark: Record<string, string> = { loaded: 'load', 'load-failed': 'FAIL', 'attach-failed': 'ATTACH', 'no-result': '?' };
  const lines = [
    `kernel verdicts (load: loaded and attached where bpftool can; FAIL: load failed; ATTACH: attach failed; ?: no result)`,
    `${'program'.padEnd(w)}  ${m.kernels.map((k) => k.majorMinor.padEnd(8)).join('')}`,
  ];
  for (const p of m.programs)
    lines.push(
      `${p.source.padEnd(w)}  ${m.kernels.map((k) => mark[m.results[p.source][k.release]?.verdict ?? 'no-result'].padEnd(8)).join('')}`.trimEnd(),
    );
  // Why, once per program and reason, with the kernels it holds on.
  lines.push('', 'why:');
  for (const p of m.programs) {
    const byReason = new Map<string, string[]>();
    for (const k of m.kernels) {
      const r = m.results[p.source][k.release];
      if (!r || r.verdict === 'loaded') continue;
      const key = `${mark[r.verdict]}: ${r.reason ? reasonWithProgram(r) : '(no reason printed)'}`;
      byReason.set(key, [...(byReason.get(key) ?? []), k.majorMinor]);
    }
    for (const [reason, ks] of byReason) lines.push(`  ${p.source} on ${ks.join(', ')}: ${reason}`);
  }
  return lines.join('\n');
}
