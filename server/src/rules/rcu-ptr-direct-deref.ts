/**
 * `rcu-ptr-direct-deref`: in a sleepable BTF program (`fentry.s`, `lsm.s`, `iter.s`, …), a
 * pointer read from a member whose BTF type carries the `__rcu` tag (`task->real_parent`) and
 * dereferenced directly outside `bpf_rcu_read_lock()` … `bpf_rcu_read_unlock()`. A sleepable
 * program is not inside an RCU read-side section by itself: the verifier marks such a pointer
 * untrusted there (kfuncs reject it) and the object it points to may be freed while it is read.
 * Non-sleepable programs run inside one, so the verifier trusts those pointers and this is silent.
 */
import type { Node } from 'web-tree-sitter';
import { codeQuote, findingMessage, headlineWith } from '../analysis/model';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { Chain } from '../analysis/chains';
import { fieldAcross } from '../analysis/layout';
import type { FunctionFacts, Rule, RuleContext } from './rule';

export const rcuPtrDirectDeref: Rule = {
  meta: {
    id: 'rcu-ptr-direct-deref',
    description: 'Pointer read from an __rcu member dereferenced outside bpf_rcu_read_lock() in a sleepable program',
    defaultSeverity: 'warning',
    fixable: false,
    // A member chain one of these reported is not reported again.
    after: ['unsafe-kernel-deref', 'non-core-field-read'],
  },
  checkFunction(ctx, f) {
    if (ctx.model.bcc || ctx.loader.kind === 'bcc' || !f.fn.body) return;
    if (f.ctx.policy !== 'btf' || !f.ctx.sleepable) return;
    const sections = rcuSections(ctx, f.fn.body);
    for (const chain of f.chains) {
      if (chain.mode === 'skip' || ctx.claimed.has(chain)) continue;
      if (sections.some(([a, b]) => chain.top.startIndex >= a && chain.top.endIndex <= b)) continue;
      check(ctx, f, chain);
    }
  },
};

/**
 * Offset ranges between each `bpf_rcu_read_lock()` and the next `bpf_rcu_read_unlock()` (or the
 * end of the function), in source order: the read-side sections the verifier tracks.
 */
function rcuSections(ctx: RuleContext, body: Node): [number, number][] {
  const calls = body
    .descendantsOfType('call_expression')
    .filter((c): c is Node => !!c)
    .map((c) => ({ c, name: ctx.text(c.childForFieldName('function') ?? c) }))
    .filter((x) => x.name === 'bpf_rcu_read_lock' || x.name === 'bpf_rcu_read_unlock')
    .sort((a, b) => a.c.startIndex - b.c.startIndex);
  const out: [number, number][] = [];
  let open: number | undefined;
  for (const { c, name } of calls) {
    if (name === 'bpf_rcu_read_lock') open ??= c.endIndex;
    else if (open !== undefined) {
      out.push([open, c.startIndex]);
      open = undefined;
    }
  }
  if (open !== undefined) out.push([open, body.endIndex]);
  return out;
}

function check(ctx: RuleContext, f: FunctionFacts, chain: Chain) {
  const at = f.guards.kernelsAt(chain.top);
  if (at.empty) return;
  // A segment after the first reads through the pointer the previous segment loaded.
  for (let j = 1; j < chain.segments.length; j++) {
    if (!chain.segments[j].reads) continue;
    const prev = chain.segments[j - 1];
    const link = chain.links.find((l) => l.node.id === prev.node.id);
    if (!link || (link.agg.kind !== 'struct' && link.agg.kind !== 'union')) continue;
    const lay = ctx.env.layoutOf(link.agg.name);
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') continue;
    const per = fieldAcross(ctx.db, ctx.kernels, lay.kernelName, link.field);
    const kernels = at.kernels();
    const tagged = kernels.filter((k) => {
      const r = per[ctx.kernels.indexOf(k)];
      return r.present === true && (r.tags ?? '').split(',').includes('rcu') && rcuAware(ctx, k);
    });
    if (tagged.length === 0) continue;
    const ptr = codeQuote(ctx.text(prev.node));
    ctx.report({
      node: prev.node,
      message: findingMessage(
        ...headlineWith(
          `${ptr} is an \`__rcu\` pointer read outside an RCU section on ${tagged.length} of ${kernels.length} kernels this code runs on`,
          'the verifier marks it untrusted there',
        ),
        `It is \`${lay.kernelName}.${link.field}\`, an \`__rcu\` pointer on ${describeKernels(tagged, kernels)}. ` +
          'This sleepable program reads through it outside bpf_rcu_read_lock()/bpf_rcu_read_unlock(), so the verifier marks it untrusted there ' +
          '(kfuncs that need a trusted pointer reject it) and the object may be freed while it is read.',
        'Take bpf_rcu_read_lock() around the access, or read it with BPF_CORE_READ().',
      ),
      kernels: tagged.map((k) => k.name),
    });
    return;
  }
}

/**
 * Whether kernel `k`'s verifier tracks RCU read-side sections: it has the `bpf_rcu_read_lock`
 * kfunc (6.2+). Unknown counts as yes; a kernel known to lack it ignores the `rcu` tag.
 */
function rcuAware(ctx: RuleContext, k: Kernel): boolean {
  return ctx.db.kfunc('bpf_rcu_read_lock', [k])[0].present !== false;
}
