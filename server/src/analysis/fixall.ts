/** "Fix all": every safe fix that does not collide with one chosen before it. */
import { computeLineStarts, offsetAt } from '../parse/positions';
import type { Finding, Range, TextEdit } from './model';

/**
 * The edits of every finding's first safe fix, skipping fixes that overlap an earlier one.
 * Identical edits (the same `#include` added by several fixes) are kept once.
 */
export function fixAllEdits(findings: readonly Finding[]): TextEdit[] {
  const chosen: TextEdit[] = [];
  const seen = new Set<string>();
  for (const f of findings) {
    const fix = f.fixes.find((x) => x.safe);
    if (!fix) continue;
    const fresh = fix.edits.filter((e) => !seen.has(key(e)));
    if (fresh.some((e) => chosen.some((c) => conflict(c.range, e.range)))) continue;
    for (const e of fresh) {
      seen.add(key(e));
      chosen.push(e);
    }
  }
  return chosen;
}

function key(e: TextEdit): string {
  return `${e.range.start.line}:${e.range.start.character}-${e.range.end.line}:${e.range.end.character}:${e.newText}`;
}

function before(a: Range['start'], b: Range['start']): boolean {
  return a.line < b.line || (a.line === b.line && a.character < b.character);
}

/** Two insertions at one point, or ranges that merely touch, do not conflict. */
function conflict(a: Range, b: Range): boolean {
  return before(a.start, b.end) && before(b.start, a.end);
}

/** Applies non-overlapping edits to a text. */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const starts = computeLineStarts(text);
  const offset = (p: Range['start']) => offsetAt(text, starts, p);
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start) || offset(b.range.end) - offset(a.range.end));
  let out = text;
  for (const e of sorted) out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}
