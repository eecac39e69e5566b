/**
 * The portability report, one row per program (a function with `SEC()`, or a BCC probe): its
 * file, function, SEC and program type; per architecture the oldest kernel from which it loads on
 * every target kernel of that architecture (from the analysis: the error findings in the program,
 * in the functions it calls, and in the file outside functions — maps, externs, the license —,
 * which fail the object wherever it loads); the version floor the facts give and the helpers,
 * kfuncs, map and program types that set it; the CONFIG options they need; and the target kernels
 * it fails on. Plus the programs × target kernels grid (loads, fails, attach fails, unknown) from
 * the same findings. The CLI's `requirements` prints it (Markdown, JSON, CSV); the language server
 * answers it for an open document (the report webview and the code lenses).
 */
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { versionRanges } from '../../../kernel-db/src/query/summary';
import { compareVersions, majorMinor } from '../../../kernel-db/src/version';
import { buildFileModel, type FileModel, type FunctionInfo } from '../analysis/file';
import { calleeName, callsIn, localNames } from '../analysis/calls';
import type { Finding } from '../analysis/model';
import type { Tree } from 'web-tree-sitter';
import { computeLineStarts, offsetAt, positionAt } from '../parse/positions';
import { type AttachPoint, attachPoints, usesTrampoline } from './ruleInfo';

/** What sets a program's version floor, with its version from the facts. */
export interface FloorItem {
  readonly kind: 'section' | 'program type' | 'helper' | 'kfunc' | 'map type';
  readonly name: string;
  readonly since: string;
}

/** One program of the report. */
export interface ProgramRequirements {
  readonly file: string;
  readonly function: string;
  readonly sec: string;
  /** `BPF_PROG_TYPE_…`, when the section facts know the SEC. */
  readonly progType?: string;
  /**
   * Per architecture of the target: the oldest kernel version from which the program loads on
   * every target kernel of that architecture (null: it fails on the newest), and whether it loads
   * on all of them.
   */
  readonly minKernel: Record<string, { version: string | null; all: boolean }>;
  /** The highest `since` among what the program uses, per the facts. */
  readonly floor?: string;
  /** What the program uses that has a `since`, the ones that set the floor first. */
  readonly uses: FloorItem[];
  readonly configs: string[];
  /** Target kernels (names) the program fails to load on. */
  readonly failsOn: string[];
  /** {@link failsOn} as version ranges. */
  readonly failsOnSummary: string;
  /** How many target kernels the file was checked against. */
  readonly targetKernels: number;
}

/** What the report needs of an analysed file: the name it prints and the findings (severities applied). */
export interface AnalysedFile {
  readonly path: string;
  readonly findings: readonly Finding[];
}

/** The rows of one analysed file's programs. */
export function programRequirements(db: KernelDb, r: AnalysedFile, model: FileModel, kernels: readonly Kernel[]): ProgramRequirements[] {
  return programsOf(db, r, model, kernels).map((p) => p.row);
}

/** Whether a finding fails the attach, not the load: a kprobe, tracepoint or raw tracepoint whose target is missing. */
const failsAttachOnly = (f: Finding) => f.rule === 'attach-target-missing-in-range' && /\battaching\b/.test(f.message);

/** A program of the file: its row, the error findings that fail it, whether config-required speaks of it, its `SEC()` line. */
interface Program {
  readonly row: ProgramRequirements;
  readonly errors: Finding[];
  readonly configUnknown: boolean;
  readonly line: number;
}

/**
 * Each program's row with the error findings that fail it: those in the program and the functions
 * it calls, and those outside every function (maps, externs, the license, a `SEC()`), which fail
 * the whole object where they fail the load (libbpf loads every program of an object or none); a
 * missing attach target fails only the program that attaches to it.
 */
