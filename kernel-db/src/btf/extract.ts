/**
 * Turns one kernel's BTF into the facts the database keeps: aggregates with their fields as C
 * sees them (anonymous members flattened), enums, functions (kfuns marked), variables and
 * typedefs. Type strings are rendered in one canonical C spelling so that the same type on two
 * kernels compares equal as a string.
 */
import { type Btf, BtfError, Kind } from './reader';

/** One field of an aggregate, after anonymous members were flattened. */
export interface FieldFact {
  readonly name: string;
  /** Canonical C type, e.g. `struct task_struct *`, `char[16]`, `unsigned int`. */
  readonly type: string;
  /** BTF type tags on the way to the type, sorted and comma-joined (e.g. `rcu`), or ''. */
  readonly tags: string;
  /** Offset from the start of the outermost aggregate, in bits; -1 when unknown. */
  readonly offsetBits: number;
  /** Bitfield width, 0 when not a bitfield; -1 when unknown. */
  readonly bitfieldBits: number;
  /** Size of the field's type in bytes; -1 when unknown. */
  readonly size: number;
  /** Kinds of the anonymous members C looks through to reach the field, e.g. `union` or `union.struct`. */
  readonly anon: string;
  /**
   * The aggregate a member access through this field continues into, after stripping
   * typedefs, qualifiers, one or more pointers and arrays: `task_struct` for
   * `struct task_struct *`; '' when the field is not (a pointer to) an aggregate.
   */
  readonly ref: string;
}

/** A struct or union definition. */
export interface AggregateFact {
  readonly name: string;
  readonly kind: 'struct' | 'union';
  /** Size in bytes; -1 when unknown. */
  readonly size: number;
  readonly fields: FieldFact[];
}

/** An enumerator. `enumName` is '' for anonymous enums. */
export interface EnumValueFact {
  readonly enumName: string;
  readonly name: string;
  readonly value: number | bigint;
}

/** A function known to the kernel's BTF. */
export interface FuncFact {
  readonly name: string;
  /** Tagged `bpf_kfunc` (DECL_TAG) in this kernel's BTF. */
  readonly kfunc: boolean;
  /** Prototype, kept for kfuncs and `bpf_lsm_*` hooks only (size). */
  readonly proto: string;
}

/** Everything the database keeps about one kernel. */
export interface KernelFacts {
  readonly aggregates: Map<string, AggregateFact>;
  readonly enumValues: EnumValueFact[];
  readonly funcs: Map<string, FuncFact>;
  /** Global (per-CPU) variables from DATASEC records: typed `__ksym` candidates. */
  readonly vars: Map<string, string>;
  /** Typedef name → canonical target type. */
  readonly typedefs: Map<string, string>;
}

const MAX_DEPTH = 40;
/**
 * Longest type text rendered. Real kernels stay under 250 characters; the cap stops malformed BTF
 * (a prototype DAG whose text doubles at every level) from building gigabyte strings.
 */
const MAX_TYPE_TEXT = 1 << 14;

/** Renders types as canonical C strings and resolves the aggregates they lead to. */
export class TypeNamer {
  private readonly cache = new Map<number, string>();
  constructor(private readonly btf: Btf) {}

  /**
   * Canonical C spelling of type `id` (type tags left out; see {@link tagsOf}).
   * @throws BtfError when the text would exceed {@link MAX_TYPE_TEXT} (malformed BTF).
   */
  render(id: number): string {
    return this.renderAt(id, 0);
  }

  /**
   * {@link render} at nesting `depth`. Results are cached, which keeps a type graph that shares
   * sub-types (function prototypes whose parameters are prototypes) linear to render; a type met
   * again while it is being rendered can only come from a cycle, which C cannot express, and
   * renders as `?`.
   */
  private renderAt(id: number, depth: number): string {
    let s = this.cache.get(id);
    if (s === undefined) {
      if (depth > MAX_DEPTH) return '?';
      this.cache.set(id, '?');
      s = this.renderDecl(id, '', depth);
      if (s.length > MAX_TYPE_TEXT)
        throw new BtfError(this.btf.file, `type [${id}] renders to more than ${MAX_TYPE_TEXT} characters; the BTF is malformed`);
      this.cache.set(id, s);
    }
    return s;
  }

