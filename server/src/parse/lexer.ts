// A small C tokenizer for the macro pass. It only needs to be right about what tree-sitter-c also
// treats as opaque (comments, string and character literals, preprocessor lines), so that the macro
// pass never looks inside them, and about brackets, so that macro arguments can be delimited.
// Everything else is kept coarse: it never fails, whatever the input.

import { detached } from '../../../kernel-db/src/strings';

/** The coarse classes of C tokens the macro pass distinguishes. */
export type TokenKind = 'ident' | 'number' | 'string' | 'char' | 'punct' | 'other';

/** One significant token (comments, whitespace and preprocessor lines are not tokens). */
export interface Token {
  /** The token's class. */
  readonly kind: TokenKind;
  /** UTF-16 offset of the first character. */
  readonly start: number;
  /** UTF-16 offset just after the last character. */
  readonly end: number;
  /** The token's source text. */
  readonly text: string;
}

/** One preprocessor directive: from `#` to the end of its (possibly continued) line. */
export interface DirectiveToken {
  /** UTF-16 offset of the `#`. */
  readonly start: number;
  /** UTF-16 offset of the line break that ends the directive (or the end of the text). */
  readonly end: number;
  /** The directive's source text. */
  readonly text: string;
}

/** The result of {@link lexC}. */
export interface LexResult {
  /** Significant tokens in source order. */
  readonly tokens: readonly Token[];
  /** Preprocessor directives in source order. */
  readonly directives: readonly DirectiveToken[];
  /** Comments (block and line comments, also inside directives) in source order, as offset spans. */
  readonly comments: readonly { readonly start: number; readonly end: number }[];
  /**
   * For each token index, the index of the matching bracket token for `(` `)` `[` `]` `{` `}`,
   * or -1 when the token is not a bracket or has no partner (unbalanced, half-typed code).
   */
  readonly match: Int32Array;
}

const CH_NL = 10;
const CH_CR = 13;
const CH_BACKSLASH = 92;
const CH_SLASH = 47;
const CH_STAR = 42;
const CH_QUOTE = 34;
const CH_APOS = 39;
const CH_HASH = 35;

// Multi-character punctuators, longest first, so that `==` is never mistaken for `=` and `->` for
// a minus sign. Only the ones whose halves the macro pass could misread need to be listed, but
// listing the full set keeps the tokens faithful.
const PUNCTUATORS = [
  '...',
  '<<=',
  '>>=',
  '->',
  '++',
  '--',
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '&&',
  '||',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '##',
];
/** The multi-character punctuators by their first character's code, longest first (as above). */
const PUNCTUATORS_BY_FIRST: (string[] | undefined)[] = [];
for (const p of PUNCTUATORS) {
  if (p.length < 2) continue;
  const c = p.charCodeAt(0);
  (PUNCTUATORS_BY_FIRST[c] ??= []).push(p);
}

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 11 || c === 12 || c === CH_NL || c === CH_CR;
}

/** Returns the offset just after a line break starting at `i`, or `i` when there is none. */
function skipLineBreak(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === CH_CR) return text.charCodeAt(i + 1) === CH_NL ? i + 2 : i + 1;
  if (c === CH_NL) return i + 1;
  return i;
}

/** Returns the end of a block comment starting at `i` (which points at the slash). */
function skipBlockComment(text: string, i: number): number {
  const close = text.indexOf('*/', i + 2);
  return close < 0 ? text.length : close + 2;
}

/**
 * Returns the end of a line comment starting at `i`. A backslash before the line break continues
 * the comment, as in C and in tree-sitter-c's comment token.
 */
function skipLineComment(text: string, i: number): number {
  let j = i + 2;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === CH_BACKSLASH) {
      const after = skipLineBreak(text, j + 1);
      j = after > j + 1 ? after : j + 2;
      continue;
    }
    if (c === CH_NL || c === CH_CR) return j;
    j++;
  }
  return text.length;
}

