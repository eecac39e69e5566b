/**
 * Helpers for the canonical C type strings the database stores (see `btf/extract.ts`):
 * normalising strings from other sources into that spelling, and reading what a type leads to.
 */

/**
 * Rewrites a C type string into the canonical spelling: single spaces, `**` without spaces,
 * doubled qualifiers collapsed, and a space before a function-pointer declarator.
 */
export function normalizeCType(s: string): string {
  let t = s.replace(/\s+/g, ' ').trim();
  for (let i = 0; i < 8 && /\* \*/.test(t); i++) t = t.replace(/\* \*/g, '**');
  t = t.replace(/\b(const|volatile)( \1\b)+/g, '$1');
  t = t.replace(/([^\s(*])\(\*/g, '$1 (*');
  t = t.replace(/\*\(\*/g, '*(*');
  return t;
}

/**
 * The aggregate name that member access through a value of type `t` continues into, when the
 * string spells it (`struct task_struct *` → `task_struct`); '' otherwise. Function pointers
 * lead nowhere.
 */
export function aggregateOfCType(t: string): string {
  if (t.includes('(*)') || t.includes('(')) return '';
  const m = /^(?:(?:const|volatile) )*(?:struct|union) ([A-Za-z_]\w*)\b/.exec(t);
  return m ? m[1] : '';
}

/** Whether a type string is a pointer (not an array of pointers or a function). */
export function isPointerCType(t: string): boolean {
  return /\*( const| volatile)*$/.test(t);
}