  /**
   * Renders type `id` around declarator text `decl` (C's inside-out declarator syntax),
   * e.g. an array of pointers to functions.
   */
  private renderDecl(id: number, decl: string, depth: number): string {
    const b = this.btf;
    const join = (base: string) => (decl === '' ? base : decl.startsWith('[') ? base + decl : `${base} ${decl}`);
    if (depth > MAX_DEPTH) return join('?');
    switch (b.kind(id)) {
      case Kind.Unknown:
        return join('void');
      case Kind.Int:
      case Kind.Float:
      case Kind.Typedef:
        return join(b.name(id) || '?');
      case Kind.Struct:
        return join(`struct ${b.name(id) || '(anon)'}`);
      case Kind.Union:
        return join(`union ${b.name(id) || '(anon)'}`);
      case Kind.Enum:
      case Kind.Enum64:
        return join(`enum ${b.name(id) || '(anon)'}`);
      case Kind.Fwd:
        return join(`${b.kindFlag(id) ? 'union' : 'struct'} ${b.name(id)}`);
      case Kind.TypeTag:
        return this.renderDecl(b.ref(id), decl, depth + 1);
      case Kind.Const:
      case Kind.Volatile:
      case Kind.Restrict: {
        const q = b.kind(id) === Kind.Const ? 'const' : b.kind(id) === Kind.Volatile ? 'volatile' : 'restrict';
        const target = this.skipTags(b.ref(id));
        // A qualifier on a pointer follows the star (`char * const`); otherwise it leads.
        if (b.kind(target) === Kind.Ptr) return this.renderDecl(target, decl === '' ? q : `${q} ${decl}`, depth + 1);
        const inner = this.renderDecl(target, decl, depth + 1);
        return inner.startsWith(`${q} `) ? inner : `${q} ${inner}`;
      }
      case Kind.Ptr: {
        const target = this.skipTags(b.ref(id));
        const tk = b.kind(target);
        const star = decl === '' ? '*' : /^[*[(]/.test(decl) ? `*${decl}` : `* ${decl}`;
        if (tk === Kind.FuncProto || tk === Kind.Array) return this.renderDecl(target, `(${star})`, depth + 1);
        return this.renderDecl(target, star, depth + 1);
      }
      case Kind.Array: {
        const a = b.arrayInfo(id);
        return this.renderDecl(a.type, `${decl}[${a.nelems}]`, depth + 1);
      }
      case Kind.FuncProto: {
        const params = b.params(id).map((p, i, all) => (p.type === 0 && i === all.length - 1 ? '...' : this.renderAt(p.type, depth + 1)));
        return this.renderDecl(b.ref(id), `${decl}(${params.length ? joinCapped(b, id, params) : 'void'})`, depth + 1);
      }
      case Kind.Func:
        return this.renderDecl(b.ref(id), decl, depth + 1);
      default:
        return join('?');
    }
  }

  private skipTags(id: number): number {
    for (let d = 0; d < MAX_DEPTH && this.btf.kind(id) === Kind.TypeTag; d++) id = this.btf.ref(id);
    return id;
  }

  /** BTF type-tag names (e.g. `rcu`, `user`, `percpu`) on the way from `id` to its base type. */
  tagsOf(id: number): string {
    const b = this.btf;
    // Most types carry no tag: the list is made for the first one met.
    let tags: string[] | undefined;
    for (let d = 0; d < MAX_DEPTH; d++) {
      const k = b.kind(id);
      if (k === Kind.TypeTag) (tags ??= []).push(b.name(id));
      else if (k !== Kind.Ptr && k !== Kind.Const && k !== Kind.Volatile && k !== Kind.Restrict && k !== Kind.Typedef && k !== Kind.Array)
        break;
      if (k === Kind.Typedef) break;
      id = k === Kind.Array ? b.arrayInfo(id).type : b.ref(id);
    }
    return tags === undefined ? '' : [...new Set(tags)].sort().join(',');
  }

  /** Size in bytes of type `id`, -1 when it has none (functions, void, forward declarations). */
  sizeOf(id: number): number {
    const b = this.btf;
    // Arrays multiply as the walk goes down, so that an array that (in malformed BTF) contains
    // itself ends at the depth limit instead of recursing until the stack overflows.
    let count = 1;
    for (let d = 0; d < MAX_DEPTH; d++) {
      switch (b.kind(id)) {
        case Kind.Int:
        case Kind.Float:
        case Kind.Struct:
        case Kind.Union:
        case Kind.Enum:
        case Kind.Enum64:
          return b.size(id) * count;
        case Kind.Ptr:
          return this.pointerSize() * count;
        case Kind.Array: {
          const a = b.arrayInfo(id);
          count *= a.nelems;
          id = a.type;
          break;
        }
        case Kind.Typedef:
        case Kind.Const:
        case Kind.Volatile:
        case Kind.Restrict:
        case Kind.TypeTag:
          id = b.ref(id);
          break;
        default:
          return -1;
      }
    }
    return -1;
  }

  private ptrSize = 0;
  /** Pointer width of the BTF's target, from the size of `long`. */
  pointerSize(): number {
    if (this.ptrSize === 0) {
      this.ptrSize = 8;
      for (let id = 1; id <= this.btf.count; id++) {
        if (this.btf.kind(id) === Kind.Int && this.btf.name(id) === 'long unsigned int') {
          this.ptrSize = this.btf.size(id);
          break;
        }
      }
    }
    return this.ptrSize;
  }

  private readonly memberTypes: MemberType[] = [];
  /**
   * What a member of type `id` puts in its field row, worked out once per type (real kernels have
   * ~75,000 members of ~15,000 types). {@link FALLBACK} as `ref` stands for the member's own key.
   */
  memberType(id: number): MemberType {
    let t = this.memberTypes[id];
    if (t === undefined) {
      const agg = this.aggregateOf(id, FALLBACK);
      t = {
        type: this.render(id),
        tags: this.tagsOf(id),
        size: this.sizeOf(id),
        ref: agg?.key ?? '',
        aggregate: agg?.id ?? 0,
        anonymous: agg !== undefined && agg.id !== 0 && this.btf.name(agg.id) === '',
      };
      this.memberTypes[id] = t;
    }
    return t;
  }

  /**
   * The aggregate that member access through a value of type `id` reaches, with the key the
   * database files it under: its name; for an anonymous aggregate, the first typedef name on
   * the way (`atomic_t`), else `fallback`.
   */
  aggregateOf(id: number, fallback: string): { key: string; id: number } | undefined {
    const b = this.btf;
    let typedefName = '';
    for (let d = 0; d < MAX_DEPTH; d++) {
      const k = b.kind(id);
      if (k === Kind.Struct || k === Kind.Union) {
        const name = b.name(id);
        return { key: name || typedefName || fallback, id };
      }
      if (k === Kind.Fwd) return { key: b.name(id), id: 0 };
      if (k === Kind.Typedef) {
        if (!typedefName) typedefName = b.name(id);
        id = b.ref(id);
      } else if (k === Kind.Ptr || k === Kind.Const || k === Kind.Volatile || k === Kind.Restrict || k === Kind.TypeTag) {
        id = b.ref(id);
      } else if (k === Kind.Array) {
        id = b.arrayInfo(id).type;
      } else {
        return undefined;
      }
    }
    return undefined;
  }
}

/** A member type's share of a field row ({@link TypeNamer.memberType}). */
interface MemberType {
  readonly type: string;
  readonly tags: string;
  readonly size: number;
  /** The aggregate key the field leads to, '' for none, {@link FALLBACK} for the member's own. */
  readonly ref: string;
  /** The aggregate's type id (0 for none or a forward declaration). */
  readonly aggregate: number;
  /** The aggregate has no name of its own: it is filed under {@link ref}. */
  readonly anonymous: boolean;
}

/** Stands for a key made from the member's owner and name; no C name holds a NUL. */
const FALLBACK = '\u0000';

/** Extracts the database facts of one kernel's BTF. */
export function extractKernelFacts(btf: Btf): KernelFacts {
  const namer = new TypeNamer(btf);
  const aggregates = new Map<string, AggregateFact>();
  const enumValues: EnumValueFact[] = [];
  const funcs = new Map<string, FuncFact>();
  const vars = new Map<string, string>();
  const typedefs = new Map<string, string>();
  const kfuncIds = new Set<number>();

  // Anonymous aggregates reached through typedefs or named members are filed under a key
  // of their own; they are collected while walking and added after the named ones. `nest` counts
  // the `::` steps of the key, which real kernels keep in single digits; the limit stops an
  // anonymous aggregate that (in malformed BTF) contains itself from adding keys forever.
  const pending: { key: string; id: number; nest: number }[] = [];

  // Flattening work is bounded by the BTF's own size: real kernels visit fewer members than the
  // blob has, so 16 times that (plus a floor for tiny blobs) is only reached by malformed BTF
  // whose anonymous members repeat exponentially.
  let budget = 100_000;
  for (let id = 1; id <= btf.count; id++) {
    const k = btf.kind(id);
    if (k === Kind.Struct || k === Kind.Union) budget += 16 * btf.vlen(id);
  }

  const flatten = (id: number, baseBits: number, anon: string, owner: string, nest: number, out: FieldFact[], depth: number) => {
    if (depth > MAX_DEPTH) return;
    for (const m of btf.members(id)) {
      if (--budget < 0) {
        throw new BtfError(
          btf.file,
          `anonymous members of type [${id}] repeat too often to flatten (cyclic or exponential); the BTF is malformed`,
        );
      }
      const off = baseBits + m.offsetBits;
      if (m.name === '') {
        const inner = skipModifiers(btf, m.type);
        const ik = btf.kind(inner);
        if (ik === Kind.Struct || ik === Kind.Union) {
          const k = ik === Kind.Struct ? 'struct' : 'union';
          flatten(inner, off, anon ? `${anon}.${k}` : k, owner, nest, out, depth + 1);
        }
        // An unnamed non-aggregate member is bitfield padding: not addressable from C.
        continue;
      }
      const t = namer.memberType(m.type);
      // An anonymous aggregate without a typedef is filed under the member that holds it.
      const ref = t.ref === FALLBACK ? `${owner}::${m.name}` : t.ref;
      if (t.anonymous && nest < MAX_DEPTH) pending.push({ key: ref, id: t.aggregate, nest: nest + 1 });
      out.push({ name: m.name, type: t.type, tags: t.tags, offsetBits: off, bitfieldBits: m.bitfieldBits, size: t.size, anon, ref });
    }
  };

  const addAggregate = (key: string, id: number, nest: number) => {
    // Several definitions may share a name (distinct types pahole could not merge); the first
    // complete one, by type id, is kept so that builds are deterministic.
    if (aggregates.has(key)) return;
    const fields: FieldFact[] = [];
    flatten(id, 0, '', key, nest, fields, 0);
    aggregates.set(key, { name: key, kind: btf.kind(id) === Kind.Union ? 'union' : 'struct', size: btf.size(id), fields });
  };

  for (let id = 1; id <= btf.count; id++) {
    switch (btf.kind(id)) {
      case Kind.Struct:
      case Kind.Union: {
        const name = btf.name(id);
        if (name) addAggregate(name, id, 0);
        break;
      }
      case Kind.Enum:
      case Kind.Enum64: {
        const enumName = btf.name(id);
        for (const v of btf.enumValues(id)) enumValues.push({ enumName, name: v.name, value: v.value });
        break;
      }
      case Kind.Typedef: {
        const name = btf.name(id);
        if (name && !typedefs.has(name)) {
          typedefs.set(name, namer.render(btf.ref(id)));
          const agg = namer.aggregateOf(btf.ref(id), name);
          if (agg && agg.id !== 0 && btf.name(agg.id) === '' && skipModifiers(btf, btf.ref(id)) === agg.id)
            pending.push({ ...agg, nest: 0 });
        }
        break;
      }
      case Kind.DeclTag:
        if (btf.name(id) === 'bpf_kfunc' && btf.kind(btf.ref(id)) === Kind.Func) kfuncIds.add(btf.ref(id));
        break;
      case Kind.Datasec:
        break;
      default:
        break;
    }
  }
  for (let i = 0; i < pending.length; i++) addAggregate(pending[i].key, pending[i].id, pending[i].nest);

  for (let id = 1; id <= btf.count; id++) {
    const k = btf.kind(id);
    if (k === Kind.Func) {
      const name = btf.name(id);
      if (!name || funcs.has(name)) continue;
      const kfunc = kfuncIds.has(id);
      const proto = kfunc || name.startsWith('bpf_lsm_') ? funcProto(namer, btf, id) : '';
      funcs.set(name, { name, kfunc, proto });
    } else if (k === Kind.Var) {
      const name = btf.name(id);
      if (name && !vars.has(name)) vars.set(name, namer.render(btf.ref(id)));
    }
  }
  return { aggregates, enumValues, funcs, vars, typedefs };
}

/** `int name(struct file *file)`, from a FUNC and its FUNC_PROTO. */
function funcProto(namer: TypeNamer, btf: Btf, funcId: number): string {
  const proto = btf.ref(funcId);
  if (btf.kind(proto) !== Kind.FuncProto) return '';
  const params = btf.params(proto).map((p, i, all) => {
    if (p.type === 0 && i === all.length - 1) return '...';
    const t = namer.render(p.type);
    return p.name ? (t.endsWith('*') ? `${t}${p.name}` : `${t} ${p.name}`) : t;
  });
  const ret = namer.render(btf.ref(proto));
  const name = btf.name(funcId);
  return `${ret}${ret.endsWith('*') ? '' : ' '}${name}(${params.length ? joinCapped(btf, proto, params) : 'void'})`;
}

/**
 * Joins parameter texts with `, `, refusing to build text longer than {@link MAX_TYPE_TEXT}: a
 * prototype with thousands of long parameters only exists in malformed BTF.
 */
function joinCapped(btf: Btf, id: number, parts: string[]): string {
  let n = 0;
  for (const p of parts) n += p.length + 2;
  if (n > MAX_TYPE_TEXT)
    throw new BtfError(btf.file, `type [${id}] has parameters longer than ${MAX_TYPE_TEXT} characters in all; the BTF is malformed`);
  return parts.join(', ');
}

/** Strips typedefs, qualifiers and type tags. */
export function skipModifiers(btf: Btf, id: number): number {
  for (let d = 0; d < MAX_DEPTH; d++) {
    const k = btf.kind(id);
    if (k !== Kind.Typedef && k !== Kind.Const && k !== Kind.Volatile && k !== Kind.Restrict && k !== Kind.TypeTag) return id;
    id = btf.ref(id);
  }
  return id;
}
