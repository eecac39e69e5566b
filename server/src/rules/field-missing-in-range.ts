/**
 * `field-missing-in-range`: a struct member (or any link of a member chain) that some target
 * kernels do not have, on the kernels where the code runs — so reads inside
 * `if (bpf_core_field_exists(…))` are checked only against the kernels that have the field, and
 * the fallback branch only against the others.
 */
import { readsPacket, runsOn } from './common';
import { readTypeText } from '../analysis/ctypes';
import { toleratesMissing } from '../analysis/coreMacros';
import { describeKernels, versionRanges } from '../../../kernel-db/src/query/summary';
import type { Chain } from '../analysis/chains';
import { KSet } from '../analysis/kset';
import { fieldAcross } from '../analysis/layout';
import type { Node } from 'web-tree-sitter';
import type { Kernel, RenameCandidate } from '../../../kernel-db/src/query/db';
import { type Fix, findingMessage, headlineWith } from '../analysis/model';
import type { FunctionFacts, Rule, RuleContext } from './rule';

/** Constructs that mention a field without needing it at load time. */

export const fieldMissingInRange: Rule = {
  meta: {
    id: 'field-missing-in-range',
    description: 'Struct member absent on some target kernels where the code runs',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    for (const chain of [...f.chains, ...f.macroChains]) {
      // A member spelled with a macro is some other member: what cannot be followed stays silent.
      if (toleratesMissing(chain.within) || chain.aliased || readsPacket(chain)) continue;
      check(ctx, f, chain);
    }
  },
};

function check(ctx: RuleContext, f: FunctionFacts, chain: Chain) {
  const at = runsOn(ctx, f, chain.top);
  if (at.empty) return;
  for (const link of chain.links) {
    const agg = link.agg;
    if (agg.kind !== 'struct' && agg.kind !== 'union') return;
    const lay = ctx.env.layoutOf(agg.name);
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') continue;
    const kname = lay.kernelName;
    const across = fieldAcross(ctx.db, ctx.kernels, kname, link.field);
    // A minimal test config may only have configured a whole struct out: not evidence of absence.
    // Kernels without the struct at all are type-missing-in-range's to report (once, at the type),
    // not once more at every member read through it.
    const missing = KSet.where(ctx.kernels, (_, i) => at.has(i) && across[i].present === false && across[i].structPresent);
    if (missing.empty) continue;
    // BCC reads the host's kernel headers, whose macros name members too (`#define inet_dport
    // sk.__sk_common.skc_dport`): a name no kernel where the code runs has is one of those, not
    // a member to report.
    if (ctx.model.bcc && !ctx.kernels.some((_, i) => at.has(i) && across[i].present === true)) return;
    const gone = missing.kernels();
    const kernels = at.kernels();
    const hint = renameHint(ctx.db.field(kname, link.field, kernels).renameCandidates, gone, kernels);
    // The consequence for the headline, and how it comes about (BCC's says it all).
    const [consequence, how] = ctx.model.bcc
      ? ['BCC fails to compile the program there', undefined]
      : lay.layout === 'fixed'
        ? ['the read gets other memory there', 'The offset compiled into the program points at other memory there.']
        : ['the program does not load there', 'Its CO-RE relocation fails there.'];
    ctx.report({
      node: link.node,
      message: findingMessage(
        ...headlineWith(`\`${kname}.${link.field}\` is missing on ${gone.length} of ${at.size} kernels this code runs on`, consequence),
        `It is missing on ${describeKernels(gone, kernels)}${hint.text}.` +
          (at.size < ctx.kernels.length ? ' (Checked against the kernels its guards leave.)' : ''),
        how,
      ),
      kernels: gone.map((k) => k.name),
      fixes: hint.everywhere && link === chain.links[chain.links.length - 1] ? renameFix(ctx, f, chain, kname, hint.everywhere, gone) : [],
    });
    return;
  }
}

/**
 * What the kernels that lack the member call it, from the database's layout evidence (rename
 * candidates, `renames.ts`): "named `x` there" where one name covers them all (the only case the
 * fallback fix is offered for), each name with its kernels where they differ or cover only some,
 * nothing without evidence.
 */
function renameHint(
  cands: readonly RenameCandidate[],
  gone: readonly Kernel[],
  kernels: readonly Kernel[],
): { text: string; everywhere?: string } {
  const names = new Set(gone.map((k) => k.name));
  const named = cands.map((c) => ({ name: c.name, on: c.kernels.filter((n) => names.has(n)) })).filter((c) => c.on.length > 0);
  if (named.length === 0) return { text: '' };
  if (named.length === 1 && named[0].on.length === gone.length)
    return { text: `; named \`${named[0].name}\` there`, everywhere: named[0].name };
  const parts = named.map((c) => {
    const on = new Set(c.on);
    return `\`${c.name}\` on ${c.on.length} of them (${versionRanges(
      gone.filter((k) => on.has(k.name)),
      kernels,
    )})`;
  });
  return { text: `; named ${parts.join(', ')}` };
}

