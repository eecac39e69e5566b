/** Offsets (UTF-16 code units) to LSP-style positions and back, for one text. */
import { lineStartsOf, offsetAt, positionAt } from '../parse/positions';
import type { Position, Range } from './model';

/** Line starts of a text (LSP's line breaks: `\n`, `\r\n`, lone `\r`). */
export class LineIndex {
  private readonly starts: readonly number[];

  constructor(readonly text: string) {
    this.starts = lineStartsOf(text);
  }

  /** Position of a UTF-16 offset. */
  positionAt(offset: number): Position {
    return positionAt(this.text, this.starts, offset);
  }

  /** UTF-16 offset of a position (clamped to the text). */
  offsetAt(p: Position): number {
    return offsetAt(this.text, this.starts, p);
  }

  /** Range of an offset span. */
  range(start: number, end: number): Range {
    return { start: this.positionAt(start), end: this.positionAt(end) };
  }

  /** Number of lines. */
  get lineCount(): number {
    return this.starts.length;
  }
}
