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
import type { Kernel } from '../../../kernel-db/src/query/db';
import type { StructDef } from '../analysis/file';
import type { Guards } from '../analysis/guards';
import type { Rule, RuleContext } from './rule';

export const nonCoreFieldRead: Rule = {
  meta: {
    id: 'non-core-field-read',
    description: 'Kernel struct field read at an offset fixed at compile time (no CO-RE relocation)',
    defaultSeverity: 'error',
    fixable: true,
    // A member chain one of these reported is not reported again.
    after: ['unsafe-kernel-deref'],
  },
  checkFunction(ctx, f) {
    if (ctx.model.bcc || ctx.loader.kind === 'bcc') return; // BCC compiles against each host's own headers.
    for (const chain of f.chains) {
      if (chain.mode === 'skip' || ctx.claimed.has(chain)) continue;
      // The first segment whose layout is fixed decides the finding; later ones usually follow.
      // Only the kernels this code runs on, after its guards.
      const runsOn = f.guards.kernelsAt(chain.top).kernels();
      if (runsOn.length === 0) continue;
      let worst: { spread: OffsetSpread; struct: string; fields: string[]; how: string; def?: StructDef } | undefined;
      for (const s of chain.segments) {
        // Packet headers (`eth->h_proto` through a pointer computed from `ctx->data`) have the
        // wire format's layout, not a kernel's.
        if (s.prov === 'packet') continue;
        const lay = ctx.env.layoutOf(s.agg.name);
        if (lay.layout !== 'fixed' || !lay.kernelName) continue;
        const spread =
          lay.def && s.fields.length === 1 && [...lay.def.fields.keys()][0] === s.fields[0]
            ? firstMemberSpread(ctx, runsOn, lay.kernelName, s.fields[0])
            : offsetSpread(ctx.db, runsOn, lay.kernelName, s.fields);
        const how = lay.def
          ? `local copy of struct ${lay.def.name} without preserve_access_index`
          : ctx.model.noPreserveAccessIndex
            ? 'BPF_NO_PRESERVE_ACCESS_INDEX'
            : 'kernel headers';
        if (!worst || failing(spread).length > failing(worst.spread).length)
          worst = { spread, struct: lay.kernelName, fields: s.fields, how, ...(lay.def ? { def: lay.def } : {}) };
      }
      // An offset that is the same on every target kernel with a known layout reads the right
      // memory everywhere: not a finding (kernels without offsets prove nothing either way).
      if (!worst || failing(worst.spread).length === 0) continue;
      ctx.claimed.add(chain);
      const fixes: Fix[] = chainFix(chain, {
        model: ctx.model,
        lines: ctx.lines,
        db: ctx.db,
        kernels: ctx.kernels,
        isArray: (n) => f.scope.typeOf(n).type.arr > 0,
      });
      // Through a local copy of a kernel struct, the better fix is to make the copy relocatable.
      if (worst.def && worst.def.uri === ctx.model.uri) fixes.unshift(attributeFix(ctx, worst.def));
      report(ctx, chain.top, `${worst.struct}.${worst.fields.join('.')}`, worst.spread, worst.how, fixes, runsOn.length);
    }
    if (f.fn.body) offsetofUses(ctx, f.fn.body, f.guards);
  },
};

/**
 * The first member of a local copy sits at offset 0, whatever the kernels say: the read is wrong
 * wherever the kernel's member is elsewhere.
 */
function firstMemberSpread(ctx: RuleContext, kernels: Kernel[], struct: string, field: string): OffsetSpread {
  const differ: Kernel[] = [];
  const missing: Kernel[] = [];
  const unknown: Kernel[] = [];
  const known: Kernel[] = [];
  for (const k of kernels) {
    const r = ctx.db.fieldOn(struct, field, k);
    if (!r.present) missing.push(k);
    else if (r.offsetBits === undefined) unknown.push(k);
    else {
      known.push(k);
      if (r.offsetBits !== 0) differ.push(k);
    }
  }
  return { common: 0, differ, missing, unknown, known };
}

function failing(s: OffsetSpread) {
  return [...s.differ, ...s.missing];
}

/** Reports a read whose fixed offset is wrong on some target kernels (`failing(s)` is not empty). */
function report(ctx: RuleContext, node: Node, what: string, s: OffsetSpread, how: string, fixes: Fix[], total: number) {
  const bad = failing(s);
  const at =
    s.common === undefined
      ? 'no known offset'
      : s.commonOn
        ? `${num(s.common)} on ${shortLabel(s.commonOn)}`
        : `${num(s.common)} in the local copy`;
  const parts = [at];
  if (s.differ.length) parts.push(`differs on ${s.differ.length} of ${total} target kernels`);
  if (s.missing.length) parts.push(`missing on ${s.missing.length}`);
  if (s.unknown.length) parts.push(`unknown on ${s.unknown.length} without offsets`);
  ctx.report({
    node,
    message: `reads \`${what}\` at a fixed offset (${parts.join('; ')}); the layout comes from ${how}, so it is not relocated by CO-RE.`,
    kernels: bad.map((k) => k.name),
    fixes,
  });
}

/** `offsetof(struct task_struct, pid)`: a compile-time constant, never relocated. */
function offsetofUses(ctx: RuleContext, body: Node, guards: Guards) {
  for (const n of body.descendantsOfType('offsetof_expression')) {
    if (!n) continue;
    const type = n.childForFieldName('type')?.childForFieldName('type');
    const member = n.childForFieldName('member');
    if (!type || !member || type.type !== 'struct_specifier') continue;
    const name = type.childForFieldName('name');
    if (!name) continue;
    const lay = ctx.env.layoutOf(ctx.text(name));
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') continue;
    const runsOn = guards.kernelsAt(n).kernels();
    if (runsOn.length === 0) continue;
    const spread = offsetSpread(ctx.db, runsOn, lay.kernelName, ctx.text(member).split('.'));
    // The same offset on every target kernel with a known layout: the constant is right everywhere.
    if (failing(spread).length === 0) continue;
    const fix: Fix = {
      title: `Use bpf_core_field_offset(struct ${ctx.text(name)}, ${ctx.text(member)})`,
      // A run-time value cannot stand where a constant is required (array sizes, initialisers).
      safe: false,
      edits: [{ range: ctx.range(n), newText: `bpf_core_field_offset(struct ${ctx.text(name)}, ${ctx.text(member)})` }],
    };
    report(ctx, n, `${lay.kernelName}.${ctx.text(member)}`, spread, 'offsetof, a compile-time constant', [fix], runsOn.length);
  }
}

/**
 * `__attribute__((preserve_access_index))` on a local copy of a kernel struct (the classic
 * `___flavor` struct declared after `#pragma clang attribute pop`): every access through it is
 * then relocated. The copy itself is not a finding: read only through `BPF_CORE_READ()`, it is
 * relocated already.
 */
function attributeFix(ctx: RuleContext, def: StructDef): Fix {
  const body = def.node.childForFieldName('body');
  const at = body ? body.endIndex : def.node.endIndex;
  return {
    title: `Add __attribute__((preserve_access_index)) to struct ${def.name}`,
    safe: true,
    edits: [{ range: ctx.lines.range(at, at), newText: ' __attribute__((preserve_access_index))' }],
  };
}
