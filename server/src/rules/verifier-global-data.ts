/**
 * `verifier-global-data`: globals and static locals of the program, `extern … __kconfig`
 * variables and `bpf_printk()` (whose format string libbpf keeps in `.rodata` unless
 * `BPF_NO_GLOBAL_DATA` is defined) on kernels without global data: per kernel, whether its
 * `enum bpf_cmd` has `BPF_MAP_FREEZE`, which came with global data; elsewhere the facts'
 * `global_data` floor. BCC keeps its tables and globals its own way: BCC files are not checked.
 * Statics clang folds away are left out ({@link foldedStatics}); where the object pass compiles
 * the file, an object without global data drops the finding (objectPass.ts).
 * Part of the `verifier-feature-unavailable` group.
 */
import { OwnedCache } from '../analysis/memo';
import { findingMessage } from '../analysis/model';
import type { Node } from 'web-tree-sitter';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { compareVersions } from '../../../kernel-db/src/version';
import type { FileModel, FunctionInfo } from '../analysis/file';
import type { CType } from '../analysis/ctypes';
import type { Rule, RuleContext } from './rule';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { parentOf } from '../analysis/parents';
import { calleeName } from '../analysis/calls';
import { capRelated } from './common';

export const verifierGlobalData: Rule = {
  meta: {
    id: 'verifier-global-data',
    description: 'Global data, static locals, __kconfig externs or bpf_printk() on kernels without global data',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFile(ctx) {
    // BCC keeps its tables and globals in its own way; libbpf's global data maps do not apply.
    if (!ctx.model.bcc) globalData(ctx);
  },
};

interface GlobalUse {
  readonly node: Node;
  readonly what: string;
}

const kindsCache = new OwnedCache<FileModel, ReadonlyMap<string, 'data' | 'kconfig'>>({
  name: 'verifier-global-data.kinds',
  owner: 'file model',
  key: '—',
});

/** Sections whose variables libbpf does not keep in global data maps. */
const NOT_GLOBAL_DATA = /^(\.?maps|license|version)$/;

/** How a file-scope variable is stored: as global data, a kconfig extern, or neither. */
function globalKinds(model: FileModel): ReadonlyMap<string, 'data' | 'kconfig'> {
  return kindsCache.get(model, '', () => {
    // Maps (`SEC(".maps")`), the license and the version section are not global data.
    const sectioned = new Set<string>();
    for (const site of model.sites()) {
      if (site.kind === 'section' && site.target?.kind === 'variable' && NOT_GLOBAL_DATA.test(site.section ?? ''))
        sectioned.add(site.target.name);
    }
    const m = new Map<string, 'data' | 'kconfig'>();
    const statics = new Map<string, { decl: Node; global: { type: CType; node: Node } }>();
    for (const [name, g] of model.globals) {
      if (model.externs.get(name)?.kind === 'kconfig') {
        m.set(name, 'kconfig');
        continue;
      }
      let decl: Node | null = g.node;
      while (decl && decl.type !== 'declaration') decl = parentOf(decl);
      if (!decl || decl.descendantsOfType('function_declarator').length > 0) continue;
      const isExtern = decl.children.some(
        (c) => c?.type === 'storage_class_specifier' && model.text.slice(c.startIndex, c.endIndex) === 'extern',
      );
      if (isExtern || sectioned.has(name)) continue;
      m.set(name, 'data');
      if (foldable(model, decl, g)) statics.set(name, { decl, global: g });
    }
    for (const name of foldedStatics(model, statics)) m.delete(name);
    return m;
  });
}

/**
 * Whether a global may be one clang folds away ({@link foldedStatics}): `static`, not `volatile`,
 * not an array (used as a value, an array is its address), and without `used` or a section of its
 * own, which keep it whatever its uses.
 */
function foldable(model: FileModel, decl: Node, global: { type: CType }): boolean {
  if (global.type.arr > 0) return false;
  const declText = model.text.slice(decl.startIndex, decl.endIndex);
  return /^\s*static\b/.test(declText) && !/\b(volatile|used|section|SEC)\b/.test(declText);
}

/**
 * Of `candidates` ({@link foldable} globals), those the file only reads, by name or member, never
 * through a subscript or a macro, and never writes or takes the address of but to hand it to a
 * function of the program ({@link toProgramFunction}): clang -O2 folds such reads into the
 * constants they read and drops the variable, so the object keeps no global data for it
 * (Tetragon's `static struct generic_maps maps = { .heap = &process_call_heap, … }`, read as
 * `maps.heap` and through `&maps` handed to its inlined functions, loads on 4.19). A member array
 * handed to a helper is its address; a macro may write what it is given. Whether a function given
 * the address writes through it is not known here, so no error is claimed for that. One pass over
 * the text finds every candidate's uses (this runs on every edit).
 */
function foldedStatics(model: FileModel, candidates: ReadonlyMap<string, { decl: Node; global: { type: CType; node: Node } }>): string[] {
  if (candidates.size === 0) return [];
  const kept = new Set<string>();
  // A name a macro mentions may be written by it (`#define BUMP() (calls++)`).
  const macroText = [...model.macros.values(), ...[...model.functionMacros.values()].map((f) => f.body)]
    .join('\n')
    // Not in a string or a comment (`SEC(".maps")` in a map-defining macro).
    .replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, ' ');
  for (const name of candidates.keys()) if (new RegExp(`(?<![\\w$])${escapeName(name)}(?![\\w$])`).test(macroText)) kept.add(name);
  const root = [...candidates.values()][0].decl.tree.rootNode;
  const names = new RegExp(`(?<![\\w$])(?:${[...candidates.keys()].map(escapeName).join('|')})(?![\\w$])`, 'g');
  for (const match of model.text.matchAll(names)) {
    const name = match[0];
    if (kept.has(name)) continue;
    const { decl, global } = candidates.get(name)!;
    const at = match.index ?? 0;
    if (at >= decl.startIndex && at < decl.endIndex) continue;
    const id = root.descendantForIndex(at, at + name.length);
    // In a comment, a string or masked macro text (`SEC(".maps")`): not a use.
    if (!id || id.type !== 'identifier' || id.startIndex !== at || id.id === global.node.id) continue;
    if (!readOnly(model, id, global.type)) kept.add(name);
  }
  return [...candidates.keys()].filter((n) => !kept.has(n));
}

