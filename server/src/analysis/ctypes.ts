/**
 * The small C type model analysis needs: which aggregate a value leads to, through how many
 * pointers and array dimensions. Built from tree-sitter type nodes and declarators, and from the
 * canonical type strings of the kernel database.
 */
import type { Node } from 'web-tree-sitter';

/** A C type reduced to what member-chain analysis needs. */
export interface CType {
  /** `struct`/`union` for aggregates, `scalar` for everything else, `unknown` when unresolved. */
  readonly kind: 'struct' | 'union' | 'scalar' | 'unknown';
  /** Aggregate tag name (or typedef name of an anonymous aggregate), scalar spelling otherwise. */
  readonly name: string;
  /** Pointer levels above the base type. */
  readonly ptr: number;
  /** Array dimensions (outermost first is irrelevant here: only the count is used). */
  readonly arr: number;
}

/** The unknown type: analysis stays silent on it. */
export const UNKNOWN: CType = { kind: 'unknown', name: '', ptr: 0, arr: 0 };

/** `struct name *` etc. */
export function aggType(kind: 'struct' | 'union', name: string, ptr = 0, arr = 0): CType {
  return { kind, name, ptr, arr };
}

/** A scalar (integers, `void`, function pointers...). */
export function scalarType(name: string, ptr = 0, arr = 0): CType {
  return { kind: 'scalar', name, ptr, arr };
}

/** The type of `*t` or `t[i]`: drops an array dimension first, else a pointer level. */
export function deref(t: CType): CType {
  if (t.kind === 'unknown') return t;
  if (t.arr > 0) return { ...t, arr: t.arr - 1 };
  if (t.ptr > 0) return { ...t, ptr: t.ptr - 1 };
  return UNKNOWN;
}

/** The type of `&t`. */
export function addressOf(t: CType): CType {
  return t.kind === 'unknown' ? t : { ...t, ptr: t.ptr + 1 };
}

/** Whether `t` is an aggregate reached through exactly one pointer (member access with `->`). */
export function isAggPointer(t: CType): boolean {
  return (t.kind === 'struct' || t.kind === 'union') && t.ptr + t.arr === 1;
}

/** Whether `t` is an aggregate value (member access with `.`). */
export function isAggValue(t: CType): boolean {
  return (t.kind === 'struct' || t.kind === 'union') && t.ptr === 0 && t.arr === 0;
}

/**
 * The syntax of a type as the kernel database spells it (one canonical C spelling per type:
 * `struct task_struct *`, `char [16]`, `const struct cred *`, `atomic_t`, `void (*)(int)`). The
 * analysis, the rules and the messages read type strings only through this.
 */
export interface TypeText {
  /** The type without `const`/`volatile`/`restrict`, single-spaced. */
  readonly bare: string;
  /** A function type or a pointer to one. */
  readonly func: boolean;
  /** When an array: the element type's text and the dimensions (`[16][4]`). */
  readonly array?: { readonly elem: string; readonly dims: string; readonly count: number };
  /** When a pointer: the pointed-to type's text. */
  readonly pointee?: string;
  /** When a struct or union: its kind and name (`(anon)` for an anonymous one). */
  readonly aggregate?: { readonly kind: 'struct' | 'union'; readonly name: string };
  /** An enum. */
  readonly isEnum: boolean;
}

const QUALIFIERS = /\b(const|volatile|restrict|__restrict)\b/g;

