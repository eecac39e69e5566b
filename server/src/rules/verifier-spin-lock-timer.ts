/**
 * `verifier-spin-lock-timer`: a map value struct holding a `struct bpf_spin_lock` or a
 * `struct bpf_timer`, per kernel by whether its BTF has the struct; the message quotes the facts'
 * `spin_lock` or `bpf_timer` floor.
 * Part of the `verifier-feature-unavailable` group.
 */
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { FileModel } from '../analysis/file';
import type { MapMemberSite } from '../parse/sites';
import { findingMessage, headlineWith } from '../analysis/model';
import type { Rule, RuleContext } from './rule';

export const verifierSpinLockTimer: Rule = {
  meta: {
    id: 'verifier-spin-lock-timer',
    description: 'struct bpf_spin_lock or struct bpf_timer in a map value on kernels without it',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFile(ctx) {
    mapValueFeatures(ctx);
  },
};

function mapValueFeatures(ctx: RuleContext) {
  for (const site of ctx.model.sites()) {
    if (site.kind !== 'map-member' || site.member !== 'value') continue;
    const m = /^(?:struct\s+)?([A-Za-z_]\w*)$/.exec((site as MapMemberSite).value.text.trim());
    const def = m ? (ctx.model.structs.get(m[1]) ?? ctx.model.structs.get(nameOfTypedef(ctx.model, m[1]) ?? '')) : undefined;
    if (!def) continue;
    for (const [field, info] of def.fields) {
      if (info.type.kind !== 'struct' || info.type.ptr !== 0) continue;
      const lock = info.type.name === 'bpf_spin_lock';
      if (!lock && info.type.name !== 'bpf_timer') continue;
      const since = lock ? ctx.db.facts.featureSince('spin_lock') : ctx.db.facts.featureSince('bpf_timer');
      if (!since) continue;
      const have = ctx.db.aggregate(info.type.name, ctx.kernels);
      const missing = ctx.kernels.filter((_, i) => have[i].present === false);
      if (missing.length === 0) continue;
      ctx.report({
        span: { start: site.value.start, end: site.value.end },
        message: findingMessage(
          ...headlineWith(
            `The map value struct ${def.name} holds a \`struct ${info.type.name}\`, missing on ${missing.length} of ${ctx.kernels.length} target kernels`,
            'creating the map fails there',
          ),
          `It holds a \`struct ${info.type.name}\` (\`${field}\`), which needs ${since} (${lock ? 'BPF spin locks' : 'BPF timers'}); ` +
            `the kernel has no such struct, so creating the map fails, on ${describeKernels(missing, ctx.kernels)}.`,
        ),
        kernels: missing.map((k) => k.name),
      });
    }
  }
}

function nameOfTypedef(model: FileModel, name: string): string | undefined {
  const t = model.typedefs.get(name);
  return t && (t.kind === 'struct' || t.kind === 'union') && t.ptr === 0 ? t.name : undefined;
}
