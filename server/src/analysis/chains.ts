/**
 * Member chains (`task->real_parent->tgid`, `skb->dev->name`, `&t->mm->arg_start`): each split
 * into segments, one per `->` — one memory access at pointer + offset — with the type and
 * provenance of the pointer it goes through, and how the chain is used (loaded, its address
 * taken, written, or inside a construct that computes nothing at run time).
 */
import { coreMacro } from './coreMacros';
import type { Node } from 'web-tree-sitter';
import { deref, isAggPointer, isAggValue, type CType } from './ctypes';
import { isArrow, type FunctionScope, type Provenance, type Typed } from './scope';
import { parentOf } from './parents';

/** One `.`/`->` step. */
export interface Link {
  readonly op: '->' | '.';
  readonly field: string;
  /** The `field_expression` node ending at this link. */
  readonly node: Node;
  /** The aggregate the field belongs to. */
  readonly agg: CType;
  /** The field's type (of the declaration the chain's syntax fits, where kernels differ). */
  readonly type: CType;
  /** How many subscripts follow the field before the next link (`count[1]` in `rss_stat.count[1].counter`: 1). */
  readonly index: number;
}

/** One memory access: a `->` followed by any number of `.` steps. */
export interface Segment {
  /** The aggregate the pointer points to. */
  readonly agg: CType;
  /** Field path inside it (`se`, `vruntime` for `->se.vruntime`). */
  readonly fields: string[];
  /** Provenance of the pointer dereferenced. */
  readonly prov: Provenance;
  /** Whether the access reads memory (false for the last segment of an address computation). */
  readonly reads: boolean;
  /** The node of the segment's last link (its range ends the access). */
  readonly node: Node;
}

/** How a chain's value is used. */
export type ChainMode = 'load' | 'address' | 'write' | 'skip';

/** A maximal member chain. */
export interface Chain {
  readonly top: Node;
  readonly base: Node;
  readonly baseTyped: Typed;
  readonly links: Link[];
  readonly segments: Segment[];
  readonly mode: ChainMode;
  /**
   * The construct around the chain that decides what it means: `sizeof`, `bpf_core_field_exists`,
   * `BPF_CORE_READ` (for chains spelled as macro arguments), … Undefined for plain code.
   */
  readonly within?: string;
  readonly subscripted: boolean;
  /**
   * A member is spelled with an object-like macro (`sk->sk_family` with `#define sk_family
   * __sk_common.skc_family`): the chain's member names are not the members the compiler reads.
   */
  readonly aliased?: boolean;
  /** `bpf_probe_read*(dst, size, &chain)` around the chain, when that is how it is used. */
  readonly probeRead?: { call: Node; fn: string; dst: Node; size: Node };
}

/** Calls whose arguments are compile-time CO-RE expressions or relocations, not loads. */
const NO_LOAD_CALLS =
  /^(BPF_CORE_READ\w*|BPF_PROBE_READ\w*|bpf_core_\w+|__builtin_\w+|bpf_ksym_exists|BPF_CORE_WRITE_BITFIELD|sizeof|typeof|__typeof__|offsetof|container_of)$/;
const PROBE_READ = /^bpf_probe_read(_kernel)?(_str)?$/;
/** A CO-RE macro's field argument: `comm`, `se.vruntime`, `cpus_mask.bits[0]`, `rss_stat.count[1].counter`. */
const MACRO_FIELD = /^[A-Za-z_]\w*(\s*(\.\s*[A-Za-z_]\w*|\[[^[\]]*\]))*$/;

/** Finds every maximal member chain in `body`. */
export function findChains(body: Node, scope: FunctionScope, text: string): Chain[] {
  const out: Chain[] = [];
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex);
  const stack: Node[] = [body];
  while (stack.length) {
    const n = stack.pop()!;
    if ((n.type === 'field_expression' || n.type === 'subscript_expression') && isChainTop(n)) {
      const c = chainAt(n, scope, src);
      if (c) out.push(c);
    }
    for (let i = n.namedChildCount - 1; i >= 0; i--) {
      const c = n.namedChild(i);
      if (c) stack.push(c);
    }
  }
  return out;
}

/** One step of a member chain: a `.`/`->` member, or a subscript. */
type Step =
  | { readonly kind: 'field'; readonly op: '->' | '.'; readonly field: string; readonly node: Node }
  | { readonly kind: 'index'; readonly node: Node };

/** What a walk along steps found: the links, the memory accesses and the final type. */
interface Walk {
  readonly links: Link[];
  readonly segments: { agg: CType; fields: string[]; prov: Provenance; node: Node }[];
  readonly type: CType;
}

/** Provenance of a pointer read out of an object reached with provenance `p`. */
function readOutOf(p: Provenance): Provenance {
  return p === 'trusted' ? 'trusted' : p === 'unknown' ? 'unknown' : p === 'local' ? 'local' : 'untrusted';
}