function programsOf(db: KernelDb, r: AnalysedFile, model: FileModel, kernels: readonly Kernel[]): Program[] {
  const text = model.text;
  const starts = computeLineStarts(text);
  const offsetOf = (f: Finding) => offsetAt(text, starts, f.range.start);
  const inside = (fn: FunctionInfo, off: number) => off >= fn.node.startIndex && off < fn.node.endIndex;
  const points = attachPoints(model, db.facts);
  const belongs = (f: Finding, reach: readonly FunctionInfo[], point: AttachPoint) => {
    const off = offsetOf(f);
    if (model.functions.some((fn) => inside(fn, off))) return reach.some((g) => inside(g, off));
    if (!failsAttachOnly(f)) return true;
    const at = points.find((p) => off >= p.span.start && off < p.span.end);
    return !at || at === point;
  };
  const facts = db.facts;
  const implied = new Set(facts.analysis.implied_configs.map((c) => c.name));
  const locals = localNames(model);
  // Map types of the file: the loader creates every map of the object when it loads.
  const maps = model
    .sites()
    .filter((s) => s.kind === 'map-member' && s.member === 'type' && /^BPF_MAP_TYPE_\w+$/.test(s.value.text))
    .map((s) => (s.kind === 'map-member' ? s.value.text : ''));
  const rows: Program[] = [];
  // The programs: functions with SEC() (without libbpf's optional `?`), and BCC's probes.
  for (const point of points) {
    const fn = model.functions.find((f) => f.name === point.program);
    if (!fn) continue;
    const sec = point.sec;
    const reach = reachable(model, fn);
    const mine = r.findings.filter((f) => belongs(f, reach, point));
    const errors = mine.filter((f) => f.severity === 'error');
    const failing = new Set(errors.flatMap((f) => f.kernels));
    const section = facts.section(sec);
    const progType = section?.fact.prog_type ?? undefined;
    const uses: FloorItem[] = [];
    const configs = new Set<string>();
    if (section) {
      if (section.fact.since_kernel)
        uses.push({ kind: 'section', name: point.bcc ? point.written : `SEC("${sec}")`, since: section.fact.since_kernel });
      for (const c of section.fact.configs ?? []) {
        const exempt = facts.analysis.config_exemptions.some(
          (e) => e.config === c && section.fact.prefix.startsWith(e.section_prefix) && section.target.startsWith(e.target_prefix),
        );
        if (!exempt) configs.add(c);
      }
    }
    const pt = progType ? facts.progTypes.find((p) => p.name === progType) : undefined;
    if (pt) {
      uses.push({ kind: 'program type', name: pt.name, since: pt.since });
      for (const c of pt.configs ?? []) configs.add(c);
    }
    // Trampolines attached to kernel functions need ftrace direct calls beyond the section's own.
    if (section && usesTrampoline(section.fact))
      for (const c of facts.analysis.trampoline_configs) if (progType && c.prog_types.includes(progType)) configs.add(c.name);
    const called = new Set<string>();
    for (const g of reach)
      for (const call of g.body ? callsIn(g.body) : []) {
        const name = calleeName(call, text);
        if (name && !locals.has(name)) called.add(name);
      }
    for (const name of [...called].sort()) {
      const h = facts.helper(name);
      if (h) {
        const perType = progType ? facts.helperProgTypeFloor(name, progType) : undefined;
        const since = perType && compareVersions(perType, h.since) > 0 ? perType : h.since;
        uses.push({ kind: 'helper', name, since });
        for (const c of h.configs ?? []) configs.add(c);
        continue;
      }
      const ext = model.externs.get(name);
      const k = ext?.kind === 'ksym' && ext.isFunction ? facts.kfunc(name) : undefined;
      if (k) uses.push({ kind: 'kfunc', name, since: k.since });
    }
    for (const m of [...new Set(maps)].sort()) {
      const mt = facts.mapTypes.find((x) => x.name === m);
      if (mt) {
        uses.push({ kind: 'map type', name: m, since: mt.since });
        for (const c of mt.configs ?? []) configs.add(c);
      }
    }
    for (const c of implied) configs.delete(c);
    uses.sort((a, b) => compareVersions(b.since, a.since) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
    const failsOn = kernels.filter((k) => failing.has(k.name));
    rows.push({
      errors,
      configUnknown: mine.some((f) => f.rule === 'config-required'),
      line: positionAt(text, starts, point.span.start).line,
      row: {
        file: r.path,
        function: fn.name,
        sec,
        ...(progType ? { progType } : {}),
        minKernel: minKernels(kernels, failing),
        ...(uses.length ? { floor: majorMinor(uses[0].since) } : {}),
        uses,
        configs: [...configs].sort(),
        failsOn: failsOn.map((k) => k.name),
        failsOnSummary: failsOn.length ? versionRanges(failsOn, kernels) : '',
        targetKernels: kernels.length,
      },
    });
  }
  return rows;
}

/** `fn` and the functions of the file it calls, directly or not. */
function reachable(model: FileModel, fn: FunctionInfo): FunctionInfo[] {
  const byName = new Map(model.functions.map((f) => [f.name, f]));
  const seen = new Set<FunctionInfo>([fn]);
  const todo = [fn];
  while (todo.length) {
    const f = todo.pop()!;
    for (const call of f.body ? callsIn(f.body) : []) {
      const g = byName.get(calleeName(call, model.text) ?? '');
      if (g && !seen.has(g)) {
        seen.add(g);
        todo.push(g);
      }
    }
  }
  return [...seen];
}

/**
 * Per architecture, the oldest version from which every target kernel of that architecture
 * loads the program (kernels taken by version, not by their order in the database).
 */
export function minKernels(
  kernels: readonly Kernel[],
  failing: ReadonlySet<string>,
): Record<string, { version: string | null; all: boolean }> {
  const out: Record<string, { version: string | null; all: boolean }> = {};
  for (const arch of [...new Set(kernels.map((k) => k.arch))].sort()) {
    const ks = kernels.filter((k) => k.arch === arch).sort((a, b) => compareVersions(a.version, b.version));
    // Walk down from the newest while every kernel of a version loads.
    const versions = [...new Set(ks.map((k) => majorMinor(k.version)))].sort(compareVersions);
    let min: string | null = null;
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i];
      if (ks.some((k) => majorMinor(k.version) === v && failing.has(k.name))) break;
      min = v;
    }
    out[arch] = { version: min, all: min === versions[0] };
  }
  return out;
}

