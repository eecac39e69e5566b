/**
 * Expression types and pointer provenance inside one function: what a name or expression is
 * (`struct task_struct *`), and where a pointer came from — a BTF-typed program argument the
 * verifier lets us read directly (`trusted`), an integer or a probe-read result it does not
 * (`untrusted`), the program context, packet memory (`ctx->data` and every pointer computed from
 * it), local memory, or unknown (analysis then stays silent).
 */
import type { Node } from 'web-tree-sitter';
import type { KernelDb } from '../../../kernel-db/src/query/db';
import {
  addressOf,
  aggType,
  applyDeclarator,
  deref,
  essentialName,
  fromKernelType,
  fromSpecifier,
  scalarType,
  UNKNOWN,
  type CType,
} from './ctypes';
import type { FileModel, FunctionInfo, StructDef } from './file';
import type { ProgramContext } from './program';
import { parentOf } from './parents';

/**
 * Where a pointer value comes from. `packet`: the packet (or socket option buffer) a networking
 * program's context points at — read directly after the program's `data_end` bounds check, its
 * layout the wire format's, not a kernel object's.
 */
export type Provenance = 'trusted' | 'untrusted' | 'ctx' | 'packet' | 'local' | 'unknown';

/** A typed value. */
export interface Typed {
  readonly type: CType;
  readonly prov: Provenance;
  /**
   * For a trusted pointer, the struct the verifier knows it points to: a C cast changes the
   * type the compiler reads with, not this (`(struct tcp_sock *)sk` is still a `struct sock` there).
   */
  readonly btf?: string;
}

/** The struct a pointer type points to, if it points to one (one level). */
function structOf(t: CType): string | undefined {
  return (t.kind === 'struct' || t.kind === 'union') && t.ptr === 1 && t.arr === 0 ? t.name : undefined;
}

/** Where an aggregate's layout comes from. */
export type Layout =
  /** CO-RE relocatable: vmlinux.h, a pragma region, or `preserve_access_index`. */
  | 'core'
  /** Fixed at compile time: kernel headers, or a local copy of a kernel struct without the attribute. */
  | 'fixed'
  /** A program context struct the verifier rewrites (`__sk_buff`, `xdp_md`, `pt_regs`, …). */
  | 'context'
  /** A struct of the program's own (map values, events). */
  | 'user'
  /** Cannot tell (e.g. a header that could not be read). */
  | 'unknown';

/** UAPI context structs: their accesses are rewritten by the verifier, not kernel layouts. */
export const CONTEXT_STRUCTS = new Set([
  '__sk_buff',
  'xdp_md',
  'bpf_sock_ops',
  'sk_msg_md',
  'sk_reuseport_md',
  'bpf_sock',
  'bpf_sock_addr',
  'bpf_sk_lookup',
  'bpf_sockopt',
  'bpf_sysctl',
  'bpf_cgroup_dev_ctx',
  'bpf_perf_event_data',
  'bpf_raw_tracepoint_args',
  'pt_regs',
  'user_pt_regs',
  'bpf_flow_keys',
  'bpf_nf_ctx',
  'bpf_tcp_sock',
  'bpf_xdp_sock',
  'xdp_buff',
]);

/**
 * Context members the verifier types as packet pointers (`PTR_TO_PACKET`, `PTR_TO_PACKET_META`,
 * `PTR_TO_PACKET_END`), by context struct. Sources: net/core/filter.c (`xdp_is_valid_access`,
 * `tc_cls_act_is_valid_access`, `sk_skb_is_valid_access`, `sk_msg_is_valid_access`,
 * `flow_dissector_is_valid_access`, `sock_ops_is_valid_access`, `sk_reuseport_is_valid_access`)
 * and kernel/bpf/cgroup.c (`cg_sockopt_is_valid_access`).
 */
const PACKET_MEMBERS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['xdp_md', new Set(['data', 'data_end', 'data_meta'])],
  ['__sk_buff', new Set(['data', 'data_end', 'data_meta'])],
  ['sk_msg_md', new Set(['data', 'data_end'])],
  ['sk_reuseport_md', new Set(['data', 'data_end'])],
  ['bpf_sock_ops', new Set(['skb_data', 'skb_data_end'])],
  ['bpf_sockopt', new Set(['optval', 'optval_end'])],
]);

/** Whether a value points into packet memory (see `Provenance`). */
export function isPacket(t: Typed): boolean {
  return t.prov === 'packet';
}

