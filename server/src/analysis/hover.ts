/**
 * Availability on hover: a struct member, a helper, a kfunc, a struct, or a `SEC()` name, across
 * the target kernels — where it exists, where it does not (and under which name), and how its
 * layout varies. Plain markdown; the protocol edge wraps it.
 */
import type { Node, Tree } from 'web-tree-sitter';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { deref } from './ctypes';
import type { BpfMacroSite } from '../parse/sites';
import { type BuildContext, buildFileModel, type FileModel, type IncludeResolver } from './file';
import { num } from './layout';
import type { Range } from './model';
import { LineIndex } from './lines';
import { functionContexts } from './program';
import { FunctionScope, isArrow, TypeEnv } from './scope';

/** What a hover shows, and the text it is about. */
export interface HoverInfo {
  readonly markdown: string;
  readonly range: Range;
}

/** The hover at `offset`, if the text there is something the kernel data knows. */
export function hoverAt(
  uri: string,
  text: string,
  tree: Tree,
  db: KernelDb,
  kernels: readonly Kernel[],
  offset: number,
  resolve?: IncludeResolver,
  build?: BuildContext,
  sites?: readonly BpfMacroSite[],
): HoverInfo | undefined {
  const lines = new LineIndex(text);
  const model = buildFileModel(uri, text, tree, resolve, sites, build);
  const sec = model.sites().find((s) => s.kind === 'section' && offset >= s.start && offset <= s.end);
  if (sec?.kind === 'section' && sec.section !== null)
    return { markdown: sectionHover(db, kernels, sec.section), range: lines.range(sec.start, sec.end) };
  const node = tree.rootNode.descendantForIndex(offset);
  if (!node) return undefined;
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex);
  const env = new TypeEnv(model, db);
  const range = lines.range(node.startIndex, node.endIndex);

  if (node.type === 'field_identifier' && node.parent?.type === 'field_expression') {
    const fe = node.parent;
    const scope = scopeAt(model, env, db, fe);
    if (!scope) return undefined;
    const base = scope.typeOf(fe.childForFieldName('argument'));
    const agg = isArrow(fe) ? deref(base.type) : base.type;
    if (agg.kind !== 'struct' && agg.kind !== 'union') return undefined;
    const kname = env.kernelName(agg.name);
    if (!kname) return undefined;
    return { markdown: fieldHover(db, kernels, kname, src(node)), range };
  }
  if (node.type === 'identifier' && node.parent?.type === 'call_expression' && node.parent.childForFieldName('function')?.id === node.id) {
    const name = src(node);
    if (db.facts.helper(name)) return { markdown: helperHover(db, kernels, name), range };
    if (db.facts.kfunc(name) || model.externs.get(name)?.kind === 'ksym')
      return { markdown: presenceHover(`kfunc \`${name}\``, db.kfunc(name, kernels), kernels), range };
    return undefined;
  }
  if (node.type === 'type_identifier' && (node.parent?.type === 'struct_specifier' || node.parent?.type === 'union_specifier')) {
    const kname = env.kernelName(src(node));
    if (!kname) return undefined;
    return { markdown: presenceHover(`struct \`${kname}\``, db.aggregate(kname, kernels), kernels), range };
  }
  return undefined;
}

function scopeAt(model: FileModel, env: TypeEnv, db: KernelDb, node: Node): FunctionScope | undefined {
  const fn = model.functions.find((f) => node.startIndex >= f.node.startIndex && node.endIndex <= f.node.endIndex);
  if (!fn) return undefined;
  return new FunctionScope(env, fn, functionContexts(model, db.facts).get(fn)!);
}

function presenceHover(what: string, rows: readonly { kernel: Kernel; present: boolean | null }[], kernels: readonly Kernel[]): string {
  const yes = rows.filter((r) => r.present === true).map((r) => r.kernel);
  const no = rows.filter((r) => r.present === false).map((r) => r.kernel);
  const unknown = rows.length - yes.length - no.length;
  const out = [`**${what}** on ${kernels.length} target kernels`, '', `- present on ${yes.length}: ${describeKernels(yes, kernels)}`];
  if (no.length) out.push(`- missing on ${no.length}: ${describeKernels(no, kernels)}`);
  if (unknown) out.push(`- unknown on ${unknown} (their data cannot say)`);
  return out.join('\n');
}

function fieldHover(db: KernelDb, kernels: readonly Kernel[], struct: string, field: string): string {
  const av = db.field(struct, field, kernels);
  const present = av.kernels.filter((k) => k.present);
  const types = [...new Set(present.map((k) => `${k.type}${k.bitfieldBits ? ` : ${k.bitfieldBits}` : ''}`))];
  const offsets = new Map<number, number>();
  for (const k of present) if (k.offsetBits !== undefined) offsets.set(k.offsetBits / 8, (offsets.get(k.offsetBits / 8) ?? 0) + 1);
  const out = [presenceHover(`${struct}.${field}`, av.kernels, kernels)];
  // Each name the layouts show it renamed to (the kernel database's rename evidence).
  for (const c of av.renameCandidates) out.push(`- named \`${c.name}\` on ${c.kernels.length} of the kernels that lack it`);
  out.push(`- type: ${types.map((t) => `\`${t}\``).join(', ') || 'unknown'}`);
  if (offsets.size) {
    const list = [...offsets]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([o, n]) => `${num(o)} (${n})`);
    out.push(
      `- byte offset: ${offsets.size === 1 ? `${list[0]} everywhere it is known` : `${offsets.size} different: ${list.join(', ')}${offsets.size > 4 ? ', …' : ''}`}`,
    );
  }
  return out.join('\n');
}

function helperHover(db: KernelDb, kernels: readonly Kernel[], name: string): string {
  const h = db.helper(name, kernels);
  const f = db.facts.helper(name);
  const head = presenceHover(`helper ${name}`, h.kernels, kernels);
  return [head, ...(f ? [`- since ${f.since}${f.gpl_only ? ', GPL-only' : ''}`, `- \`${f.proto}\``] : [])].join('\n');
}

function sectionHover(db: KernelDb, kernels: readonly Kernel[], sec: string): string {
  const s = db.section(sec, kernels);
  const head = presenceHover(`SEC("${sec}")`, s.kernels, kernels);
  const info = [
    s.progType && `program type \`${s.progType}\``,
    s.attachType && `attach type \`${s.attachType}\``,
    s.sinceKernel && `since ${s.sinceKernel}`,
  ]
    .filter(Boolean)
    .join(', ');
  return [head, ...(info ? [`- ${info}`] : []), ...(s.configs.length ? [`- needs ${s.configs.join(', ')}`] : [])].join('\n');
}
