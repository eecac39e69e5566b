/**
 * `type-missing-in-range`: a kernel struct or union the program relies on — the record type of a
 * tracepoint program, a variable, parameter or cast type whose members it reads, or the argument
 * of `bpf_core_type_size()` / `bpf_core_type_id_kernel()` / `bpf_core_cast()` — that some kernels
 * where that code runs do not have. CO-RE cannot relocate anything against a type the kernel's
 * BTF lacks, so the program does not load there.
 */
import { findingMessage, fitting, headlineWith } from '../analysis/model';
import { readsPacket, runsOn } from './common';
import { coreMacro, toleratesMissing } from '../analysis/coreMacros';
import type { Node } from 'web-tree-sitter';
import type { AggregateOnKernel, Kernel } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { Chain } from '../analysis/chains';
import { KSet } from '../analysis/kset';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { parentOf } from '../analysis/parents';

/** Calls whose type argument is relocated against the kernel's own type. */
const TYPE_RELOCATIONS = /^(bpf_core_type_size|bpf_core_type_id_kernel|bpf_core_cast)$/;
/** Constructs that mention a type or member without a relocation that can fail. */

export const typeMissingInRange: Rule = {
  meta: {
    id: 'type-missing-in-range',
    description: 'Kernel struct or union the program relies on is absent on some target kernels where the code runs',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFunction(ctx, f) {
    if (ctx.model.bcc || ctx.loader.kind === 'bcc' || !f.fn.body) return;
    relocationCalls(ctx, f);
    declaredTypes(ctx, f);
  },
};

/** The kernel struct a program type name stands for, unless it is the program's or a context struct. */
function kernelType(ctx: RuleContext, name: string): string | undefined {
  const lay = ctx.env.layoutOf(name);
  if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user' || lay.layout === 'unknown') return undefined;
  // A struct the file defines in full (not a ___flavor of a kernel struct) is the program's own.
  if (lay.def && lay.def.name === lay.kernelName) return undefined;
  return lay.kernelName;
}

/**
 * The kernels of `at` that lack aggregate `name`. A kernel with a minimal test config may only
 * have configured the type out, which says nothing about real builds of that version.
 */
function missingOn(ctx: RuleContext, name: string, at: KSet): { gone: Kernel[]; per: AggregateOnKernel[] } {
  const kernels = at.kernels();
  const per = ctx.db.aggregate(name, kernels);
  const gone = per.filter((a) => a.present === false && a.kernel.fidelity !== 'btf-minimal-config').map((a) => a.kernel);
  return { gone, per };
}

/** `bpf_core_type_size(struct x)` and the like: relocated against the kernel's type itself. */
function relocationCalls(ctx: RuleContext, f: FunctionFacts) {
  for (const call of f.fn.body!.descendantsOfType('call_expression')) {
    if (!call) continue;
    const fn = call.childForFieldName('function');
    const name = fn ? ctx.text(fn) : '';
    if (!TYPE_RELOCATIONS.test(name)) continue;
    const m = /\b(struct|union)\s+([A-Za-z_]\w*)\s*\)\s*$/.exec(ctx.text(call));
    if (!m) continue;
    const kname = kernelType(ctx, m[2]);
    if (!kname) continue;
    const at = runsOn(ctx, f, call);
    if (at.empty) continue;
    const { gone } = missingOn(ctx, kname, at);
    if (gone.length === 0) continue;
    ctx.report({
      node: call,
      message: findingMessage(
        ...headlineWith(
          `${m[1]} ${kname} is missing on ${gone.length} of ${at.size} kernels this code runs on`,
          'the program does not load there',
        ),
        `It is missing on ${describeKernels(gone, at.kernels())}. ` +
          `\`${name}()\` is relocated against the kernel's own type, so the relocation fails and the program does not load there; ` +
          `guard it with bpf_core_type_exists(${m[1]} ${m[2]}).`,
      ),
      kernels: gone.map((k) => k.name),
    });
  }
}

/**
 * Types named in declarations, parameters and casts: reported once per type, at the first place
 * the function names it, on the kernels where the member reads through that type run and the
 * type is missing. A type only declared, never read through, needs nothing from the kernel.
 */
