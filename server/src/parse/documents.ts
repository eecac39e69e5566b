// The language server's per-document state: text, masked text, syntax tree and macro sites, kept
// up to date by incremental edits.
//
// Offsets are UTF-16 code units everywhere. web-tree-sitter 0.25 hands JavaScript strings to
// tree-sitter as UTF-16, and node.startIndex/endIndex and point columns come back in UTF-16 code
// units, not bytes: a node after "é😀" in a comment starts 3 units (not 6 bytes) later. That is
// LSP's default position encoding, so no conversion is needed; test/server/documents.test.ts
// checks it. tree-sitter rows count `\n` only, so LSP positions must come from
// positionAt(node.startIndex), not from node.startPosition, when a file has a lone `\r`.

import type { Edit, Parser, Tree } from 'web-tree-sitter';
import { type BpfMacroSite, maskEdit, type MaskState, maskState } from './bpfMacros';
import { notAProgram, unanalysable } from './inputLimits';
import { DEFAULT_PARSE_LIMITS, parseWithTimeout, type CParser, type ParseLimits } from './cParser';
import {
  computeLineStarts,
  offsetAt,
  pointIn,
  positionAt,
  rememberLineStarts,
  spliceLineStarts,
  type Position,
  type Range,
} from './positions';

export { loadCParser, liveTrees, DEFAULT_PARSE_LIMITS, type CParser, type ParseLimits } from './cParser';
export type { Position, Range } from './positions';
export type * from './sites';

/** One change, with the meaning of LSP's TextDocumentContentChangeEvent. */
export interface ContentChange {
  /** The replaced range; absent means the whole document is replaced by `text`. */
  readonly range?: Range;
  /** The new text of the range (or of the document). */
  readonly text: string;
}

/**
 * One version of a document. The tree belongs to the store: it is valid until the document is
 * changed or closed, and must not be deleted by the caller.
 */
export interface ParsedDocument {
  /** The document's URI. */
  readonly uri: string;
  /** The client's version number. */
  readonly version: number;
  /** The source text. */
  readonly text: string;
  /**
   * The text tree-sitter parsed: `text` with BPF macros masked, same length and line breaks (the
   * text itself when it is too large to parse).
   */
  readonly masked: string;
  /** The syntax tree of `masked`, or null when the text is too large or the parse timed out. */
  readonly tree: Tree | null;
  /** BPF macro uses in the text (empty when it is too large). */
  readonly sites: readonly BpfMacroSite[];
  /** Offsets where each line starts, with LSP's line breaks. */
  readonly lineStarts: readonly number[];
  /** True when the text exceeds a limit (size, line length, line count, binary content) and was not parsed. */
  readonly tooLarge: boolean;
  /** Why the text was not parsed, when `tooLarge` (for the output channel). */
  readonly skipped?: string;
  /** True when parsing was abandoned at the time limit. */
  readonly timedOut: boolean;
  /** The offset of an LSP position (clamped to the text). */
  offsetAt(position: Position): number;
  /** The LSP position of an offset (clamped to the text). */
  positionAt(offset: number): Position;
}

/** Options for a {@link DocumentStore}. */
export type DocumentStoreOptions = Partial<ParseLimits>;

class Snapshot implements ParsedDocument {
  constructor(
    readonly uri: string,
    readonly version: number,
    readonly text: string,
    readonly masked: string,
    readonly tree: Tree | null,
    readonly sites: readonly BpfMacroSite[],
    readonly lineStarts: readonly number[],
    readonly tooLarge: boolean,
    readonly timedOut: boolean,
    readonly skipped?: string,
    /** The masking's top-level blocks, for the next edit (`maskEdit`). */
    readonly blocks: Int32Array = NO_BLOCKS,
  ) {}

  offsetAt(position: Position): number {
    return offsetAt(this.text, this.lineStarts, position);
  }

  positionAt(offset: number): Position {
    return positionAt(this.text, this.lineStarts, offset);
  }
}

const NO_BLOCKS = new Int32Array(0);

/** A text with its masking, carried from one change to the next so that no text is masked twice. */
type Step = MaskState;

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * The tree edit from `oldMasked` to `newMasked`, given that the source change replaced
 * [changeStart, changeOldEnd) of the old text. The edit covers the change and any masking that
 * changed because of it (typing the `)` of a `SEC(` masks text before the change), and never
 * splits a surrogate pair.
 */
export function maskedEdit(oldMasked: string, newMasked: string, changeStart: number, changeOldEnd: number): Edit {
  const oldLen = oldMasked.length;
  const newLen = newMasked.length;
  // The longest common prefix (up to the change) and suffix (after it): compared natively, a
  // whole span at a time, halving the span where it differs.
  const start = commonLength(changeStart, (k) => oldMasked.slice(0, k) === newMasked.slice(0, k));
  const maxSuffix = Math.min(oldLen - changeOldEnd, newLen - start, oldLen - start);
  const suffix = commonLength(maxSuffix, (k) => oldMasked.slice(oldLen - k) === newMasked.slice(newLen - k));
  const from = start > 0 && isHighSurrogate(oldMasked.charCodeAt(start - 1)) ? start - 1 : start;
  const tail = suffix > 0 && isHighSurrogate(oldMasked.charCodeAt(oldLen - suffix - 1)) ? suffix - 1 : suffix;
  const startPosition = pointIn(oldMasked, from);
  return {
    startIndex: from,
    oldEndIndex: oldLen - tail,
    newEndIndex: newLen - tail,
    startPosition,
    // The text before `from` is the same in both: count rows from there.
    oldEndPosition: pointIn(oldMasked, oldLen - tail, from, startPosition),
    newEndPosition: pointIn(newMasked, newLen - tail, from, startPosition),
  };
}

