/**
 * CO-RE relocations of a compiled object resolved against the database's kernels, the way libbpf
 * resolves them against a kernel's BTF (tools/lib/bpf/relo_core.c): the local type and access
 * string are turned into names (the root type's essential name — everything from the last `___`
 * dropped — and the member at each step), and each kernel is asked whether a type of that name has
 * those members, with compatible kinds. A field, type-id or enum-value relocation that finds no
 * candidate fails: libbpf poisons the instruction and the program fails to load if it reaches it.
 * The existence kinds (field, type, enum value exists; type matches) never fail: they become 0.
 */
import { CoreReloKind, type CoreRelo } from '../btf/ext';
import { Kind, type Btf } from '../btf/reader';
import type { Kernel, KernelDb } from './db';

/** What a relocation asks, in names. */
export interface ReloQuery {
  readonly kind: CoreReloKind;
  /** `struct`, `union`, `enum`, `typedef`, … of the root type. */
  readonly rootKind: string;
  /** The root type's essential name. */
  readonly root: string;
  /** Field relocations: the named members stepped through, with the local kind of each. */
  readonly fields: readonly { readonly name: string; readonly local: LocalClass }[];
  /** Enum value relocations: the enumerator's essential name. */
  readonly enumerator?: string;
  /** Enum value relocations: the local enum's other enumerators (essential names). */
  readonly siblings?: readonly string[];
  /** How to show it: `struct task_struct: real_parent.pid`, `enum bpf_func_id::BPF_FUNC_x`. */
  readonly text: string;
  /** An existence kind (field, type, enum value exists; type matches). */
  readonly existence: boolean;
}

/** One kernel's answer: the relocation resolves, fails, or the data cannot say. */
export type ReloOutcome = 'ok' | 'fail' | 'unknown';

/** A relocation resolved on each kernel. */
export interface ReloResult {
  readonly relo: CoreRelo;
  readonly query: ReloQuery | undefined;
  /** Per kernel, in the order given: for existence kinds, `ok` means "exists" and `fail` "does not". */
  readonly outcomes: readonly ReloOutcome[];
  /** True for the kinds that never fail a load (they evaluate to 0 or 1). */
  readonly existence: boolean;
}

/** A member's kind class, for libbpf's compatibility check of each step. */
export type LocalClass = 'int' | 'enum' | 'ptr' | 'struct' | 'union' | 'array' | 'float' | 'other';

/** Kind names for messages, as libbpf prints them. */
export const RELO_KIND_NAMES: Readonly<Record<CoreReloKind, string>> = {
  [CoreReloKind.FieldByteOffset]: 'byte_off',
  [CoreReloKind.FieldByteSize]: 'byte_sz',
  [CoreReloKind.FieldExists]: 'field_exists',
  [CoreReloKind.FieldSigned]: 'signed',
  [CoreReloKind.FieldLshiftU64]: 'lshift_u64',
  [CoreReloKind.FieldRshiftU64]: 'rshift_u64',
  [CoreReloKind.TypeIdLocal]: 'local_type_id',
  [CoreReloKind.TypeIdTarget]: 'target_type_id',
  [CoreReloKind.TypeExists]: 'type_exists',
  [CoreReloKind.TypeSize]: 'type_size',
  [CoreReloKind.EnumvalExists]: 'enumval_exists',
  [CoreReloKind.EnumvalValue]: 'enumval_value',
  [CoreReloKind.TypeMatches]: 'type_matches',
};

const EXISTENCE = new Set([CoreReloKind.FieldExists, CoreReloKind.TypeExists, CoreReloKind.EnumvalExists, CoreReloKind.TypeMatches]);
/** The relocation kinds about a member (the rest are about types and enum values). */
export const FIELD_KINDS: ReadonlySet<CoreReloKind> = new Set([
  CoreReloKind.FieldByteOffset,
  CoreReloKind.FieldByteSize,
  CoreReloKind.FieldExists,
  CoreReloKind.FieldSigned,
  CoreReloKind.FieldLshiftU64,
  CoreReloKind.FieldRshiftU64,
]);

/**
 * libbpf's essential name (`bpf_core_essential_name_len`): the name up to the last `___` that has
 * a non-underscore on both sides (`task_struct___old` is `task_struct`, `a___b___c` is `a___b`).
 * Types and enumerators are matched by it; member names are matched exactly.
 */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name[i] !== '_' && name.startsWith('___', i + 1) && name[i + 4] !== '_') return name.slice(0, i + 1);
  }
  return name;
}