function declaredTypes(ctx: RuleContext, f: FunctionFacts) {
  const mentions = new Map<string, { node: Node; local: string; kind: string }>();
  const visit = (n: Node) => {
    if ((n.type === 'struct_specifier' || n.type === 'union_specifier') && !n.childForFieldName('body')) {
      const name = n.childForFieldName('name');
      if (name && usedAsType(n)) {
        const local = ctx.text(name);
        const kname = kernelType(ctx, local);
        if (kname && !mentions.has(kname)) mentions.set(kname, { node: n, local, kind: n.type === 'union_specifier' ? 'union' : 'struct' });
      }
    }
  };
  // Parameters first (the tracepoint record type), then the body in source order.
  for (const p of f.fn.params)
    for (const n of [p.node, ...p.node.descendantsOfType(['struct_specifier', 'union_specifier'])]) if (n) visit(n);
  for (const n of f.fn.body!.descendantsOfType(['struct_specifier', 'union_specifier'])) if (n) visit(n);
  if (mentions.size === 0) return;
  const reads = [...f.chains, ...f.macroChains].filter((c) => !toleratesMissing(c.within) && !readsPacket(c));
  for (const [kname, m] of mentions) {
    const through = reads.filter((c) => readsThrough(ctx, c, kname));
    if (through.length === 0) continue;
    const at = through.reduce((acc, c) => acc.or(runsOn(ctx, f, c.top)), KSet.none(ctx.kernels));
    if (at.empty) continue;
    const { gone } = missingOn(ctx, kname, at);
    if (gone.length === 0) continue;
    const tracepoint =
      f.fn.params[0]?.node.startIndex <= m.node.startIndex &&
      f.fn.params[0]?.node.endIndex >= m.node.endIndex &&
      /^(tp|tracepoint)\//.test(f.ctx.sec ?? '') &&
      kname.startsWith('trace_event_raw_');
    ctx.report({
      node: m.node,
      message: findingMessage(
        fitting(
          `${m.kind} ${kname} is missing on ${gone.length} of ${at.size} kernels where this function reads through it; the program does not load there`,
          `${m.kind} ${kname} is missing on ${gone.length} of ${at.size} kernels this code runs on; the program does not load there`,
          `${m.kind} ${kname} is missing on ${gone.length} of ${at.size} kernels; the program does not load there`,
        ),
        `It is missing on ${describeKernels(gone, at.kernels())}, of the ${at.size} kernels where this function reads through it.` +
          (tracepoint
            ? ` It is the record type of \`SEC("${f.ctx.sec}")\`: the tracepoint or its record layout does not exist there.`
            : ''),
        `The ${through.length} CO-RE read${through.length === 1 ? '' : 's'} through it cannot be relocated there, so the program does not load; ` +
          `guard ${through.length === 1 ? 'it' : 'them'} with bpf_core_type_exists(${m.kind} ${m.local}).`,
      ),
      kernels: gone.map((k) => k.name),
      uses: through.map((c) => c.top),
      related: through.map((c) => ({ range: ctx.range(c.top), message: `a CO-RE read through ${m.kind} ${kname}` })),
    });
  }
}

/** Whether a struct specifier names a type in a declaration, parameter or cast (not a definition). */
function usedAsType(n: Node): boolean {
  const p = parentOf(n);
  if (!p) return false;
  if (p.type === 'declaration' || p.type === 'parameter_declaration') return p.childForFieldName('type')?.id === n.id;
  if (p.type === 'type_descriptor') {
    // `(struct x *)p`: a cast; `sizeof(struct x)` and friends relocate nothing.
    const q = parentOf(p);
    return q?.type === 'cast_expression';
  }
  return false;
}

/** Whether a chain reads a member of kernel struct `kname` (through any flavor of it). */
function readsThrough(ctx: RuleContext, c: Chain, kname: string): boolean {
  // Only a relocated read needs the type in the kernel: a CO-RE macro, or a type with CO-RE layout.
  // A struct from kernel or UAPI headers read plainly is compiled to fixed offsets (no relocation).
  const macro = coreMacro(c.within)?.relocates === true;
  return c.links.some(
    (l) =>
      (l.agg.kind === 'struct' || l.agg.kind === 'union') &&
      kernelType(ctx, l.agg.name) === kname &&
      (macro || ctx.env.layoutOf(l.agg.name).layout === 'core'),
  );
}
