/**
 * The object pass over one document: compile it as its project does (compile.ts), once per
 * architecture among the target kernels, read the object and check it (rules/object.ts), and turn
 * the verdicts into findings at their source lines. The verdicts replace the source pass's findings
 * of the rules they decide — member and type existence of CO-RE reads — when the object has CO-RE
 * relocations (then they are every layout dependency it has); everything else keeps the source
 * pass's findings.
 */
import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { readBpfObject } from '../../../kernel-db/src/btf/object';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { isBccSite } from '../analysis/file';
import { LineIndex } from '../analysis/lines';
import { maskBpfMacros } from '../parse/bpfMacros';
import { coreMacro } from '../analysis/coreMacros';
import { type Finding, findingMessage, fitting, type Severity } from '../analysis/model';
import { checkObjectSteps, type ObjectVerdict } from '../rules/object';

/** Each program's source lines in a compiled object (for the kernel matrix's per-program verdicts). */
export { programLines } from '../rules/object';
import { type CompileError, compileBpf } from './compile';
import type { Project } from './project';
import type { Settings } from './settings';

/** The rules whose source findings the object pass replaces. */
export const OBJECT_DECIDES = new Set(['field-missing-in-range', 'type-missing-in-range']);

/**
 * Where the object's code runs: the source lines of the document some instruction of which a
 * verifier reaches, per kernel. A line no instruction comes from (compiled away: an unused
 * function, a branch clang or the verifier folds) runs on no kernel.
 */
export interface ObjectReach {
  /** Names of the kernels the object pass checked; others are not narrowed. */
  readonly kernels: ReadonlySet<string>;
  /** 0-based line of the document → names of the kernels reaching an instruction of it. */
  readonly lines: ReadonlyMap<number, ReadonlySet<string>>;
}

/** What the object pass did for a document. */
export type ObjectPass =
  | {
      readonly mode: 'object';
      readonly arches: readonly string[];
      readonly findings: Finding[];
      readonly replaces: boolean;
      /** Absent when the object has no line information for the document. */
      readonly reach?: ObjectReach;
      /** Identifies the objects and kernels (for caches keyed by the analysis input). */
      readonly id: string;
      /** Whether an object has global data (a `.data`, `.rodata` or `.bss` section, or a `__kconfig` extern). */
      readonly globalData: boolean;
    }
  | {
      readonly mode: 'source';
      readonly reason: string;
      readonly errors: readonly CompileError[];
      /** The text compiled, the target kernels and the rule's setting, for `does-not-compile` findings. */
      readonly text?: string;
      readonly kernels?: readonly string[];
      readonly setting?: Severity | 'off';
    };

/** What {@link objectPass} throws when its `signal` stopped it. */
export class ObjectPassCancelled extends Error {
  constructor() {
    super('the object pass was cancelled');
    this.name = 'ObjectPassCancelled';
  }
}

/** How long the check of an object runs before it lets other work in (the analysis's own slice). */
const SLICE_MS = 20;

/**
 * Runs `steps` to the end in slices of {@link SLICE_MS}, the event loop served between two (a
 * keystroke is never kept waiting behind the check of an object); throws
 * {@link ObjectPassCancelled} at the first slice after `signal` stopped the pass.
 */
export async function inSlices<T>(steps: Generator<void, T, void>, signal?: AbortSignal): Promise<T> {
  for (;;) {
    const end = performance.now() + SLICE_MS;
    for (let r = steps.next(); ; r = steps.next()) {
      if (r.done) return r.value;
      if (performance.now() >= end) break;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) {
      steps.return(undefined as never);
      throw new ObjectPassCancelled();
    }
  }
}

/**
 * Runs the object pass for the document at `path` (its text `text`) against `kernels`. `signal`
 * stops it with {@link ObjectPassCancelled}: a running clang is killed, a check ends at its next
 * slice.
 */
