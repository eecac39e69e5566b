/**
 * `kernel-version-gate` (info): behaviour selected by comparing `LINUX_KERNEL_VERSION` or
 * `LINUX_VERSION_CODE` with a version, in `if`, `?:` or `#if`. Distro kernels backport features
 * without changing their version (RHEL 8's 4.18 and openEuler's 4.19 carry 5.x helpers), and
 * configs leave features out of new versions, so the check picks the wrong branch there. Where
 * the newer branch uses a helper, kfunc or struct member the database knows, the finding names
 * the target kernels whose version number lies about it and the CO-RE probe that asks the
 * kernel itself. Guards still narrow on such checks (they do select code); this rule only informs.
 */
import type { Node } from 'web-tree-sitter';
import { codeQuote, findingMessage } from '../analysis/model';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { compareVersions } from '../../../kernel-db/src/version';
import { deref } from '../analysis/ctypes';
import { isArrow, isPacket } from '../analysis/scope';
import { calleeName, callsIn, localNames } from '../analysis/calls';
import { runsOn } from './common';
import { kfuncDecl } from './kfunc-unavailable';
import { versionComparison } from '../analysis/versionCheck';
import type { FunctionFacts, Rule, RuleContext } from './rule';

/** A version comparison: the operator with the version name on the left, and the version. */
interface Gate {
  readonly node: Node;
  readonly op: string;
  readonly version: string;
  /** The statement or expression that runs when the kernel is at least `version`, if there is one. */
  readonly newer?: Node;
  /** A part of `newer` that does not belong to it (the `#else` of an `#if` body). */
  readonly skip?: Node;
}

/** A feature the newer branch uses, with its presence per target kernel. */
interface Feature {
  readonly what: string;
  readonly probe: string;
  readonly present: (boolean | null)[];
}

export const kernelVersionGate: Rule = {
  meta: {
    id: 'kernel-version-gate',
    description: 'Behaviour selected by kernel version number, which distro backports and configs defeat',
    defaultSeverity: 'info',
    fixable: false,
  },
  checkFunction(ctx, f) {
    if (!f.fn.body) return;
    for (const gate of gates(ctx, f.fn.body)) report(ctx, f, gate);
  },
  checkFile(ctx) {
    // `#if LINUX_VERSION_CODE …` outside functions (inside them the function check sees it): the
    // tree is walked around the functions, not through them (an edit re-runs this on every keystroke).
    if (ctx.model.functions.length === 0) return;
    const outside: Node[] = [];
    // An explicit stack: nesting outside functions can be as deep as a file makes it. The top
    // level is the model's (the root's children, read from the tree once per edit).
    const stack: Node[] = ctx.model.topLevel.filter((c) => c.type !== 'function_definition');
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (GATE_TYPES.includes(n.type)) outside.push(n);
      for (const c of n.namedChildren) if (c && c.type !== 'function_definition') stack.push(c);
    }
    outside.sort((a, b) => a.startIndex - b.startIndex);
    for (const g of gates(ctx, outside)) report(ctx, undefined, g);
  },
};

const GATE_TYPES = ['if_statement', 'conditional_expression', 'preproc_if', 'preproc_elif'];

/** Version comparisons in conditions of `if`, `?:` and `#if`/`#elif`: those under `root`, or the `candidates` given. */
function gates(ctx: RuleContext, root: Node | readonly Node[]): Gate[] {
  const out: Gate[] = [];
  const seen = new Set<number>();
  for (const p of Array.isArray(root) ? root : (root as Node).descendantsOfType(GATE_TYPES)) {
    const cond = p?.childForFieldName('condition');
    if (!p || !cond) continue;
    for (const cmp of [cond, ...cond.descendantsOfType('binary_expression')]) {
      if (!cmp || cmp.type !== 'binary_expression' || seen.has(cmp.id)) continue;
      seen.add(cmp.id);
      const g = comparison(ctx, cmp);
      if (!g) continue;
      // The branch taken on newer kernels, when the comparison is the whole condition.
      const whole = stripParens(cond).id === cmp.id;
      // In `#if`, the consequence is the directive's own body: everything but its alternative.
      const pre = p.type.startsWith('preproc');
      const alt = p.childForFieldName('alternative');
      const cons = pre ? p : p.childForFieldName('consequence');
      const newer = !whole ? undefined : g.op === '>=' || g.op === '>' ? cons : g.op === '<' || g.op === '<=' ? alt : undefined;
      out.push({ ...g, ...(newer ? { newer, ...(pre && newer === p && alt ? { skip: alt } : {}) } : {}) });
    }
  }
  return out;
}

function stripParens(n: Node): Node {
  let e = n;
  while (e.type === 'parenthesized_expression' && e.namedChild(0)) e = e.namedChild(0)!;
  return e;
}

