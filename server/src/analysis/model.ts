/**
 * Plain data that analysis produces: findings with ranges, messages, failing kernels and fixes.
 * Positions are 0-based lines and UTF-16 characters, the same units LSP uses by default, so the
 * protocol edge converts nothing but shapes. No `vscode` or LSP types here.
 */

import type { Position, Range } from '../parse/positions';
import { headOf, tailOf } from '../../../kernel-db/src/strings';

export type { Position, Range };

/** A text replacement. */
export interface TextEdit {
  readonly range: Range;
  readonly newText: string;
}

/** A fix for a finding: one or more edits applied together. */
export interface Fix {
  readonly title: string;
  readonly edits: TextEdit[];
  /** Safe to apply without review (used by "fix all"). */
  readonly safe: boolean;
  /**
   * The fix uses the CO-RE read macros; analysis appends the `#include <bpf/bpf_core_read.h>` edit
   * when the file lacks it (and clears this flag) once the whole file is known.
   */
  readonly needsCoreRead?: boolean;
  /**
   * The fix puts a call under a run-time guard so that kernels lacking what it calls skip it: it
   * helps only where nothing else fails the whole object (the driver drops it otherwise).
   */
  readonly guard?: boolean;
}

/** Severity as users configure it. */
export type Severity = 'error' | 'warning' | 'info';

/** One finding of one rule. */
export interface Finding {
  readonly rule: string;
  readonly severity: Severity;
  readonly message: string;
  readonly range: Range;
  /** Names of the target kernels on which the construct breaks. */
  readonly kernels: string[];
  readonly fixes: Fix[];
  /** Other places that explain the finding (e.g. the struct definition). */
  readonly related?: { range: Range; message: string }[];
  /**
   * The code whose execution fails, when it is not the finding's own range (a type reported at
   * its declaration fails at the reads through it): the finding applies only where that code runs.
   */
  readonly uses?: Range[];
  /** `object` when the compiled object decided it (the object pass), absent for the source pass. */
  readonly basis?: 'object';
  /** What fails, where a rule names one thing (a helper or kfunc name): how the object pass matches findings. */
  readonly subject?: string;
  /**
   * The kernels on which the program fails when it is loaded alone, where the loader's run-time
   * choices (a variant of the same hook, a program it switches off, a map type or attach target it
   * sets) made the finding a warning or narrowed its kernels: what a kernel says of that program
   * by itself. Absent when no run-time choice changed the finding.
   */
  readonly alone?: readonly string[];
}

/**
 * The longest first line a finding's message has: what breaks, on how many target kernels, and
 * the consequence in a few words. Editors list findings by it (VS Code's Problems panel, Neovim's
 * virtual text, CI logs); the kernels, the evidence and the advice follow on the next lines.
 */
export const HEADLINE_MAX = 120;

/** Characters of source code a message quotes at most ({@link codeQuote}). */
export const CODE_QUOTE_MAX = 80;

/**
 * `code` in backticks for a message, on one line (runs of white space as one space); code longer
 * than {@link CODE_QUOTE_MAX} keeps its start and end around `…`. Expressions nest without limit
 * (`a->b[a->b[…]]`): each nested read's finding quoting all of its text made the messages' size
 * grow with the square of the nesting, so long code is never read whole here either.
 */
export function codeQuote(code: string): string {
  const one = (s: string) => s.replace(/\s+/g, ' ');
  // Code of a few lines is collapsed whole and measured; longer code only where it is kept.
  const whole = code.length <= CODE_QUOTE_MAX * 4 ? one(code).trim() : undefined;
  if (whole !== undefined && whole.length <= CODE_QUOTE_MAX) return `\`${whole}\``;
  const headLen = Math.ceil((CODE_QUOTE_MAX * 2) / 3);
  const tailLen = CODE_QUOTE_MAX - headLen - 1;
  // Never half of a surrogate pair at a cut.
  const head = headOf(whole ?? one(code.slice(0, headLen * 4)).trimStart(), headLen).trimEnd();
  const tail = tailOf(whole ?? one(code.slice(-tailLen * 4)).trimEnd(), tailLen).trimStart();
  return `\`${head}…${tail}\``;
}

/**
 * A finding's message: `headline`, then each non-empty detail on a line of its own. A headline
 * over {@link HEADLINE_MAX} (a name of unusual length) is cut at a word with `…`, and the whole
 * of it opens the details, so nothing is lost.
 */
export function findingMessage(headline: string, ...details: (string | undefined)[]): string {
  const lines = details.map((d) => d?.trim()).filter((d): d is string => !!d);
  let head = headline.trim();
  if (head.length > HEADLINE_MAX) {
    lines.unshift(head);
    const space = head.lastIndexOf(' ', HEADLINE_MAX - 1);
    head = `${head.slice(0, space > HEADLINE_MAX / 2 ? space : HEADLINE_MAX - 1)}…`;
  }
  return [head, ...lines].join('\n');
}

/**
 * A headline that says `what` and, when the two fit in {@link HEADLINE_MAX} characters, its
 * `consequence` after a semicolon; otherwise the consequence becomes the first detail (a sentence).
 * Returns the headline and that detail, for {@link findingMessage}.
 */
export function headlineWith(what: string, consequence: string): [string, string | undefined] {
  const joined = `${what}; ${consequence}`;
  if (joined.length <= HEADLINE_MAX) return [joined, undefined];
  return [what, `${consequence.charAt(0).toUpperCase()}${consequence.slice(1)}.`];
}

/** The first line of a finding's message. */
export function headlineOf(message: string): string {
  const nl = message.indexOf('\n');
  return nl < 0 ? message : message.slice(0, nl);
}

/** The lines after a message's headline (none for a message that is only a headline). */
export function detailsOf(message: string): string[] {
  const nl = message.indexOf('\n');
  return nl < 0 ? [] : message.slice(nl + 1).split('\n');
}

/** `message` with `sentence` added to its details, never to its headline. */
export function withDetail(message: string, sentence: string): string {
  return `${message}\n${sentence}`;
}

/**
 * What keeps a message's headline from serving a problem list as it is: over
 * {@link HEADLINE_MAX} characters, or cut to fit by {@link findingMessage} (a rule whose headline
 * should be shorter); undefined when it fits as written.
 */
export function headlineProblem(message: string): string | undefined {
  const head = headlineOf(message);
  if (head.length > HEADLINE_MAX) return `${head.length} characters`;
  const first = detailsOf(message)[0];
  if (head.endsWith('…') && first?.startsWith(head.slice(0, -1))) return 'cut to fit';
  return undefined;
}

/** The first of `forms` (longest and most telling first) that fits a headline; else the last. */
export function fitting(...forms: string[]): string {
  return forms.find((h) => h.length <= HEADLINE_MAX) ?? forms[forms.length - 1];
}
