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

/**
 * A file's bytes as text for analysis, decoded so that every text offset maps back to its bytes:
 * UTF-8 when the bytes are valid UTF-8, else Latin-1 (one character per byte, so bytes in an
 * unknown encoding survive a fix untouched). `eol` is the file's line ending, for lines a fix adds.
 */
export interface SourceFile {
  readonly bytes: Uint8Array;
  readonly text: string;
  readonly encoding: 'utf8' | 'latin1';
  readonly eol: '\n' | '\r\n';
}

/** Decodes a file's bytes (see {@link SourceFile}). */
export function decodeSource(bytes: Uint8Array): SourceFile {
  let text: string;
  let encoding: SourceFile['encoding'] = 'utf8';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    encoding = 'latin1';
  }
  // The first line ending says which the file uses.
  const nl = text.indexOf('\n');
  const eol = nl > 0 && text.charCodeAt(nl - 1) === 13 ? '\r\n' : '\n';
  return { bytes, text, encoding, eol };
}

/**
 * Applies non-overlapping edits to a file's bytes: the bytes outside the edits are the file's
 * own, byte for byte; the new text is encoded as the file is, its line breaks the file's.
 * Throws when the new text cannot be written in the file's encoding (nothing is changed then).
 */
export function applyEditsToBytes(file: SourceFile, edits: readonly TextEdit[]): Uint8Array {
  const { text } = file;
  const starts = computeLineStarts(text);
  const at = edits.map((e) => ({ e, start: offsetAt(text, starts, e.range.start), end: offsetAt(text, starts, e.range.end) }));
  at.sort((a, b) => a.start - b.start || a.end - b.end);
  // Text offsets (UTF-16) to byte offsets, walking the text once in order.
  let charAt = 0;
  let byteAt = 0;
  const toByte = (offset: number): number => {
    if (file.encoding === 'latin1') return offset;
    byteAt += Buffer.byteLength(text.slice(charAt, offset), 'utf8');
    charAt = offset;
    return byteAt;
  };
  const encode = (s: string): Buffer => {
    const lines = file.eol === '\r\n' ? s.replace(/\r?\n/g, '\r\n') : s;
    if (file.encoding === 'latin1' && [...lines].some((c) => c.charCodeAt(0) > 0xff))
      throw new Error('a fix would write characters this file’s encoding (not UTF-8) cannot hold');
    return Buffer.from(lines, file.encoding);
  };
  const parts: Uint8Array[] = [];
  let last = 0;
  let lastChar = 0;
  for (const { e, start, end } of at) {
    if (start < lastChar) throw new Error('fix edits overlap');
    const b0 = toByte(start);
    const b1 = toByte(end);
    lastChar = end;
    parts.push(file.bytes.subarray(last, b0), encode(e.newText));
    last = b1;
  }
  parts.push(file.bytes.subarray(last));
  return Buffer.concat(parts);
}