/**
 * Types the steps from a typed base. A subscript of an array member stays inside the object; a
 * subscript of a pointer is a new memory access, like `->`. A member whose type differs between
 * kernels takes the declaration the following steps fit (`rss_stat.count` needs the struct
 * `rss_stat` was before it became an array). Undefined where a step does not fit its type.
 */
function walkSteps(scope: FunctionScope, base: Typed, steps: readonly Step[]): Walk | undefined {
  const links: Link[] = [];
  const segments: Walk['segments'] = [];
  let t = base.type;
  let prov = base.prov;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (s.kind === 'index') {
      if (t.kind === 'unknown' || t.ptr + t.arr === 0) return undefined;
      const through = t.arr === 0;
      t = deref(t);
      if (through && isAggValue(t)) {
        if (segments.length > 0) prov = readOutOf(prov);
        segments.push({ agg: t, fields: [], prov, node: s.node });
      }
      continue;
    }
    const arrow = s.op === '->';
    if (arrow ? !isAggPointer(t) : !isAggValue(t)) return undefined;
    const agg = arrow ? deref(t) : t;
    const ft = fitting(scope.env.fieldTypes(agg.name, s.field), steps, i + 1);
    if (arrow) {
      // Each further pointer was read out of the previous object.
      if (segments.length > 0) prov = readOutOf(prov);
      segments.push({ agg, fields: [s.field], prov, node: s.node });
    } else if (segments.length > 0) {
      const last = segments[segments.length - 1];
      last.fields.push(s.field);
      last.node = s.node;
    }
    let index = 0;
    while (steps[i + 1 + index]?.kind === 'index') index++;
    links.push({ op: s.op, field: s.field, node: s.node, agg, type: ft, index });
    t = ft;
  }
  return { links, segments, type: t };
}

/** The first of a member's types that the steps from `from` on fit (else the first). */
function fitting(types: readonly CType[], steps: readonly Step[], from: number): CType {
  if (types.length === 1) return types[0];
  const fits = (c: CType): boolean => {
    let t = c;
    for (let j = from; j < steps.length; j++) {
      const s = steps[j];
      if (s.kind === 'index') {
        if (t.kind === 'unknown' || t.ptr + t.arr === 0) return false;
        t = deref(t);
        continue;
      }
      return s.op === '->' ? isAggPointer(t) : isAggValue(t);
    }
    return true;
  };
  return types.find(fits) ?? types[0];
}

function isChainTop(n: Node): boolean {
  const p = parentOf(n);
  if (!p) return true;
  if ((p.type === 'field_expression' || p.type === 'subscript_expression') && p.childForFieldName('argument')?.id === n.id) return false;
  return true;
}

function chainAt(top: Node, scope: FunctionScope, src: (n: Node) => string): Chain | undefined {
  // Walk down to the base, remembering the steps.
  const nodes: Node[] = [];
  let cur: Node | null = top;
  while (cur && (cur.type === 'field_expression' || cur.type === 'subscript_expression')) {
    nodes.push(cur);
    cur = cur.childForFieldName('argument');
  }
  if (!cur) return undefined;
  const base = cur;
  nodes.reverse();
  const steps: Step[] = [];
  for (const n of nodes) {
    if (n.type === 'subscript_expression') {
      steps.push({ kind: 'index', node: n });
      continue;
    }
    const fieldNode = n.childForFieldName('field');
    if (!fieldNode) return undefined;
    steps.push({ kind: 'field', op: isArrow(n) ? '->' : '.', field: src(fieldNode), node: n });
  }
  if (!steps.some((s) => s.kind === 'field')) return undefined;
  const baseTyped = scope.typeOf(base);
  const walk = walkSteps(scope, baseTyped, steps);
  if (!walk) return undefined;
  const { links } = walk;
  const { mode, within } = modeOf(top, walk.type, src, scope);
  const probeRead = mode === 'address' ? probeReadAround(top, src) : undefined;
  // A subscript through a pointer that no member follows reads an element the chain does not name.
  const segments = walk.segments.filter((s) => s.fields.length > 0);
  return {
    top,
    base,
    baseTyped,
    links,
    subscripted: steps.some((s) => s.kind === 'index'),
    ...(links.some((l) => scope.env.model.macros.has(l.field)) ? { aliased: true } : {}),
    mode,
    ...(within ? { within } : {}),
    // Taking an address reads every pointer on the way but not the last object; loads and
    // writes touch every object.
    segments: segments.map((s, i) => ({ ...s, reads: mode === 'skip' ? false : mode === 'address' ? i < segments.length - 1 : true })),
    ...(probeRead ? { probeRead } : {}),
  };
}

