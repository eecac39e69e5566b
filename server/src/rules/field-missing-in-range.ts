/**
 * `field-missing-in-range`: a struct member (or any link of a member chain) that some target
 * kernels do not have, on the kernels where the code runs — so reads inside
 * `if (bpf_core_field_exists(…))` are checked only against the kernels that have the field, and
 * the fallback branch only against the others.
 */
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { Chain } from '../analysis/chains';
import { KSet } from '../analysis/kset';
import { fieldAcross } from '../analysis/layout';
import type { FunctionFacts, Rule, RuleContext } from './rule';

/** Constructs that mention a field without needing it at load time. */
const NO_RELOCATION = /^(sizeof|alignof|offsetof|typeof|__typeof__|bpf_core_field_exists|bpf_core_type_exists|bpf_core_type_matches|bpf_core_type_size|bpf_core_type_id_kernel|bpf_core_type_id_local)$/;

export const fieldMissingInRange: Rule = {
  meta: {
    id: 'field-missing-in-range',
    description: 'Struct member absent on some target kernels where the code runs',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFunction(ctx, f) {
    for (const chain of [...f.chains, ...f.macroChains]) {
      if (chain.within && NO_RELOCATION.test(chain.within)) continue;
      check(ctx, f, chain);
    }
  },
};

function check(ctx: RuleContext, f: FunctionFacts, chain: Chain) {
  const at = f.guards.kernelsAt(chain.top);
  if (at.empty) return;
  for (const link of chain.links) {
    const agg = link.agg;
    if (agg.kind !== 'struct' && agg.kind !== 'union') return;
    const lay = ctx.env.layoutOf(agg.name);
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') continue;
    const kname = lay.kernelName;
    const across = fieldAcross(ctx.db, ctx.kernels, kname, link.field);
    // A minimal test config may only have configured a whole struct out: not evidence of absence.
    const missing = KSet.where(ctx.kernels, (k, i) => at.has(i) && across[i].present === false && (across[i].structPresent || k.fidelity !== 'btf-minimal-config'));
    if (missing.empty) continue;
    const gone = missing.kernels();
    const kernels = at.kernels();
    const per = ctx.kernels.map((_, i) => across[i]).filter((_, i) => at.has(i));
    const av = ctx.db.field(kname, link.field, kernels);
    const cand = av.renameCandidates[0];
    const how = ctx.model.bcc
      ? 'BCC fails to compile the program there'
      : lay.layout === 'fixed'
        ? 'the compiled offset points at other memory there'
        : 'its CO-RE relocation fails and the program does not load there';
    const structOnly = per.every((r, i) => !gone.includes(kernels[i]) || !r.structPresent);
    const what = structOnly ? `struct ${kname} (and so \`${link.field}\`)` : `\`${kname}.${link.field}\``;
    ctx.report({
      node: link.node,
      message: `${what} is missing on ${gone.length} of ${at.size} kernels this code runs on: ${describeKernels(gone, kernels)}` +
        `${cand ? `; named \`${cand.name}\` there` : ''}. ${capitalize(how)}.` +
        (at.size < ctx.kernels.length ? ' (Checked against the kernels its guards leave.)' : ''),
      kernels: gone.map((k) => k.name),
    });
    return;
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
