/**
 * One analysis of one file against a set of target kernels: build the file model, type every
 * function, find member chains, run the rules, apply severities. Plain data in, plain data out;
 * the language server and the CLI both call this.
 *
 * Findings of a function are reused while its text, the text outside all function bodies, the
 * target and the rule settings are unchanged: typing in one function re-analyses that function.
 */
import type { RuntimeChoices } from '../analysis/runtimeChoices';
import { applyAlternatives } from './alternatives';
import { checkGuardFixes } from './guardFixes';
import { mergeObjectFindings, type ObjectPass, type ObjectReach } from './objectPass';
import { flagRegions } from '../analysis/loaderFlags';
import { createHash } from 'node:crypto';
import type { Node, Tree } from 'web-tree-sitter';
import type { BpfMacroSite } from '../parse/sites';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { RULE_IDS, RULES, runOrder } from '../rules';
import { groupsOf } from '../rules/groups';
import type { FunctionFacts, Rule, RuleContext } from '../rules/rule';
import { callGraph } from '../analysis/calls';
import { coreMacroChains, findChains, type Chain } from '../analysis/chains';
import { directives, suppressed } from '../analysis/comments';
import { type BuildContext, buildFileModel, type FileModel, type FunctionInfo, type IncludeResolver } from '../analysis/file';
import { fixFits, includeEdit } from '../analysis/fixes';
import { Guards } from '../analysis/guards';
import { hostDependentRegions, inactiveRegions, inRegions } from '../analysis/preprocessor';
import { KSet } from '../analysis/kset';
import { LineIndex } from '../analysis/lines';
import { detached } from '../analysis/memo';
import { releaseParents } from '../analysis/parents';
import type { Finding, Position, Range, Severity } from '../analysis/model';
import { functionContexts } from '../analysis/program';
import { FunctionScope, TypeEnv } from '../analysis/scope';
import type { Loader } from '../analysis/loader';
import { DEFAULT_SETTINGS, type RuleSetting } from './settings';

/** Findings of functions from the previous analysis of a document, for reuse. */
export class AnalysisCache {
  /**
   * The file signature the entries hold for (text outside function bodies, headers, build flags,
   * target, rules, loader): another signature drops them all.
   */
  sig = '';
  /** A function's text → its findings, with the program context they hold for (see {@link CachedFindings}). */
  entries = new Map<string, CachedFindings>();
  /**
   * Of the last analysis (for tests and benchmarks): functions whose findings were reused (hits)
   * or analysed again (misses), and findings handed back as the previous analysis's objects (kept).
   */
  stats = { hits: 0, misses: 0, kept: 0 };
  /**
   * The last analysis's findings, in their order (start, then rule). A finding of the next
   * analysis equal to one of them is handed back as that object: what is made of a finding
   * downstream (its diagnostic, its bytes on the wire) is made once, though file rules and the
   * steps after the functions (fixes completed with the include, alternatives, guard fixes) build
   * their findings anew.
   */
  published: readonly Finding[] = [];
}

/**
 * A function's findings, relative to its start, and the last placement of them in a text: typing
 * that moves no function (most keystrokes) reuses that placement as it is.
 */
interface CachedFindings {
  /**
   * The function's text it is kept under, a copy of its own: the document's text is not kept
   * alive by it, and a hit keeps this string instead of the slice just looked up with.
   */
  readonly key: string;
  /** The function's program policy and base kernel set when they were computed. */
  readonly context: string;
  readonly relative: readonly Finding[];
  placed?: { readonly origin: Position; readonly findings: readonly Finding[] };
}

/** The rules in the order their metadata asks for. */
const ORDER = runOrder(RULES);
/** A function analysed longer than this (ms) yields between its steps (see `steps`). */
const LONG_FUNCTION_MS = 10;