/**
 * The type of a call's result when the verifier trusts it (a BTF pointer the program may read
 * directly): the kernel database knows which helpers and kfuncs return one
 * (`KernelDb.trustedReturn`: curated helper facts, `KF_ACQUIRE` kfuncs).
 */
function trustedReturn(db: KernelDb, name: string): CType | undefined {
  const r = name ? db.trustedReturn(name) : undefined;
  return r ? aggType(r.kind, r.name, 1) : undefined;
}

/** Type lookups shared by every function of a file. */
export class TypeEnv {
  private readonly layoutCache = new Map<string, { layout: Layout; kernelName?: string; def?: StructDef }>();

  constructor(
    readonly model: FileModel,
    readonly db: KernelDb,
  ) {}

  /** The name of the kernel struct `name` stands for (`task_struct___o` → `task_struct`), if any. */
  kernelName(name: string): string | undefined {
    if (this.db.hasAggregate(name)) return name;
    const base = essentialName(name);
    return base !== name && this.db.hasAggregate(base) ? base : undefined;
  }

  /** Where the layout of aggregate `name` comes from. */
  layoutOf(name: string): { layout: Layout; kernelName?: string; def?: StructDef } {
    let r = this.layoutCache.get(name);
    if (r) return r;
    const m = this.model;
    const def = m.structs.get(name);
    const kernelName = this.kernelName(name);
    if (CONTEXT_STRUCTS.has(name)) r = { layout: 'context' };
    else if (def) {
      // A local struct is a copy of a kernel struct only if every member it declares exists
      // there; a program's own `struct event` that shares a kernel name is its own struct.
      const copy =
        kernelName !== undefined && def.fields.size > 0 && [...def.fields.keys()].every((f) => this.db.fieldShape(kernelName, f));
      r = { layout: def.core ? 'core' : copy ? 'fixed' : 'user', ...(copy || def.core ? { kernelName } : {}), def };
    } else if (!kernelName) r = { layout: 'user' };
    else if (m.vmlinux) r = { layout: m.noPreserveAccessIndex ? 'fixed' : 'core', kernelName };
    else if (m.kernelHeaders) r = { layout: 'fixed', kernelName };
    else r = { layout: 'unknown', kernelName };
    this.layoutCache.set(name, r);
    return r;
  }

  /** The type of member `field` of aggregate `agg`. */
  fieldType(agg: string, field: string): CType {
    const def = this.model.structs.get(agg);
    if (def) return def.fields.get(field)?.type ?? UNKNOWN;
    const kname = this.kernelName(agg);
    if (!kname) return UNKNOWN;
    const shape = this.db.fieldShape(kname, field);
    return shape ? fromKernelType(shape.type, shape.ref, shape.refKind) : UNKNOWN;
  }

  /**
   * Every type member `field` of aggregate `agg` has on some kernel, {@link fieldType}'s first
   * (one for the program's own structs): a member chain picks the one its syntax fits.
   */
  fieldTypes(agg: string, field: string): CType[] {
    const def = this.model.structs.get(agg);
    if (def) return [def.fields.get(field)?.type ?? UNKNOWN];
    const kname = this.kernelName(agg);
    if (!kname) return [UNKNOWN];
    const shapes = this.db.fieldShapes(kname, field);
    return shapes.length ? shapes.map((s) => fromKernelType(s.type, s.ref, s.refKind)) : [UNKNOWN];
  }
}

/** Names and their typed values in one function. */
export class FunctionScope {
  private readonly vars = new Map<string, Typed>();
  /**
   * Every declaration of a name, with the block it is declared in: names declared again in other
   * blocks (`struct x___a *ctx` in one branch, `struct x___b *ctx` in the other) are looked up by
   * where they are used.
   */
  private readonly decls = new Map<string, { block: Node; at: number; typed: Typed }[]>();
  private readonly src: (n: Node) => string;

  constructor(
    readonly env: TypeEnv,
    readonly fn: FunctionInfo,
    readonly ctx: ProgramContext,
  ) {
    const text = env.model.text;
    this.src = (n) => text.slice(n.startIndex, n.endIndex);
    fn.params.forEach((p, i) => {
      const prov = this.paramProvenance(p.type, i);
      const btf = prov === 'trusted' ? structOf(p.type) : undefined;
      this.vars.set(p.name, { type: p.type, prov, ...(btf ? { btf } : {}) });
    });
    if (fn.body) this.collect(fn.body);
  }

