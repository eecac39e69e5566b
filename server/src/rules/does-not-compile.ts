/**
 * `does-not-compile`: clang cannot compile the file as its project compiles it (the object pass's
 * compile; `objectPass.ts`). Its first errors in the file are reported at their lines. A header
 * clang cannot find is the include path's problem, not the code's: the output says so instead, and
 * no finding is made. The rule has no check of its own over the source: the object pass reports it.
 */
import type { Rule } from './rule';

export const doesNotCompile: Rule = {
  meta: {
    id: 'does-not-compile',
    description: 'clang cannot compile the file with its project flags (the object pass), at the first errors',
    defaultSeverity: 'warning',
    fixable: false,
  },
};