/** Skips modifiers and typedefs (libbpf's skip_mods_and_typedefs). */
function skip(btf: Btf, id: number): number {
  for (let n = 0; n < 64 && id !== 0; n++) {
    const k = btf.kind(id);
    if (k !== Kind.Const && k !== Kind.Volatile && k !== Kind.Restrict && k !== Kind.Typedef && k !== Kind.TypeTag) return id;
    id = btf.ref(id);
  }
  return id;
}

export function classOf(btf: Btf, id: number): LocalClass {
  switch (btf.kind(skip(btf, id))) {
    case Kind.Int:
      return 'int';
    case Kind.Enum:
    case Kind.Enum64:
      return 'enum';
    case Kind.Ptr:
      return 'ptr';
    case Kind.Struct:
      return 'struct';
    case Kind.Union:
      return 'union';
    case Kind.Array:
      return 'array';
    case Kind.Float:
      return 'float';
    default:
      return 'other';
  }
}

/** The class of a kernel type string as the database writes it (`struct x *`, `u32[16]`, `union y`). */
function classOfKernel(type: string): LocalClass {
  const t = type.trim();
  if (/\*\s*$/.test(t) || /\(\s*\*/.test(t)) return 'ptr';
  if (/\]\s*$/.test(t)) return 'array';
  if (/^(const |volatile )*struct /.test(t)) return 'struct';
  if (/^(const |volatile )*union /.test(t)) return 'union';
  if (/^(const |volatile )*enum /.test(t)) return 'enum';
  if (/^(const |volatile )*(float|double|long double)$/.test(t)) return 'float';
  return 'int';
}

/** Turns a relocation into names; undefined for what this resolver cannot name (anonymous roots). */
export function reloQuery(btf: Btf, relo: CoreRelo): ReloQuery | undefined {
  const idx = relo.access.split(':').map(Number);
  const root = skip(btf, relo.typeId);
  const k = btf.kind(root);
  const rootKind =
    k === Kind.Struct
      ? 'struct'
      : k === Kind.Union
        ? 'union'
        : k === Kind.Enum || k === Kind.Enum64
          ? 'enum'
          : k === Kind.Fwd
            ? 'struct'
            : '';
  // Type relocations name the local type as written (a typedef is looked up as itself).
  if (!FIELD_KINDS.has(relo.kind) && relo.kind !== CoreReloKind.EnumvalExists && relo.kind !== CoreReloKind.EnumvalValue) {
    const own = btf.kind(relo.typeId) === Kind.Typedef ? relo.typeId : root;
    const name = essentialName(btf.name(own));
    if (!name) return undefined;
    const ownKind = btf.kind(own) === Kind.Typedef ? 'typedef' : rootKind;
    if (!ownKind) return undefined;
    return { kind: relo.kind, rootKind: ownKind, root: name, fields: [], text: `${ownKind} ${name}`, existence: EXISTENCE.has(relo.kind) };
  }
  const name = essentialName(btf.name(root));
  if (!name || !rootKind) return undefined;
  if (relo.kind === CoreReloKind.EnumvalExists || relo.kind === CoreReloKind.EnumvalValue) {
    if (rootKind !== 'enum') return undefined;
    const values = btf.enumValues(root);
    const v = values[idx[0]];
    if (!v) return undefined;
    const enumerator = essentialName(v.name);
    const siblings = values.filter((x) => x !== v).map((x) => essentialName(x.name));
    return {
      kind: relo.kind,
      rootKind,
      root: name,
      fields: [],
      enumerator,
      siblings,
      text: `enum ${name}::${enumerator}`,
      existence: EXISTENCE.has(relo.kind),
    };
  }
  // Field relocations: the first index steps over the root as an array; the rest name members
  // (anonymous ones are looked through, as the database flattens them) or index arrays.
  const fields: { name: string; local: LocalClass }[] = [];
  let cur = root;
  for (let i = 1; i < idx.length; i++) {
    const t = skip(btf, cur);
    const tk = btf.kind(t);
    if (tk === Kind.Struct || tk === Kind.Union) {
      const m = btf.members(t)[idx[i]];
      if (!m) return undefined;
      if (m.name) fields.push({ name: m.name, local: classOf(btf, m.type) });
      cur = m.type;
    } else if (tk === Kind.Array) {
      cur = btf.arrayInfo(t).type;
    } else return undefined;
  }
  if (fields.length === 0) return undefined;
  return {
    kind: relo.kind,
    rootKind,
    root: name,
    fields,
    text: `${rootKind} ${name}: ${fields.map((f) => f.name).join('.')}`,
    existence: EXISTENCE.has(relo.kind),
  };
}

