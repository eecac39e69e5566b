/**
 * `verifier-global-data`: globals and static locals of the program, `extern … __kconfig`
 * variables and `bpf_printk()` (whose format string libbpf keeps in `.rodata` unless
 * `BPF_NO_GLOBAL_DATA` is defined) on kernels without global data: per kernel, whether its
 * `enum bpf_cmd` has `BPF_MAP_FREEZE`, which came with global data; elsewhere the facts'
 * `global_data` floor. BCC keeps its tables and globals its own way: BCC files are not checked.
 * Part of the `verifier-feature-unavailable` group.
 */
import { OwnedCache } from '../analysis/memo';
import type { Node } from 'web-tree-sitter';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { compareVersions } from '../../../kernel-db/src/version';
import type { FileModel } from '../analysis/file';
import { runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { guardedNote, where } from './verifier-feature-unavailable';

export const verifierGlobalData: Rule = {
  meta: {
    id: 'verifier-global-data',
    description: 'Global data, static locals, __kconfig externs or bpf_printk() on kernels without global data',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFunction(ctx, f) {
    const body = f.fn.body;
    if (!body) return;
    // BCC keeps its tables and globals in its own way; libbpf's global data maps do not apply.
    if (!ctx.model.bcc) globalData(ctx, f, body);
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
      while (decl && decl.type !== 'declaration') decl = decl.parent;
      if (!decl || decl.descendantsOfType('function_declarator').length > 0) continue;
      const isExtern = decl.children.some(
        (c) => c?.type === 'storage_class_specifier' && model.text.slice(c.startIndex, c.endIndex) === 'extern',
      );
      if (isExtern || sectioned.has(name)) continue;
      m.set(name, 'data');
    }
    return m;
  });
}

function globalData(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const kinds = globalKinds(ctx.model);
  const locals = new Set(f.fn.params.map((p) => p.name));
  for (const d of body.descendantsOfType('declaration')) {
    for (const decl of d?.childrenForFieldName('declarator') ?? []) {
      const id = declaredName(decl);
      if (id) locals.add(ctx.text(id));
    }
  }
  const uses: GlobalUse[] = [];
  for (const id of body.descendantsOfType('identifier')) {
    if (!id) continue;
    const name = ctx.text(id);
    const kind = kinds.get(name);
    if (!kind || locals.has(name) || (id.parent?.type === 'field_expression' && id.parent.childForFieldName('field')?.id === id.id))
      continue;
    uses.push({
      node: id,
      what:
        kind === 'kconfig'
          ? `the \`__kconfig\` extern \`${name}\` (kconfig externs live in a global data map)`
          : `the global variable \`${name}\``,
    });
  }
  for (const d of body.descendantsOfType('declaration')) {
    if (!d || !/^\s*static\b/.test(ctx.text(d))) continue;
    uses.push({ node: d, what: 'a static local variable' });
  }
  if (!/^[ \t]*#[ \t]*define[ \t]+BPF_NO_GLOBAL_DATA\b/m.test(ctx.model.text)) {
    for (const c of body.descendantsOfType('call_expression')) {
      const fn = c?.childForFieldName('function');
      if (c && fn && ctx.text(fn) === 'bpf_printk')
        uses.push({
          node: fn,
          what: '`bpf_printk()`, whose format string libbpf keeps in `.rodata` (define `BPF_NO_GLOBAL_DATA` to keep it on the stack)',
        });
    }
  }
  if (uses.length === 0) return;
  uses.sort((a, b) => a.node.startIndex - b.node.startIndex);
  const since = ctx.db.facts.featureSince('global_data');
  if (!since) return;
  let first: { use: GlobalUse; missing: Kernel[]; at: Kernel[] } | undefined;
  const all = new Set<Kernel>();
  for (const use of uses) {
    const at = runsOn(ctx, f, use.node).kernels();
    const missing = noGlobalData(ctx, at, since);
    for (const k of missing) all.add(k);
    if (!first && missing.length) first = { use, missing, at };
  }
  if (!first) return;
  const more = uses.filter(
    (u) =>
      u !== first!.use &&
      runsOn(ctx, f, u.node)
        .kernels()
        .some((k) => all.has(k)),
  ).length;
  ctx.report({
    node: first.use.node,
    message:
      `This function uses ${first.use.what}: global data needs ${since}-era kernels (BPF_PSEUDO_MAP_VALUE and map freezing), and libbpf refuses to load the object ("kernel doesn't support global data") on ` +
      `${where(first.missing, first.at)}${more ? `. ${more} more use${more === 1 ? '' : 's'} in this function need it too` : ''}.` +
      guardedNote(ctx, f, first.use.node),
    kernels: [...all].map((k) => k.name),
  });
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