function modeOf(top: Node, finalType: CType, src: (n: Node) => string, scope: FunctionScope): { mode: ChainMode; within?: string } {
  for (let a: Node | null = parentOf(top), depth = 0; a && depth < 40; a = parentOf(a), depth++) {
    if (a.type === 'call_expression') {
      const fn = a.childForFieldName('function');
      if (fn && NO_LOAD_CALLS.test(src(fn))) return { mode: 'skip', within: src(fn) };
    }
    if (a.type === 'sizeof_expression' || a.type === 'offsetof_expression' || a.type === 'alignof_expression')
      return { mode: 'skip', within: a.type.replace('_expression', '') };
    if (a.type === 'function_definition' || a.type === 'compound_statement') break;
  }
  const whole = unparenthesized(top);
  const p = parentOf(whole);
  if (p?.type === 'pointer_expression' && p.child(0)?.type === '&') return { mode: 'address' };
  // The whole argument of a project macro that reads it through a probe read (`READ_KERN(t->pid)`):
  // the macro hands its address to the helper.
  if (p?.type === 'argument_list' && parentOf(p)?.type === 'call_expression') {
    const fn = parentOf(p)?.childForFieldName('function');
    const macro = fn ? scope.env.model.functionMacros.get(src(fn)) : undefined;
    const index = p.namedChildren.filter((c) => c && c.type !== 'comment').findIndex((c) => c?.id === whole.id);
    if (macro && index >= 0 && macro.probeReads.has(index)) return { mode: 'address', within: macro.name };
  }
  if (p?.type === 'assignment_expression' && p.childForFieldName('left')?.id === whole.id) return { mode: 'write' };
  if (p?.type === 'update_expression') return { mode: 'write' };
  // An array member used as a value decays to its address.
  if (finalType.arr > 0) return { mode: 'address' };
  return { mode: 'load' };
}

/**
 * Chains spelled as CO-RE macro arguments: `BPF_CORE_READ(task, real_parent, tgid)` reads
 * `task->real_parent->tgid`. They are `skip` chains (no plain load) `within` the macro's name, so
 * rules about direct reads ignore them and rules about fields see them.
 */
export function coreMacroChains(body: Node, scope: FunctionScope, text: string): Chain[] {
  const out: Chain[] = [];
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex);
  for (const call of body.descendantsOfType('call_expression')) {
    if (!call) continue;
    const fn = call.childForFieldName('function');
    const name = fn ? src(fn) : '';
    const first = coreMacro(name)?.source;
    if (first === undefined) continue;
    const args = (call.childForFieldName('arguments')?.namedChildren ?? []).filter((a): a is Node => !!a && a.type !== 'comment');
    const base = args[first];
    const fields = args.slice(first + 1).map((a) => src(a).trim());
    if (!base || fields.length === 0 || !fields.every((f) => MACRO_FIELD.test(f))) continue;
    // Each argument is pasted after `->` (`src->a.b[1].c`); subscripts and `.` steps stay inside it.
    const steps: Step[] = [];
    for (const f of fields) {
      let op: '->' | '.' = '->';
      for (const m of f.matchAll(/([A-Za-z_]\w*)|\[[^\]]*\]/g)) {
        if (m[1]) {
          steps.push({ kind: 'field', op, field: m[1], node: call });
          op = '.';
        } else steps.push({ kind: 'index', node: call });
      }
    }
    const baseTyped = scope.typeOf(base);
    const walk = walkSteps(scope, baseTyped, steps);
    if (!walk) continue;
    const aliased = walk.links.some((l) => scope.env.model.macros.has(l.field));
    out.push({
      top: call,
      base,
      baseTyped,
      links: walk.links,
      segments: walk.segments.filter((s) => s.fields.length > 0).map((s) => ({ ...s, reads: false })),
      mode: 'skip',
      within: name,
      subscripted: steps.some((s) => s.kind === 'index'),
      ...(aliased ? { aliased } : {}),
    });
  }
  return out;
}

/**
 * `top` with the parentheses around it: they change nothing, so `&(signal->thread_head)` takes the
 * address as `&signal->thread_head` does, and `(t->pid) = 0` writes.
 */
function unparenthesized(top: Node): Node {
  let whole = top;
  for (let q = parentOf(whole); q?.type === 'parenthesized_expression'; q = parentOf(whole)) whole = q;
  return whole;
}

function probeReadAround(top: Node, src: (n: Node) => string): Chain['probeRead'] {
  const amp = parentOf(unparenthesized(top));
  const args = amp ? parentOf(amp) : null;
  const call = args ? parentOf(args) : null;
  if (!amp || args?.type !== 'argument_list' || call?.type !== 'call_expression') return undefined;
  const fn = call.childForFieldName('function');
  if (!fn || !PROBE_READ.test(src(fn))) return undefined;
  const list = args.namedChildren.filter((c): c is Node => !!c);
  if (list.length !== 3 || list[2].id !== amp.id) return undefined;
  return { call, fn: src(fn), dst: list[0], size: list[1] };
}
