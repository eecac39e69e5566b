/**
 * Availability on hover: a struct member, a helper, a kfunc, a struct, or a `SEC()` name, across
 * the target kernels — where it exists, where it does not (and under which name), and how its
 * layout varies. Plain markdown; the protocol edge wraps it.
 */
import type { Node, Tree } from 'web-tree-sitter';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { majorMinor } from '../../../kernel-db/src/version';
import { coreMacroChains } from './chains';
import { coreMacro } from './coreMacros';
import { deref, essentialName } from './ctypes';
import type { BpfMacroSite } from '../parse/sites';
import { type BuildContext, buildFileModel, type FileModel, type IncludeResolver } from './file';
import { num } from './layout';
import type { Range } from './model';
import { LineIndex } from './lines';
import { Guards } from './guards';
import { KSet } from './kset';
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

  // A member named as a CO-RE macro argument: `start_time` in `BPF_CORE_READ(task, start_time)`.
  if (node.type === 'identifier' || node.type === 'field_identifier') {
    const m = macroMember(model, env, db, kernels, text, node);
    if (m) return { markdown: fieldHover(db, kernels, m.struct, src(node), guardNote(m.guards, node, kernels, text)), range };
  }
  if (node.type === 'field_identifier' && node.parent?.type === 'field_expression') {
    const fe = node.parent;
    const scope = scopeAt(model, env, db, fe);
    if (!scope) return undefined;
    const base = scope.typeOf(fe.childForFieldName('argument'));
    const agg = isArrow(fe) ? deref(base.type) : base.type;
    if (agg.kind !== 'struct' && agg.kind !== 'union') return undefined;
    const kname = env.kernelName(agg.name);
    if (!kname) return undefined;
    return {
      markdown: fieldHover(db, kernels, kname, src(node), guardNote(guardsOf(env, db, kernels, text, scope), node, kernels, text)),
      range,
    };
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

/**
 * The member `node` names as a field argument of a CO-RE macro (`BPF_CORE_READ(t, a, b.c)`): the
 * link of the macro's chain it is, counted through the field arguments before it, and the guards
 * of its function.
 */
function macroMember(
  model: FileModel,
  env: TypeEnv,
  db: KernelDb,
  kernels: readonly Kernel[],
  text: string,
  node: Node,
): { struct: string; guards: (n: Node) => KSet } | undefined {
  let arg: Node = node;
  while (arg.parent && arg.parent.type !== 'argument_list') {
    if (!/^(field_expression|subscript_expression|identifier|field_identifier)$/.test(arg.parent.type)) return undefined;
    arg = arg.parent;
  }
  const call = arg.parent?.parent;
  if (!call || call.type !== 'call_expression') return undefined;
  const fnNode = call.childForFieldName('function');
  const first = fnNode ? coreMacro(text.slice(fnNode.startIndex, fnNode.endIndex))?.source : undefined;
  if (first === undefined) return undefined;
  const args = (call.childForFieldName('arguments')?.namedChildren ?? []).filter((a): a is Node => !!a && a.type !== 'comment');
  const at = args.findIndex((a) => a.id === arg.id);
  if (at <= first) return undefined;
  // Field names (subscripts left out) of the arguments before this one, then of this one up to the node.
  const names = (s: string) => [...s.replace(/\[[^\]]*\]/g, '').matchAll(/[A-Za-z_]\w*/g)].length;
  let index = 0;
  for (let i = first + 1; i < at; i++) index += names(text.slice(args[i].startIndex, args[i].endIndex));
  index += names(text.slice(arg.startIndex, node.endIndex)) - 1;
  const fn = model.functions.find((f) => call.startIndex >= f.node.startIndex && call.endIndex <= f.node.endIndex);
  if (!fn?.body) return undefined;
  const scope = new FunctionScope(env, fn, functionContexts(model, db.facts).get(fn)!);
  const chain = coreMacroChains(fn.body, scope, text).find((c) => c.top.id === call.id);
  const link = chain?.links[index];
  if (!link || (link.agg.kind !== 'struct' && link.agg.kind !== 'union')) return undefined;
  const struct = env.kernelName(link.agg.name) ?? essentialName(link.agg.name);
  return { struct, guards: guardsOf(env, db, kernels, text, scope) };
}

