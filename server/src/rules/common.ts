/**
 * What several rules ask of a function: the target kernels that can load its program at all, and
 * the kernels a node runs on (its guards within those); and how many related places a finding lists.
 */
import { OwnedCache } from '../analysis/memo';
import type { Node } from 'web-tree-sitter';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { KSet } from '../analysis/kset';
import type { Chain } from '../analysis/chains';
import { isPacket } from '../analysis/scope';
import type { FunctionFacts, RuleContext } from './rule';

/**
 * The most places a finding lists as related information: past that the list is noise in the
 * Problems panel (and weight in every diagnostics message); the last one says how many more.
 */
export const MAX_RELATED = 20;

/**
 * The related information of `places`, at most {@link MAX_RELATED} of them (`toRelated` runs on
 * those only), the last saying how many were left out.
 */
export function capRelated<P, R extends { readonly message: string }>(places: readonly P[], toRelated: (p: P) => R): R[] {
  const kept = places.slice(0, MAX_RELATED).map(toRelated);
  const more = places.length - kept.length;
  if (more > 0) kept[kept.length - 1] = { ...kept[kept.length - 1], message: `${kept[kept.length - 1].message} (and ${more} more)` };
  return kept;
}

const loadableCache = new OwnedCache<readonly Kernel[], KSet>({
  name: 'rules.programKernels',
  owner: 'target kernel list',
  key: 'program type',
});

/**
 * The target kernels on which the function's program type exists: elsewhere the program does not
 * load at all, which prog-type-unavailable reports, so the call rules stay quiet there.
 */
export function programKernels(ctx: RuleContext, f: FunctionFacts): KSet {
  const pt = f.ctx.progType;
  if (!pt || ctx.model.bcc) return KSet.all(ctx.kernels);
  return loadableCache.get(ctx.kernels, pt, () => {
    const types = ctx.db.progType(pt, ctx.kernels).kernels;
    return KSet.where(ctx.kernels, (_, i) => types[i].present !== false);
  });
}

/** The kernels where `node` runs: its guards, within the kernels that can load its program. */
export function runsOn(ctx: RuleContext, f: FunctionFacts, node: Node): KSet {
  return f.guards.kernelsAt(node).and(programKernels(ctx, f));
}

/**
 * A member chain through a packet pointer (`eth->h_proto` with `eth` computed from `ctx->data`)
 * reads packet memory: the program reads it directly after its bounds check, and its layout is
 * the wire format's, not a kernel object's, so no kernel-layout rule applies to it.
 */
export function readsPacket(chain: Chain): boolean {
  return isPacket(chain.baseTyped);
}