/** Whether a use of a {@link foldable} global only reads it, by name or member. */
function readOnly(model: FileModel, id: Node, type: CType): boolean {
  let top: Node = id;
  let member: CType | undefined = type;
  for (let p = parentOf(top); p; p = parentOf(top)) {
    if (p.type === 'parenthesized_expression') top = p;
    else if (p.type === 'field_expression' && p.childForFieldName('argument')?.id === top.id) {
      if (model.text.slice(p.startIndex, p.endIndex).includes('->')) return false;
      const field = p.childForFieldName('field');
      member =
        member && field ? model.structs.get(member.name)?.fields.get(model.text.slice(field.startIndex, field.endIndex))?.type : undefined;
      top = p;
    } else break;
  }
  const p = parentOf(top);
  if (!p) return false;
  if (p.type === 'subscript_expression' || p.type === 'update_expression') return false;
  if (p.type === 'assignment_expression' && p.childForFieldName('left')?.id === top.id) return false;
  if (p.type === 'pointer_expression' && p.child(0)?.type === '&') return toProgramFunction(model, p);
  if (p.type === 'argument_list') {
    const fn = calleeOf(model, p);
    // A macro may write its argument (`WRITE_ONCE(x, 1)`); a member array is its address.
    if (fn === undefined || isMacroName(model, fn)) return false;
    if (member && member.arr > 0) return false;
  }
  return true;
}

/** The name a call whose argument list is `args` calls, undefined when not a plain name. */
function calleeOf(model: FileModel, args: Node): string | undefined {
  const call = parentOf(args);
  return call?.type === 'call_expression' ? calleeName(call, model.text) : undefined;
}

/** A function-like macro the model knows, or a name spelled as macros are (`BPF_CORE_READ_INTO`). */
function isMacroName(model: FileModel, name: string): boolean {
  return model.functionMacros.has(name) || /^[A-Z][A-Z0-9_]*$/.test(name);
}

/**
 * Whether `&x` is handed as an argument to a function of the program (Tetragon's
 * `generic_start_process_filter(ctx, &maps)`), which clang inlines so that what it reads through
 * the pointer folds as a read by name does: not to a BPF helper or builtin (which writes through
 * it or needs the memory), a macro, or a function of the file declared `noinline`.
 */
