/**
 * `verifier-feature-unavailable`: constructs that older verifiers (or the loader on older kernels)
 * reject, each with the floor the curated facts give for it (`features.json`), and per-kernel
 * truth wherever a kernel's BTF can show the feature:
 *
 * - loops without `#pragma unroll` (`bounded_loops`): before 5.3 the verifier rejects any
 *   back-edge, so a loop must be fully unrolled by the compiler;
 * - `bpf_for()`, `bpf_for_each()`, `bpf_repeat()` (`open_coded_iterators`): per kernel, whether
 *   its BTF has the iterator kfuncs they expand to;
 * - global data (`global_data`, `kconfig_externs`): globals and static locals of the program,
 *   `extern … __kconfig` variables and `bpf_printk()` (whose format string libbpf keeps in
 *   `.rodata` unless `BPF_NO_GLOBAL_DATA` is defined); per kernel, whether its `enum bpf_cmd` has
 *   `BPF_MAP_FREEZE`, which came with global data in 5.2;
 * - atomics with fetch (`atomics`): `__sync_*`/`__atomic_*` operations other than an add whose
 *   result is unused (the one older kernels have, as XADD);
 * - `struct bpf_spin_lock` / `struct bpf_timer` in a map value (`spin_lock`, `bpf_timer`): per
 *   kernel, whether its BTF has the struct;
 * - `__arena` pointers (`arena`): per kernel, whether it has `BPF_MAP_TYPE_ARENA`.
 *
 * Helper and kfunc calls that stand for a feature (`bpf_loop`, `bpf_spin_lock()`, `bpf_timer_*`,
 * `bpf_dynptr_*`, `bpf_arena_*`) are reported by helper-unavailable and kfunc-unavailable, so one
 * construct gets one finding.
 */
import type { Node } from 'web-tree-sitter';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { compareVersions } from '../../../kernel-db/src/version';
import type { FileModel } from '../analysis/file';
import type { Fix } from '../analysis/model';
import type { MapMemberSite } from '../parse/sites';
import { runsOn } from './helper-unavailable';
import { kfuncMissing } from './kfunc-unavailable';
import type { FunctionFacts, Rule, RuleContext } from './rule';

export const verifierFeatureUnavailable: Rule = {
  meta: {
    id: 'verifier-feature-unavailable',
    description: 'Loop, iterator, global data, atomic, spin lock, timer or arena use that older target kernels reject',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    const body = f.fn.body;
    if (!body) return;
    loops(ctx, f, body);
    iterators(ctx, f, body);
    // BCC keeps its tables and globals in its own way; libbpf's global data maps do not apply.
    if (!ctx.model.bcc) globalData(ctx, f, body);
    atomics(ctx, f, body);
    arena(ctx, f, body);
  },
  checkFile(ctx) {
    mapValueFeatures(ctx);
  },
};

/** The facts' floor of a feature (`bounded_loops` → `5.3`). */
function floorOf(ctx: RuleContext, id: string, fallback: string): string {
  return ctx.db.facts.feature(id)?.since ?? fallback;
}

/**
 * Kernels of `kernels` older than `since`. A kernel's own helper list can show that its version
 * lies (openEuler's 4.19 has 5.5 helpers): the newest helper it has is a lower bound of what it
 * backported, so the kernel counts as at least that version.
 */
function olderThan(ctx: RuleContext, kernels: readonly Kernel[], since: string): Kernel[] {
  return kernels.filter((k) => compareVersions(effectiveVersion(ctx.db, k), since) < 0);
}

const effectiveCache = new WeakMap<KernelDb, Map<number, string>>();

/** The kernel's version, or the version of the newest helper it has when that is later. */
function effectiveVersion(db: KernelDb, k: Kernel): string {
  let m = effectiveCache.get(db);
  if (!m) effectiveCache.set(db, (m = new Map()));
  let v = m.get(k.id);
  if (v === undefined) {
    v = k.version;
    if (k.hasHelperEnum) {
      for (const h of db.facts.helpers) {
        if (compareVersions(h.since, v) > 0 && db.enumValue('bpf_func_id', `BPF_FUNC_${h.name.replace(/^bpf_/, '')}`, [k])[0].present === true) v = h.since;
      }
    }
    m.set(k.id, v);
  }
  return v;
}

function where(missing: readonly Kernel[], kernels: readonly Kernel[]): string {
  return `${missing.length} of ${kernels.length} kernels this code runs on: ${describeKernels(missing, kernels)}`;
}

function guardedNote(ctx: RuleContext, f: FunctionFacts, n: Node): string {
  return f.guards.kernelsAt(n).size < ctx.kernels.length ? ' (Checked against the kernels its guards leave.)' : '';
}

// ---- loops -------------------------------------------------------------------------------------