/**
 * Resolves a relocation on each of `kernels`. `memo` keeps answers across the relocations of one
 * object (the same member read in many programs is asked once): its key is the query, so it must
 * not outlive the kernel list.
 */
export function resolveRelo(
  db: KernelDb,
  btf: Btf,
  relo: CoreRelo,
  kernels: readonly Kernel[],
  memo?: Map<string, readonly ReloOutcome[]>,
): ReloResult {
  const query = reloQuery(btf, relo);
  const existence = EXISTENCE.has(relo.kind);
  if (!query || relo.kind === CoreReloKind.TypeIdLocal) {
    // The local type id never needs the kernel; an unnamed root cannot be looked up.
    return { relo, query, existence, outcomes: kernels.map(() => (relo.kind === CoreReloKind.TypeIdLocal ? 'ok' : 'unknown')) };
  }
  const key = JSON.stringify([query.rootKind, query.root, query.fields, query.enumerator ?? '', query.siblings ?? [], query.existence]);
  let outcomes = memo?.get(key);
  if (!outcomes) {
    outcomes = kernels.map((k) => outcome(db, query, k));
    memo?.set(key, outcomes);
  }
  return { relo, query, existence, outcomes };
}

function outcome(db: KernelDb, q: ReloQuery, k: Kernel): ReloOutcome {
  if (q.rootKind === 'enum') {
    // Enum types themselves are not kept by name; their values are.
    if (!q.enumerator) return 'unknown';
    const v = db.enumValue(q.root, q.enumerator, [k])[0];
    if (v.present === true) return 'ok';
    if (v.present !== false) return 'unknown';
    // Absent where the kernel's data has the enum (its helper ids, or another of its values): missing there.
    const hasEnum =
      (q.root === 'bpf_func_id' && k.hasHelperEnum) || (q.siblings ?? []).some((x) => db.enumValue(q.root, x, [k])[0].present === true);
    return hasEnum ? 'fail' : 'unknown';
  }
  if (q.rootKind === 'typedef') {
    const t = db.typedef(q.root, [k])[0];
    return t.present === true ? 'ok' : t.present === false ? 'fail' : 'unknown';
  }
  // A type no kernel of the database has is the program's own: a loader relocates it against BTF
  // it brings along (libbpf's btf_custom_path, cilium/ebpf's KernelTypes, as Inspektor Gadget does
  // for its socket enricher), so only its existence can be answered from kernels.
  if (!q.existence && !db.hasAggregate(q.root)) return 'unknown';
  const agg = db.aggregate(q.root, [k])[0];
  if (agg.present !== true) return agg.present === false ? 'fail' : 'unknown';
  let struct = q.root;
  for (const [i, f] of q.fields.entries()) {
    const on = db.fieldOn(struct, f.name, k);
    if (on.present === false) return 'fail';
    if (on.present !== true) return 'unknown';
    // libbpf's bpf_core_fields_are_compat() at every named step: structs and unions match each
    // other, anything else only its own kind (a struct is not an array, an int not an enum).
    if (on.type && !compatible(f.local, kernelClass(db, on.type, k))) return 'fail';
    if (i < q.fields.length - 1) {
      if (!on.ref) return 'unknown';
      struct = on.ref;
    }
  }
  return 'ok';
}

/**
 * The class of a kernel type string, typedefs followed (`atomic_long_t` is `atomic64_t`, an
 * anonymous struct the database keeps under the typedef's name; `u32` is `__u32`, an integer).
 */
export function kernelClass(db: KernelDb, type: string, k: Kernel, depth = 0): LocalClass {
  const c = classOfKernel(type);
  const bare = /^(?:const |volatile )*([A-Za-z_]\w*)$/.exec(type.trim())?.[1];
  if (c !== 'int' || !bare || depth > 8 || BASE_TYPE.test(bare)) return c;
  const agg = db.aggregate(bare, [k])[0];
  if (agg.present === true) return agg.kind === 'union' ? 'union' : 'struct';
  const td = db.typedef(bare, [k])[0];
  return td.present === true && td.value ? kernelClass(db, td.value, k, depth + 1) : c;
}