function toProgramFunction(model: FileModel, amp: Node): boolean {
  const args = parentOf(amp);
  const fn = args?.type === 'argument_list' ? calleeOf(model, args) : undefined;
  if (fn === undefined || isMacroName(model, fn) || /^(bpf_|__builtin_|__sync_|__atomic_)/i.test(fn)) return false;
  const own = model.functions.find((f) => f.name === fn);
  if (!own) return true;
  if (/\bnoinline\b/.test(model.text.slice(own.node.startIndex, own.bodySpan?.start ?? own.node.endIndex))) return false;
  // A function of the file that hands the pointer on (to a helper, say) or stores through it
  // writes the variable: it stays.
  const index = args!.namedChildren.filter((c) => c && c.type !== 'comment').findIndex((c) => c?.id === amp.id);
  const param = own.params[index]?.name;
  if (!param || !own.bodySpan) return false;
  const body = model.text.slice(own.bodySpan.start, own.bodySpan.end);
  const p = escapeName(param);
  return !new RegExp(
    `[(,]\\s*${p}\\s*[,)]|\\*\\s*${p}\\s*(=[^=]|\\+\\+|--)|(?<![\\w$])${p}\\s*(->|\\[)[^;=]*?(=[^=]|\\+\\+|--|[-+*/|&^]=)`,
  ).test(body);
}

/** `s` with regular-expression syntax escaped (C names may hold `$`). */
function escapeName(s: string): string {
  return s.replace(/[$]/g, '\\$');
}

/**
 * Whether `BPF_NO_GLOBAL_DATA` is defined where libbpf's `bpf_helpers.h` reads it: by the build's
 * `-D`, or by the file or a project header before the file includes `bpf_helpers.h` (the model's
 * macros hold all three; one defined after the include changes nothing).
 */