/** Reads a type string (see {@link TypeText}). */
export function readTypeText(type: string): TypeText {
  const bare = type.replace(QUALIFIERS, ' ').replace(/\s+/g, ' ').trim();
  const func = bare.includes('(');
  const arr = func ? null : /^([^[]*?)\s*((?:\[\d*\])+)$/.exec(bare);
  const pointee = !func && !arr && bare.endsWith('*') ? bare.slice(0, -1).trim() : undefined;
  const agg = !func && !arr && pointee === undefined ? /^(struct|union) (.+)$/.exec(bare) : null;
  return {
    bare,
    func,
    ...(arr ? { array: { elem: arr[1], dims: arr[2], count: (arr[2].match(/\[/g) ?? []).length } } : {}),
    ...(pointee !== undefined ? { pointee } : {}),
    ...(agg ? { aggregate: { kind: agg[1] as 'struct' | 'union', name: agg[2] } } : {}),
    isEnum: /^enum /.test(bare),
  };
}

/**
 * How many array dimensions and pointer levels a type string has before its base type
 * (`struct percpu_counter[4]`: 1, `struct cgroup_subsys_state *[14]`: 2, `struct mm_rss_stat`: 0).
 * Typedef names count as their spelling (0).
 */
export function typeLevels(type: string): number {
  let t = readTypeText(type);
  if (t.func) return 0;
  let n = t.array?.count ?? 0;
  if (t.array) t = readTypeText(t.array.elem);
  for (; t.pointee !== undefined; n++) t = readTypeText(t.pointee);
  return n;
}

/**
 * Reads a kernel-database field type (`struct task_struct *`, `char[16]`, `const struct cred *`,
 * `atomic_t`) with the aggregate key the database gives (`ref`).
 */
export function fromKernelType(type: string, ref: string, refKind: 'struct' | 'union' | undefined): CType {
  let t = readTypeText(type);
  if (t.func) return scalarType(type);
  const arr = t.array?.count ?? 0;
  if (t.array) t = readTypeText(t.array.elem);
  let ptr = 0;
  for (; t.pointee !== undefined; ptr++) t = readTypeText(t.pointee);
  if (ref) return aggType(refKind ?? t.aggregate?.kind ?? 'struct', ref, ptr, arr);
  return scalarType(t.bare, ptr, arr);
}

/**
 * The base type of a type-specifier node (`struct task_struct`, `u64`, `unsigned int`), with
 * `typedefs` resolving typedef names defined in the file.
 */
export function fromSpecifier(node: Node | null, text: (n: Node) => string, typedefs: ReadonlyMap<string, CType>): CType {
  if (!node) return UNKNOWN;
  switch (node.type) {
    case 'struct_specifier':
    case 'union_specifier': {
      const name = node.childForFieldName('name');
      const kind = node.type === 'struct_specifier' ? 'struct' : 'union';
      return name ? aggType(kind, text(name)) : UNKNOWN;
    }
    case 'type_identifier': {
      const t = typedefs.get(text(node));
      return t ?? scalarType(text(node));
    }
    case 'primitive_type':
    case 'sized_type_specifier':
      return scalarType(text(node));
    case 'enum_specifier':
      return scalarType(text(node));
    case 'macro_type_specifier':
      return UNKNOWN;
    default:
      return UNKNOWN;
  }
}

/**
 * Applies a declarator to a base type and returns the declared name and type:
 * `*p` adds a pointer, `a[4]` an array dimension, `f(...)` makes it a function (scalar).
 */
export function applyDeclarator(
  base: CType,
  decl: Node | null,
  text: (n: Node) => string,
): { name: string; nameNode: Node | null; type: CType } {
  let t = base;
  let node = decl;
  for (let depth = 0; node && depth < 64; depth++) {
    switch (node.type) {
      case 'identifier':
      case 'field_identifier':
      case 'type_identifier':
        return { name: text(node), nameNode: node, type: t };
      case 'pointer_declarator':
      case 'abstract_pointer_declarator':
        t = t.kind === 'unknown' ? t : { ...t, ptr: t.ptr + 1 };
        node = node.childForFieldName('declarator');
        break;
      case 'array_declarator':
      case 'abstract_array_declarator':
        t = t.kind === 'unknown' ? t : { ...t, arr: t.arr + 1 };
        node = node.childForFieldName('declarator');
        break;
      case 'init_declarator':
      case 'attributed_declarator':
        node = node.childForFieldName('declarator') ?? node.namedChild(0);
        break;
      case 'parenthesized_declarator':
      case 'abstract_parenthesized_declarator':
        node = node.namedChildren.find((c) => c !== null && !c.type.includes('attribute')) ?? null;
        break;
      case 'function_declarator':
      case 'abstract_function_declarator': {
        const inner = applyDeclarator(UNKNOWN, node.childForFieldName('declarator'), text);
        return { name: inner.name, nameNode: inner.nameNode, type: scalarType('function') };
      }
      default:
        return { name: '', nameNode: null, type: t };
    }
  }
  return { name: '', nameNode: null, type: t };
}

/** libbpf's essential name of a type or enumerator (one definition, shared with the object pass). */
export { essentialName } from '../../../kernel-db/src/query/coreRelo';

/** Renders a type for messages: `struct task_struct *`. */
export function renderType(t: CType): string {
  if (t.kind === 'unknown') return '?';
  const base = t.kind === 'scalar' ? t.name : `${t.kind} ${t.name}`;
  return `${base}${t.ptr ? ` ${'*'.repeat(t.ptr)}` : ''}${'[]'.repeat(t.arr)}`;
}