const LOOPS = ['for_statement', 'while_statement', 'do_statement'];

function loops(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const since = floorOf(ctx, 'bounded_loops', '5.3');
  // `bpf_for(…)` and friends are masked into `while` loops: they are iterator loops, checked below.
  const macroLoops = new Set(ctx.model.sites().filter((s) => s.kind === 'loop').map((s) => s.start));
  for (const loop of body.descendantsOfType(LOOPS)) {
    if (!loop || macroLoops.has(loop.startIndex) || unrolled(ctx.model.text, loop.startIndex)) continue;
    const at = runsOn(ctx, f, loop).kernels();
    const old = olderThan(ctx, at, since);
    if (old.length === 0) continue;
    const constant = constantBound(ctx, loop);
    const kw = loop.type === 'for_statement' ? 'for' : loop.type === 'while_statement' ? 'while' : 'do';
    const message = constant
      ? `This \`${kw}\` loop has a constant bound but no \`#pragma unroll\`: clang -O2 usually unrolls such loops, but nothing guarantees it, and a loop left as a loop is rejected (back-edge) by verifiers before ${since} (bounded loops), on ${where(old, at)}.`
      : `This \`${kw}\` loop's trip count is not a compile-time constant, so clang cannot unroll it: verifiers before ${since} reject any back-edge (bounded loops came in ${since}), on ${where(old, at)}.`;
    ctx.report({
      node: loop.child(0) ?? loop,
      message: message + guardedNote(ctx, f, loop),
      kernels: old.map((k) => k.name),
      ...(constant ? { severity: 'warning' as const } : {}),
      fixes: [pragmaFix(ctx, loop, constant)],
    });
  }
}

/** Whether the line before `offset` (skipping blank and comment lines) asks clang to unroll the loop. */
function unrolled(text: string, offset: number): boolean {
  let end = text.lastIndexOf('\n', offset - 1);
  // The loop may follow other code on its line (`if (x) for (…)`): that line has no pragma.
  if (text.slice(end + 1, offset).trim() !== '') return false;
  while (end > 0) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    const line = text.slice(start, end).trim();
    end = start - 1;
    if (line === '' || line.startsWith('//') || /^\/\*.*\*\/$/.test(line)) continue;
    return /^#\s*pragma\s+(?:unroll\b(?!\s*\(\s*1\s*\))|GCC\s+unroll\b|clang\s+loop\s+unroll(?:_count)?\s*\(\s*(?:full|enable|[2-9]|\d\d+)\s*\))/.test(line);
  }
  return false;
}

/**
 * `for (i = 0; i < N; i++)` with `N` a literal, a macro constant or `sizeof`, possibly in a
 * conjunction (`i < MAX && i < n` is bounded by `MAX`).
 */
function constantBound(ctx: RuleContext, loop: Node): boolean {
  if (loop.type !== 'for_statement') return false;
  const isConst = (n: Node) => /^(?:\s*(?:\d+[uUlL]*|0x[0-9a-fA-F]+[uUlL]*|[A-Z][A-Z0-9_]*|sizeof\s*\([^()]*\)|[-+*/()<> ]))+\s*$/.test(ctx.text(n));
  const bounded = (c: Node | null, depth = 0): boolean => {
    if (!c || depth > 8) return false;
    if (c.type === 'parenthesized_expression') return bounded(c.namedChild(0), depth + 1);
    if (c.type !== 'binary_expression') return false;
    const op = c.child(1)?.type ?? '';
    const l = c.childForFieldName('left');
    const r = c.childForFieldName('right');
    if (!l || !r) return false;
    if (op === '&&') return bounded(l, depth + 1) || bounded(r, depth + 1);
    if (!/^(<|<=|>|>=|!=)$/.test(op)) return false;
    return (l.type === 'identifier' && isConst(r)) || (r.type === 'identifier' && isConst(l));
  };
  return bounded(loop.childForFieldName('condition'));
}

function pragmaFix(ctx: RuleContext, loop: Node, constant: boolean): Fix {
  const text = ctx.model.text;
  const lineStart = text.lastIndexOf('\n', loop.startIndex - 1) + 1;
  const indent = /^[ \t]*/.exec(text.slice(lineStart, loop.startIndex))![0];
  return {
    title: 'Insert #pragma unroll before the loop',
    // A loop whose trip count is not a compile-time constant stays a loop whatever the pragma says.
    safe: constant && text.slice(lineStart, loop.startIndex).trim() === '',
    edits: [{ range: ctx.lines.range(loop.startIndex, loop.startIndex), newText: `#pragma unroll\n${indent}` }],
  };
}

// ---- open-coded iterators ----------------------------------------------------------------------

