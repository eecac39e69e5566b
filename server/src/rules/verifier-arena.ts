/**
 * `verifier-arena`: `__arena` pointers, per kernel by whether it has `BPF_MAP_TYPE_ARENA`; the
 * message quotes the facts' `arena` floor.
 * Part of the `verifier-feature-unavailable` group.
 */
import type { Node } from 'web-tree-sitter';
import { runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { findingMessage, headlineWith } from '../analysis/model';
import { count, guardedNote, where } from './verifier-feature-unavailable';

export const verifierArena: Rule = {
  meta: {
    id: 'verifier-arena',
    description: '__arena pointers on kernels without BPF arenas',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFunction(ctx, f) {
    const body = f.fn.body;
    if (!body) return;
    arena(ctx, f, body);
  },
};

function arena(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const site = ctx.model
    .sites()
    .find((s) => s.kind === 'attribute' && s.name === '__arena' && s.start >= body.startIndex && s.end <= body.endIndex);
  if (!site) return;
  const node = body.descendantForIndex(site.start, site.end);
  if (!node) return;
  const at = runsOn(ctx, f, node).kernels();
  const since = ctx.db.facts.featureSince('arena');
  if (!since) return;
  const arenaMap = ctx.db.mapType('BPF_MAP_TYPE_ARENA', at).kernels;
  const missing = at.filter((_, i) => arenaMap[i].present === false);
  if (missing.length === 0) return;
  ctx.report({
    span: { start: site.start, end: site.end },
    message: findingMessage(
      ...headlineWith(
        `\`__arena\` pointers need BPF arenas (${since}, BPF_MAP_TYPE_ARENA), missing on ${count(missing, at)}`,
        'the program does not load there',
      ),
      `BPF arenas are missing on ${where(missing, at)}; the program does not load there.`,
      guardedNote(ctx, f, node),
    ),
    kernels: missing.map((k) => k.name),
  });
}
