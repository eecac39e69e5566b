// Offsets and positions. LSP positions are 0-based lines and UTF-16 characters, with `\n`, `\r\n`
// and a lone `\r` all ending a line. tree-sitter counts rows by `\n` only, so its points differ from
// LSP positions after a lone `\r`; that is why offsets (node.startIndex) are what should be
// converted with positionAt, never node.startPosition.

import type { Point } from 'web-tree-sitter';

/** A position as LSP counts it: 0-based line, UTF-16 code units into the line. */
export interface Position {
  /** 0-based line. */
  readonly line: number;
  /** 0-based UTF-16 code unit offset into the line. */
  readonly character: number;
}

/** A range between two positions, as in LSP. */
export interface Range {
  /** Where the range starts. */
  readonly start: Position;
  /** Where the range ends (exclusive). */
  readonly end: Position;
}

/** Offsets where each line starts, with LSP's line breaks (`\n`, `\r\n`, lone `\r`). */
export function computeLineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    } else if (c === 10) {
      starts.push(i + 1);
    }
  }
  return starts;
}

/**
 * The line starts of `after`, made from those of the text before an edit (`before`, whose
 * characters `start`..`end` became `inserted` characters): starts before the edit are kept,
 * those after it move by the change in length, and only the edited span (with the character
 * before it, where a `\r` may now pair with a `\n`) is scanned. Equals `computeLineStarts(after)`.
 */
export function spliceLineStarts(
  before: readonly number[],
  after: string,
  start: number,
  end: number,
  inserted: number,
): readonly number[] {
  const delta = inserted - (end - start);
  // A replacement by as many characters, none a line break, of a span no line starts in moves
  // no line: the same starts, shared (typing over a character). A `\r` before the span still
  // ends its line the same way: the character after it is the old one or a new non-break.
  if (delta === 0 && lineOf(before, start) === lineOf(before, end)) {
    let breaks = false;
    for (let i = start; i < end && !breaks; i++) breaks = isLineBreak(after.charCodeAt(i));
    if (!breaks) return before;
  }
  // Starts before the edit stay (a start at `start` itself depends on what follows it).
  const out = before.slice(0, lineOf(before, Math.max(0, start - 1)) + 1);
  const stop = start + inserted;
  for (let i = Math.max(0, start - 1); i < stop; i++) {
    const c = after.charCodeAt(i);
    if (c === 13) {
      if (after.charCodeAt(i + 1) === 10) i++;
      out.push(i + 1);
    } else if (c === 10) {
      out.push(i + 1);
    }
  }
  // Starts after the edit: their line breaks are unchanged text (the first may be the `\n` of a
  // `\r\n` the scan just ended).
  for (let l = lineOf(before, end) + 1; l < before.length; l++) {
    const s = before[l]! + delta;
    if (s > out[out.length - 1]!) out.push(s);
  }
  return out;
}

const LINE_MEMO_SIZE = 3;
/** The line starts of the last texts the document store built (see the cache list in ARCHITECTURE.md). */
const lineMemo: { text: string; starts: readonly number[] }[] = [];

/** Keeps `starts` as the line starts of `text`, for {@link lineStartsOf}. */
export function rememberLineStarts(text: string, starts: readonly number[]): void {
  lineMemo.unshift({ text, starts });
  if (lineMemo.length > LINE_MEMO_SIZE) lineMemo.pop();
}

/** The line starts of `text`: the document store's when it has them, else computed. */
export function lineStartsOf(text: string): readonly number[] {
  return lineMemo.find((e) => e.text === text)?.starts ?? computeLineStarts(text);
}

function isLineBreak(c: number): boolean {
  return c === 10 || c === 13;
}

/** The index of the last line start at or before `offset`. */
function lineOf(starts: readonly number[], offset: number): number {
  let low = 0;
  let high = starts.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (starts[mid]! > offset) high = mid;
    else low = mid + 1;
  }
  return low - 1;
}

/**
 * The offset of an LSP position, clamped as vscode-languageserver-textdocument does: a line past
 * the end gives the text's length, a character past the end of its line gives the end of the line
 * (before its line break).
 */
export function offsetAt(text: string, lineStarts: readonly number[], position: Position): number {
  if (position.line >= lineStarts.length) return text.length;
  if (position.line < 0) return 0;
  const lineStart = lineStarts[position.line]!;
  if (position.character <= 0) return lineStart;
  const nextLineStart = position.line + 1 < lineStarts.length ? lineStarts[position.line + 1]! : text.length;
  let offset = Math.min(lineStart + position.character, nextLineStart);
  while (offset > lineStart && isLineBreak(text.charCodeAt(offset - 1))) offset--;
  return offset;
}

/** The LSP position of an offset (clamped to the text), never inside a `\r\n`. */
export function positionAt(text: string, lineStarts: readonly number[], offset: number): Position {
  let o = Math.max(0, Math.min(offset, text.length));
  const line = lineOf(lineStarts, o);
  const lineStart = lineStarts[line]!;
  while (o > lineStart && isLineBreak(text.charCodeAt(o - 1))) o--;
  return { line, character: o - lineStart };
}

/**
 * The tree-sitter point of `offset` in `text` (rows count `\n` only), found with the native
 * `indexOf` instead of an array of every row's start: an edit needs three points, not the rows.
 * Counting starts at `from` (an offset before `offset`, whose point is `at`), the text's start
 * by default.
 */
export function pointIn(text: string, offset: number, from = 0, at: Point = { row: 0, column: 0 }): Point {
  let row = at.row;
  let start = from - at.column;
  for (let nl = text.indexOf('\n', from); nl >= 0 && nl < offset; nl = text.indexOf('\n', nl + 1)) {
    row++;
    start = nl + 1;
  }
  return { row, column: offset - start };
}
