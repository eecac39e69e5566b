/**
 * `non-core-field-read`: a kernel struct read at an offset fixed at compile time — a member access
 * through a type without CO-RE relocation (kernel headers, `BPF_NO_PRESERVE_ACCESS_INDEX`, a local
 * copy of a kernel struct without `preserve_access_index`), a probe read of such a member's
 * address, `offsetof` on a kernel struct, and the hand-copied struct itself. Where the kernels'
 * layouts differ, the program silently reads the wrong memory.
 */
import type { Node } from 'web-tree-sitter';
import { chainFix } from '../analysis/fixes';
import { num, offsetSpread, shortLabel, type OffsetSpread } from '../analysis/layout';
import type { Fix } from '../analysis/model';
import type { Rule, RuleContext } from './rule';

export const nonCoreFieldRead: Rule = {
  meta: {
    id: 'non-core-field-read',
    description: 'Kernel struct field read at an offset fixed at compile time (no CO-RE relocation)',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    if (ctx.model.bcc || ctx.loader.kind === 'bcc') return; // BCC compiles against each host's own headers.
    for (const chain of f.chains) {
      if (chain.mode === 'skip' || ctx.claimed.has(chain)) continue;
      // The first segment whose layout is fixed decides the finding; later ones usually follow.
      let worst: { spread: OffsetSpread; struct: string; fields: string[]; how: string } | undefined;
      for (const s of chain.segments) {
        const lay = ctx.env.layoutOf(s.agg.name);
        if (lay.layout !== 'fixed' || !lay.kernelName) continue;
        const spread = offsetSpread(ctx.db, ctx.kernels, lay.kernelName, s.fields);
        const how = lay.def ? `local copy of struct ${lay.def.name} without preserve_access_index` : ctx.model.noPreserveAccessIndex ? 'BPF_NO_PRESERVE_ACCESS_INDEX' : 'kernel headers';
        if (!worst || failing(spread).length > failing(worst.spread).length) worst = { spread, struct: lay.kernelName, fields: s.fields, how };
      }
      if (!worst) continue;
      ctx.claimed.add(chain);
      const fixes: Fix[] = chainFix(chain, { model: ctx.model, lines: ctx.lines, db: ctx.db, kernels: ctx.kernels, isArray: (n) => f.scope.typeOf(n).type.arr > 0 });
      report(ctx, chain.top, `${worst.struct}.${worst.fields.join('.')}`, worst.spread, worst.how, fixes);
    }
    if (f.fn.body) offsetofUses(ctx, f.fn.body);
  },
  checkFile(ctx) {
    if (ctx.model.bcc) return;
    handCopies(ctx);
  },
};

function failing(s: OffsetSpread) {
  return [...s.differ, ...s.missing];
}

function report(ctx: RuleContext, node: Node, what: string, s: OffsetSpread, how: string, fixes: Fix[]) {
  const bad = failing(s);
  const total = ctx.kernels.length;
  const at = s.common !== undefined && s.commonOn ? `${num(s.common)} on ${shortLabel(s.commonOn)}` : 'no known offset';
  const parts = [at];
  if (s.differ.length) parts.push(`differs on ${s.differ.length} of ${total} target kernels`);
  if (s.missing.length) parts.push(`missing on ${s.missing.length}`);
  if (!s.differ.length && !s.missing.length) parts.push(`the same on all ${s.known.length} target kernels with known layouts`);
  if (s.unknown.length) parts.push(`unknown on ${s.unknown.length} without offsets`);
  ctx.report({
    node,
    message: `reads \`${what}\` at a fixed offset (${parts.join('; ')}); the layout comes from ${how}, so it is not relocated by CO-RE.`,
    kernels: bad.map((k) => k.name),
    fixes,
    ...(bad.length === 0 ? { severity: 'info' as const } : {}),
  });
}

/** `offsetof(struct task_struct, pid)`: a compile-time constant, never relocated. */
function offsetofUses(ctx: RuleContext, body: Node) {
  for (const n of body.descendantsOfType('offsetof_expression')) {
    if (!n) continue;
    const type = n.childForFieldName('type')?.childForFieldName('type');
    const member = n.childForFieldName('member');
    if (!type || !member || type.type !== 'struct_specifier') continue;
    const name = type.childForFieldName('name');
    if (!name) continue;
    const lay = ctx.env.layoutOf(ctx.text(name));
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') continue;
    const spread = offsetSpread(ctx.db, ctx.kernels, lay.kernelName, ctx.text(member).split('.'));
    const fix: Fix = {
      title: `Use bpf_core_field_offset(struct ${ctx.text(name)}, ${ctx.text(member)})`,
      // A run-time value cannot stand where a constant is required (array sizes, initialisers).
      safe: false,
      edits: [{ range: ctx.range(n), newText: `bpf_core_field_offset(struct ${ctx.text(name)}, ${ctx.text(member)})` }],
    };
    report(ctx, n, `${lay.kernelName}.${ctx.text(member)}`, spread, 'offsetof, a compile-time constant', [fix]);
  }
}

/** A local copy of a kernel struct without `preserve_access_index` (the classic `___flavor` bug). */
function handCopies(ctx: RuleContext) {
  for (const def of ctx.model.structs.values()) {
    if (def.uri !== ctx.model.uri || def.core) continue;
    const lay = ctx.env.layoutOf(def.name);
    if (lay.layout !== 'fixed' || !lay.kernelName || !lay.def) continue;
    // Only a real copy: every member it declares exists in the kernel struct.
    const names = [...def.fields.keys()];
    if (names.length === 0 || !names.every((n) => ctx.db.fieldShape(lay.kernelName!, n))) continue;
    const nameNode = def.node.childForFieldName('name') ?? def.node;
    const body = def.node.childForFieldName('body');
    const fixes: Fix[] = body ? [{
      title: 'Add __attribute__((preserve_access_index))',
      safe: true,
      edits: [{ range: ctx.lines.range(body.endIndex, body.endIndex), newText: ' __attribute__((preserve_access_index))' }],
    }] : [];
    const spreads = names.map((n) => offsetSpread(ctx.db, ctx.kernels, lay.kernelName!, [n]));
    const bad = new Set(spreads.flatMap((s) => failing(s).map((k) => k.name)));
    ctx.report({
      node: nameNode,
      message: `struct ${def.name} copies kernel struct ${lay.kernelName} without preserve_access_index: its ${names.length} member offset(s) are fixed at compile time` +
        (bad.size ? `; they differ or are missing on ${bad.size} of ${ctx.kernels.length} target kernels.` : '.') +
        (def.name !== lay.kernelName ? ' A ___flavor struct declared after `#pragma clang attribute pop` loses the attribute.' : ''),
      kernels: [...bad],
      fixes,
      ...(bad.size === 0 ? { severity: 'info' as const } : {}),
    });
  }
}