/** Everything one analysis needs. */
export interface AnalysisInput {
  readonly uri: string;
  readonly text: string;
  readonly tree: Tree;
  readonly db: KernelDb;
  readonly kernels: readonly Kernel[];
  readonly resolveInclude?: IncludeResolver;
  /** Per-rule severity overrides. */
  readonly rules?: Readonly<Record<string, RuleSetting>>;
  /** Reuse findings of unchanged functions from the previous analysis of this document. */
  readonly cache?: AnalysisCache;
  /** The loader (default libbpf 1.0). */
  readonly loader?: Loader;
  /** The BPF macro sites of `text`, when the caller has them (saves masking the text again). */
  readonly sites?: readonly BpfMacroSite[];
  /** What the program's user-space loader switches at run time, when a loader was found. */
  readonly runtime?: RuntimeChoices;
  /** How the project's build compiles the file (`-D`, `-U`, `-include`); none by default. */
  readonly build?: BuildContext;
  /**
   * The object pass over this very text (objectPass.ts): its findings join the source pass's
   * before alternatives, loader flags and suppression comments apply, so they obey them too.
   */
  readonly object?: ObjectPass;
  /**
   * Where a rule that throws is recorded: it loses its own findings (in that function, or in the
   * file for its file check), the other rules' findings stand.
   */
  readonly failures?: AnalysisFailure[];
}

/** A part of the analysis that threw: the rule, when a rule did, and what it threw. */
export interface AnalysisFailure {
  readonly rule?: string;
  readonly message: string;
  /** Where it threw (for logs). */
  readonly stack?: string;
}

/**
 * Test hook: the rule this environment variable names throws wherever it runs, so that tests
 * can show what a failing rule costs (only its own findings) in the CLI and the language server.
 */
export const TEST_THROW_ENV = 'EBPF_PORTABILITY_TEST_THROW';

/** Analyses a file and returns its findings, sorted by position. */
export function analyze(input: AnalysisInput): Finding[] {
  return drain(analyzeSteps(input));
}

