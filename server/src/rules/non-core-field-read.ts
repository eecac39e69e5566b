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
import { type Fix, findingMessage, headlineWith } from '../analysis/model';
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
        const how = layoutSource(ctx, lay.def);
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
    message: findingMessage(
      ...headlineWith(
        `reads \`${what}\` at a fixed offset, wrong on ${bad.length} of ${total} target kernels`,
        'it reads other memory there',
      ),
      `Its offset is ${parts.join('; ')}; the layout comes from ${how}, so it is not relocated by CO-RE.`,
    ),
    kernels: bad.map((k) => k.name),
    fixes,
  });
}

/**
 * `__builtin_offsetof(struct task_struct, pid)` is a compile-time constant, never relocated, and so
 * is `offsetof` where it is the builtin (`<stddef.h>` first) or the type's layout is fixed anyway.
 * libbpf's `offsetof` on a type with `preserve_access_index` is a relocated member access: silent,
 * as is an `offsetof` whose definition is unknown.
 */
function offsetofUses(ctx: RuleContext, body: Node, guards: Guards) {
  const uses = [
    ...body.descendantsOfType('offsetof_expression').map((n) => ({ n, builtin: false })),
    ...body
      .descendantsOfType('call_expression')
      .filter((n) => {
        const fn = n?.childForFieldName('function');
        return fn?.type === 'identifier' && ctx.text(fn) === '__builtin_offsetof';
      })
      .map((n) => ({ n, builtin: true })),
  ];
  for (const { n, builtin } of uses) {
    if (!n) continue;
    // tree-sitter-c reads neither `__builtin_offsetof` nor a member path (`se.vruntime`) without
    // ERROR nodes: the operands come from the text. Array designators (`a[2]`) are not followed.
    const m =
      /^\s*(?:__builtin_)?offsetof\s*\(\s*(?:(struct|union)\s+)?([A-Za-z_]\w*)\s*,\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\)\s*$/.exec(
        ctx.text(n),
      );
    if (!m) continue;
    const [, keyword, spelled, path] = m;
    const typedef = keyword ? undefined : ctx.model.typedefs.get(spelled);
    if (!keyword && (!typedef || typedef.ptr > 0 || typedef.arr > 0 || (typedef.kind !== 'struct' && typedef.kind !== 'union'))) continue;
    const lay = ctx.env.layoutOf(typedef?.name ?? spelled);
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') continue;
    const constant = builtin || ctx.model.offsetof === 'builtin';
    if (!constant && lay.layout !== 'fixed') continue;
    const runsOn = guards.kernelsAt(n).kernels();
    if (runsOn.length === 0) continue;
    const member = path.replace(/\s+/g, '');
    const spread = offsetSpread(ctx.db, runsOn, lay.kernelName, member.split('.'));
    // The same offset on every target kernel with a known layout: the constant is right everywhere.
    if (failing(spread).length === 0) continue;
    const type = keyword ? `${keyword} ${spelled}` : spelled;
    const fix: Fix = {
      title: `Use bpf_core_field_offset(${type}, ${member})`,
      // A run-time value cannot stand where a constant is required (array sizes, initialisers).
      safe: false,
      edits: [{ range: ctx.range(n), newText: `bpf_core_field_offset(${type}, ${member})` }],
    };
    const how = builtin
      ? '__builtin_offsetof, a compile-time constant'
      : ctx.model.offsetof === 'builtin'
        ? 'offsetof, which <stddef.h> defines as __builtin_offsetof, a compile-time constant'
        : `offsetof on a type from ${layoutSource(ctx, lay.def)}, a compile-time constant`;
    report(ctx, n, `${lay.kernelName}.${member}`, spread, how, [fix], runsOn.length);
  }
}

/** Where a fixed layout comes from, for messages. */
function layoutSource(ctx: RuleContext, def: StructDef | undefined): string {
  return def
    ? `local copy of struct ${def.name} without preserve_access_index`
    : ctx.model.noPreserveAccessIndex
      ? 'BPF_NO_PRESERVE_ACCESS_INDEX'
      : 'kernel headers';
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