function iterators(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const since = floorOf(ctx, 'open_coded_iterators', '6.4');
  for (const site of ctx.model.sites()) {
    if (site.kind !== 'loop' || site.start < body.startIndex || site.end > body.endIndex) continue;
    const node = body.descendantForIndex(site.start, site.start + site.name.length);
    if (!node) continue;
    const at = runsOn(ctx, f, node).kernels();
    // bpf_for()/bpf_repeat() use the numeric iterator; bpf_for_each(type, …) the type's iterator.
    const iter = site.name === 'bpf_for_each' ? site.args[0]?.text : 'num';
    if (!iter || !/^\w+$/.test(iter)) continue;
    const kfunc = `bpf_iter_${iter}_new`;
    const missing = kfuncMissing(ctx.db, kfunc, ctx.db.kfunc(kfunc, at));
    if (missing.length === 0) continue;
    ctx.report({
      span: { start: site.start, end: site.start + site.name.length },
      message: `\`${site.name}()\` is an open-coded iterator loop (${since} for the numeric iterator) built on the \`${kfunc}\` kfunc, which is missing on ${where(missing, at)}; the program does not load there. ` +
        'Older kernels need a bounded `for` loop (5.3) or `bpf_loop()` (5.17).' + guardedNote(ctx, f, node),
      kernels: missing.map((k) => k.name),
    });
  }
}

// ---- global data -------------------------------------------------------------------------------

interface GlobalUse {
  readonly node: Node;
  readonly what: string;
}