/**
 * Returns the end of a quoted literal starting at `i`. An unterminated literal ends at the line
 * break, which is also where tree-sitter-c gives up on it.
 */
function skipQuoted(text: string, i: number, quote: number): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === quote) return j + 1;
    if (c === CH_BACKSLASH) {
      const after = skipLineBreak(text, j + 1);
      j = after > j + 1 ? after : j + 2;
      continue;
    }
    if (c === CH_NL || c === CH_CR) return j;
    j++;
  }
  return text.length;
}

/** Returns the end of a preprocessor directive starting at `i` (the `#`). */
function skipDirective(text: string, i: number, comments: { start: number; end: number }[]): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === CH_NL || c === CH_CR) return j;
    if (c === CH_BACKSLASH) {
      const after = skipLineBreak(text, j + 1);
      j = Math.max(after, j + 1);
      continue;
    }
    if (c === CH_SLASH && text.charCodeAt(j + 1) === CH_STAR) {
      // A block comment may carry a directive over several lines.
      const end = skipBlockComment(text, j);
      comments.push({ start: j, end });
      j = end;
      continue;
    }
    if (c === CH_SLASH && text.charCodeAt(j + 1) === CH_SLASH) {
      const end = skipLineComment(text, j);
      comments.push({ start: j, end });
      return end;
    }
    if (c === CH_QUOTE || c === CH_APOS) {
      j = skipQuoted(text, j, c);
      continue;
    }
    j++;
  }
  return text.length;
}

/** Returns the end of a preprocessing number starting at `i`. */
function skipNumber(text: string, i: number): number {
  let j = i;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (isIdentPart(c) || c === 46 /* . */ || c === CH_APOS) {
      // A sign directly after an exponent letter belongs to the number (1e+5, 0x1p-3).
      if ((c === 101 || c === 69 || c === 112 || c === 80) && (text.charCodeAt(j + 1) === 43 || text.charCodeAt(j + 1) === 45)) {
        j += 2;
        continue;
      }
      j++;
      continue;
    }
    break;
  }
  return j;
}

const STRING_PREFIXES = new Set(['L', 'u', 'U', 'u8']);

/**
 * The text of a token or directive: a copy of its own when it is long enough for V8 to keep a
 * slice as a view (13 characters and more). Tokens outlive the text they were read from (an edit
 * keeps the tokens it does not touch), and a view would keep that whole version alive.
 */
function piece(text: string, start: number, end: number): string {
  return end - start < 13 ? text.slice(start, end) : detached(text.slice(start, end));
}

/**
 * Splits C source into significant tokens and preprocessor directives, and pairs up brackets.
 * Never throws: any character it does not know becomes an `other` token.
 */
export function lexC(text: string): LexResult {
  // One edit's analysis lexes the document's text several times (masking the BPF macros, the
  // file model's directives, suppression comments): the last few large texts' results are kept.
  // Results are shared, hence read-only.
  if (text.length < LEX_MEMO_MIN || text.length > LEX_MEMO_MAX) return lexText(text);
  const hit = lexMemo.find((e) => e.text === text);
  if (hit) return hit.result;
  return remember(text, lexText(text));
}

/**
 * The tokens of `text` made from those of the text before an edit (`old`) and those of one
 * balanced `{…}` the edit stayed inside (`inner`, lexed alone: it starts at `at` in `text` and
 * replaces old tokens `first` to `last`). The caller has checked that the block lexes the same
 * alone as in place: it starts where a token could, its `{` matches its closing `}`, and it holds
 * no directive, so the tokens before and after it are the old ones, moved by `delta` after it.
 * The result is kept like a lexed text's, so the file model's directives and comments of the new
 * text come from it.
 */