export async function objectPass(
  db: KernelDb,
  clang: string,
  path: string,
  text: string,
  project: Project,
  settings: Settings,
  kernels: readonly Kernel[],
  signal?: AbortSignal,
): Promise<ObjectPass> {
  // BCC compiles the program itself, on each host, against that host's headers.
  if (settings.loader.kind === 'bcc' || maskBpfMacros(text).sites.some(isBccSite))
    return { mode: 'source', reason: 'a BCC program (BCC compiles it on each host)', errors: [] };
  const arches = project.flags.arch ? [project.flags.arch] : [...new Set(kernels.map((k) => k.arch))].sort();
  const lines = new LineIndex(text);
  const findings: Finding[] = [];
  let relocations = 0;
  const covered = new Set<string>();
  const reached = new Map<number, Set<string>>();
  let placed = false;
  let globalData = false;
  const id = createHash('sha1');
  for (const arch of arches) {
    const mine = kernels.filter((k) => k.arch === arch);
    if (mine.length === 0) continue;
    const c = await compileBpf(clang, path, project, arch, undefined, signal);
    // Checking an object is most of the pass's own work: not for a result no one will use.
    if (signal?.aborted) throw new ObjectPassCancelled();
    if (!c.ok)
      return {
        mode: 'source',
        reason: `${arch}: ${c.reason}`,
        errors: c.errors,
        text,
        kernels: kernels.map((k) => k.name),
        ...(settings.rules['does-not-compile'] ? { setting: settings.rules['does-not-compile'] } : {}),
      };
    let obj: ReturnType<typeof readBpfObject>;
    try {
      obj = readBpfObject(c.object, basename(path));
    } catch (e) {
      return { mode: 'source', reason: `${arch}: the object cannot be read: ${(e as Error).message}`, errors: [] };
    }
    relocations += obj.ext?.coreRelos.length ?? 0;
    globalData ||= obj.globalData.length > 0 || obj.externs.some((e) => e.kind === 'kconfig');
    id.update(c.object).update(mine.map((k) => k.name).join(','));
    const check = await inSlices(checkObjectSteps(db, obj, mine, settings.loader), signal);
    const here = (file: string) => resolve(project.command?.dir ?? '', file) === resolve(path);
    for (const k of mine) covered.add(k.name);
    for (const [file, byLine] of check.lines) {
      if (!here(file)) continue;
      placed = true;
      for (const [line, ks] of byLine) {
        let names = reached.get(line - 1);
        if (!names) reached.set(line - 1, (names = new Set()));
        for (const i of ks) names.add(mine[i].name);
      }
    }
    for (const v of check.verdicts) {
      const setting = settings.rules[v.rule];
      if (setting === 'off' || !v.line || !v.file || !here(v.file)) continue;
      const range = place(text, lines, v, reached);
      // One finding per subject and line: another arch's verdict adds its kernels; relocations of the
      // same read that clang spread over neighbouring lines, placed together, fail on the same kernels.
      const same = findings.find(
        (f) =>
          f.rule === v.rule &&
          f.range.start.line === range.start.line &&
          f.subject === v.subject &&
          (f.message === v.message || sameNames(f.kernels, v.kernels)),
      );
      if (same) {
        for (const k of v.kernels) if (!same.kernels.includes(k.name)) same.kernels.push(k.name);
        continue;
      }
      findings.push({
        rule: v.rule,
        severity: setting ?? 'error',
        message: v.message,
        range,
        kernels: v.kernels.map((k) => k.name),
        fixes: [],
        basis: 'object',
        subject: v.subject,
      });
    }
  }
  return {
    mode: 'object',
    arches,
    findings,
    replaces: relocations > 0,
    ...(placed ? { reach: { kernels: covered, lines: reached } } : {}),
    id: id.digest('base64'),
    globalData,
  };
}

function sameNames(names: readonly string[], kernels: readonly Kernel[]): boolean {
  return names.length === kernels.length && kernels.every((k) => names.includes(k.name));
}