  private paramProvenance(t: CType, index: number): Provenance {
    if (this.ctx.policy === 'btf') return 'trusted';
    if (t.kind === 'struct' || t.kind === 'union') {
      if (CONTEXT_STRUCTS.has(t.name)) return 'ctx';
      // The first argument of a tracepoint program is its record: context memory.
      if (index === 0 && !this.fn.wrapper && t.name.startsWith('trace_event_raw_')) return 'ctx';
    }
    if (this.ctx.policy === 'probe-read') return this.fn.wrapper || index > 0 ? 'untrusted' : 'ctx';
    // A helper function of a packet program is handed packet pointers, map values and stack
    // memory as often as the context: its arguments' provenance is unknown.
    if (this.ctx.policy === 'packet') return this.fn.sec && !this.fn.wrapper && index === 0 ? 'ctx' : 'unknown';
    return 'unknown';
  }

  /** Declarations and assignments in order; a name assigned from two provenances becomes unknown. */
  private collect(node: Node): void {
    const stack: Node[] = [node];
    while (stack.length) {
      const n = stack.pop()!;
      if (n.type === 'declaration') {
        const base = fromSpecifier(n.childForFieldName('type'), this.src, this.env.model.typedefs);
        for (const d of n.childrenForFieldName('declarator')) {
          if (!d) continue;
          const r = applyDeclarator(base, d, this.src);
          if (!r.name) continue;
          const init = d.type === 'init_declarator' ? d.childForFieldName('value') : null;
          const from = init && r.type.ptr > 0 ? this.typeOf(init) : undefined;
          // A value (not a pointer) lives on the stack whatever initialised it.
          const prov: Provenance = r.type.ptr === 0 ? 'local' : from ? from.prov : 'unknown';
          const btf = prov === 'trusted' ? from?.btf : undefined;
          this.vars.set(r.name, { type: r.type, prov, ...(btf ? { btf } : {}) });
          let block: Node | null = parentOf(n);
          while (block && block.type !== 'compound_statement' && block.type !== 'for_statement') block = parentOf(block);
          if (block) {
            let list = this.decls.get(r.name);
            if (!list) this.decls.set(r.name, (list = []));
            list.push({ block, at: n.startIndex, typed: { type: r.type, prov, ...(btf ? { btf } : {}) } });
          }
        }
      } else if (n.type === 'assignment_expression') {
        const left = n.childForFieldName('left');
        const right = n.childForFieldName('right');
        if (left?.type === 'identifier' && right) {
          const v = this.vars.get(this.src(left));
          if (v && v.type.ptr > 0) {
            const op = n.childForFieldName('operator')?.type;
            // `cursor += len` moves a packet pointer within the packet.
            const r = this.typeOf(right);
            const p = (op === '+=' || op === '-=') && v.prov === 'packet' ? 'packet' : r.prov;
            if (p !== v.prov) this.vars.set(this.src(left), { type: v.type, prov: v.prov === 'unknown' ? p : 'unknown' });
            // Two structs the verifier may know it by: it is neither for sure.
            else if (v.btf && r.btf !== v.btf) this.vars.set(this.src(left), { type: v.type, prov: v.prov });
          }
        }
      }
      for (let i = n.namedChildCount - 1; i >= 0; i--) {
        const c = n.namedChild(i);
        if (c) stack.push(c);
      }
    }
  }