/** C's own scalar type names (never typedefs). */
const BASE_TYPE = /^(char|short|int|long|unsigned|signed|_Bool|bool|float|double|void)$/;

function compatible(local: LocalClass, target: LocalClass): boolean {
  const composite = (c: LocalClass) => c === 'struct' || c === 'union';
  if (composite(local) && composite(target)) return true;
  return local === 'other' || local === target;
}

/** A prototype's shape as far as libbpf's kfunc check can be decided from it. */
type Shape = 'void' | 'ptr' | 'value';

/** Splits `a, b (*c)(d, e), f` at its top-level commas. */
function topLevel(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function textShape(t: string): Shape {
  const s = t.replace(/\b(const|volatile|restrict)\b/g, '').trim();
  if (/[*(]/.test(s)) return 'ptr';
  return s === 'void' ? 'void' : 'value';
}

function btfShape(btf: Btf, id: number): Shape {
  const t = skip(btf, id);
  if (t === 0) return 'void';
  return btf.kind(t) === Kind.Ptr ? 'ptr' : 'value';
}

/**
 * Why libbpf refuses the object's prototype of kfunc `name` (its `.BTF` FUNC `funcId`) against the
 * kernel's prototype `proto` as the database spells it
 * (`struct task_struct *bpf_task_acquire(struct task_struct *p)`), or undefined when it accepts it
 * or the text cannot settle it. libbpf's `bpf_core_types_are_compat()` (called from
 * `bpf_object__resolve_ksym_func_btf_id()`) wants as many parameters and the same kind at each
 * parameter and at the return, modifiers and typedefs skipped; of that, only what the text proves
 * is compared here: the number of parameters, `void` against a value, a pointer against a scalar.
 */
export function kfuncProtoMismatch(btf: Btf, funcId: number, name: string, proto: string): string | undefined {
  const fn = btf.type(funcId);
  if (fn.kind !== Kind.Func) return undefined;
  const local = btf.type(fn.type);
  if (local.kind !== Kind.FuncProto) return undefined;
  return protoMismatch({ params: local.params.map((p) => btfShape(btf, p.type)), ret: btfShape(btf, local.returnType) }, name, proto);
}

/**
 * The same check for a declaration in C source (`extern int f(struct x *p, u32 n) __ksym;`), from
 * its text: undefined when it matches, or the text cannot be read.
 */
export function kfuncDeclMismatch(decl: string, name: string, proto: string): string | undefined {
  const local = protoShapes(decl.replace(/\b__attribute__\s*\(\(.*?\)\)|\b__ksym\b|\b__weak\b|\bextern\b/g, ' '), name);
  return local ? protoMismatch(local, name, proto) : undefined;
}

/** The parameter and return shapes of `ret name(params)` in a prototype's text. */
function protoShapes(text: string, name: string): { params: Shape[]; ret: Shape } | undefined {
  const at = new RegExp(`\\b${name}\\s*\\(`).exec(text);
  if (!at) return undefined;
  let depth = 0;
  let close = -1;
  for (let i = at.index + at[0].length - 1; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) return undefined;
  const list = text.slice(at.index + at[0].length, close).trim();
  const params = list === 'void' || list === '' ? [] : topLevel(list);
  if (params.some((p) => p === '...')) return undefined;
  return { params: params.map(textShape), ret: textShape(text.slice(0, at.index)) };
}

function protoMismatch(local: { params: readonly Shape[]; ret: Shape }, name: string, proto: string): string | undefined {
  const kernel = protoShapes(proto, name);
  if (!kernel) return undefined;
  if (kernel.params.length !== local.params.length)
    return `${local.params.length} parameter${local.params.length === 1 ? '' : 's'} here, ${kernel.params.length} in the kernel's \`${proto}\``;
  for (const [i, theirs] of kernel.params.entries()) {
    const ours = local.params[i];
    if (ours !== theirs && ours !== 'void' && theirs !== 'void')
      return `parameter ${i + 1} is a ${ours === 'ptr' ? 'pointer' : 'scalar'} here and a ${theirs === 'ptr' ? 'pointer' : 'scalar'} in the kernel's \`${proto}\``;
  }
  if (local.ret !== kernel.ret) return `it returns ${shapeWord(local.ret)} here and ${shapeWord(kernel.ret)} in the kernel's \`${proto}\``;
  return undefined;
}

function shapeWord(s: Shape): string {
  return s === 'void' ? 'void' : s === 'ptr' ? 'a pointer' : 'a scalar';
}