/** Runs a stepwise analysis to its end. */
export function drain<T>(steps: Generator<number, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * {@link analyze} in steps: it yields after each function it analyses (within one that has run
 * past {@link LONG_FUNCTION_MS}, after its facts and each rule) and after each file rule, so the
 * language server can run it in time slices, answer other documents in between, and drop
 * it when a newer edit arrives. Each yield is the share of the work done so far (0 to 1: the
 * functions, then the file rules). The file model (and every header it reads) is built before
 * the first yield. The caller must not resume it once the document's tree is gone.
 */
export function* analyzeSteps(input: AnalysisInput): Generator<number, Finding[], void> {
  try {
    return yield* steps(input);
  } finally {
    // Ended, or dropped for a newer run: what it indexed of the tree is not needed any more.
    releaseParents(input.tree);
  }
}

function* steps(input: AnalysisInput): Generator<number, Finding[], void> {
  const { text, tree, db, kernels } = input;
  if (kernels.length === 0) return [];
  const model = buildFileModel(input.uri, text, tree, input.resolveInclude, input.sites, input.build);
  // Code the build does not compile (`#if 0`, another architecture's branch) has no findings.
  const inactive = inactiveRegions(model, tree);
  // In a BCC program, what the host's headers choose (`#ifdef INIT_PID_LINK`) proves nothing either way.
  const hostDependent = hostDependentRegions(model, tree);
  const env = new TypeEnv(model, db);
  const lines = new LineIndex(text);
  const contexts = functionContexts(model, db.facts);
  const findings: Finding[] = [];

  const rules = ORDER.filter((r) => input.rules?.[r.meta.id] !== 'off');
  const throwing = process.env[TEST_THROW_ENV];
  /** Runs one rule's check; a throw is recorded against the rule and costs only its findings. */
  const run = (rule: Rule, where: string, sink: Finding[], claims: Map<Chain, string>, check: () => void): boolean => {
    const before = sink.length;
    try {
      if (throwing === rule.meta.id) throw new Error(`${TEST_THROW_ENV} makes ${rule.meta.id} throw`);
      check();
      return true;
    } catch (e) {
      // Its findings and its claims on member chains go: later rules report those chains.
      sink.length = before;
      for (const [c, id] of claims) if (id === rule.meta.id) claims.delete(c);
      const err = e instanceof Error ? e : new Error(String(e));
      input.failures?.push({ rule: rule.meta.id, message: `${where}: ${err.message}`, ...(err.stack ? { stack: err.stack } : {}) });
      return false;
    }
  };
  /** Chains reported in the current function, by the rule that reported them. */
  const makeContext = (rule: Rule, claims: Map<Chain, string>, sink: Finding[]): RuleContext => {
    const after = new Set(rule.meta.after ?? []);
    const claimed = {
      has: (c: Chain) => after.has(claims.get(c) ?? ''),
      add: (c: Chain) => void claims.set(c, rule.meta.id),
    };
    // `off` rules were filtered out above.
    const setting = input.rules?.[rule.meta.id] as Severity | undefined;
    return {
      model,
      env,
      db,
      kernels,
      lines,
      claimed,
      ruleIds: RULE_IDS,
      loader: input.loader ?? DEFAULT_SETTINGS.loader,
      text: (n: Node) => text.slice(n.startIndex, n.endIndex),
      range: (n: Node) => lines.range(n.startIndex, n.endIndex),
      report: (f) => {
        // A rule lowers a finding to info when no target kernel breaks; otherwise the setting wins.
        const severity = f.severity === 'info' ? 'info' : (setting ?? f.severity ?? rule.meta.defaultSeverity);
        const [start, end] = 'node' in f ? [f.node.startIndex, f.node.endIndex] : [f.span.start, f.span.end];
        if (inactive.length && inRegions(inactive, start)) return;
        if (hostDependent.length && inRegions(hostDependent, start)) return;
        sink.push({
          rule: rule.meta.id,
          severity,
          message: f.message,
          range: lines.range(start, end),
          kernels: f.kernels,
          fixes: f.fixes ?? [],
          ...(f.related ? { related: f.related } : {}),
          ...(f.uses ? { uses: f.uses.map((u) => lines.range(u.startIndex, u.endIndex)) } : {}),
        });
      },
    };
  };

  // Where the compiled object's code runs, per kernel: rules see only the kernels that run a node.
  const reach = input.object?.mode === 'object' && input.object.reach ? objectReach(input.object.reach, lines, kernels) : undefined;
  const cache = input.cache;
  const next = new Map<string, CachedFindings>();
  // Everything outside the functions' own text their findings depend on, hashed into one short string.
  const sig = cache
    ? createHash('sha1')
        .update(signature(text, model))
        .update(`\u0000${model.headers}`)
        .update(`\u0000${JSON.stringify([...model.build.defines, model.build.undefines, model.build.forced])}`)
        .update(
          `\u0000${kernels.map((k) => k.id).join(',')}\u0000${JSON.stringify(input.rules ?? {})}\u0000${JSON.stringify(input.loader ?? {})}`,
        )
        .update(`\u0000${input.object?.mode === 'object' ? input.object.id : ''}`)
        .digest('base64')
    : '';
  if (cache) cache.stats = { hits: 0, misses: 0, kept: 0 };
  // The previous analysis's entries, while the rest of the file reads the same.
  const entries = cache && cache.sig === sig ? cache.entries : undefined;
  // Facts of each function, built on demand: a helper function's kernels come from the guarded
  // call sites in its callers, so callers may be built for it even when their findings are reused.
  const built = new Map<FunctionInfo, { scope: FunctionScope; guards: Guards }>();
  const building = new Set<FunctionInfo>();
  const all = KSet.all(kernels);
  const graph = callGraph(model);
  // Scopes are built only for functions that are analysed or whose guards decide a helper's
  // kernels: a function whose findings are reused needs only its base set.
  const factsOf = (fn: FunctionInfo): { scope: FunctionScope; guards: Guards } => {
    let f = built.get(fn);
    if (f) return f;
    const scope = new FunctionScope(env, fn, contexts.get(fn)!);
    f = { scope, guards: new Guards(env, db, baseOf(fn), scope, text, reach) };
    built.set(fn, f);
    return f;
  };
  const bases = new Map<FunctionInfo, KSet>();
  const baseOf = (fn: FunctionInfo): KSet => {
    let base = bases.get(fn);
    if (base) return base;
    base = all;
    const sites = fn.sec ? [] : graph.callSitesOf(fn.name);
    if (sites.length > 0 && !building.has(fn)) {
      building.add(fn);
      base = sites.reduce((acc, s) => acc.or(factsOf(s.caller).guards.kernelsAt(s.node, false)), KSet.none(kernels));
      building.delete(fn);
    }
    bases.set(fn, base);
    return base;
  };

  let analysed = 0;
  for (const fn of model.functions) {
    const ctxOf = contexts.get(fn)!;
    const origin = lines.positionAt(fn.node.startIndex);
    // Looked up by the function's text (a slice of the document's: hashed without a copy), then
    // checked for its context; a key joining both would be a new string copied for every function.
    const source = cache ? text.slice(fn.node.startIndex, fn.node.endIndex) : '';
    const context = cache ? `${ctxOf.policy}\u0000${baseOf(fn).key()}` : '';
    const found = entries?.get(source);
    const hit = found?.context === context ? found : undefined;
    if (hit) {
      cache!.stats.hits++;
      analysed++;
      next.set(hit.key, hit);
      if (hit.placed?.origin.line !== origin.line || hit.placed.origin.character !== origin.character)
        hit.placed = { origin, findings: hit.relative.map((f) => moveFinding(f, { line: 0, character: 0 }, origin)) };
      findings.push(...hit.placed.findings);
      continue;
    }
    if (cache) cache.stats.misses++;
    // A function that takes long is steps too (its facts, then each rule): one of thousands of
    // branches takes seconds, and other documents are answered between its steps. Others run
    // whole: a yield between each of their steps cost ~7% of a whole-file analysis.
    const progress = (0.9 * analysed) / model.functions.length;
    const since = performance.now();
    const long = () => performance.now() - since > LONG_FUNCTION_MS;
    const { scope, guards } = factsOf(fn);
    if (long()) yield progress;
    const chains = fn.body ? findChains(fn.body, scope, text) : [];
    if (long()) yield progress;
    const facts: FunctionFacts = {
      fn,
      ctx: ctxOf,
      scope,
      guards,
      chains,
      macroChains: fn.body ? coreMacroChains(fn.body, scope, text) : [],
    };
    const local: Finding[] = [];
    const claims = new Map<Chain, string>();
    let complete = true;
    for (const rule of rules) {
      const check = rule.checkFunction;
      if (!check) continue;
      complete = run(rule, `in ${fn.name}()`, local, claims, () => check.call(rule, makeContext(rule, claims, local), facts)) && complete;
      if (long()) yield progress;
    }
    // A function a rule failed on is analysed again next time, so the failure is seen again.
    if (cache && complete) {
      const key = detached(source);
      next.set(key, {
        key,
        context,
        relative: local.map((f) => moveFinding(f, origin, { line: 0, character: 0 })),
        placed: { origin, findings: local },
      });
    }
    findings.push(...local);
    yield (0.9 * ++analysed) / model.functions.length;
  }
  if (cache) {
    cache.entries = next;
    cache.sig = sig;
  }
  for (const rule of rules) {
    const check = rule.checkFile;
    if (check) {
      const claims = new Map<Chain, string>();
      run(rule, 'file check', findings, claims, () => check.call(rule, makeContext(rule, claims, findings)));
      yield 0.9 + (0.1 * (rules.indexOf(rule) + 1)) / rules.length;
    }
  }

  // Variants the loader chooses at run time turn some failures into warnings (whole-file: a
  // program's alternatives may be anywhere in it, so this is never cached per function).
  const flagged = input.runtime?.rodata.size ? flagRegions(model, input.runtime.rodata) : [];
  const decided = input.object ? mergeObjectFindings(findings, input.object, text) : findings;
  const varied = checkGuardFixes(applyAlternatives(decided, model, lines, input.runtime, flagged, kernels, db.facts), kernels, text, lines);
  // Suppression comments apply last, so cached findings obey comments added later.
  const ds = directives(text);
  const kept = ds.length
    ? varied.filter((f) => f.rule === 'invalid-lint-comment' || !suppressed(ds, [f.rule, ...groupsOf(f.rule)], f.range.start.line))
    : varied;
  // The include the CO-RE macros need depends on the whole file: add it once it is known.
  const include = includeEdit({ model, lines });
  const out = kept.map((f) => {
    const assembled = f.fixes.some((x) => x.needsCoreRead)
      ? f.fixes.map(({ needsCoreRead, ...x }) => (needsCoreRead ? { ...x, edits: [...x.edits, ...include] } : x))
      : f.fixes;
    // A fix whose edits overlap or leave the text is not offered (the finding stays).
    const fits = assembled.every((x) => fixFits(x, lines));
    if (fits && assembled === f.fixes) return f;
    return { ...f, fixes: fits ? assembled : assembled.filter((x) => fixFits(x, lines)) };
  });
  out.sort(compareFindings);
  return cache ? keepUnchanged(out, cache) : out;
}

/**
 * `findings`, each equal to one of the previous analysis's as that object (see
 * {@link AnalysisCache.published}). Both lists are in the same order (start, then rule), so one
 * walk over both finds the candidates: those of the same rule at the same start.
 */
function keepUnchanged(findings: Finding[], cache: AnalysisCache): Finding[] {
  const before = cache.published;
  let kept = 0;
  let j = 0;
  for (let i = 0; i < findings.length; i++) {
    const f = findings[i];
    while (j < before.length && compareFindings(before[j], f) < 0) j++;
    for (let k = j; k < before.length && compareFindings(before[k], f) === 0; k++) {
      const old = before[k];
      if (old === f || sameData(old, f)) {
        findings[i] = old;
        kept++;
        break;
      }
    }
  }
  cache.published = findings;
  cache.stats.kept = kept;
  return findings;
}

/** The order of an analysis's findings: by start, then rule. */
function compareFindings(a: Finding, b: Finding): number {
  return (
    a.range.start.line - b.range.start.line ||
    a.range.start.character - b.range.start.character ||
    (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)
  );
}

/** Whether two values of plain data (objects, arrays, strings, numbers, booleans) are equal. */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (!Object.hasOwn(y, k) || !sameData(x[k], y[k])) return false;
    n++;
  }
  for (const _ in y) n--;
  return n === 0;
}