  /** The typed value of an expression. */
  typeOf(e: Node | null, depth = 0): Typed {
    if (!e || depth > 64) return { type: UNKNOWN, prov: 'unknown' };
    switch (e.type) {
      case 'identifier': {
        const name = this.src(e);
        const list = this.decls.get(name);
        if (list && list.length > 1) {
          // The innermost enclosing block's latest declaration before the use.
          let best: { block: Node; at: number; typed: Typed } | undefined;
          for (const d of list) {
            if (d.at > e.startIndex || e.startIndex < d.block.startIndex || e.startIndex >= d.block.endIndex) continue;
            if (
              !best ||
              d.block.endIndex - d.block.startIndex < best.block.endIndex - best.block.startIndex ||
              (d.block.id === best.block.id && d.at > best.at)
            )
              best = d;
          }
          if (best) return best.typed;
        }
        const v = this.vars.get(name);
        if (v) return v;
        const g = this.env.model.globals.get(name);
        return g ? { type: g.type, prov: 'local' } : { type: UNKNOWN, prov: 'unknown' };
      }
      case 'parenthesized_expression':
        return this.typeOf(e.namedChild(0), depth + 1);
      case 'cast_expression': {
        const td = e.childForFieldName('type');
        const base = fromSpecifier(td?.childForFieldName('type') ?? null, this.src, this.env.model.typedefs);
        const t = applyDeclarator(base, td?.childForFieldName('declarator') ?? null, this.src).type;
        const inner = this.typeOf(e.childForFieldName('value'), depth + 1);
        // A pointer made from an integer is what the verifier calls a scalar: not readable.
        const prov: Provenance =
          inner.type.kind === 'scalar' && inner.type.ptr === 0
            ? inner.prov === 'local' || inner.prov === 'untrusted'
              ? 'untrusted'
              : inner.prov
            : inner.prov;
        return { type: t, prov, ...(inner.btf && t.ptr > 0 ? { btf: inner.btf } : {}) };
      }
      case 'field_expression': {
        const arrow = isArrow(e);
        const base = this.typeOf(e.childForFieldName('argument'), depth + 1);
        const agg = arrow ? deref(base.type) : base.type;
        if (agg.kind !== 'struct' && agg.kind !== 'union') return { type: UNKNOWN, prov: 'unknown' };
        const fieldNode = e.childForFieldName('field');
        const t = fieldNode ? this.env.fieldType(agg.name, this.src(fieldNode)) : UNKNOWN;
        // `ctx->data` of a packet program's context is a packet pointer.
        if (base.prov === 'ctx' && fieldNode && PACKET_MEMBERS.get(agg.name)?.has(this.src(fieldNode))) return { type: t, prov: 'packet' };
        // Reading a pointer out of a trusted object yields a BTF pointer; out of anything else, a scalar.
        const prov: Provenance =
          base.prov === 'trusted'
            ? 'trusted'
            : base.prov === 'local' && !arrow
              ? 'local'
              : base.prov === 'ctx'
                ? 'untrusted'
                : base.prov === 'unknown'
                  ? 'unknown'
                  : 'untrusted';
        const btf = prov === 'trusted' ? structOf(t) : undefined;
        return { type: t, prov, ...(btf ? { btf } : {}) };
      }
      case 'subscript_expression': {
        const b = this.typeOf(e.childForFieldName('argument'), depth + 1);
        return { type: deref(b.type), prov: b.prov };
      }
      case 'pointer_expression': {
        const op = e.child(0)?.type;
        const b = this.typeOf(e.childForFieldName('argument'), depth + 1);
        return op === '&' ? { type: addressOf(b.type), prov: b.prov } : { type: deref(b.type), prov: b.prov };
      }
      case 'call_expression': {
        const fn = e.childForFieldName('function');
        const name = fn?.type === 'identifier' ? this.src(fn) : '';
        const trusted = trustedReturn(this.env.db, name);
        if (trusted) return { type: trusted, prov: 'trusted', ...(structOf(trusted) ? { btf: structOf(trusted) } : {}) };
        if (name === 'bpf_get_current_task') return { type: scalarType('u64'), prov: 'untrusted' };
        if (name === 'bpf_map_lookup_elem' || name === 'bpf_ringbuf_reserve') return { type: UNKNOWN, prov: 'local' };
        if (/^BPF_CORE_READ$|^BPF_PROBE_READ$/.test(name)) return { type: UNKNOWN, prov: 'untrusted' };
        if (name === 'bpf_core_cast' || name === 'bpf_rdonly_cast') return { type: UNKNOWN, prov: 'trusted' };
        return { type: UNKNOWN, prov: 'unknown' };
      }
      case 'binary_expression': {
        // Packet pointer arithmetic stays in the packet: `data + off`, `eth + 1`,
        // `(long)ctx->data + ETH_HLEN`. The difference of two packet pointers is a length.
        const op = e.childForFieldName('operator')?.type;
        if (op !== '+' && op !== '-') return { type: UNKNOWN, prov: 'unknown' };
        const l = this.typeOf(e.childForFieldName('left'), depth + 1);
        const r = this.typeOf(e.childForFieldName('right'), depth + 1);
        if (l.prov === 'packet' && r.prov !== 'packet') return l;
        if (op === '+' && r.prov === 'packet' && l.prov !== 'packet') return r;
        return { type: UNKNOWN, prov: 'unknown' };
      }
      case 'number_literal':
        return { type: scalarType('int'), prov: 'local' };
      default:
        return { type: UNKNOWN, prov: 'unknown' };
    }
  }
}

/** Whether a `field_expression` uses `->` (rather than `.`). */
export function isArrow(e: Node): boolean {
  const op = e.childForFieldName('operator') ?? e.child(1);
  return op?.type === '->';
}
