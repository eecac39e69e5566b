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

/** A base type's text around declarator text `decl`: `int x`, `char[16]`. */
function around(base: string, decl: string): string {
  return decl === '' ? base : decl.startsWith('[') ? base + decl : `${base} ${decl}`;
}

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
    if (depth > MAX_DEPTH) return around('?', decl);
    switch (b.kind(id)) {
      case Kind.Unknown:
        return around('void', decl);
      case Kind.Int:
      case Kind.Float:
      case Kind.Typedef:
        return around(b.name(id) || '?', decl);
      case Kind.Struct:
        return around(`struct ${b.name(id) || '(anon)'}`, decl);
      case Kind.Union:
        return around(`union ${b.name(id) || '(anon)'}`, decl);
      case Kind.Enum:
      case Kind.Enum64:
        return around(`enum ${b.name(id) || '(anon)'}`, decl);
      case Kind.Fwd:
        return around(`${b.kindFlag(id) ? 'union' : 'struct'} ${b.name(id)}`, decl);
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
        return around('?', decl);
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

  /** By type id: 1 + the index in {@link memberTypeList}, 0 before it is worked out. */
  private memberTypeAt: Int32Array | undefined;
  private readonly memberTypeList: MemberType[] = [];
  /**
   * What a member of type `id` puts in its field row besides the type's spelling ({@link render}),
   * worked out once per type (real kernels have ~75,000 members of ~15,000 types).
   * {@link FALLBACK} as `ref` stands for the member's own key.
   */
  memberType(id: number): MemberType {
    const at = (this.memberTypeAt ??= new Int32Array(this.btf.count + 1));
    if (at[id] > 0) return this.memberTypeList[at[id] - 1];
    const agg = this.aggregateOf(id, FALLBACK);
    const t: MemberType = {
      tags: this.tagsOf(id),
      size: this.sizeOf(id),
      ref: agg?.key ?? '',
      aggregate: agg?.id ?? 0,
      anonymous: agg !== undefined && agg.id !== 0 && this.btf.name(agg.id) === '',
    };
    at[id] = this.memberTypeList.push(t);
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

/**
 * The strings one kernel's facts are made of, by id (0 is ''): a name from the BTF's string
 * section gets its id by its offset, without hashing it; a text made here (a type's spelling, a
 * key, a prototype) by a map. Several ids may hold the same text (a typedef's name and a type
 * spelled the same way, one name at two offsets); whoever needs one id per text merges them.
 */
export class FactStrings {
  readonly list: string[] = [''];
  /** The id of each string the reader numbered ({@link Btf.strNumber}), 0 before it has one. */
  private byNumber = new Int32Array(1024);
  private readonly byText = new Map<string, number>([['', 0]]);

  constructor(private readonly btf: Btf) {}

  /**
   * The id of the BTF string at offset `off`.
   * @throws BtfError when `off` is outside the string section.
   */
  at(off: number): number {
    if (off === 0) return 0;
    const n = this.btf.strNumber(off);
    if (n >= this.byNumber.length) {
      // The reader numbers every string it decodes, for anyone (a type's spelling reads its
      // parameters' names): `n` may be far past the last number seen here.
      const grown = new Int32Array(Math.max(this.byNumber.length * 2, n + 1));
      grown.set(this.byNumber);
      this.byNumber = grown;
    }
    let id = this.byNumber[n];
    if (id === 0) {
      const s = this.btf.strByNumber(n);
      // An empty string after offset 0 is the same text as offset 0.
      id = s === '' ? 0 : this.list.length;
      if (id !== 0) this.list.push(s);
      this.byNumber[n] = id;
    }
    return id;
  }

  /** The id of text `s`. */
  text(s: string): number {
    let id = this.byText.get(s);
    if (id === undefined) {
      id = this.list.length;
      this.list.push(s);
      this.byText.set(s, id);
    }
    return id;
  }
}

/**
 * Takes one kernel's facts in the order the extraction finds them; every string is an id of the
 * extraction's {@link FactStrings}. A field belongs to the aggregate given last.
 */
export interface FactSink {
  aggregate(name: number, union: boolean, size: number): void;
  field(name: number, type: number, tags: number, offsetBits: number, bitfieldBits: number, size: number, anon: number, ref: number): void;
  enumValue(enumName: number, name: number, value: number | bigint): void;
  /** `proto` is 0 ('') where the prototype is not kept. */
  func(name: number, kfunc: boolean, proto: number): void;
  variable(name: number, type: number): void;
  typedef(name: number, type: number): void;
}

/** Extracts the database facts of one kernel's BTF. */
export function extractKernelFacts(btf: Btf): KernelFacts {
  const strings = new FactStrings(btf);
  const s = strings.list;
  const aggregates = new Map<string, AggregateFact>();
  const enumValues: EnumValueFact[] = [];
  const funcs = new Map<string, FuncFact>();
  const vars = new Map<string, string>();
  const typedefs = new Map<string, string>();
  let fields: FieldFact[] = [];
  extractInto(btf, strings, {
    aggregate(name, union, size) {
      fields = [];
      aggregates.set(s[name], { name: s[name], kind: union ? 'union' : 'struct', size, fields });
    },
    field(name, type, tags, offsetBits, bitfieldBits, size, anon, ref) {
      fields.push({ name: s[name], type: s[type], tags: s[tags], offsetBits, bitfieldBits, size, anon: s[anon], ref: s[ref] });
    },
    enumValue(enumName, name, value) {
      enumValues.push({ enumName: s[enumName], name: s[name], value });
    },
    func(name, kfunc, proto) {
      funcs.set(s[name], { name: s[name], kfunc, proto: s[proto] });
    },
    variable(name, type) {
      vars.set(s[name], s[type]);
    },
    typedef(name, type) {
      typedefs.set(s[name], s[type]);
    },
  });
  return { aggregates, enumValues, funcs, vars, typedefs };
}

/**
 * One kernel's facts as columns, a row per fact in the order they were found; strings are
 * indices into `strings` (one text may have several). What `db add` keeps, without an object per fact;
 * typed arrays, whose contents the collector never moves.
 */
export interface KernelColumns {
  readonly strings: readonly string[];
  readonly agg: { readonly name: Int32Array; readonly union: Int32Array; readonly size: Float64Array };
  readonly field: {
    /** The aggregate's name. */
    readonly agg: Int32Array;
    readonly name: Int32Array;
    readonly type: Int32Array;
    readonly tags: Int32Array;
    readonly offsetBits: Float64Array;
    readonly bitfieldBits: Float64Array;
    readonly size: Float64Array;
    readonly anon: Int32Array;
    readonly ref: Int32Array;
  };
  readonly enumv: { readonly enumName: Int32Array; readonly name: Int32Array; readonly value: readonly (number | bigint)[] };
  /** `kfunc` is 1 for a kfunc; `proto` 0 where none is kept. */
  readonly func: { readonly name: Int32Array; readonly kfunc: Int32Array; readonly proto: Int32Array };
  readonly vars: { readonly name: Int32Array; readonly type: Int32Array };
  readonly typedefs: { readonly name: Int32Array; readonly type: Int32Array };
}

/** A column filled one value at a time, its array doubled when full. */
class Grow<A extends Int32Array | Float64Array> {
  private n = 0;
  constructor(private a: A) {}
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new (this.a.constructor as new (n: number) => A)(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  /** The values pushed. */
  done(): A {
    return this.a.subarray(0, this.n) as A;
  }
}

const ints = () => new Grow(new Int32Array(1024));
const nums = () => new Grow(new Float64Array(1024));

/** Extracts the database facts of one kernel's BTF as columns. */
export function extractKernelColumns(btf: Btf): KernelColumns {
  const strings = new FactStrings(btf);
  const agg = { name: ints(), union: ints(), size: nums() };
  const field = {
    agg: ints(),
    name: ints(),
    type: ints(),
    tags: ints(),
    offsetBits: nums(),
    bitfieldBits: nums(),
    size: nums(),
    anon: ints(),
    ref: ints(),
  };
  const enumv = { enumName: ints(), name: ints(), value: [] as (number | bigint)[] };
  const func = { name: ints(), kfunc: ints(), proto: ints() };
  const vars = { name: ints(), type: ints() };
  const typedefs = { name: ints(), type: ints() };
  let current = 0;
  extractInto(btf, strings, {
    aggregate(name, union, size) {
      current = name;
      agg.name.push(name);
      agg.union.push(union ? 1 : 0);
      agg.size.push(size);
    },
    field(name, type, tags, offsetBits, bitfieldBits, size, anon, ref) {
      field.agg.push(current);
      field.name.push(name);
      field.type.push(type);
      field.tags.push(tags);
      field.offsetBits.push(offsetBits);
      field.bitfieldBits.push(bitfieldBits);
      field.size.push(size);
      field.anon.push(anon);
      field.ref.push(ref);
    },
    enumValue(enumName, name, value) {
      enumv.enumName.push(enumName);
      enumv.name.push(name);
      enumv.value.push(value);
    },
    func(name, kfunc, proto) {
      func.name.push(name);
      func.kfunc.push(kfunc ? 1 : 0);
      func.proto.push(proto);
    },
    variable(name, type) {
      vars.name.push(name);
      vars.type.push(type);
    },
    typedef(name, type) {
      typedefs.name.push(name);
      typedefs.type.push(type);
    },
  });
  return {
    strings: strings.list,
    agg: { name: agg.name.done(), union: agg.union.done(), size: agg.size.done() },
    field: {
      agg: field.agg.done(),
      name: field.name.done(),
      type: field.type.done(),
      tags: field.tags.done(),
      offsetBits: field.offsetBits.done(),
      bitfieldBits: field.bitfieldBits.done(),
      size: field.size.done(),
      anon: field.anon.done(),
      ref: field.ref.done(),
    },
    enumv: { enumName: enumv.enumName.done(), name: enumv.name.done(), value: enumv.value },
    func: { name: func.name.done(), kfunc: func.kfunc.done(), proto: func.proto.done() },
    vars: { name: vars.name.done(), type: vars.type.done() },
    typedefs: { name: typedefs.name.done(), type: typedefs.type.done() },
  };
}

/**
 * Finds one kernel's facts in its BTF and hands them to `sink`, each aggregate, function,
 * variable and typedef name once: the first by type id, and an aggregate of a name of its own
 * before one filed under a typedef's or a member's key.
 */
export function extractInto(btf: Btf, strings: FactStrings, sink: FactSink): void {
  const namer = new TypeNamer(btf);
  const aggregates = new Set<string>();
  const funcs = new Set<string>();
  const vars = new Set<string>();
  const typedefs = new Set<string>();
  const kfuncIds = new Set<number>();
  // A member type's strings as ids, by type id (-1: not yet): most members share a few types.
  const typeIds = new Int32Array(btf.count + 1).fill(-1);
  const tagIds = new Int32Array(btf.count + 1);
  const refIds = new Int32Array(btf.count + 1);
  const rendered = (id: number) => {
    let t = typeIds[id];
    if (t === -1) t = typeIds[id] = strings.text(namer.render(id));
    return t;
  };

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

  const flatten = (id: number, baseBits: number, anon: string, owner: string, nest: number, depth: number) => {
    if (depth > MAX_DEPTH) return;
    // Taken when a field needs it: a string no row holds would be stored for nothing.
    let anonId = anon === '' ? 0 : -1;
    // Member by member from the record, with no object per member: a name is taken as its
    // string's id (the reader decodes each distinct name once).
    const count = btf.vlen(id);
    for (let i = 0; i < count; i++) {
      if (--budget < 0) {
        throw new BtfError(
          btf.file,
          `anonymous members of type [${id}] repeat too often to flatten (cyclic or exponential); the BTF is malformed`,
        );
      }
      const name = strings.at(btf.memberNameOff(id, i));
      const mtype = btf.memberTypeId(id, i);
      const off = baseBits + btf.memberOffsetBits(id, i);
      if (name === 0) {
        const inner = skipModifiers(btf, mtype);
        const ik = btf.kind(inner);
        if (ik === Kind.Struct || ik === Kind.Union) {
          const k = ik === Kind.Struct ? 'struct' : 'union';
          const a = anon ? `${anon}.${k}` : k;
          flatten(inner, off, a, owner, nest, depth + 1);
        }
        // An unnamed non-aggregate member is bitfield padding: not addressable from C.
        continue;
      }
      const t = namer.memberType(mtype);
      const type = rendered(mtype);
      if (tagIds[mtype] === 0 && t.tags !== '') tagIds[mtype] = strings.text(t.tags);
      // An anonymous aggregate without a typedef is filed under the member that holds it.
      let ref: number;
      if (t.ref === FALLBACK) {
        const key = `${owner}::${strings.list[name]}`;
        ref = strings.text(key);
        if (t.anonymous && nest < MAX_DEPTH) pending.push({ key, id: t.aggregate, nest: nest + 1 });
      } else {
        if (refIds[mtype] === 0 && t.ref !== '') refIds[mtype] = strings.text(t.ref);
        ref = refIds[mtype];
        if (t.anonymous && nest < MAX_DEPTH) pending.push({ key: t.ref, id: t.aggregate, nest: nest + 1 });
      }
      if (anonId === -1) anonId = strings.text(anon);
      sink.field(name, type, tagIds[mtype], off, btf.memberBitfieldBits(id, i), t.size, anonId, ref);
    }
  };

  const addAggregate = (key: string, keyId: number, id: number, nest: number) => {
    // Several definitions may share a name (distinct types pahole could not merge); the first
    // complete one, by type id, is kept so that builds are deterministic.
    if (aggregates.has(key)) return;
    aggregates.add(key);
    sink.aggregate(keyId, btf.kind(id) === Kind.Union, btf.size(id));
    flatten(id, 0, '', key, nest, 0);
  };

  for (let id = 1; id <= btf.count; id++) {
    switch (btf.kind(id)) {
      case Kind.Struct:
      case Kind.Union: {
        const nameId = strings.at(btf.nameOff(id));
        if (nameId !== 0) addAggregate(strings.list[nameId], nameId, id, 0);
        break;
      }
      case Kind.Enum:
      case Kind.Enum64: {
        // A forward-declared enum has no values, and its name is in no row.
        const count = btf.vlen(id);
        const enumName = count > 0 ? strings.at(btf.nameOff(id)) : 0;
        for (let i = 0; i < count; i++) sink.enumValue(enumName, strings.at(btf.enumNameOff(id, i)), btf.enumValue(id, i));
        break;
      }
      case Kind.Typedef: {
        const nameId = strings.at(btf.nameOff(id));
        const name = strings.list[nameId];
        if (nameId !== 0 && !typedefs.has(name)) {
          typedefs.add(name);
          sink.typedef(nameId, rendered(btf.ref(id)));
          const agg = namer.aggregateOf(btf.ref(id), name);
          if (agg && agg.id !== 0 && btf.name(agg.id) === '' && skipModifiers(btf, btf.ref(id)) === agg.id)
            pending.push({ ...agg, nest: 0 });
        }
        break;
      }
      case Kind.DeclTag:
        if (btf.name(id) === 'bpf_kfunc' && btf.kind(btf.ref(id)) === Kind.Func) kfuncIds.add(btf.ref(id));
        break;
      default:
        break;
    }
  }
  for (let i = 0; i < pending.length; i++) {
    const p = pending[i];
    addAggregate(p.key, strings.text(p.key), p.id, p.nest);
  }

  for (let id = 1; id <= btf.count; id++) {
    const k = btf.kind(id);
    if (k === Kind.Func) {
      const nameId = strings.at(btf.nameOff(id));
      const name = strings.list[nameId];
      if (nameId === 0 || funcs.has(name)) continue;
      funcs.add(name);
      const kfunc = kfuncIds.has(id);
      const proto = kfunc || name.startsWith('bpf_lsm_') ? funcProto(namer, btf, id) : '';
      sink.func(nameId, kfunc, proto === '' ? 0 : strings.text(proto));
    } else if (k === Kind.Var) {
      const nameId = strings.at(btf.nameOff(id));
      const name = strings.list[nameId];
      if (nameId !== 0 && !vars.has(name)) {
        vars.add(name);
        sink.variable(nameId, rendered(btf.ref(id)));
      }
    }
  }
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
