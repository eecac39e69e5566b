/**
 * BCC tools written in Python: the programs `parse/python.ts` finds in the file are analysed as
 * BCC compiles them (loader `bcc`), each on the target kernels where the probes its Python makes
 * choose it, and every finding, fix and related place is moved back onto the Python text through
 * the program's offset map. Findings on text the Python does not spell (a `%s`, an unknown value,
 * a placeholder no followed `.replace` fills) are dropped: what cannot be followed stays silent.
 */
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { parseLoader } from '../analysis/loader';
import { LineIndex } from '../analysis/lines';
import { type Finding, headlineOf, type Range } from '../analysis/model';
import { type BccProbe, type BccProbeAnswer, extractBccPython, type PyProgram, toPython, touchesSynthetic } from '../parse/python';
import type { Tree } from 'web-tree-sitter';
import type { AnalysisFailure } from './analyze';
import type { Settings } from './settings';

type SettingKey = keyof Settings;

/** What this module needs of the engine's result of one document. */
interface DocumentResult {
  readonly findings: Finding[];
  readonly kernels: readonly Kernel[];
  readonly problems: string[];
  readonly settings: Settings;
  readonly projectFiles: string[];
  readonly failures: AnalysisFailure[];
}

/** What this module needs of the engine (it is called by the engine for Python documents). */
export interface PythonHost {
  readonly db: KernelDb;
  documentTarget(uri: string, text: string, settings: Settings): { settings: Settings; kernels: Kernel[] };
  analyzeDocument(
    uri: string,
    text: string,
    tree: Tree,
    settings: Settings,
    reuse: boolean,
    sites: undefined,
    pinned: ReadonlySet<SettingKey>,
    object: undefined,
    narrow: (kernels: Kernel[]) => Kernel[],
  ): DocumentResult;
}

/** Whether a document is a Python file, by its path or URI (not one of the virtual C documents made of it). */
export function isPythonDocument(uri: string): boolean {
  return /\.py$/i.test(uri) && !uri.includes('#bcc-');
}

/** Whether a probe answers `value` on kernel `k`: true, false, or null (the data cannot say). */
function probeOn(db: KernelDb, probe: BccProbe, k: Kernel): boolean | null {
  switch (probe.kind) {
    case 'field':
      return db.fieldOn(probe.struct, probe.field, k).present;
    case 'tracepoint':
      return db.tracepoint(`${probe.category}/${probe.event}`, [k])[0].present;
    case 'function':
      return db.func(probe.name, [k])[0].present;
    case 'enum':
      return db.enumValue(probe.enum, probe.value, [k])[0].present;
    case 'raw_tracepoint':
      return db.progType('BPF_PROG_TYPE_RAW_TRACEPOINT', [k]).kernels[0].present;
    case 'kfunc':
      return db.progType('BPF_PROG_TYPE_TRACING', [k]).kernels[0].present;
    case 'lsm':
      return db.progType('BPF_PROG_TYPE_LSM', [k]).kernels[0].present;
  }
}

/** The kernels on which a set of probe answers holds (a kernel whose data cannot say is kept). */
function answered(db: KernelDb, kernels: Kernel[], answers: readonly BccProbeAnswer[]): Kernel[] {
  return kernels.filter((k) =>
    answers.every((a) => {
      const v = probeOn(db, a.probe, k);
      return v === null || v === a.value;
    }),
  );
}

/** The kernels a program runs on: those where any of the answer sets that build it holds. */
export function programKernels(db: KernelDb, kernels: Kernel[], program: Pick<PyProgram, 'when'>): Kernel[] {
  const keep = new Set<string>();
  for (const w of program.when) for (const k of answered(db, kernels, w)) keep.add(k.name);
  return kernels.filter((k) => keep.has(k.name));
}

/** Moves a virtual range onto the Python text; undefined when it touches what the Python does not spell. */
function mapRange(program: PyProgram, cLines: LineIndex, pyLines: LineIndex, r: Range): Range | undefined {
  const start = cLines.offsetAt(r.start);
  const end = cLines.offsetAt(r.end);
  if (touchesSynthetic(program, start, end)) return undefined;
  const s = toPython(program, start, 'start');
  const e = toPython(program, end, 'end');
  if (s.synthetic || e.synthetic || e.py < s.py) return undefined;
  return pyLines.range(s.py, e.py);
}