const cell = (m: { version: string | null; all: boolean } | undefined) =>
  !m ? '' : m.version === null ? 'none' : m.all ? `${m.version} (all targets)` : `≥ ${m.version}`;

const floorText = (r: ProgramRequirements) => {
  if (!r.floor) return '';
  const setters = r.uses.filter((u) => majorMinor(u.since) === r.floor).map((u) => u.name);
  return `${r.floor}: ${setters.join(', ')}`;
};

/** The report as Markdown (what `requirements` prints by default and the editor exports). */
export function requirementsMarkdown(
  rows: readonly ProgramRequirements[],
  arches: readonly string[],
  target: string,
  count: number,
): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const header = [
    'File',
    'Function',
    'SEC',
    'Program type',
    ...arches.map((a) => `Min kernel (${a})`),
    'Floor (facts)',
    'CONFIG',
    'Fails on',
  ];
  const lines = [
    `# Portability report`,
    '',
    `Target: ${target} (${count} kernel${count === 1 ? '' : 's'}). "Min kernel": the oldest version from which the program loads on every target kernel of the architecture; "Floor": the newest \`since\` of what it uses, per the facts.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${[
          r.file,
          `\`${r.function}\``,
          `\`${r.sec}\``,
          r.progType?.replace(/^BPF_PROG_TYPE_/, '').toLowerCase() ?? 'unknown',
          ...arches.map((a) => cell(r.minKernel[a])),
          floorText(r),
          r.configs.join(', '),
          r.failsOn.length ? `${r.failsOn.length}/${r.targetKernels}: ${r.failsOnSummary}` : 'none',
        ]
          .map(esc)
          .join(' | ')} |`,
    ),
    '',
  ];
  return `${lines.join('\n')}`;
}

/** The report as CSV. */
export function requirementsCsv(rows: readonly ProgramRequirements[], arches: readonly string[]): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const header = [
    'file',
    'function',
    'sec',
    'prog_type',
    ...arches.map((a) => `min_kernel_${a}`),
    'floor',
    'floor_set_by',
    'configs',
    'fails_on_count',
    'target_kernels',
    'fails_on',
  ];
  const out = [header.join(',')];
  for (const r of rows)
    out.push(
      [
        r.file,
        r.function,
        r.sec,
        r.progType ?? '',
        ...arches.map((a) => r.minKernel[a]?.version ?? 'none'),
        r.floor ?? '',
        r.uses
          .filter((u) => majorMinor(u.since) === r.floor)
          .map((u) => u.name)
          .join(' '),
        r.configs.join(' '),
        String(r.failsOn.length),
        String(r.targetKernels),
        r.failsOnSummary,
      ]
        .map(q)
        .join(','),
    );
  return `${out.join('\n')}\n`;
}

/**
 * A program's outcome on one target kernel: `loads`; `fails` (an error finding fails the load
 * there); `attach-fails` (it loads, but what it attaches to is missing there: only
 * attach-target-missing-in-range findings whose consequence is the attach); `unknown` (nothing
 * fails, but config-required found options the program needs off on some target kernels, and
 * this kernel's config is not known: the rule counts it as unknown too).
 */
export type Outcome = 'loads' | 'fails' | 'attach-fails' | 'unknown';

/** One target kernel of the grid. */
export interface GridKernel {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly distro: string;
}

/** One program's row of the grid: an outcome per kernel of {@link PortabilityReport.kernels}, and why. */
export interface GridRow {
  readonly function: string;
  /** The 0-based line of the program's `SEC()` (or BCC probe name), where the editor puts its code lens. */
  readonly line: number;
  readonly sec: string;
  readonly outcomes: Outcome[];
  /** Per kernel, the rules of the findings behind a failure (empty where it loads). */
  readonly rules: string[][];
  /** The program's CONFIG options that some target kernel with a known config has off (or unset). */
  readonly configsOff: string[];
}

/** The report of one analysed file: the rows of {@link programRequirements} and the grid. */
export interface PortabilityReport {
  readonly programs: ProgramRequirements[];
  /** The target kernels, by architecture then version. */
  readonly kernels: GridKernel[];
  readonly grid: GridRow[];
}

/** The report of one analysed file's programs, with the programs × target kernels grid. */
export function portabilityReport(db: KernelDb, r: AnalysedFile, model: FileModel, kernels: readonly Kernel[]): PortabilityReport {
  const ordered = [...kernels].sort(
    (a, b) => a.arch.localeCompare(b.arch) || compareVersions(a.version, b.version) || a.name.localeCompare(b.name),
  );
  const programs = programsOf(db, r, model, kernels);
  const grid = programs.map(({ row, errors, configUnknown, line }) => {
    const outcomes: Outcome[] = [];
    const rules: string[][] = [];
    for (const k of ordered) {
      const here = errors.filter((f) => f.kernels.includes(k.name));
      rules.push([...new Set(here.map((f) => f.rule))].sort());
      if (here.some((f) => !failsAttachOnly(f))) outcomes.push('fails');
      else if (here.length) outcomes.push('attach-fails');
      else if (configUnknown && !k.hasConfig) outcomes.push('unknown');
      else outcomes.push('loads');
    }
    const configsOff = row.configs.filter((c) => db.config(c, kernels).some((v) => v.present === false));
    return { function: row.function, line, sec: row.sec, outcomes, rules, configsOff };
  });
  return {
    programs: programs.map((p) => p.row),
    kernels: ordered.map((k) => ({ name: k.name, version: k.version, arch: k.arch, distro: k.distro })),
    grid,
  };
}

/**
 * A program's one-line summary (the editor's code lens): "loads on 61/81 target kernels · needs
 * ≥ 5.8 · CONFIG_BPF_LSM". The count is the target kernels not in {@link ProgramRequirements.failsOn};
 * the version is the floor the facts give; the options are those some target kernel has off
 * ({@link GridRow.configsOff}), not those every kernel has on.
 */
export function programSummary(row: ProgramRequirements, grid: GridRow): string {
  const loads = row.targetKernels - row.failsOn.length;
  const parts = [`loads on ${loads}/${row.targetKernels} target kernel${row.targetKernels === 1 ? '' : 's'}`];
  if (row.floor) parts.push(`needs ≥ ${row.floor}`);
  if (grid.configsOff.length) parts.push(grid.configsOff.join(', '));
  return parts.join(' · ');
}

/**
 * The report of an open document (the language server's): its file model built from the
 * document's tree, `findings` those its diagnostics show, `kernels` its target.
 */
export function documentReport(
  db: KernelDb,
  file: AnalysedFile & { readonly uri: string; readonly text: string; readonly tree: Tree },
  kernels: readonly Kernel[],
): PortabilityReport {
  return portabilityReport(db, file, buildFileModel(file.uri, file.text, file.tree), kernels);
}
