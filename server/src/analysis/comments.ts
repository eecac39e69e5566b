/**
 * Comments that steer the linter:
 *
 *   // ebpf-portability-disable-next-line field-missing-in-range, helper-unavailable
 *   /* ebpf-portability-disable non-core-field-read *\/ … /* ebpf-portability-enable non-core-field-read *\/
 *   // ebpf-portability: target=5.8-7.x        (narrows this file's target kernels)
 *
 * Without rule ids, a disable comment silences every rule. A group id (`verifier-feature-unavailable`,
 * see rules/groups.ts) names every rule of the group.
 */
import { lexC } from '../parse/lexer';

/** A directive found in a comment. */
export interface Directive {
  readonly kind: 'disable-next-line' | 'disable' | 'enable' | 'target';
  /** Rule ids named (empty: all rules). */
  readonly rules: string[];
  /** For `target`: the spec, and its offsets. */
  readonly spec?: string;
  readonly specStart?: number;
  /** Offsets of the comment. */
  readonly start: number;
  readonly end: number;
  /** 0-based line of the comment's start. */
  readonly line: number;
  /** Offsets of each named rule id, for reporting unknown ones. */
  readonly ruleSpans: { id: string; start: number; end: number }[];
}

const DIRECTIVE = /ebpf-portability(?:-(disable-next-line|disable|enable)\b([^*\n]*)|:\s*target\s*=\s*([^*\n]+))/;

/** Every directive comment of a text, in order. */
export function directives(text: string): Directive[] {
  if (!text.includes('ebpf-portability')) return [];
  const out: Directive[] = [];
  for (const m of comments(text)) {
    const d = DIRECTIVE.exec(m[0]);
    if (!d) continue;
    const line = countLines(text, m.index);
    if (d[3] !== undefined) {
      const spec = d[3].trim().replace(/\s*\*\/$/, '');
      const specStart = m.index + d.index + d[0].indexOf(d[3]) + (d[3].length - d[3].trimStart().length);
      out.push({ kind: 'target', rules: [], spec, specStart, start: m.index, end: m.index + m[0].length, line, ruleSpans: [] });
      continue;
    }
    const listStart = m.index + d.index + d[0].length - d[2].length;
    const ruleSpans: Directive['ruleSpans'] = [];
    const idRe = /[A-Za-z0-9_-]+/g;
    let r: RegExpExecArray | null;
    while ((r = idRe.exec(d[2]))) ruleSpans.push({ id: r[0], start: listStart + r.index, end: listStart + r.index + r[0].length });
    out.push({
      kind: d[1] as Directive['kind'],
      rules: ruleSpans.map((s) => s.id),
      start: m.index,
      end: m.index + m[0].length,
      line,
      ruleSpans,
    });
  }
  return out;
}

/** Comments of C text, from the lexer (strings, character literals and continuations as C reads them). */
function comments(text: string): { 0: string; index: number }[] {
  return lexC(text).comments.map((c) => ({ 0: text.slice(c.start, c.end), index: c.start }));
}

function countLines(text: string, offset: number): number {
  let n = 0;
  for (let i = 0; i < offset; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) n++;
  }
  return n;
}

/**
 * Whether a finding starting on `line` is silenced by the directives; `ids` are its rule's id and
 * the ids of the groups the rule belongs to (a comment naming the group names the rule).
 */
export function suppressed(ds: readonly Directive[], ids: readonly string[], line: number): boolean {
  const names = (d: Directive) => d.rules.length === 0 || ids.some((id) => d.rules.includes(id));
  let off = false;
  for (const d of ds) {
    if (d.line > line) break;
    if (d.kind === 'disable-next-line' && d.line + 1 === line && names(d)) return true;
    if (d.kind === 'disable' && names(d)) off = true;
    if (d.kind === 'enable' && names(d)) off = false;
  }
  return off;
}