/** A CO-RE existence check on a line: libbpf's macros, or clang's builtins with an existence kind. */
const EXISTENCE_CHECK =
  /\bbpf_core_(?:field|type|enum_value)_exists\s*\(|__builtin_preserve_field_info\([^;]*,\s*2\s*\)|__builtin_preserve_(?:type_info|enum_value)\([^;]*,\s*0\s*\)/;

/** The name a verdict is about, as the source spells it: the member, type, enumerator, helper or kfunc. */
function nameOf(v: ObjectVerdict): string | undefined {
  const s = v.subject;
  if (v.rule === 'helper-unavailable' || v.rule === 'kfunc-unavailable') return s;
  if (s.includes('::')) return s.split('::').pop();
  const member = s.includes(': ') ? s.split(': ').pop()!.split('.').pop() : s.split(' ').pop();
  return member?.replace(/\[.*$/, '').replace(/___\w*$/, '') || undefined;
}

/**
 * Where a verdict goes in the document: on its name in the line line_info gives; where clang put the
 * instruction on another line (merged or hoisted code), on the nearest line within a few (later
 * ones first) that names it and that a failing kernel reaches; else on the rest of the line.
 */
function place(text: string, lines: LineIndex, v: ObjectVerdict, reached: ReadonlyMap<number, ReadonlySet<string>>) {
  const lineText = (l: number) => {
    const a = lines.offsetAt({ line: l, character: 0 });
    const e = text.indexOf('\n', a);
    return { a, text: text.slice(a, e < 0 ? text.length : e) };
  };
  const name = nameOf(v);
  const home = v.line! - 1;
  if (name) {
    const word = new RegExp(`\\b${name.replace(/[^\w]/g, '')}\\b`);
    const failing = new Set(v.kernels.map((k) => k.name));
    const near = [home];
    // Hoisted code comes from later lines: those first.
    for (let d = 1; d <= 8; d++) near.push(home + d);
    for (let d = 1; d <= 8; d++) near.push(home - d);
    const found = near
      .filter((l) => l >= 0 && l < lines.lineCount && (l === home || [...(reached.get(l) ?? [])].some((k) => failing.has(k))))
      .map((l) => ({ l, t: lineText(l) }))
      .map(({ l, t }) => ({ l, t, m: word.exec(t.text) }))
      .filter((c) => c.m);
    // A line that only checks the member's existence is where the guard is, not the read.
    const best = found.find((c) => !EXISTENCE_CHECK.test(c.t.text)) ?? found[0];
    if (best?.m) return lines.range(best.t.a + best.m.index, best.t.a + best.m.index + best.m[0].length);
  }
  const start = lines.offsetAt({ line: home, character: Math.max(0, (v.column ?? 0) - 1) });
  const lineEnd = text.indexOf('\n', start);
  return lines.range(start, lineEnd < 0 ? text.length : lineEnd);
}

/** clang's errors in the file as findings: not those of a header it cannot find (the include path's). */
function compileErrors(pass: Extract<ObjectPass, { mode: 'source' }>): Finding[] {
  const setting = pass.setting;
  if (!pass.text || setting === 'off') return [];
  const lines = new LineIndex(pass.text);
  return pass.errors
    .filter((e) => !/file not found/.test(e.message))
    .map((e) => {
      const start = lines.offsetAt({ line: e.line - 1, character: Math.max(0, e.column - 1) });
      const end = pass.text!.indexOf('\n', start);
      return {
        rule: 'does-not-compile',
        severity: setting ?? 'warning',
        message: findingMessage(
          fitting(`clang cannot compile the file as its project does: ${e.message}`, 'clang cannot compile the file as its project does'),
          `clang: ${e.message}`,
          'The object pass did not run; the findings are the source pass alone.',
        ),
        range: lines.range(start, end < 0 ? pass.text!.length : end),
        kernels: [...(pass.kernels ?? [])],
        fixes: [],
      };
    });
}

/**
 * The document's findings with the object pass's applied. Its verdicts replace the source pass's
 * member and type existence findings; its kfunc prototype verdicts join where the source pass
 * compared no declaration (one from vmlinux.h, or a header); its helper verdicts join only for calls the source pass does not see (a helper
 * called through a project macro), since the source pass also knows GPL, sleepable and per-type
 * floors. An object without global data drops the source pass's global data finding. Everything
 * else the source pass found stands, already narrowed to the kernels that run the code (`reach`).
 */
export function mergeObjectFindings(source: readonly Finding[], pass: ObjectPass, text: string): Finding[] {
  if (pass.mode !== 'object') return [...source, ...compileErrors(pass)];
  // Objects without global data need no support for it, whatever the source seemed to declare
  // (a static clang folded away).
  const kept = source.filter(
    (f) => (pass.replaces ? !OBJECT_DECIDES.has(f.rule) : true) && (pass.globalData || f.rule !== 'verifier-global-data'),
  );
  const lines = new LineIndex(text);
  const added = pass.findings.filter((f) => {
    if (OBJECT_DECIDES.has(f.rule))
      return pass.replaces || !kept.some((k) => k.rule === f.rule && k.range.start.line === f.range.start.line);
    // Prototypes: the source pass compares the declarations it can read; the object the rest.
    if (f.rule === 'kfunc-unavailable')
      return !kept.some(
        (k) => k.rule === f.rule && k.range.start.line === f.range.start.line && /prototype/.test(k.message.split('\n')[0]),
      );
    return f.rule === 'helper-unavailable' && !!f.subject && !seenBySource(lineText(text, lines, f.range.start.line), f.subject);
  });
  return [...kept, ...added].sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
}

function lineText(text: string, lines: LineIndex, line: number): string {
  const start = lines.offsetAt({ line, character: 0 });
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? text.length : end);
}

/** Whether a line calls helper `name` where the source pass sees it: by name, or through a CO-RE read macro. */
function seenBySource(line: string, name: string): boolean {
  for (const m of line.matchAll(/\b([A-Za-z_]\w*)\s*\(/g)) {
    const id = m[1];
    if (id === name || coreMacro(id)) return true;
  }
  return false;
}
