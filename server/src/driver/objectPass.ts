/**
 * The object pass over one document: compile it as its project does (compile.ts), once per
 * architecture among the target kernels, read the object and check it (rules/object.ts), and turn
 * the verdicts into findings at their source lines. The verdicts replace the source pass's findings
 * of the rules they decide — member and type existence of CO-RE reads — when the object has CO-RE
 * relocations (then they are every layout dependency it has); everything else keeps the source
 * pass's findings.
 */
import { basename, resolve } from 'node:path';
import { readBpfObject } from '../../../kernel-db/src/btf/object';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { isBccSite } from '../analysis/file';
import { LineIndex } from '../analysis/lines';
import { maskBpfMacros } from '../parse/bpfMacros';
import { type Finding, findingMessage, fitting, type Severity } from '../analysis/model';
import { checkObject } from '../rules/object';
import { type CompileError, compileBpf } from './compile';
import type { Project } from './project';
import type { Settings } from './settings';

/** The rules whose source findings the object pass replaces. */
export const OBJECT_DECIDES = new Set(['field-missing-in-range', 'type-missing-in-range']);

/** What the object pass did for a document. */
export type ObjectPass =
  | { readonly mode: 'object'; readonly arches: readonly string[]; readonly findings: Finding[]; readonly replaces: boolean }
  | {
      readonly mode: 'source';
      readonly reason: string;
      readonly errors: readonly CompileError[];
      /** The text compiled, the target kernels and the rule's setting, for `does-not-compile` findings. */
      readonly text?: string;
      readonly kernels?: readonly string[];
      readonly setting?: Severity | 'off';
    };

/** Runs the object pass for the document at `path` (its text `text`) against `kernels`. */
export async function objectPass(
  db: KernelDb,
  clang: string,
  path: string,
  text: string,
  project: Project,
  settings: Settings,
  kernels: readonly Kernel[],
): Promise<ObjectPass> {
  // BCC compiles the program itself, on each host, against that host's headers.
  if (settings.loader.kind === 'bcc' || maskBpfMacros(text).sites.some(isBccSite))
    return { mode: 'source', reason: 'a BCC program (BCC compiles it on each host)', errors: [] };
  const arches = project.flags.arch ? [project.flags.arch] : [...new Set(kernels.map((k) => k.arch))].sort();
  const lines = new LineIndex(text);
  const findings: Finding[] = [];
  let relocations = 0;
  for (const arch of arches) {
    const mine = kernels.filter((k) => k.arch === arch);
    if (mine.length === 0) continue;
    const c = await compileBpf(clang, path, project, arch);
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
    for (const v of checkObject(db, obj, mine, settings.loader)) {
      const setting = settings.rules[v.rule];
      if (setting === 'off' || !v.line || !v.file || resolve(project.command?.dir ?? '', v.file) !== resolve(path)) continue;
      const start = lines.offsetAt({ line: v.line - 1, character: Math.max(0, (v.column ?? 0) - 1) });
      const lineEnd = text.indexOf('\n', start);
      const range = lines.range(start, lineEnd < 0 ? text.length : lineEnd);
      const same = findings.find((f) => f.rule === v.rule && f.range.start.line === range.start.line && f.message === v.message);
      if (same) {
        same.kernels.push(...v.kernels.map((k) => k.name));
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
      });
    }
  }
  return { mode: 'object', arches, findings, replaces: relocations > 0 };
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

/** The document's findings with the object pass's applied. */
export function mergeObjectFindings(source: readonly Finding[], pass: ObjectPass): Finding[] {
  if (pass.mode !== 'object') return [...source, ...compileErrors(pass)];
  const kept = pass.replaces ? source.filter((f) => !OBJECT_DECIDES.has(f.rule)) : [...source];
  // Helper calls stay the source pass's (it also knows GPL, sleepable and program-type floors).
  const added = pass.findings.filter(
    (f) =>
      OBJECT_DECIDES.has(f.rule) && (pass.replaces || !kept.some((k) => k.rule === f.rule && k.range.start.line === f.range.start.line)),
  );
  return [...kept, ...added].sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
}