export function spliceLex(
  text: string,
  old: LexResult,
  first: number,
  last: number,
  inner: LexResult,
  at: number,
  delta: number,
): LexResult {
  // Object literals of one shape each (a spread copy is several times slower, and typing before
  // the end of a large file moves every token after the edit).
  const movedToken = (t: Token, d: number): Token => ({ kind: t.kind, start: t.start + d, end: t.end + d, text: t.text });
  const moved = (c: { start: number; end: number }, d: number) => ({ start: c.start + d, end: c.end + d });
  // What does not move is copied by the engine's own slice, concat and set: those run at full
  // speed on the first edit, while a loop over every token of the file still runs in V8's
  // interpreter for the first few edits after opening.
  const innerTokens = new Array<Token>(inner.tokens.length);
  for (let i = 0; i < inner.tokens.length; i++) innerTokens[i] = movedToken(inner.tokens[i]!, at);
  let after: Token[];
  if (delta) {
    after = new Array<Token>(old.tokens.length - last - 1);
    for (let i = last + 1; i < old.tokens.length; i++) after[i - last - 1] = movedToken(old.tokens[i]!, delta);
  } else after = old.tokens.slice(last + 1);
  const tokens: Token[] = old.tokens.slice(0, first).concat(innerTokens, after);
  // Bracket partners: the block's own are its alone; an old index past the block moves by the
  // change in its token count (the block is balanced, so no partner outside it is inside it).
  const grow = inner.tokens.length - (last - first + 1);
  const match = new Int32Array(tokens.length);
  match.set(old.match.subarray(0, first), 0);
  match.set(old.match.subarray(last + 1), last + 1 + grow);
  // (The block's own entries, still zero here, are written next.)
  if (grow) for (let i = 0; i < match.length; i++) if (match[i]! >= first) match[i] = match[i]! + grow;
  for (let i = 0; i < inner.tokens.length; i++) match[first + i] = inner.match[i]! < 0 ? -1 : inner.match[i]! + first;
  // The block's end in the old text: comments and directives from there on move by `delta`.
  const oldEnd = old.tokens[last]!.end;
  const before = firstAtOrAfter(old.comments, (c) => c.end > at);
  const rest = firstAtOrAfter(old.comments, (c) => c.start >= oldEnd);
  const innerComments = inner.comments.map((c) => moved(c, at));
  const comments = old.comments
    .slice(0, before)
    .concat(innerComments, delta ? old.comments.slice(rest).map((c) => moved(c, delta)) : old.comments.slice(rest));
  const directives = delta
    ? old.directives.map((d) => (d.start >= oldEnd ? { start: d.start + delta, end: d.end + delta, text: d.text } : d))
    : old.directives;
  const result: LexResult = { tokens, match, comments, directives };
  return text.length >= LEX_MEMO_MIN && text.length <= LEX_MEMO_MAX ? remember(text, result) : result;
}