/** How a file-scope variable is stored: as global data, a kconfig extern, or neither. */
function globalKinds(model: FileModel): Map<string, 'data' | 'kconfig'> {
  let m = kindsCache.get(model);
  if (m) return m;
  m = new Map();
  for (const [name, g] of model.globals) {
    let decl: Node | null = g.node;
    while (decl && decl.type !== 'declaration') decl = decl.parent;
    if (!decl || decl.descendantsOfType('function_declarator').length > 0) continue;
    const text = model.text.slice(decl.startIndex, decl.endIndex);
    const after = model.text.slice(decl.endIndex, decl.endIndex + 1);
    if (/\b__kconfig\b/.test(text)) m.set(name, 'kconfig');
    else if (/^\s*typedef\b/.test(text) || /\b(?:__ksym|extern)\b/.test(text)) continue;
    // Maps (`SEC(".maps")`), the license and the version section are not global data.
    else if (/\bSEC\s*\(\s*"(?:\.?maps|license|version)"/.test(text + after)) continue;
    else m.set(name, 'data');
  }
  kindsCache.set(model, m);
  return m;
}
const kindsCache = new WeakMap<FileModel, Map<string, 'data' | 'kconfig'>>();

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
    if (!kind || locals.has(name) || id.parent?.type === 'field_expression' && id.parent.childForFieldName('field')?.id === id.id) continue;
    uses.push({ node: id, what: kind === 'kconfig' ? `the \`__kconfig\` extern \`${name}\` (kconfig externs live in a global data map)` : `the global variable \`${name}\`` });
  }
  for (const d of body.descendantsOfType('declaration')) {
    if (!d || !/^\s*static\b/.test(ctx.text(d))) continue;
    uses.push({ node: d, what: 'a static local variable' });
  }
  if (!/^[ \t]*#[ \t]*define[ \t]+BPF_NO_GLOBAL_DATA\b/m.test(ctx.model.text)) {
    for (const c of body.descendantsOfType('call_expression')) {
      const fn = c?.childForFieldName('function');
      if (c && fn && ctx.text(fn) === 'bpf_printk') uses.push({ node: fn, what: '`bpf_printk()`, whose format string libbpf keeps in `.rodata` (define `BPF_NO_GLOBAL_DATA` to keep it on the stack)' });
    }
  }
  if (uses.length === 0) return;
  uses.sort((a, b) => a.node.startIndex - b.node.startIndex);
  const since = floorOf(ctx, 'global_data', '5.2');
  let first: { use: GlobalUse; missing: Kernel[]; at: Kernel[] } | undefined;
  const all = new Set<Kernel>();
  for (const use of uses) {
    const at = runsOn(ctx, f, use.node).kernels();
    const missing = noGlobalData(ctx, at, since);
    for (const k of missing) all.add(k);
    if (!first && missing.length) first = { use, missing, at };
  }
  if (!first) return;
  const more = uses.filter((u) => u !== first!.use && runsOn(ctx, f, u.node).kernels().some((k) => all.has(k))).length;
  ctx.report({
    node: first.use.node,
    message: `This function uses ${first.use.what}: global data needs ${since}-era kernels (BPF_PSEUDO_MAP_VALUE and map freezing), and libbpf refuses to load the object ("kernel doesn't support global data") on ` +
      `${where(first.missing, first.at)}${more ? `. ${more} more use${more === 1 ? '' : 's'} in this function need it too` : ''}.` + guardedNote(ctx, f, first.use.node),
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

// ---- atomics -----------------------------------------------------------------------------------

/** Atomic adds older kernels have (XADD) when their result is unused. */
const PLAIN_ADD = /^(?:__sync_fetch_and_add|__sync_add_and_fetch|__sync_fetch_and_sub|__sync_sub_and_fetch|__atomic_fetch_add|__atomic_add_fetch|__atomic_fetch_sub|__atomic_sub_fetch)$/;

function atomics(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const since = floorOf(ctx, 'atomics', '5.12');
  for (const call of body.descendantsOfType('call_expression')) {
    const fn = call?.childForFieldName('function');
    if (!call || !fn || fn.type !== 'identifier') continue;
    const name = ctx.text(fn);
    if (!/^__(?:sync|atomic)_/.test(name)) continue;
    let p = call.parent;
    while (p && p.type === 'parenthesized_expression') p = p.parent;
    const unused = p?.type === 'expression_statement' || (p?.type === 'cast_expression' && /^\(\s*void\s*\)/.test(ctx.text(p)));
    if (PLAIN_ADD.test(name) && unused) continue;
    const at = runsOn(ctx, f, call).kernels();
    const old = olderThan(ctx, at, since);
    if (old.length === 0) continue;
    ctx.report({
      node: fn,
      message: `\`${name}\`${PLAIN_ADD.test(name) ? ' with its result used' : ''} needs the atomic instructions of ${since} (BPF_ATOMIC with fetch; clang -mcpu=v3): verifiers before ${since} know only an atomic add without result, on ${where(old, at)}.` + guardedNote(ctx, f, call),
      kernels: old.map((k) => k.name),
    });
  }
}

// ---- arena -------------------------------------------------------------------------------------

function arena(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const site = ctx.model.sites().find((s) => s.kind === 'attribute' && s.name === '__arena' && s.start >= body.startIndex && s.end <= body.endIndex);
  if (!site) return;
  const node = body.descendantForIndex(site.start, site.end);
  if (!node) return;
  const at = runsOn(ctx, f, node).kernels();
  const since = floorOf(ctx, 'arena', '6.9');
  const arenaMap = ctx.db.mapType('BPF_MAP_TYPE_ARENA', at).kernels;
  const missing = at.filter((_, i) => arenaMap[i].present === false);
  if (missing.length === 0) return;
  ctx.report({
    span: { start: site.start, end: site.end },
    message: `\`__arena\` pointers need BPF arenas (${since}, BPF_MAP_TYPE_ARENA), which are missing on ${where(missing, at)}; the program does not load there.` + guardedNote(ctx, f, node),
    kernels: missing.map((k) => k.name),
  });
}

// ---- spin locks and timers in map values -------------------------------------------------------

function mapValueFeatures(ctx: RuleContext) {
  for (const site of ctx.model.sites()) {
    if (site.kind !== 'map-member' || site.member !== 'value') continue;
    const m = /^(?:struct\s+)?([A-Za-z_]\w*)$/.exec((site as MapMemberSite).value.text.trim());
    const def = m ? ctx.model.structs.get(m[1]) ?? ctx.model.structs.get(nameOfTypedef(ctx.model, m[1]) ?? '') : undefined;
    if (!def) continue;
    for (const [field, info] of def.fields) {
      if (info.type.kind !== 'struct' || info.type.ptr !== 0) continue;
      const feature = info.type.name === 'bpf_spin_lock' ? 'spin_lock' : info.type.name === 'bpf_timer' ? 'bpf_timer' : undefined;
      if (!feature) continue;
      const since = floorOf(ctx, feature, feature === 'spin_lock' ? '5.1' : '5.15');
      const have = ctx.db.aggregate(info.type.name, ctx.kernels);
      const missing = ctx.kernels.filter((_, i) => have[i].present === false);
      if (missing.length === 0) continue;
      ctx.report({
        span: { start: site.value.start, end: site.value.end },
        message: `The map value struct ${def.name} holds a \`struct ${info.type.name}\` (\`${field}\`), which needs ${since} (${feature === 'spin_lock' ? 'BPF spin locks' : 'BPF timers'}); ` +
          `the kernel has no such struct, so creating the map fails, on ${missing.length} of ${ctx.kernels.length} target kernels: ${describeKernels(missing, ctx.kernels)}.`,
        kernels: missing.map((k) => k.name),
      });
    }
  }
}

function nameOfTypedef(model: FileModel, name: string): string | undefined {
  const t = model.typedefs.get(name);
  return t && (t.kind === 'struct' || t.kind === 'union') && t.ptr === 0 ? t.name : undefined;
}
