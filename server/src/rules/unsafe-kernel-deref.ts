/**
 * `unsafe-kernel-deref`: a direct `p->f` through a kernel pointer the verifier does not let the
 * program read — any kernel pointer in kprobe/tracepoint/raw_tp/perf_event/networking programs,
 * and pointers made from integers (`bpf_get_current_task()`) even in BTF programs. The load is
 * rejected on every kernel. BTF-typed pointers in fentry/fexit/tp_btf/lsm/iter programs, program
 * context structs, map values and the program's own structs are fine.
 */
import { chainFix } from '../analysis/fixes';
import { renderType } from '../analysis/ctypes';
import { codeQuote, findingMessage, headlineWith } from '../analysis/model';
import type { Chain } from '../analysis/chains';
import { runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';

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
    if (f.ctx.policy === 'btf') for (const chain of f.chains) beyondBtfType(ctx, f, chain);
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
      const through = codeQuote(i === 0 ? ctx.text(chain.base) : ctx.text(chain.segments[i - 1].node));
      const where =
        f.ctx.policy === 'btf'
          ? `${through} is not a BTF-typed pointer (it was made from an integer or read with a probe read)`
          : `${article(f.ctx.label)} ${f.ctx.label} program may not dereference kernel pointers`;
      ctx.claimed.add(chain);
      ctx.report({
        node: chain.top,
        message: findingMessage(
          ...headlineWith(
            `${codeQuote(ctx.text(chain.top))} reads ${renderType({ ...bad.agg, ptr: 0, arr: 0 })} memory directly`,
            'the verifier rejects the load on every kernel',
          ),
          // The headline (or the line after it) says the verifier rejects the load on every kernel.
          `It reads through ${through}: ${where}.`,
          'Read it with BPF_CORE_READ().',
        ),
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

/**
 * A BTF pointer cast to a larger struct (`struct tcp_sock *tp = (struct tcp_sock *)sk;` with `sk`
 * a `struct sock *` argument of an fentry program) and read directly past the end of the struct
 * the verifier knows: a C cast emits no instruction, so the register is still a `struct sock`
 * pointer, and the verifier rejects the load ("access beyond struct sock"). Reported on the
 * kernels where the member starts at or after the end of that struct; reads through
 * BPF_CORE_READ() or bpf_skc_to_tcp_sock() are fine.
 */
function beyondBtfType(ctx: RuleContext, f: FunctionFacts, chain: Chain): void {
  if (chain.mode !== 'load' && chain.mode !== 'write') return;
  const base = chain.baseTyped;
  const seg = chain.segments[0];
  if (base.prov !== 'trusted' || !base.btf || !seg || seg.prov !== 'trusted' || seg.fields.length === 0) return;
  const cast = ctx.env.kernelName(seg.agg.name);
  const known = ctx.env.kernelName(base.btf);
  if (!cast || !known || cast === known) return;
  const at = runsOn(ctx, f, chain.top);
  if (at.empty) return;
  const kernels = at.kernels();
  const field = ctx.db.field(cast, seg.fields[0], kernels).kernels;
  const agg = ctx.db.aggregate(known, kernels);
  const beyond = kernels.filter((_, i) => {
    const off = field[i].offsetBits;
    const size = agg[i].size;
    return field[i].present === true && off !== undefined && size !== undefined && off / 8 >= size;
  });
  if (beyond.length === 0) return;
  const i = kernels.indexOf(beyond[beyond.length - 1]);
  const example = `at offset ${field[i].offsetBits! / 8} of struct ${cast}, past the ${agg[i].size} bytes of struct ${known} on ${beyond[beyond.length - 1].name}`;
  ctx.claimed.add(chain);
  ctx.report({
    node: chain.top,
    message: findingMessage(
      ...headlineWith(
        `${codeQuote(ctx.text(chain.top))} reads past struct ${known}, the type the verifier knows`,
        `rejected on ${beyond.length === ctx.kernels.length ? 'all' : `${beyond.length} of ${ctx.kernels.length}`} target kernels`,
      ),
      `${codeQuote(ctx.text(chain.base))} points to a struct ${known} (a BTF-typed pointer); casting it to struct ${cast} changes nothing for the verifier, which refuses the load as an access beyond struct ${known}: \`${seg.fields[0]}\` is ${example}.`,
      `Convert it with a helper the verifier understands (bpf_skc_to_tcp_sock() and friends for sockets), or read it with BPF_CORE_READ() (a probe read).`,
    ),
    kernels: beyond.map((k) => k.name),
  });
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}
