/**
 * `ebpf-portability requirements <paths>`: the portability report, one row per program (a
 * function with `SEC()`): its file, function, SEC and program type; per architecture the oldest
 * kernel from which it loads on every target kernel of that architecture (from the analysis: the
 * error findings in the program, in the functions it calls, and in the file outside functions —
 * maps, externs, the license —, which fail the object wherever it loads); the version floor the
 * facts give and the helpers, kfuncs, map and program types that set it; the CONFIG options they
 * need; and the target kernels it fails on. Markdown (default), JSON or CSV.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Kernel, KernelDb } from '../../kernel-db/src/query/db';
import { versionRanges } from '../../kernel-db/src/query/summary';
import { compareVersions, majorMinor } from '../../kernel-db/src/version';
import { buildFileModel, type FileModel, type FunctionInfo } from '../../server/src/analysis/file';
import { calleeName, callsIn, localNames } from '../../server/src/analysis/calls';
import type { Finding } from '../../server/src/analysis/model';
import { attachPoints, usesTrampoline } from '../../server/src/driver/ruleInfo';
import { computeLineStarts, offsetAt } from '../../server/src/parse/positions';
import { loadCParser } from '../../server/src/parse/documents';
import { parseArgs, UsageError } from './args';
import { ANALYSIS_OPTIONS, analysisSetup, analyzeInputs, type FileResult, withAnalysisSpec } from './check';
import type { Io } from './db';

const USAGE = `usage: ebpf-portability requirements <files|dirs…> [options]

The portability report: one row per program (a function with SEC()) with its program type, the
oldest kernel per architecture from which it loads on every target kernel, the version floor the
facts give and what sets it (helpers, kfuncs, map and program types), the CONFIG options those
need, and the target kernels it fails on.

options:
  --format F            markdown (default), json or csv
${ANALYSIS_OPTIONS}

exit status: 0 the report was written, 2 bad usage, unreadable input or no BPF C file found
`;

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

/** Runs `requirements`; returns the exit status. */
export async function requirementsCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, withAnalysisSpec({ valued: ['format'] }));
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length === 0) throw new UsageError('requirements needs at least one file or directory');
  const format = args.options.get('format') ?? 'markdown';
  if (format !== 'markdown' && format !== 'json' && format !== 'csv')
    throw new UsageError(`--format must be markdown, json or csv, not "${format}"`);
  const setup = analysisSetup(args);
  const run = await analyzeInputs(setup, args.positional, false);
  const parser = await loadCParser();
  const rows: ProgramRequirements[] = [];
  for (const r of run.results) {
    for (const e of r.error ? [r.error] : []) io.err(`${r.path}: ${e}\n`);
    for (const x of r.failures ?? []) io.err(`${r.path}: error: ${x.rule ? `rule ${x.rule} failed: ` : ''}${x.message}\n`);
    if (r.text === undefined || r.error) continue;
    const tree = parser.parseText(r.text);
    if (!tree) continue;
    try {
      const model = buildFileModel(pathToFileURL(resolve(r.path)).toString(), r.text, tree);
      rows.push(...programRequirements(setup.db, r, model, r.kernels ?? setup.kernels));
    } finally {
      tree.delete();
    }
  }
  const arches = [...new Set(setup.kernels.map((k) => k.arch))].sort();
  if (format === 'json') io.out(`${JSON.stringify({ version: 1, target: setup.settings.targetKernels, programs: rows }, null, 2)}\n`);
  else if (format === 'csv') io.out(csv(rows, arches));
  else io.out(markdown(rows, arches, setup.settings.targetKernels, setup.kernels.length));
  for (const p of run.problems) io.err(`warning: ${p}\n`);
  return run.unreadable || run.results.some((r) => r.failures) ? 2 : 0;
}

/** The rows of one analysed file's programs. */
export function programRequirements(db: KernelDb, r: FileResult, model: FileModel, kernels: readonly Kernel[]): ProgramRequirements[] {
  const text = model.text;
  const starts = computeLineStarts(text);
  const offsetOf = (f: Finding) => offsetAt(text, starts, f.range.start);
  const inside = (fn: FunctionInfo, off: number) => off >= fn.node.startIndex && off < fn.node.endIndex;
  const errors = r.findings.filter((f) => f.severity === 'error');
  // Findings outside every function (maps, externs, the license) fail the whole object.
  const fileLevel = errors.filter((f) => !model.functions.some((fn) => inside(fn, offsetOf(f))));
  const facts = db.facts;
  const implied = new Set(facts.analysis.implied_configs.map((c) => c.name));
  const locals = localNames(model);
  // Map types of the file: the loader creates every map of the object when it loads.
  const maps = model
    .sites()
    .filter((s) => s.kind === 'map-member' && s.member === 'type' && /^BPF_MAP_TYPE_\w+$/.test(s.value.text))
    .map((s) => (s.kind === 'map-member' ? s.value.text : ''));
  const rows: ProgramRequirements[] = [];
  // The programs: functions with SEC() (without libbpf's optional `?`), and BCC's probes.
  for (const point of attachPoints(model)) {
    const fn = model.functions.find((f) => f.name === point.program);
    if (!fn) continue;
    const sec = point.sec;
    const reach = reachable(model, fn);
    const own = errors.filter((f) => reach.some((g) => inside(g, offsetOf(f))));
    const failing = new Set([...own, ...fileLevel].flatMap((f) => f.kernels));
    const section = facts.section(sec);
    const progType = section?.fact.prog_type ?? undefined;
    const uses: FloorItem[] = [];
    const configs = new Set<string>();
    if (section) {
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

function markdown(rows: readonly ProgramRequirements[], arches: readonly string[], target: string, count: number): string {
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

function csv(rows: readonly ProgramRequirements[], arches: readonly string[]): string {
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