/**
 * The kernels that run a node's compiled code: those reaching an instruction on one of its lines,
 * and those the object pass did not check. Answers are kept per node.
 */
function objectReach(r: ObjectReach, lines: LineIndex, kernels: readonly Kernel[]): (node: Node) => KSet {
  const memo = new Map<number, KSet>();
  return (node) => {
    let k = memo.get(node.id);
    if (k) return k;
    const names = new Set<string>();
    const last = lines.positionAt(node.endIndex).line;
    for (let l = lines.positionAt(node.startIndex).line; l <= last; l++) for (const n of r.lines.get(l) ?? []) names.add(n);
    k = KSet.where(kernels, (x) => !r.kernels.has(x.name) || names.has(x.name));
    memo.set(node.id, k);
    return k;
  };
}

/** The text outside function bodies: what every function's analysis may depend on. */
function signature(text: string, model: FileModel): string {
  let out = '';
  let at = 0;
  for (const f of model.functions) {
    if (!f.bodySpan) continue;
    out += text.slice(at, f.bodySpan.start);
    at = f.bodySpan.end;
  }
  return out + text.slice(at);
}

/** Moves a finding from one origin to another (positions on the origin's line keep their column offset). */
function moveFinding(f: Finding, from: Position, to: Position): Finding {
  const p = (x: Position): Position =>
    x.line === from.line
      ? { line: to.line, character: x.character - from.character + to.character }
      : { line: x.line - from.line + to.line, character: x.character };
  const r = (x: Range): Range => ({ start: p(x.start), end: p(x.end) });
  return {
    ...f,
    range: r(f.range),
    fixes: f.fixes.map((x) => ({ ...x, edits: x.edits.map((e) => ({ ...e, range: r(e.range) })) })),
    ...(f.related ? { related: f.related.map((x) => ({ ...x, range: r(x.range) })) } : {}),
    ...(f.uses ? { uses: f.uses.map(r) } : {}),
  };
}
