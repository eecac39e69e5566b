/**
 * `map-type-unavailable`: a map whose type some target kernels lack — a BTF-defined map
 * (`__uint(type, BPF_MAP_TYPE_RINGBUF)` in a `SEC(".maps")` struct), a legacy
 * `struct bpf_map_def SEC("maps")` with `.type = BPF_MAP_TYPE_…`, or a BCC map macro
 * (`BPF_RINGBUF_OUTPUT`, `BPF_QUEUE`, `BPF_TASK_STORAGE`, `BPF_TABLE("lru_hash", …)`, …).
 * The loader creates every map when the object loads, whether or not code uses it, so there is no
 * in-program guard: only the target range (or a suppression comment) narrows it.
 */
import type { Node } from 'web-tree-sitter';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { describeSome } from './attach-points';
import { findingMessage, headlineWith } from '../analysis/model';
import type { Rule, RuleContext } from './rule';

export const mapTypeUnavailable: Rule = {
  meta: {
    id: 'map-type-unavailable',
    description: 'Map type missing on some target kernels',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFile(ctx) {
    for (const m of mapDecls(ctx)) check(ctx, m);
  },
};

/** One map declaration whose type is known. */
interface MapDecl {
  readonly type: string;
  readonly name: string;
  readonly span: { start: number; end: number };
  readonly bcc: boolean;
}

/** BCC's map macros and `BPF_TABLE` type strings, from the facts' BCC conventions. */
function bccMapTypes(ctx: RuleContext): { macros: Map<string, string>; tables: Map<string, string> } {
  const macros = new Map<string, string>();
  const tables = new Map<string, string>();
  for (const c of ctx.db.facts.bccConventions) {
    if (typeof c.map_type !== 'string') continue;
    if (c.kind === 'map_macro' && typeof c.name === 'string') macros.set(c.name, c.map_type);
    if (c.kind === 'table_type_string' && typeof c.bcc_table_type === 'string') tables.set(c.bcc_table_type, c.map_type);
  }
  return { macros, tables };
}

/** The maps of the file whose type is a `BPF_MAP_TYPE_*` name. */
function mapDecls(ctx: RuleContext): MapDecl[] {
  const out: MapDecl[] = [];
  const bcc = bccMapTypes(ctx);
  for (const site of ctx.model.sites()) {
    if (site.kind === 'map-member') {
      if (site.member === 'type' && /^BPF_MAP_TYPE_\w+$/.test(site.value.text)) {
        out.push({ type: site.value.text, name: site.map ?? '', span: { start: site.value.start, end: site.value.end }, bcc: false });
      }
    } else if (site.kind === 'section' && site.section === 'maps' && site.target?.kind === 'variable') {
      // `struct bpf_map_def SEC("maps") name = { .type = BPF_MAP_TYPE_…, … };`
      const type = designatedValue(ctx, ctx.model.globals.get(site.target.name)?.node, 'type');
      if (type && /^BPF_MAP_TYPE_\w+$/.test(ctx.text(type))) {
        out.push({ type: ctx.text(type), name: site.target.name, span: { start: type.startIndex, end: type.endIndex }, bcc: false });
      }
    } else if (site.kind === 'bcc-map') {
      let type = bcc.macros.get(site.name);
      // `BPF_TABLE("lru_hash", key, leaf, name, size)` and its pinned/shared/public forms.
      const lit = /^"(\w+)"$/.exec(site.args[0]?.text ?? '');
      if (!type && lit) type = bcc.tables.get(lit[1]);
      if (type) out.push({ type, name: site.mapName, span: { start: site.start, end: site.start + site.name.length }, bcc: true });
    }
  }
  return out;
}

/** The value of `.member = value` in the initializer list of an init declarator. */
function designatedValue(ctx: RuleContext, decl: Node | undefined, member: string): Node | undefined {
  const list = decl?.type === 'init_declarator' ? decl.childForFieldName('value') : null;
  if (list?.type !== 'initializer_list') return undefined;
  for (const pair of list.namedChildren) {
    if (pair?.type !== 'initializer_pair') continue;
    const designators = pair.childrenForFieldName('designator');
    const field = designators.length === 1 ? designators[0]?.namedChildren[0] : undefined;
    if (field && ctx.text(field) === member) return pair.childForFieldName('value') ?? undefined;
  }
  return undefined;
}

function check(ctx: RuleContext, m: MapDecl) {
  const av = ctx.db.mapType(m.type, ctx.kernels);
  const missing: Kernel[] = ctx.kernels.filter((_, i) => av.kernels[i].present === false);
  if (missing.length === 0) return;
  const since = av.since ? ` (upstream since ${av.since})` : '';
  const how = m.bcc
    ? 'BCC cannot create the map there, so the program does not load'
    : 'creating the map fails there, and with it loading the whole object';
  const alt =
    m.type === 'BPF_MAP_TYPE_RINGBUF'
      ? "Where older kernels matter, declare a BPF_MAP_TYPE_PERF_EVENT_ARRAY instead, or switch the map's type from user space (bpf_map__set_type) on kernels that lack ring buffers."
      : undefined;
  ctx.report({
    span: m.span,
    kernels: missing.map((k) => k.name),
    message: findingMessage(
      ...headlineWith(
        `${m.type}${m.name ? ` (map \`${m.name}\`)` : ''} is missing on ${missing.length} of ${ctx.kernels.length} target kernels`,
        m.bcc ? 'BCC cannot create the map there' : 'the object fails to load there',
      ),
      `It is missing on ${describeSome(missing, ctx.kernels)}${since}; ${how}.`,
      alt,
    ),
  });
}
