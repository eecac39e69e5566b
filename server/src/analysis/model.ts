/**
 * Plain data that analysis produces: findings with ranges, messages, failing kernels and fixes.
 * Positions are 0-based lines and UTF-16 characters, the same units LSP uses by default, so the
 * protocol edge converts nothing but shapes. No `vscode` or LSP types here.
 */

import type { Position, Range } from '../parse/positions';

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
}
