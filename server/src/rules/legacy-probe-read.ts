/**
 * `legacy-probe-read`: `bpf_probe_read()` / `bpf_probe_read_str()` where the explicit
 * `bpf_probe_read_kernel[_str]()` / `bpf_probe_read_user[_str]()` work on every kernel the call
 * runs on — because those kernels have them (5.5+, or a backport), or because the loader turns
 * them back into the legacy helpers where they are missing (libbpf 0.2+, cilium/ebpf, BCC).
 *
 * The legacy helpers cannot tell user from kernel memory: on architectures whose user and kernel
 * address ranges overlap the read may come from the wrong one, and since 5.5 those architectures
 * do not offer the legacy helpers at all (they need CONFIG_ARCH_HAS_NON_OVERLAPPING_ADDRESS_SPACE).
 */
import type { Node } from 'web-tree-sitter';
import { compareVersions } from '../../../kernel-db/src/version';
import { deref } from '../analysis/ctypes';
import { type Fix, findingMessage } from '../analysis/model';
import { isArrow, isPacket } from '../analysis/scope';
import { calleeName, callsIn, localNames } from '../analysis/calls';
import { rewritesProbeRead } from './helper-unavailable';
import { runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';

// Without a prototype: a C function named `toString` or `constructor` is not in the table.
const REPLACEMENTS: Readonly<Record<string, { kernel: string; user: string }>> = Object.assign(Object.create(null), {
  bpf_probe_read: { kernel: 'bpf_probe_read_kernel', user: 'bpf_probe_read_user' },
  bpf_probe_read_str: { kernel: 'bpf_probe_read_kernel_str', user: 'bpf_probe_read_user_str' },
});

export const legacyProbeRead: Rule = {
  meta: {
    id: 'legacy-probe-read',
    description: 'bpf_probe_read()/bpf_probe_read_str() where the explicit kernel/user forms work on every target kernel',
    defaultSeverity: 'warning',
    fixable: true,
  },
  checkFunction(ctx, f) {
    if (!f.fn.body) return;
    const local = localNames(ctx.model);
    for (const call of callsIn(f.fn.body)) {
      const name = calleeName(call, ctx.model.text);
      if (!name || !REPLACEMENTS[name] || local.has(name)) continue;
      check(ctx, f, call, name);
    }
  },
};

function check(ctx: RuleContext, f: FunctionFacts, call: Node, name: string) {
  const at = runsOn(ctx, f, call);
  if (at.empty) return;
  const kernels = at.kernels();
  const forms = REPLACEMENTS[name];
  const k = ctx.db.helper(forms.kernel, kernels).kernels;
  const u = ctx.db.helper(forms.user, kernels).kernels;
  // A call that runs only where the explicit forms are missing is the fallback branch of a guard.
  if (k.every((a) => a.present === false)) return;
  // Without a rewriting loader, the explicit forms must exist on every kernel the call runs on.
  if (!rewritesProbeRead(ctx.loader) && (!k.every((a) => a.present === true) || !u.every((a) => a.present === true))) return;
  // The explicit forms came in with the restriction of the legacy helpers to architectures whose
  // address spaces do not overlap; the facts date both by the explicit kernel form.
  const split = ctx.db.facts.helper(forms.kernel)?.since;
  if (!split) return;
  // Kernels that do not offer the legacy helper at all: builds since then without the architecture option.
  const cfg = ctx.db.config('CONFIG_ARCH_HAS_NON_OVERLAPPING_ADDRESS_SPACE', kernels);
  const gone = kernels.filter((k, i) => compareVersions(k.version, split) >= 0 && cfg[i].present === false);
  const how = rewritesProbeRead(ctx.loader)
    ? `the loader (${ctx.loader.kind}) turns the explicit forms back into \`${name}\` on kernels before ${split}`
    : `every kernel this code runs on has the explicit forms`;
  const message = findingMessage(
    `\`${name}\` cannot tell kernel from user memory` +
      (gone.length ? `, and is not offered on ${gone.length} of ${kernels.length} kernels this code runs on` : ''),
    'On architectures whose user and kernel address ranges overlap (s390x, for one) it may read the wrong one, ' +
      `and since ${split} such architectures do not offer it at all (it needs CONFIG_ARCH_HAS_NON_OVERLAPPING_ADDRESS_SPACE)` +
      (gone.length ? `; ${gone.length} of the kernels this code runs on lack that option` : '') +
      '.',
    `Say which memory it reads with \`${forms.kernel}\` or \`${forms.user}\`; ${how}.`,
  );
  ctx.report({
    node: call.childForFieldName('function') ?? call,
    message,
    kernels: gone.map((k) => k.name),
    // Advice where every kernel offers it; where one does not, the verifier rejects the call there.
    severity: gone.length ? 'error' : 'info',
    fixes: fixes(ctx, f, call, forms),
  });
}

/** Both explicit forms; the one the source argument clearly points at comes first and is safe. */
function fixes(ctx: RuleContext, f: FunctionFacts, call: Node, forms: { kernel: string; user: string }): Fix[] {
  const fn = call.childForFieldName('function');
  if (!fn) return [];
  const args = (call.childForFieldName('arguments')?.namedChildren ?? []).filter((x): x is Node => !!x && x.type !== 'comment');
  const which = args[2] ? memoryOf(ctx, f, args[2]) : undefined;
  const kernel: Fix = {
    title: `Read kernel memory with ${forms.kernel}`,
    safe: which === 'kernel',
    edits: [{ range: ctx.range(fn), newText: forms.kernel }],
  };
  const user: Fix = {
    title: `Read user memory with ${forms.user}`,
    safe: which === 'user',
    edits: [{ range: ctx.range(fn), newText: forms.user }],
  };
  return which === 'user' ? [user, kernel] : [kernel, user];
}

/**
 * What the source pointer clearly points at: `&p->f` (or `p->f` for an array member) with `p` a
 * kernel struct → kernel memory; a parameter declared `__user` → user memory; otherwise unknown.
 */
function memoryOf(ctx: RuleContext, f: FunctionFacts, arg: Node): 'kernel' | 'user' | undefined {
  let e: Node | null = arg;
  while (e && (e.type === 'parenthesized_expression' || e.type === 'cast_expression'))
    e = e.type === 'cast_expression' ? e.childForFieldName('value') : e.namedChild(0);
  if (!e) return undefined;
  if (e.type === 'identifier') {
    const name = ctx.text(e);
    const p = f.fn.params.find((x) => x.name === name);
    if (p && /\b__user\b/.test(ctx.text(p.node))) return 'user';
    return undefined;
  }
  const addressOf = e.type === 'pointer_expression' && e.child(0)?.type === '&';
  if (addressOf) e = e.childForFieldName('argument');
  if (e?.type !== 'field_expression') return undefined;
  // Without `&`, only an array member is kernel memory; a pointer member's value (`mm->arg_start`)
  // may well point at user memory.
  if (!addressOf && f.scope.typeOf(e).type.arr === 0) return undefined;
  // The outermost struct of the member chain decides: `&t->mm->arg_start` reads a kernel struct.
  let base: Node = e;
  while (base.type === 'field_expression') {
    const inner = base.childForFieldName('argument');
    if (!inner || inner.type !== 'field_expression') break;
    base = inner;
  }
  const obj = base.childForFieldName('argument');
  if (!obj) return undefined;
  const typed = f.scope.typeOf(obj);
  // Packet memory is neither: the program reads it directly.
  if (isPacket(typed)) return undefined;
  const t = typed.type;
  const agg = isArrow(base) ? deref(t) : t;
  if (agg.kind !== 'struct' && agg.kind !== 'union') return undefined;
  const lay = ctx.env.layoutOf(agg.name);
  return lay.kernelName && lay.layout !== 'user' && lay.layout !== 'context' ? 'kernel' : undefined;
}