/** The largest `k` ≤ `max` for which `same(k)` holds, `same` holding for every smaller `k` too. */
function commonLength(max: number, same: (k: number) => boolean): number {
  if (same(max)) return max;
  let low = 0;
  let high = max;
  // same(low) holds, same(high) does not.
  while (high - low > 1) {
    const mid = (low + high) >>> 1;
    if (same(mid)) low = mid;
    else high = mid;
  }
  return low;
}

/**
 * Open documents, each with its latest parse. Trees are edited and re-parsed incrementally on
 * every change, and deleted when replaced or closed.
 */
export class DocumentStore {
  private readonly docs = new Map<string, Snapshot>();
  private readonly parser: Parser;
  private readonly limits: ParseLimits;

  /** Creates a store parsing with `cParser` within `options` (defaults: {@link DEFAULT_PARSE_LIMITS}). */
  constructor(cParser: CParser, options: DocumentStoreOptions = {}) {
    this.parser = cParser.createParser();
    this.limits = { ...DEFAULT_PARSE_LIMITS, ...options };
  }

  /** Opens (or reopens) a document and parses it from scratch. */
  open(uri: string, text: string, version: number): ParsedDocument {
    this.docs.get(uri)?.tree?.delete();
    this.docs.delete(uri);
    const doc = this.build(uri, version, text, null, null);
    this.docs.set(uri, doc);
    return doc;
  }

  /**
   * Applies LSP content changes in order and re-parses incrementally. Each change edits the old
   * tree in masked coordinates; the edited tree then guides one re-parse of the final text. A
   * change to a document that is not open throws.
   */
  change(uri: string, version: number, changes: readonly ContentChange[]): ParsedDocument {
    const old = this.docs.get(uri);
    if (!old) throw new Error(`change to a document that is not open: ${uri}`);
    let text = old.text;
    let lineStarts = old.lineStarts;
    let step: Step | null = old.tooLarge ? null : { text: old.text, masked: old.masked, sites: old.sites, blocks: old.blocks };
    // The old tree is only reusable if every intermediate text was masked, which needs each to be
    // under the size limit.
    let tree = old.tree;
    for (const change of changes) {
      let start = 0;
      let end = text.length;
      if (change.range) {
        start = offsetAt(text, lineStarts, change.range.start);
        end = offsetAt(text, lineStarts, change.range.end);
        if (end < start) [start, end] = [end, start];
      }
      text = text.slice(0, start) + change.text + text.slice(end);
      lineStarts = change.range ? spliceLineStarts(lineStarts, text, start, end, change.text.length) : computeLineStarts(text);
      if (!change.range || !tree || !step || text.length > this.limits.maxChars || unanalysable(text, lineStarts)) {
        // A full replacement, or a text that cannot be masked: nothing of the old tree is reusable.
        tree?.delete();
        tree = null;
        step = null;
        continue;
      }
      // Typing in a function body re-masks only that body.
      const next = maskEdit(step, start, end, change.text, text);
      tree.edit(maskedEdit(step.masked, next.masked, start, end));
      step = next;
    }
    const doc = this.build(uri, version, text, tree, step, lineStarts);
    if (tree && tree !== doc.tree) tree.delete();
    this.docs.set(uri, doc);
    return doc;
  }

  /** How many documents are open. */
  get size(): number {
    return this.docs.size;
  }

  /** The latest version of a document, if it is open. */
  get(uri: string): ParsedDocument | undefined {
    return this.docs.get(uri);
  }

  /** Closes a document and frees its tree. Closing a document that is not open does nothing. */
  close(uri: string): void {
    this.docs.get(uri)?.tree?.delete();
    this.docs.delete(uri);
  }

  /** Closes every document and frees the parser; the store cannot be used afterwards. */
  dispose(): void {
    for (const doc of this.docs.values()) doc.tree?.delete();
    this.docs.clear();
    this.parser.delete();
  }

  /**
   * Parses `text`, incrementally from `oldTree` (already edited) when given. `step` carries the
   * masking already done for the final text, if any.
   */
  private build(
    uri: string,
    version: number,
    text: string,
    oldTree: Tree | null,
    step: Step | null,
    lineStarts: readonly number[] = computeLineStarts(text),
  ): Snapshot {
    const why =
      notAProgram(uri) ??
      (text.length > this.limits.maxChars
        ? `too large: ${(text.length / 1e6).toFixed(1)} MB (the limit is ${(this.limits.maxChars / 1e6).toFixed(1)} MB)`
        : // A change masked through `step` checked this very text already.
          step?.text === text
          ? undefined
          : unanalysable(text, lineStarts));
    if (why) return new Snapshot(uri, version, text, text, null, [], lineStarts, true, false, why);
    const { masked, sites, blocks } = step && step.text === text ? step : maskState(text);
    const tree = parseWithTimeout(this.parser, masked, oldTree, this.limits.timeoutMs);
    // The analysis of this text takes its line index from here.
    rememberLineStarts(text, lineStarts);
    return new Snapshot(uri, version, text, masked, tree, sites, lineStarts, false, tree === null, undefined, blocks);
  }
}
