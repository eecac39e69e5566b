/**
 * `unsafe-kernel-deref`: a direct `p->f` through a kernel pointer the verifier does not let the
 * program read — any kernel pointer in kprobe/tracepoint/raw_tp/perf_event/networking programs,
 * and pointers made from integers (`bpf_get_current_task()`) even in BTF programs. The load is
 * rejected on every kernel. BTF-typed pointers in fentry/fexit/tp_btf/lsm/iter programs, program
 * context structs, map values and the program's own structs are fine.
 */
import { chainFix } from '../analysis/fixes';
import { renderType } from '../analysis/ctypes';
import type { Rule } from './rule';

export const unsafeKernelDeref: Rule = {
  meta: {
    id: 'unsafe-kernel-deref',
    description: 'Direct dereference of a kernel pointer in a program type that must use probe reads',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    if (ctx.model.bcc || ctx.loader.kind === 'bcc') return; // BCC rewrites dereferences into probe reads itself.
    if (f.ctx.policy === 'unknown') return;
    for (const chain of f.chains) {
      if (chain.mode === 'skip') continue;
      const bad = chain.segments.find((s) => {
        // Packet pointers (`ctx->data` and pointers computed from it) are readable after the
        // program's bounds check: their provenance is `packet`, never `untrusted`.
        if (!s.reads || s.prov !== 'untrusted') return false;
        const layout = ctx.env.layoutOf(s.agg.name);
        // Only kernel objects: the program's own structs and context structs are readable.
        return layout.kernelName !== undefined && layout.layout !== 'context' && layout.layout !== 'user';
      });
      if (!bad) continue;
      const i = chain.segments.indexOf(bad);
      const through = i === 0 ? ctx.text(chain.base) : ctx.text(chain.segments[i - 1].node);
      const where =
        f.ctx.policy === 'btf'
          ? `\`${through}\` is not a BTF-typed pointer (it was made from an integer or read with a probe read), so the verifier rejects the load`
          : `${article(f.ctx.label)} ${f.ctx.label} program may not dereference kernel pointers; the verifier rejects the load`;
      ctx.claimed.add(chain);
      ctx.report({
        node: chain.top,
        message: `\`${ctx.text(chain.top)}\` reads ${renderType({ ...bad.agg, ptr: 0, arr: 0 })} memory directly through \`${through}\`: ${where} on every kernel. Read it with BPF_CORE_READ().`,
        kernels: f.guards
          .kernelsAt(chain.top)
          .kernels()
          .map((k) => k.name),
        fixes: chainFix(chain, {
          model: ctx.model,
          lines: ctx.lines,
          db: ctx.db,
          kernels: ctx.kernels,
          isArray: (n) => f.scope.typeOf(n).type.arr > 0,
        }),
      });
    }
  },
};

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}