/** The kernels a node of the scope's function runs on after its guards. */
function guardsOf(env: TypeEnv, db: KernelDb, kernels: readonly Kernel[], text: string, scope: FunctionScope): (n: Node) => KSet {
  const guards = new Guards(env, db, KSet.all(kernels), scope, text);
  return (n) => guards.kernelsAt(n);
}

/**
 * What the hover says about the guards around a read: the kernels it runs on after them, and the
 * nearest condition that narrows them (`if (bpf_core_field_exists(…))`).
 */
function guardNote(guards: (n: Node) => KSet, node: Node, kernels: readonly Kernel[], text: string): Guarded | undefined {
  const at = guards(node);
  if (at.size >= kernels.length) return undefined;
  let cond: string | undefined;
  for (let child: Node = node, p = node.parent; p && p.type !== 'function_definition'; child = p, p = p.parent) {
    const c = p.type === 'if_statement' || p.type === 'conditional_expression' ? p.childForFieldName('condition') : null;
    if (!c || c.id === child.id) continue;
    const here = guards(child);
    const outer = guards(p);
    if (here.size < outer.size) {
      cond = text
        .slice(c.startIndex, c.endIndex)
        .replace(/\s+/g, ' ')
        .replace(/^\((.*)\)$/, '$1');
      break;
    }
  }
  return { runs: at.kernels(), ...(cond ? { cond: cond.length > 80 ? `${cond.slice(0, 77)}…` : cond } : {}) };
}

/** The kernels a guarded read runs on, and the condition that guards it. */
interface Guarded {
  readonly runs: readonly Kernel[];
  readonly cond?: string;
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
  const out = [`**${what}** on ${kernels.length} target kernels`, '', `- present on ${yes.length}: ${split(yes, no, kernels)}`];
  if (no.length) out.push(`- missing on ${no.length}: ${split(no, yes, kernels)}`);
  if (unknown) out.push(`- unknown on ${unknown} (their data cannot say)`);
  return out.join('\n');
}

/**
 * `these` described among `kernels`, where a version some of `others` share (builds of one
 * `M.m` that differ) is not given as a version, which would put it on both lists, but as the
 * builds themselves.
 */
function split(these: readonly Kernel[], others: readonly Kernel[], kernels: readonly Kernel[]): string {
  const theirs = new Set(others.map((k) => majorMinor(k.version)));
  const shared = these.filter((k) => theirs.has(majorMinor(k.version)));
  if (shared.length === 0) return describeKernels(these, kernels);
  const rest = these.filter((k) => !theirs.has(majorMinor(k.version)));
  const builds = `the ${shared.length === 1 ? 'build' : 'builds'} ${shared.map((k) => `${k.name}`).join(', ')}`;
  return rest.length ? `${describeKernels(rest, kernels)}; and ${builds}` : builds;
}

function fieldHover(db: KernelDb, kernels: readonly Kernel[], struct: string, field: string, guarded?: Guarded): string {
  const av = db.field(struct, field, kernels);
  const present = av.kernels.filter((k) => k.present);
  const types = [...new Set(present.map((k) => `${k.type}${k.bitfieldBits ? ` : ${k.bitfieldBits}` : ''}`))];
  const offsets = new Map<number, number>();
  for (const k of present) if (k.offsetBits !== undefined) offsets.set(k.offsetBits / 8, (offsets.get(k.offsetBits / 8) ?? 0) + 1);
  const out = [presenceHover(`${struct}.${field}`, av.kernels, kernels)];
  if (guarded) {
    const runs = new Set(guarded.runs.map((k) => k.name));
    const lacking = av.kernels.filter((r) => runs.has(r.kernel.name) && r.present === false).length;
    out.push(
      `- guarded${guarded.cond ? ` by \`${guarded.cond}\`` : ''}: this code runs on ${guarded.runs.length} of the ${kernels.length} target kernels, ${
        lacking ? `and the member is missing on ${lacking} of them` : 'all of which have the member'
      }`,
    );
  }
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