/** The first index of sorted `items` at which `past` holds (it holds from there on), or `items.length`. */
function firstAtOrAfter<T>(items: readonly T[], past: (x: T) => boolean): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (past(items[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Keeps `result` as the tokens of `text` in the memo (the newest first) and returns it. */
function remember(text: string, result: LexResult): LexResult {
  lexMemo.unshift({ text, result });
  if (lexMemo.length > LEX_MEMO_SIZE) lexMemo.pop();
  return result;
}

const LEX_MEMO_MIN = 4096;
/** Larger texts (generated code) are not kept: their tokens would hold tens of megabytes. */
const LEX_MEMO_MAX = 1 << 20;
const LEX_MEMO_SIZE = 3;
const lexMemo: { text: string; result: LexResult }[] = [];

/** Lexes `text` without the memo (tests compare it with what the memo or a splice holds). */
export function lexText(text: string): LexResult {
  const tokens: Token[] = [];
  const directives: DirectiveToken[] = [];
  const comments: { start: number; end: number }[] = [];
  const n = text.length;
  // True while only whitespace has been seen since the last line break, which is where a `#`
  // starts a directive.
  let lineStart = true;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === CH_NL || c === CH_CR) {
      lineStart = true;
      i++;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === CH_BACKSLASH) {
      const after = skipLineBreak(text, i + 1);
      if (after > i + 1) {
        // A line continuation is whitespace and does not start a new logical line.
        i = after;
        continue;
      }
    }
    if (c === CH_SLASH && text.charCodeAt(i + 1) === CH_STAR) {
      const end = skipBlockComment(text, i);
      comments.push({ start: i, end });
      i = end;
      continue;
    }
    if (c === CH_SLASH && text.charCodeAt(i + 1) === CH_SLASH) {
      const end = skipLineComment(text, i);
      comments.push({ start: i, end });
      i = end;
      continue;
    }
    if (c === CH_HASH && lineStart) {
      const end = skipDirective(text, i, comments);
      directives.push({ start: i, end, text: piece(text, i, end) });
      i = end;
      continue;
    }
    lineStart = false;
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text.charCodeAt(j))) j++;
      const word = piece(text, i, j);
      const q = text.charCodeAt(j);
      if ((q === CH_QUOTE || q === CH_APOS) && STRING_PREFIXES.has(word)) {
        const end = skipQuoted(text, j, q);
        tokens.push({ kind: q === CH_QUOTE ? 'string' : 'char', start: i, end, text: piece(text, i, end) });
        i = end;
        continue;
      }
      tokens.push({ kind: 'ident', start: i, end: j, text: word });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(text.charCodeAt(i + 1)))) {
      const end = skipNumber(text, i);
      tokens.push({ kind: 'number', start: i, end, text: piece(text, i, end) });
      i = end;
      continue;
    }
    if (c === CH_QUOTE || c === CH_APOS) {
      const end = skipQuoted(text, i, c);
      tokens.push({ kind: c === CH_QUOTE ? 'string' : 'char', start: i, end, text: piece(text, i, end) });
      i = end;
      continue;
    }
    if (c < 128) {
      let len = 1;
      const candidates = PUNCTUATORS_BY_FIRST[c];
      if (candidates)
        for (const p of candidates) {
          if (text.startsWith(p, i)) {
            len = p.length;
            break;
          }
        }
      tokens.push({ kind: 'punct', start: i, end: i + len, text: text.slice(i, i + len) });
      i += len;
      continue;
    }
    // A non-ASCII character outside comments and literals is not valid C; keep a surrogate pair
    // together so that no token ends in the middle of a character.
    const hi = c >= 0xd800 && c <= 0xdbff;
    const lo = text.charCodeAt(i + 1);
    const len = hi && lo >= 0xdc00 && lo <= 0xdfff ? 2 : 1;
    tokens.push({ kind: 'other', start: i, end: i + len, text: text.slice(i, i + len) });
    i += len;
  }
  return { tokens, directives, comments, match: matchBrackets(tokens) };
}

const OPENERS: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

/**
 * Pairs brackets. Braces are stronger than parentheses and square brackets: a `}` closes the
 * nearest open `{` and leaves any `(` or `[` opened inside it unmatched, so a half-typed `SEC(` or
 * call never swallows the rest of the file. A closer with no suitable opener stays unmatched.
 */
function matchBrackets(tokens: Token[]): Int32Array {
  const match = new Int32Array(tokens.length).fill(-1);
  const stack: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'punct') continue;
    const s = t.text;
    if (s === '(' || s === '[' || s === '{') {
      stack.push(i);
    } else if (s === '}') {
      let k = stack.length - 1;
      while (k >= 0 && tokens[stack[k]!]!.text !== '{') k--;
      if (k < 0) continue;
      const open = stack[k]!;
      stack.length = k;
      match[open] = i;
      match[i] = open;
    } else if (s === ')' || s === ']') {
      const top = stack[stack.length - 1];
      if (top === undefined || OPENERS[tokens[top]!.text] !== s) continue;
      stack.pop();
      match[top] = i;
      match[i] = top;
    }
  }
  return match;
}
