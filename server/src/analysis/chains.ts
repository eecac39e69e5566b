/**
 * Member chains (`task->real_parent->tgid`, `skb->dev->name`, `&t->mm->arg_start`): each split
 * into segments, one per `->` — one memory access at pointer + offset — with the type and
 * provenance of the pointer it goes through, and how the chain is used (loaded, its address
 * taken, written, or inside a construct that computes nothing at run time).
 */
import { coreMacro } from './coreMacros';
import type { Node } from 'web-tree-sitter';
import { deref, type CType } from './ctypes';
import { isArrow, type FunctionScope, type Provenance, type Typed } from './scope';

/** One `.`/`->` step. */
export interface Link {
  readonly op: '->' | '.';
  readonly field: string;
  /** The `field_expression` node ending at this link. */
  readonly node: Node;
  /** The aggregate the field belongs to. */
  readonly agg: CType;
  /** The field's type. */
  readonly type: CType;
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

/** Finds every maximal member chain in `body`. */
export function findChains(body: Node, scope: FunctionScope, text: string): Chain[] {
  const out: Chain[] = [];
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex);
  const stack: Node[] = [body];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.type === 'field_expression' && isChainTop(n)) {
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

function isChainTop(n: Node): boolean {
  const p = n.parent;
  if (!p) return true;
  if ((p.type === 'field_expression' || p.type === 'subscript_expression') && p.childForFieldName('argument')?.id === n.id) return false;
  return true;
}

function chainAt(top: Node, scope: FunctionScope, src: (n: Node) => string): Chain | undefined {
  // Walk down to the base, remembering the steps.
  const steps: Node[] = [];
  let cur: Node | null = top;
  let subscripted = false;
  while (cur && (cur.type === 'field_expression' || cur.type === 'subscript_expression')) {
    if (cur.type === 'subscript_expression') subscripted = true;
    steps.push(cur);
    cur = cur.childForFieldName('argument');
  }
  if (!cur) return undefined;
  const base = cur;
  const baseTyped = scope.typeOf(base);
  steps.reverse();

  const links: Link[] = [];
  const segments: { agg: CType; fields: string[]; prov: Provenance; node: Node }[] = [];
  let t = baseTyped.type;
  let prov = baseTyped.prov;
  for (const s of steps) {
    if (s.type === 'subscript_expression') {
      t = deref(t);
      continue;
    }
    const arrow = isArrow(s);
    const agg = arrow ? deref(t) : t;
    const fieldNode = s.childForFieldName('field');
    if (!fieldNode || (agg.kind !== 'struct' && agg.kind !== 'union')) return undefined;
    const field = src(fieldNode);
    const ft = scope.env.fieldType(agg.name, field);
    if (arrow) {
      // Each further pointer was read out of the previous object.
      if (segments.length > 0)
        prov = prov === 'trusted' ? 'trusted' : prov === 'unknown' ? 'unknown' : prov === 'local' ? 'local' : 'untrusted';
      segments.push({ agg, fields: [field], prov, node: s });
    } else if (segments.length > 0) {
      const last = segments[segments.length - 1];
      last.fields.push(field);
      last.node = s;
    }
    links.push({ op: arrow ? '->' : '.', field, node: s, agg, type: ft });
    t = ft;
  }
  const { mode, within } = modeOf(top, t, src);
  const probeRead = mode === 'address' ? probeReadAround(top, src) : undefined;
  return {
    top,
    base,
    baseTyped,
    links,
    subscripted,
    ...(links.some((l) => scope.env.model.macros.has(l.field)) ? { aliased: true } : {}),
    mode,
    ...(within ? { within } : {}),
    // Taking an address reads every pointer on the way but not the last object; loads and
    // writes touch every object.
    segments: segments.map((s, i) => ({ ...s, reads: mode === 'skip' ? false : mode === 'address' ? i < segments.length - 1 : true })),
    ...(probeRead ? { probeRead } : {}),
  };
}

function modeOf(top: Node, finalType: CType, src: (n: Node) => string): { mode: ChainMode; within?: string } {
  for (let a: Node | null = top.parent, depth = 0; a && depth < 40; a = a.parent, depth++) {
    if (a.type === 'call_expression') {
      const fn = a.childForFieldName('function');
      if (fn && NO_LOAD_CALLS.test(src(fn))) return { mode: 'skip', within: src(fn) };
    }
    if (a.type === 'sizeof_expression' || a.type === 'offsetof_expression' || a.type === 'alignof_expression')
      return { mode: 'skip', within: a.type.replace('_expression', '') };
    if (a.type === 'function_definition' || a.type === 'compound_statement') break;
  }
  const p = top.parent;
  if (p?.type === 'pointer_expression' && p.child(0)?.type === '&') return { mode: 'address' };
  if (p?.type === 'assignment_expression' && p.childForFieldName('left')?.id === top.id) return { mode: 'write' };
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
    if (!base || fields.length === 0 || !fields.every((f) => /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(f))) continue;
    const baseTyped = scope.typeOf(base);
    let t = baseTyped.type;
    let prov = baseTyped.prov;
    const links: Link[] = [];
    const segments: Segment[] = [];
    let ok = true;
    for (const f of fields) {
      const parts = f.split('.');
      let agg = deref(t);
      const segFields: string[] = [];
      for (const [i, field] of parts.entries()) {
        if (i > 0) agg = t;
        if (agg.kind !== 'struct' && agg.kind !== 'union') {
          ok = false;
          break;
        }
        const ft = scope.env.fieldType(agg.name, field);
        links.push({ op: i === 0 ? '->' : '.', field, node: call, agg, type: ft });
        segFields.push(field);
        t = ft;
      }
      if (!ok) break;
      segments.push({ agg: links[links.length - parts.length].agg, fields: segFields, prov, reads: false, node: call });
      prov = prov === 'trusted' ? 'trusted' : 'untrusted';
    }
    if (!ok) continue;
    const aliased = fields.some((f) => f.split('.').some((x) => scope.env.model.macros.has(x)));
    out.push({
      top: call,
      base,
      baseTyped,
      links,
      segments,
      mode: 'skip',
      within: name,
      subscripted: false,
      ...(aliased ? { aliased } : {}),
    });
  }
  return out;
}

function probeReadAround(top: Node, src: (n: Node) => string): Chain['probeRead'] {
  const amp = top.parent;
  const args = amp?.parent;
  const call = args?.parent;
  if (!amp || args?.type !== 'argument_list' || call?.type !== 'call_expression') return undefined;
  const fn = call.childForFieldName('function');
  if (!fn || !PROBE_READ.test(src(fn))) return undefined;
  const list = args.namedChildren.filter((c): c is Node => !!c);
  if (list.length !== 3 || list[2].id !== amp.id) return undefined;
  return { call, fn: src(fn), dst: list[0], size: list[1] };
}