function noGlobalDataDefined(model: FileModel): boolean {
  const site = model.macroSites.get('BPF_NO_GLOBAL_DATA');
  if (!site) return false;
  const include = model.directives.find((d) => /^#\s*include\s*[<"](?:[^>"]*\/)?bpf_helpers\.h[>"]/.test(d.text));
  return !include || site.offset < include.start;
}

/** What one function uses of global data. */
function usesIn(
  ctx: RuleContext,
  fn: FunctionInfo,
  kinds: ReadonlyMap<string, 'data' | 'kconfig'>,
  /** `bpf_printk` keeps its format in `.rodata` (the file does not define `BPF_NO_GLOBAL_DATA`). */
  printkIsGlobal: boolean,
): GlobalUse[] {
  // The body's text from its offsets (kept with the function's text): the body's node is asked
  // for only when the text can hold a use (this runs over every function on every edit).
  const span = fn.bodySpan;
  if (!span) return [];
  const text = ctx.model.text.slice(span.start, span.end);
  // Walking the tree costs far more than reading the text: only bodies that can use global data.
  const mentions = [...kinds.keys()].some((name) => text.includes(name));
  const statics = /\bstatic\b/.test(text);
  const printk = printkIsGlobal && text.includes('bpf_printk');
  const body = mentions || statics || printk ? fn.body : null;
  if (!body) return [];
  // Its parameters and locals shadow globals (read only where a global's name appears).
  const locals = new Set(mentions ? fn.params.map((p) => p.name) : []);
  for (const d of mentions ? body.descendantsOfType('declaration') : []) {
    for (const decl of d?.childrenForFieldName('declarator') ?? []) {
      const id = declaredName(decl);
      if (id) locals.add(ctx.text(id));
    }
  }
  const uses: GlobalUse[] = [];
  for (const id of mentions ? body.descendantsOfType('identifier') : []) {
    if (!id) continue;
    const name = ctx.text(id);
    const kind = kinds.get(name);
    if (!kind || locals.has(name) || (parentOf(id)?.type === 'field_expression' && parentOf(id)?.childForFieldName('field')?.id === id.id))
      continue;
    uses.push({ node: id, what: kind === 'kconfig' ? `the \`__kconfig\` extern \`${name}\`` : `\`${name}\`` });
  }
  for (const d of statics ? body.descendantsOfType('declaration') : []) {
    if (!d || !/^\s*static\b/.test(ctx.text(d))) continue;
    uses.push({ node: d, what: 'a static local variable' });
  }
  if (printk) {
    for (const c of body.descendantsOfType('call_expression')) {
      const fn = c?.childForFieldName('function');
      if (c && fn && ctx.text(fn) === 'bpf_printk') uses.push({ node: fn, what: '`bpf_printk()`' });
    }
  }
  return uses;
}

/**
 * Global data is a property of the object: libbpf creates its `.data`, `.rodata`, `.bss` and
 * `.kconfig` maps before loading any program and refuses the whole object where the kernel has no
 * global data ("kernel doesn't support global data"), whatever guards the uses sit under. So it
 * is reported once, at the first global the file declares (or the first use), with every use as
 * related information.
 */
function globalData(ctx: RuleContext) {
  const kinds = globalKinds(ctx.model);
  const printkIsGlobal = !noGlobalDataDefined(ctx.model);
  const uses = ctx.model.functions.flatMap((fn) => usesIn(ctx, fn, kinds, printkIsGlobal));
  // Declared data globals the object keeps even unused (clang drops only unused statics).
  const declared = [...kinds]
    .filter(([, kind]) => kind === 'data')
    .map(([name]) => ({ name, node: ctx.model.globals.get(name)!.node }))
    .filter((g) => uses.some((u) => u.what === `\`${g.name}\``) || !isStatic(ctx, g.node))
    .sort((a, b) => a.node.startIndex - b.node.startIndex);
  if (uses.length === 0 && declared.length === 0) return;
  const since = ctx.db.facts.featureSince('global_data');
  if (!since) return;
  const missing = noGlobalData(ctx, ctx.kernels, since);
  if (missing.length === 0) return;
  uses.sort((a, b) => a.node.startIndex - b.node.startIndex);
  const anchor = declared[0] ? { node: nameIn(declared[0].node) ?? declared[0].node, what: `\`${declared[0].name}\`` } : uses[0];
  const names = [...new Set([...declared.map((g) => `\`${g.name}\``), ...uses.map((u) => u.what)])];
  const others = names.filter((n) => n !== anchor.what);
  ctx.report({
    node: anchor.node,
    message: findingMessage(
      `The object has global data (${anchor.what}${others.length ? ` and ${others.length} more` : ''}): ${ctx.loader.kind === 'libbpf' ? 'libbpf refuses to load it' : 'it does not load'} on ` +
        `${missing.length} of ${ctx.kernels.length} target kernels`,
      `They lack kernel support for global data (${since}): ${describeKernels(missing, ctx.kernels)}.`,
    ),
    kernels: missing.map((k) => k.name),
    related: capRelated(uses, (u) => ({
      range: ctx.range(u.node),
      message:
        u.what === '`bpf_printk()`'
          ? 'uses `bpf_printk()`, whose format string libbpf keeps in `.rodata` (define `BPF_NO_GLOBAL_DATA` to keep it on the stack)'
          : `uses ${u.what}`,
    })),
  });
}

/** Whether a global's declaration is `static`. */
function isStatic(ctx: RuleContext, decl: Node): boolean {
  let d: Node | null = decl;
  while (d && d.type !== 'declaration') d = parentOf(d);
  return !!d && d.children.some((c) => c?.type === 'storage_class_specifier' && ctx.text(c) === 'static');
}

/** The declared name inside a declarator. */
function nameIn(d: Node): Node | undefined {
  return declaredName(d);
}

/** The identifier a declarator declares (`x` of `*x = 0`, `buf[16]`). */
function declaredName(d: Node | null): Node | undefined {
  for (let n = d, depth = 0; n && depth < 16; depth++) {
    if (n.type === 'identifier') return n;
    n = n.childForFieldName('declarator');
  }
  return undefined;
}

/**
 * Kernels without global data: where the kernel's own `enum bpf_cmd` is known, those without
 * `BPF_MAP_FREEZE` (added with global data in 5.2, so backports show); elsewhere the version floor.
 */
function noGlobalData(ctx: RuleContext, kernels: readonly Kernel[], since: string): Kernel[] {
  const freeze = ctx.db.enumValue('bpf_cmd', 'BPF_MAP_FREEZE', kernels);
  return kernels.filter((k, i) => (k.hasHelperEnum ? freeze[i].present === false : compareVersions(k.version, since) < 0));
}