function comparison(ctx: RuleContext, e: Node): Omit<Gate, 'newer'> | undefined {
  const l = e.childForFieldName('left');
  const r = e.childForFieldName('right');
  const c = l && r ? versionComparison(ctx.text(l), e.child(1)?.type, ctx.text(r)) : undefined;
  return c ? { node: e, op: c.op, version: c.version } : undefined;
}

function report(ctx: RuleContext, f: FunctionFacts | undefined, g: Gate) {
  const at = f ? runsOn(ctx, f, g.node).kernels() : [...ctx.kernels];
  if (at.length === 0) return;
  const feature = g.newer && f ? featureOf(ctx, f, g.newer, g.skip, at) : undefined;
  const gate = `Selects code by kernel version (${g.op} ${g.version})`;
  const why =
    "Distro kernels backport features without changing their version (RHEL 8's 4.18, openEuler's 4.19) and configs leave features out of newer ones, so the check can pick the wrong branch.";
  if (!feature) {
    ctx.report({
      node: g.node,
      message: findingMessage(
        `${gate}; backports and configs can make it pick the wrong branch`,
        why,
        'Probe the feature itself: `bpf_core_field_exists()`, `bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_…)` or `bpf_ksym_exists()`.',
      ),
      kernels: [],
      severity: 'info',
    });
    return;
  }
  const newer = (k: Kernel) => compareVersions(k.version, g.version) >= 0;
  const early: Kernel[] = [];
  const late: Kernel[] = [];
  at.forEach((k, i) => {
    const p = feature.present[i];
    if (p === true && !newer(k)) early.push(k);
    else if (p === false && newer(k)) late.push(k);
  });
  const lies: string[] = [];
  if (early.length)
    lies.push(`${describeKernels(early, at)} ${early.length === 1 ? 'has' : 'have'} ${feature.what} though older than ${g.version}`);
  if (late.length) lies.push(`${describeKernels(late, at)} ${late.length === 1 ? 'lacks' : 'lack'} it though ${g.version} or newer`);
  const verdict = lies.length
    ? `For ${feature.what}, which the newer branch uses, the version lies on ${early.length + late.length} of the ${at.length} target kernels: ${lies.join('; ')}.`
    : `For ${feature.what}, which the newer branch uses, the version happens to agree with every target kernel, but not necessarily with kernels outside the target.`;
  ctx.report({
    node: g.node,
    message: findingMessage(
      lies.length
        ? `${gate}, which is wrong about ${feature.what} on ${early.length + late.length} of ${at.length} target kernels`
        : `${gate}; it agrees with ${feature.what} on the target kernels, not necessarily beyond`,
      why,
      verdict,
      `Probe the feature instead: ${codeQuote(feature.probe)}.`,
    ),
    kernels: [...early, ...late].map((k) => k.name),
    severity: 'info',
  });
}

/** The first helper, kfunc or kernel struct member used in `branch` whose presence differs across `at`. */
function featureOf(ctx: RuleContext, f: FunctionFacts, branch: Node, skip: Node | undefined, at: readonly Kernel[]): Feature | undefined {
  const inside = (n: Node) => !skip || n.startIndex < skip.startIndex || n.startIndex >= skip.endIndex;
  const local = localNames(ctx.model);
  const varies = (p: (boolean | null)[]) => p.some((x) => x === true) && p.some((x) => x === false);
  for (const call of callsIn(branch).filter(inside)) {
    const name = calleeName(call, ctx.model.text);
    if (!name || local.has(name)) continue;
    if (ctx.db.facts.helper(name)) {
      const present = ctx.db.helper(name, at).kernels.map((a) => a.present);
      if (varies(present))
        return {
          what: `\`${name}\``,
          probe: `bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_${name.replace(/^bpf_/, '')})`,
          present,
        };
    } else if (kfuncDecl(ctx.model, name) || ctx.db.facts.kfunc(name)) {
      const present = ctx.db.kfunc(name, at).map((a) => a.present);
      if (varies(present)) return { what: `kfunc \`${name}\``, probe: `bpf_ksym_exists(${name})`, present };
    }
  }
  for (const e of branch.descendantsOfType('field_expression')) {
    if (!e || !inside(e)) continue;
    const obj = e.childForFieldName('argument');
    const field = e.childForFieldName('field');
    if (!obj || !field) continue;
    const typed = f.scope.typeOf(obj);
    // Packet headers are the wire format's, whatever the kernel's BTF says.
    if (isPacket(typed)) continue;
    const t = typed.type;
    const agg = isArrow(e) ? deref(t) : t;
    if (agg.kind !== 'struct' && agg.kind !== 'union') continue;
    const lay = ctx.env.layoutOf(agg.name);
    if (!lay.kernelName || lay.layout === 'user' || lay.layout === 'context') continue;
    const name = ctx.text(field);
    const present = at.map((k) => ctx.db.fieldOn(lay.kernelName!, name, k).present);
    if (varies(present)) return { what: `\`${lay.kernelName}.${name}\``, probe: `bpf_core_field_exists(${ctx.text(e)})`, present };
  }
  return undefined;
}
