/**
 * `verifier-open-coded-iterators`: `bpf_for()`, `bpf_for_each()` and `bpf_repeat()` loops, per
 * kernel by whether its BTF has the iterator kfunc they expand to (`bpf_iter_num_new`,
 * `bpf_iter_<type>_new`); the message quotes the facts' `open_coded_iterators` floor.
 * Part of the `verifier-feature-unavailable` group.
 */
import type { Node } from 'web-tree-sitter';
import { runsOn } from './common';
import { kfuncMissing } from './kfunc-unavailable';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { findingMessage, headlineWith } from '../analysis/model';
import { count, guardedNote, where } from './verifier-feature-unavailable';

export const verifierOpenCodedIterators: Rule = {
  meta: {
    id: 'verifier-open-coded-iterators',
    description: 'bpf_for(), bpf_for_each() or bpf_repeat() on kernels without the iterator kfuncs they expand to',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFunction(ctx, f) {
    const body = f.fn.body;
    if (!body) return;
    iterators(ctx, f, body);
  },
};

function iterators(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const since = ctx.db.facts.featureSince('open_coded_iterators');
  if (!since) return;
  // The alternatives' floors, from the facts too: ` (5.3)`, or nothing where the facts lack one.
  const paren = (v: string | undefined) => (v ? ` (${v})` : '');
  const helperSince = (name: string) => paren(ctx.db.facts.helper(name)?.since);
  for (const site of ctx.model.sites()) {
    if (site.kind !== 'loop' || site.start < body.startIndex || site.end > body.endIndex) continue;
    const node = body.descendantForIndex(site.start, site.start + site.name.length);
    if (!node) continue;
    const at = runsOn(ctx, f, node).kernels();
    // bpf_for()/bpf_repeat() use the numeric iterator; bpf_for_each(type, …) the type's iterator.
    const iter = site.name === 'bpf_for_each' ? site.args[0]?.text : 'num';
    if (!iter || !/^\w+$/.test(iter)) continue;
    const kfunc = `bpf_iter_${iter}_new`;
    const missing = kfuncMissing(ctx.db, kfunc, ctx.db.kfunc(kfunc, at));
    if (missing.length === 0) continue;
    ctx.report({
      span: { start: site.start, end: site.start + site.name.length },
      message: findingMessage(
        ...headlineWith(
          `\`${site.name}()\` needs the \`${kfunc}\` kfunc, missing on ${count(missing, at)}`,
          'the program does not load there',
        ),
        `It is an open-coded iterator loop (${since} for the numeric iterator) built on the \`${kfunc}\` kfunc, which is missing on ${where(missing, at)}; the program does not load there.`,
        `Older kernels need a bounded \`for\` loop${paren(ctx.db.facts.featureSince('bounded_loops'))} or \`bpf_loop()\`${helperSince('bpf_loop')}.`,
        guardedNote(ctx, f, node),
      ),
      kernels: missing.map((k) => k.name),
    });
  }
}
