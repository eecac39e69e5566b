/**
 * `invalid-lint-comment`: a suppression or target comment the linter cannot act on — an unknown
 * rule id in `ebpf-portability-disable…` (a typo would silently suppress nothing) or a malformed
 * `ebpf-portability: target=…` spec.
 */
import { TargetError, TargetSpec } from '../../../kernel-db/src/query/target';
import { directives } from '../analysis/comments';
import { findingMessage } from '../analysis/model';
import type { Rule } from './rule';

export const invalidLintComment: Rule = {
  meta: {
    id: 'invalid-lint-comment',
    description: 'Suppression or target comment with an unknown rule id or a malformed target',
    defaultSeverity: 'warning',
    fixable: false,
  },
  checkFile(ctx) {
    for (const d of directives(ctx.model.text)) {
      if (d.kind === 'target') {
        const span = { start: d.specStart ?? d.start, end: (d.specStart ?? d.start) + (d.spec ?? '').length };
        try {
          const kernels = TargetSpec.parse(d.spec ?? '').select(ctx.db.kernels);
          if (kernels.length === 0) {
            ctx.report({
              span,
              message: findingMessage(`target comment "${d.spec}" selects no kernels; the file keeps its configured target`),
              kernels: [],
            });
          }
        } catch (e) {
          if (!(e instanceof TargetError)) throw e;
          ctx.report({ span, message: findingMessage(`${e.message}; the file keeps its configured target`), kernels: [] });
        }
        continue;
      }
      for (const r of d.ruleSpans) {
        if (ctx.ruleIds.includes(r.id)) continue;
        ctx.report({
          span: r,
          message: findingMessage(`unknown rule "${r.id}" in an ebpf-portability comment`, `Known rules: ${ctx.ruleIds.join(', ')}.`),
          kernels: [],
        });
      }
    }
  },
};
