/**
 * Code switched on by the loader: a `const volatile` global that is false in the object
 * (`const volatile bool use_pidns = false;`) and that the user-space loader sets before loading
 * (`obj->rodata->use_pidns = true;`, see runtimeChoices.ts) turns on the code it guards —
 * `if (use_pidns) …`, `use_pidns && …`, `use_pidns ? … : …` — only where the loader sets it.
 * libbpf freezes `.rodata`, so where the flag stays false the verifier knows the branch is dead
 * and never checks it; where the loader sets it, it usually probed the kernel first. A failure
 * there is the loader's choice, like an optional program's.
 */
import type { Node } from 'web-tree-sitter';
import type { FileModel } from './file';
import { parentOf } from './parents';

/** A region of code that runs only when the loader sets `flag`. */
export interface FlagRegion {
  readonly start: number;
  readonly end: number;
  readonly flag: string;
  /** Where the loader sets it (`profile.c:520`). */
  readonly where: string;
}

/**
 * The regions guarded by loader-set flags: the consequence of an `if` or `?:` and the right
 * operand of `&&` whose condition requires the flag to be true. `rodata` is the loader's writes.
 */
export function flagRegions(model: FileModel, rodata: ReadonlyMap<string, string>): FlagRegion[] {
  const flags = new Map<string, string>();
  for (const [name, where] of rodata) if (offByDefault(model, name)) flags.set(name, where);
  if (flags.size === 0) return [];
  const src = (n: Node) => model.text.slice(n.startIndex, n.endIndex);
  /** The flags a condition needs to be true. */
  const needs = (e: Node | null, depth = 0): string[] => {
    if (!e || depth > 64) return [];
    switch (e.type) {
      case 'identifier':
        return flags.has(src(e)) ? [src(e)] : [];
      case 'parenthesized_expression':
        return needs(e.namedChild(0), depth + 1);
      case 'binary_expression':
        if (e.child(1)?.type !== '&&') return [];
        return [...needs(e.childForFieldName('left'), depth + 1), ...needs(e.childForFieldName('right'), depth + 1)];
      default:
        return [];
    }
  };
  const out: FlagRegion[] = [];
  const add = (n: Node | null, names: string[]) => {
    if (n && names.length) out.push({ start: n.startIndex, end: n.endIndex, flag: names[0], where: flags.get(names[0])! });
  };
  for (const fn of model.functions) {
    const body = fn.node.childForFieldName('body');
    if (!body) continue;
    for (const n of body.descendantsOfType(['if_statement', 'conditional_expression', 'binary_expression'])) {
      if (!n) continue;
      if (n.type === 'binary_expression') {
        if (n.child(1)?.type === '&&') add(n.childForFieldName('right'), needs(n.childForFieldName('left')));
        continue;
      }
      add(n.childForFieldName('consequence'), needs(n.childForFieldName('condition')));
    }
  }
  return out;
}

/** A `const volatile` global of the file that is zero in the object (no initializer, 0, false, NULL). */
function offByDefault(model: FileModel, name: string): boolean {
  const g = model.globals.get(name);
  if (!g) return false;
  let decl: Node | null = g.node;
  while (decl && decl.type !== 'declaration') decl = parentOf(decl);
  if (!decl) return false;
  const head = model.text.slice(decl.startIndex, g.node.startIndex);
  if (!/\bconst\b/.test(head) || !/\bvolatile\b/.test(head)) return false;
  const value = g.node.type === 'init_declarator' ? g.node.childForFieldName('value') : null;
  return !value || /^(0|false|NULL|0[uUlL]*)$/.test(model.text.slice(value.startIndex, value.endIndex).trim());
}
