/**
 * `verifier-atomics`: `__sync_*`/`__atomic_*` operations other than an add whose result is
 * unused (the one older kernels have, as XADD) on kernels before the facts' `atomics` floor.
 * Part of the `verifier-feature-unavailable` group.
 */
import type { Node } from 'web-tree-sitter';
import { runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { findingMessage, headlineWith } from '../analysis/model';
import { guardedNote, where } from './verifier-feature-unavailable';
import { parentOf } from '../analysis/parents';

export const verifierAtomics: Rule = {
  meta: {
    id: 'verifier-atomics',
    description: 'Atomic operation with fetch that verifiers before BPF_ATOMIC reject',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFunction(ctx, f) {
    const body = f.fn.body;
    if (!body) return;
    atomics(ctx, f, body);
  },
};

/** Atomic adds older kernels have (XADD) when their result is unused. */
const PLAIN_ADD =
  /^(?:__sync_fetch_and_add|__sync_add_and_fetch|__sync_fetch_and_sub|__sync_sub_and_fetch|__atomic_fetch_add|__atomic_add_fetch|__atomic_fetch_sub|__atomic_sub_fetch)$/;

function atomics(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const since = ctx.db.facts.featureSince('atomics');
  if (!since) return;
  for (const call of body.descendantsOfType('call_expression')) {
    const fn = call?.childForFieldName('function');
    if (!call || !fn || fn.type !== 'identifier') continue;
    const name = ctx.text(fn);
    if (!/^__(?:sync|atomic)_/.test(name)) continue;
    let p = parentOf(call);
    while (p && p.type === 'parenthesized_expression') p = parentOf(p);
    const unused = p?.type === 'expression_statement' || (p?.type === 'cast_expression' && /^\(\s*void\s*\)/.test(ctx.text(p)));
    if (PLAIN_ADD.test(name) && unused) continue;
    const at = runsOn(ctx, f, call).kernels();
    const old = ctx.db.olderThan(at, since);
    if (old.length === 0) continue;
    ctx.report({
      node: fn,
      message: findingMessage(
        ...headlineWith(
          `\`${name}\`${PLAIN_ADD.test(name) ? ' with its result used' : ''} needs the atomic instructions of ${since}`,
          `${old.length} of ${at.length} kernels reject it`,
        ),
        `They are BPF_ATOMIC with fetch (clang -mcpu=v3): verifiers before ${since} know only an atomic add without result, on ${where(old, at)}.`,
        guardedNote(ctx, f, call),
      ),
      kernels: old.map((k) => k.name),
    });
  }
}
