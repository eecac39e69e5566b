/**
 * `verifier-global-data`: globals and static locals of the program, `extern … __kconfig`
 * variables and `bpf_printk()` (whose format string libbpf keeps in `.rodata` unless
 * `BPF_NO_GLOBAL_DATA` is defined) on kernels without global data: per kernel, whether its
 * `enum bpf_cmd` has `BPF_MAP_FREEZE`, which came with global data; elsewhere the facts'
 * `global_data` floor. BCC keeps its tables and globals its own way: BCC files are not checked.
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
      if (isExtern || sectioned.has(name) || foldedStatic(model, name, decl, g)) continue;
      m.set(name, 'data');
    }
    return m;
  });
}

/**
 * A `static`, non-`volatile` global that the file only reads, by name or member, never through a
 * subscript, and never writes or takes the address of (but to hand it to one of the program's
 * functions, {@link toInlinedCall}): clang -O2 folds such reads into the constants they read and
 * drops the variable, so the object keeps no global data for it (Tetragon's
 * `static struct generic_maps maps = { .heap = &process_call_heap, … }`, which loads on 4.19). A
 * subscript with an index clang cannot fold keeps the variable in `.rodata`; whether a function
 * given its address writes through it is not known here, so no error is claimed for it.
 */
function foldedStatic(model: FileModel, name: string, decl: Node, global: { type: CType; node: Node }): boolean {
  // An array used as a value is its address.
  if (global.type.arr > 0) return false;
  const declText = model.text.slice(decl.startIndex, decl.endIndex);
  if (!/^\s*static\b/.test(declText) || /\bvolatile\b/.test(declText)) return false;
  const root = decl.tree.rootNode;
  const word = new RegExp(`\\b${name}\\b`, 'g');
  for (const m of model.text.matchAll(word)) {
    const at = m.index ?? 0;
    if (at >= decl.startIndex && at < decl.endIndex) continue;
    const id = root.descendantForIndex(at, at + name.length);
    // In a comment, a string or masked macro text (`SEC(".maps")`): not a use.
    if (!id || id.type !== 'identifier' || id.startIndex !== at) continue;
    if (id.id === global.node.id) continue;
    let top: Node = id;
    for (let p = parentOf(top); p; p = parentOf(top)) {
      if (p.type === 'parenthesized_expression') top = p;
      else if (p.type === 'field_expression' && p.childForFieldName('argument')?.id === top.id) {
        if (model.text.slice(p.startIndex, p.endIndex).includes('->')) return false;
        top = p;
      } else break;
    }
    const p = parentOf(top);
    if (!p) return false;
    if (p.type === 'subscript_expression' || p.type === 'update_expression') return false;
    if (p.type === 'assignment_expression' && p.childForFieldName('left')?.id === top.id) return false;
    if (p.type === 'pointer_expression' && p.child(0)?.type === '&' && !toInlinedCall(model, p)) return false;
  }
  return true;
}

/**
 * Whether `&x` is handed to a function of the program as an argument (Tetragon's
 * `generic_start_process_filter(ctx, &maps)`): BPF programs' helper functions are inlined, and
 * what they read through it folds as a read by name does. Not to a BPF helper or builtin, which
 * writes through it or needs the memory.
 */
function toInlinedCall(model: FileModel, amp: Node): boolean {
  const args = parentOf(amp);
  const call = args?.type === 'argument_list' ? parentOf(args) : null;
  const fn = call?.type === 'call_expression' ? call.childForFieldName('function') : null;
  if (!fn || fn.type !== 'identifier') return false;
  return !/^(bpf_|__builtin_|__sync_|__atomic_)/.test(model.text.slice(fn.startIndex, fn.endIndex));
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
  // Defined by the file, a project header or the build's `-DBPF_NO_GLOBAL_DATA` (the model's
  // macros hold all three), libbpf keeps bpf_printk's format on the stack.
  const printkIsGlobal = !ctx.model.macros.has('BPF_NO_GLOBAL_DATA');
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