/** A finding of a program moved onto the Python text, or undefined when it rests on unfollowed text. */
function mapFinding(program: PyProgram, cLines: LineIndex, pyLines: LineIndex, f: Finding, why: string | undefined): Finding | undefined {
  const range = mapRange(program, cLines, pyLines, f.range);
  if (!range) return undefined;
  const fixes = f.fixes.flatMap((fix) => {
    const edits = fix.edits.map((e) => {
      const r = mapRange(program, cLines, pyLines, e.range);
      return r ? { range: r, newText: e.newText } : undefined;
    });
    return edits.every((e) => e) ? [{ ...fix, edits: edits as { range: Range; newText: string }[] }] : [];
  });
  const related = f.related?.flatMap((x) => {
    const r = mapRange(program, cLines, pyLines, x.range);
    return r ? [{ range: r, message: x.message }] : [];
  });
  const uses = f.uses?.flatMap((u) => {
    const r = mapRange(program, cLines, pyLines, u);
    return r ? [r] : [];
  });
  return {
    ...f,
    message: why ? `${f.message}\n${why}` : f.message,
    range,
    fixes,
    ...(related ? { related } : {}),
    ...(uses ? { uses } : {}),
  };
}

/** Why a program variant runs where it runs (the probes its Python makes), for the finding's details. */
function variantNote(program: PyProgram): string | undefined {
  const sets = program.when.filter((w) => w.length);
  if (sets.length !== program.when.length || !sets.length || sets.length > 2) return undefined;
  const says = (a: BccProbeAnswer) => `${a.source.replace(/\s+/g, ' ')} is ${a.value ? 'true' : 'false'}`;
  return `This is the program the Python builds where ${sets.map((w) => w.map(says).join(' and ')).join(', or where ')}.`;
}

/**
 * Analyses the BCC programs of a Python file: one result whose findings are on the Python text.
 * A file that does not import bcc, or holds no program the Python spells, has no findings.
 */
export function analyzePython(
  engine: PythonHost,
  parse: (text: string) => Tree | undefined,
  uri: string,
  text: string,
  settings: Settings,
  pinned: ReadonlySet<SettingKey> = new Set(),
  reuse = false,
): DocumentResult & { programs: number } {
  const bcc = extractBccPython(text);
  const loaderPinned = new Set<SettingKey>([...pinned, 'loader']);
  const bccSettings: Settings = { ...settings, loader: parseLoader('bcc')! };
  const target = engine.documentTarget(uri, '', settings);
  const pyLines = new LineIndex(text);
  const findings: Finding[] = [];
  const seen = new Set<string>();
  const problems = new Set<string>();
  const failures: AnalysisFailure[] = [];
  let settingsUsed: Settings = { ...target.settings, loader: bccSettings.loader };
  let projectFiles: string[] = [];
  for (const [n, program] of bcc.programs.entries()) {
    const tree = parse(program.text);
    if (!tree) continue;
    try {
      // Each variant is its own document to the engine (its reuse cache is its own).
      const r = engine.analyzeDocument(
        `${uri}#bcc-${n}`,
        program.text,
        tree,
        bccSettings,
        reuse,
        undefined,
        loaderPinned,
        undefined,
        (ks) => programKernels(engine.db, ks, program),
      );
      settingsUsed = r.settings;
      projectFiles = r.projectFiles;
      for (const p of r.problems) problems.add(p);
      failures.push(...r.failures);
      const cLines = new LineIndex(program.text);
      const why = r.kernels.length < target.kernels.length ? variantNote(program) : undefined;
      for (const f of r.findings) {
        const m = mapFinding(program, cLines, pyLines, f, f.severity === 'info' ? undefined : why);
        if (!m) continue;
        // A note (info) every variant makes at the same place is kept once, as the first variant says it.
        const said = m.severity === 'info' ? headlineOf(m.message) : m.message;
        const key = `${m.rule}\u0000${m.range.start.line}:${m.range.start.character}-${m.range.end.line}:${m.range.end.character}\u0000${said}`;
        if (seen.has(key)) continue;
        seen.add(key);
        findings.push(m);
      }
    } finally {
      tree.delete();
    }
  }
  findings.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
  return {
    findings,
    kernels: target.kernels,
    problems: [...problems],
    settings: settingsUsed,
    projectFiles,
    failures,
    programs: bcc.programs.length,
  };
}