/**
 * The standard fallback for a renamed member: a `___flavor` struct with the old name, declared
 * with `preserve_access_index` before the function, and a guarded read that picks the member the
 * kernel has: `bpf_core_field_exists(t->__state) ? … : …((struct task_struct___old *)t)->state`.
 * Offered only where both members are scalars or pointers (so the two arms of `?:` agree).
 */
function renameFix(ctx: RuleContext, f: FunctionFacts, chain: Chain, struct: string, old: string, oldKernels: Kernel[]): Fix[] {
  if (chain.subscripted || chain.mode === 'write' || (chain.mode === 'address' && !chain.within)) return [];
  const last = chain.links[chain.links.length - 1];
  const oldType = oldKernels.map((k) => ctx.db.fieldOn(struct, old, k)).find((r) => r.present)?.type;
  if (!oldType || !scalarish(oldType) || !scalarish(renderNew(last.type))) return [];
  const text = ctx.model.text;
  let base: string;
  let macro = false;
  if (chain.within) {
    // BPF_CORE_READ(src, a, …, field): the base is the read of everything before the last field.
    if (chain.within !== 'BPF_CORE_READ' || chain.top.type !== 'call_expression') return [];
    const args = (chain.top.childForFieldName('arguments')?.namedChildren ?? []).filter((a): a is Node => !!a);
    if (args.length < 2 || text.slice(args[args.length - 1].startIndex, args[args.length - 1].endIndex).trim() !== last.field) return [];
    // BPF_CORE_READ cannot nest (clang rejects nested preserve_access_index), so only the
    // one-field form `BPF_CORE_READ(src, field)` gets the fallback.
    if (args.length !== 2) return [];
    base = text.slice(args[0].startIndex, args[0].endIndex).trim();
    macro = true;
  } else {
    if (last.op !== '->') return [];
    const arg = last.node.childForFieldName('argument');
    if (!arg) return [];
    base = text.slice(arg.startIndex, arg.endIndex);
  }
  // Parentheses only where the base is more than a name or a member chain.
  const b = /^[A-Za-z_]\w*(->[A-Za-z_]\w*|\.[A-Za-z_]\w*)*$/.test(base.trim()) ? base.trim() : `(${base})`;
  const flavor = `${struct}___old`;
  const edits: Fix['edits'] = [];
  if (!ctx.model.structs.has(flavor)) {
    const at = itemStart(ctx, f);
    edits.push({
      range: ctx.lines.range(at, at),
      newText: `struct ${flavor} {\n\t${declare(oldType, old)};\n} __attribute__((preserve_access_index));\n\n`,
    });
  }
  const direct = f.ctx.policy === 'btf' && !macro;
  const newer = direct ? `${b}->${last.field}` : `BPF_CORE_READ(${base}, ${last.field})`;
  const older = direct ? `((struct ${flavor} *)${b})->${old}` : `BPF_CORE_READ((struct ${flavor} *)${b}, ${old})`;
  edits.push({
    range: ctx.lines.range(chain.top.startIndex, chain.top.endIndex),
    newText: `(bpf_core_field_exists(${b}->${last.field}) ? ${newer} : ${older})`,
  });
  return [
    {
      title: `Fall back to ${old} where ${last.field} is missing (bpf_core_field_exists + struct ${flavor})`,
      safe: false,
      // bpf_core_field_exists() is defined in bpf_core_read.h, whichever way the fields are read.
      needsCoreRead: true,
      edits,
    },
  ];
}

/** Where the top-level item holding the function starts: its `SEC()` line, or the function's line. */
function itemStart(ctx: RuleContext, f: FunctionFacts): number {
  const text = ctx.model.text;
  let at = f.fn.node.startIndex;
  for (const s of ctx.model.sites()) {
    if (
      s.kind === 'section' &&
      s.target?.kind === 'function' &&
      s.end <= at &&
      s.start < at &&
      at - s.end < 200 &&
      /^[\w\s]*$/.test(text.slice(s.end, at))
    )
      at = s.start;
  }
  return text.lastIndexOf('\n', at - 1) + 1;
}

function renderNew(t: { kind: string; name: string; ptr: number; arr: number }): string {
  return t.kind === 'unknown' ? '' : `${t.kind === 'scalar' ? t.name : `${t.kind} ${t.name}`}${'*'.repeat(t.ptr)}${'[]'.repeat(t.arr)}`;
}

/** Integers, enums and pointers: types both arms of `?:` can share. */
function scalarish(type: string): boolean {
  const t = readTypeText(type);
  if (!t.bare || t.array || t.func) return false;
  return t.pointee !== undefined || !t.aggregate;
}

/** `long state`, `struct block_device *bi_bdev`. */
function declare(type: string, name: string): string {
  return type.endsWith('*') ? `${type}${name}` : `${type} ${name}`;
}
