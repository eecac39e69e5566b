/**
 * `helper-unavailable`: a call to a BPF helper that the verifier rejects on some of the kernels
 * where the call runs, for one of three reasons:
 *
 * - the kernel does not have the helper: per-kernel truth from that kernel's own
 *   `enum bpf_func_id` (the facts' version floor where a kernel has no enum), so a backported
 *   4.19 that has `bpf_ringbuf_output` is not flagged and a 5.x build without it is;
 * - the program type may not call it (the facts' per-program-type lists, with their per-type
 *   `since` where one is given);
 * - it is GPL-only and the program's license string is not GPL-compatible: the object's cause,
 *   reported once at the license with every such call (direct or through a CO-RE macro) related.
 *
 * Loaders that rewrite helpers are taken into account: libbpf (0.2 and later) and cilium/ebpf turn
 * `bpf_probe_read_{kernel,user}[_str]` into `bpf_probe_read[_str]` on kernels that lack them
 * (before 5.5, or whenever the kernel's own helper list says so), and BCC defines the new names as
 * the old ones on such hosts, so those calls fail only where the legacy helper is missing or not
 * allowed either.
 *
 * Helpers that take a callback (the facts' prototypes have a `callback_fn` parameter) also fail,
 * guarded or not, on kernels before the facts' `callbacks` feature.
 *
 * The small call utilities at the end are shared with the other call rules.
 */
import type { Node } from 'web-tree-sitter';
import type { Kernel, KernelAnswer } from '../../../kernel-db/src/query/db';
import type { Facts, HelperFact } from '../../../kernel-db/src/query/facts';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { compareVersions } from '../../../kernel-db/src/version';
import { calleeName, callsIn, localNames } from '../analysis/calls';
import { coreMacro } from '../analysis/coreMacros';
import { guardWrap } from '../analysis/fixes';
import { KSet } from '../analysis/kset';
import { type Finding, type Fix, findingMessage, headlineWith } from '../analysis/model';
import { LIBBPF, type Loader } from '../analysis/loader';
import { programKernels, runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';

/** License strings the kernel treats as GPL-compatible (`license_is_gpl_compatible()`, exact match). */
export const GPL_COMPATIBLE: ReadonlySet<string> = new Set([
  'GPL',
  'GPL v2',
  'GPL and additional rights',
  'Dual BSD/GPL',
  'Dual MIT/GPL',
  'Dual MPL/GPL',
]);

/**
 * The new probe-read helpers and the legacy helper loaders rewrite them to where a kernel lacks
 * them. Without a prototype: a C function named `toString` or `constructor` is not in the table.
 */
export const PROBE_READ_LEGACY: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  bpf_probe_read_kernel: 'bpf_probe_read',
  bpf_probe_read_user: 'bpf_probe_read',
  bpf_probe_read_kernel_str: 'bpf_probe_read_str',
  bpf_probe_read_user_str: 'bpf_probe_read_str',
});

/**
 * Whether the loader turns `bpf_probe_read_{kernel,user}[_str]` into the legacy helpers on kernels
 * that lack them: libbpf since 0.2, cilium/ebpf (`fixupProbeReadKernel`), and BCC, which compiles
 * on the host and defines the new names as the old ones there.
 */
export function rewritesProbeRead(loader: Loader): boolean {
  if (loader.kind !== 'libbpf') return true;
  return compareVersions(loader.minVersion ?? LIBBPF.defaultMinVersion, LIBBPF.probeReadRewriteSince) >= 0;
}

/** Program types whose helper set depends on something else (the struct_ops type, the replaced program). */
const OPEN_PROG_TYPES = new Set(['BPF_PROG_TYPE_STRUCT_OPS', 'BPF_PROG_TYPE_EXT']);
/** Program types whose kernel helper lookup falls back to the tracing program's (`tracing_prog_func_proto`). */
const TRACING_FALLBACK = new Set(['BPF_PROG_TYPE_LSM', 'BPF_PROG_TYPE_SYSCALL']);

/**
 * Whether program type `pt` may call the helper on the newest kernels: `true`, `false`, or
 * `undefined` when the facts cannot say. The facts' lists come from the newest kernel's view.
 */
export function allowedFor(fact: HelperFact, pt: string | undefined): boolean | undefined {
  const list = fact.prog_types ?? [];
  if (!pt || list.length === 0 || OPEN_PROG_TYPES.has(pt)) return undefined;
  if (list.includes(pt)) return true;
  // LSM and syscall programs reach every helper a tracing program may call.
  if (TRACING_FALLBACK.has(pt) && list.includes('BPF_PROG_TYPE_TRACING')) return true;
  return false;
}

/**
 * The first kernel version in which program type `pt` may call the helper, where the facts give
 * one per program type. A `since` shared by every program type of the helper says when it became
 * a base helper for all of them, not when each got it, so it is not used.
 */
export function allowedSince(fact: HelperFact, pt: string, facts?: Facts): string | undefined {
  const details = fact.prog_type_details ?? {};
  const since = details[pt]?.since;
  if (!since) return facts?.helperProgTypeFloor(fact.name, pt);
  const all = (fact.prog_types ?? []).map((p) => details[p]?.since);
  if (all.length > 1 && all.every((s) => s === since)) return undefined;
  return since;
}

export const helperUnavailable: Rule = {
  meta: {
    id: 'helper-unavailable',
    description: 'BPF helper missing, not allowed for the program type, or GPL-only in a non-GPL program on some target kernels',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    if (!f.fn.body) return;
    const local = localNames(ctx.model);
    /** Failing kernels already reported per helper: a macro's hidden call repeats no cause. */
    const reported = new Map<string, Set<string>>();
    /** Verdicts by helper, message and kernels: one cause in one function is one finding. */
    const groups = new Map<string, Verdict[]>();
    const report = (name: string, v: Verdict) => {
      let seen = reported.get(name);
      if (!seen) reported.set(name, (seen = new Set()));
      for (const k of v.kernels) seen.add(k);
      const key = `${name}\u0000${v.message}\u0000${v.kernels.join(',')}`;
      const g = groups.get(key);
      if (g) g.push(v);
      else groups.set(key, [v]);
    };
    const macros: { call: Node; macro: string; helper: string }[] = [];
    for (const call of callsIn(f.fn.body)) {
      const name = calleeName(call, ctx.model.text);
      if (!name || local.has(name)) continue;
      const emitted = ctx.model.bcc ? undefined : name === 'bpf_printk' ? printkHelper(call) : coreMacro(name)?.helper;
      if (emitted) {
        macros.push({ call, macro: name, helper: macroHelper(ctx, emitted) });
        continue;
      }
      if (!name.startsWith('bpf_')) continue;
      const fact = ctx.db.facts.helper(name);
      if (!fact) continue;
      const v = checkCall(ctx, f, call, name, fact);
      if (v) report(name, v);
    }
    // Helpers the CO-RE macros call: checked like explicit calls, reported at the macro, and only
    // where an explicit call or an earlier macro did not already report the same kernels.
    for (const m of macros) {
      const fact = ctx.db.facts.helper(m.helper);
      if (!fact) continue;
      const v = checkCall(ctx, f, m.call, m.helper, fact, m.macro);
      if (!v) continue;
      const seen = reported.get(m.helper);
      if (seen && v.kernels.every((k) => seen.has(k))) continue;
      report(m.helper, v);
    }
    for (const vs of groups.values()) ctx.report(vs.length === 1 ? vs[0] : merged(ctx, vs));
  },
  checkFile(ctx) {
    gplOnlyCalls(ctx);
  },
};

/**
 * A license string the kernel does not take as GPL-compatible, in a program that calls GPL-only
 * helpers (also through the CO-RE macros): one cause, the object's, reported once at the license
 * with every call as related information. The verifier rejects the first such call it meets, so
 * the object fails to load on every kernel.
 */
function gplOnlyCalls(ctx: RuleContext): void {
  const license = ctx.model.license;
  if (ctx.model.bcc || license === undefined || GPL_COMPATIBLE.has(license)) return;
  const site = ctx.model.sites().find((x) => x.kind === 'section' && x.section === 'license');
  if (!site) return;
  const local = localNames(ctx.model);
  const uses: { node: Node; helper: string; via?: string }[] = [];
  for (const fn of ctx.model.functions) {
    if (!fn.body) continue;
    for (const call of callsIn(fn.body)) {
      const name = calleeName(call, ctx.model.text);
      if (!name || local.has(name)) continue;
      const emitted = coreMacro(name)?.helper;
      const helper = emitted ? macroHelper(ctx, emitted) : name;
      if (helper.startsWith('bpf_') && ctx.db.facts.helper(helper)?.gpl_only)
        uses.push({ node: call, helper, ...(emitted ? { via: name } : {}) });
    }
  }
  if (uses.length === 0) return;
  const helpers = [...new Set(uses.map((u) => `\`${u.helper}\``))];
  const span = site.kind === 'section' && site.target ? site.target : site;
  ctx.report({
    span: { start: span.start, end: span.end },
    message: findingMessage(
      ...headlineWith(
        `License "${license}" is not GPL-compatible, and the object calls GPL-only helpers`,
        'the load fails on every kernel',
      ),
      `${helpers.join(', ')} ${helpers.length === 1 ? 'is' : 'are'} GPL-only (${uses.length} call${uses.length === 1 ? '' : 's'}): the verifier rejects the load ("cannot call GPL-restricted function from non-GPL compatible program") on every kernel.`,
      'Use "GPL", "Dual BSD/GPL" or another license string the kernel accepts.',
    ),
    kernels: ctx.kernels.map((k) => k.name),
    related: uses.map((u) => ({
      range: ctx.range(u.node),
      message: `calls \`${u.helper}\`${u.via ? ` (through ${u.via}())` : ''}, which is GPL-only`,
    })),
    uses: uses.map((u) => u.node),
  });
}

/**
 * One finding for several calls of one helper that fail on the same kernels for the same reason:
 * at the first call, the others as related information; its fix guards them all, when each has one.
 */
function merged(ctx: RuleContext, vs: readonly Verdict[]): Verdict & { related: Finding['related']; uses: Node[] } {
  const [first, ...rest] = vs;
  const fixes = vs.every((v) => v.fixes.length > 0)
    ? [{ ...first.fixes[0], title: `${first.fixes[0].title} (all ${vs.length} calls)`, edits: vs.flatMap((v) => v.fixes[0].edits) }]
    : [];
  return {
    ...first,
    message: `${first.message} (${vs.length} calls in this function.)`,
    fixes,
    related: rest.map((v) => ({ range: ctx.range(v.node), message: 'another call that fails on the same kernels' })),
    uses: vs.map((v) => v.node),
  };
}

/**
 * The helper libbpf's `bpf_printk(fmt, args...)` calls (bpf_helpers.h, `___bpf_pick_printk`):
 * `bpf_trace_printk` with up to three arguments after the format, `bpf_trace_vprintk` with more.
 * Only the second can be missing where the first is not, so only it is checked.
 */
function printkHelper(call: Node): string | undefined {
  const args = call.childForFieldName('arguments');
  return args && args.namedChildren.filter((a) => a && a.type !== 'comment').length > 4 ? 'bpf_trace_vprintk' : undefined;
}

/** A finding of this rule, before it is reported. */
interface Verdict {
  node: Node;
  message: string;
  kernels: string[];
  fixes: Fix[];
}

/**
 * The helper a CO-RE macro's expansion calls with this loader: libbpf releases before its
 * probe-read rewrite spelled the macros with the legacy `bpf_probe_read[_str]`.
 */
function macroHelper(ctx: RuleContext, helper: string): string {
  const legacy = PROBE_READ_LEGACY[helper];
  return legacy && ctx.loader.kind === 'libbpf' && !rewritesProbeRead(ctx.loader) ? legacy : helper;
}

/**
 * Kernels a call to a helper that takes a callback function fails on even under a guard: before
 * the facts' `callbacks` feature (BPF_PSEUDO_FUNC, with `bpf_for_each_map_elem()`), the callback
 * is a subprogram whose address the object still takes, and those verifiers reject it before dead
 * code is removed ("number of funcs in func_info doesn't match number of subprogs"), as the kernel
 * matrix showed for a guarded `bpf_loop` on 5.10. Which helpers take one comes from their
 * prototypes in the facts.
 */
function callbackFloorKernels(ctx: RuleContext, f: FunctionFacts, name: string): KSet | undefined {
  if (!ctx.db.facts.takesCallback(name)) return undefined;
  const since = ctx.db.facts.featureSince('callbacks');
  if (!since) return undefined;
  const unguarded = f.guards.base.and(programKernels(ctx, f));
  return KSet.where(ctx.kernels, (k, i) => unguarded.has(i) && compareVersions(k.version, since) < 0);
}

/**
 * Checks one call of helper `name` (written out, or made by the CO-RE macro `via`) against the
 * kernels it runs on; undefined when it loads on all of them.
 */
function checkCall(ctx: RuleContext, f: FunctionFacts, call: Node, name: string, fact: HelperFact, via?: string): Verdict | undefined {
  let at = runsOn(ctx, f, call);
  const callbackFloor = callbackFloorKernels(ctx, f, name);
  if (callbackFloor) at = at.or(callbackFloor);
  if (at.empty) return undefined;
  const kernels = at.kernels();
  const avail = ctx.db.helper(name, kernels).kernels;
  const legacyName = PROBE_READ_LEGACY[name];
  const rewrite = legacyName && rewritesProbeRead(ctx.loader) ? legacyName : undefined;
  const legacy = rewrite ? ctx.db.helper(rewrite, kernels).kernels : undefined;
  const legacyFact = rewrite ? ctx.db.facts.helper(rewrite) : undefined;
  const pt = ctx.model.bcc ? undefined : f.ctx.progType;
  const allowed = allowedFor(fact, pt);
  const since = pt && allowed ? allowedSince(fact, pt, ctx.db.facts) : undefined;
  // A helper only sleepable programs may call, in a program whose SEC() is not a sleepable one.
  const sleepOnly = pt !== undefined && f.ctx.sleepable === false && ctx.db.facts.sleepableOnlyHelper(name);

  const missing: Kernel[] = [];
  const rewrittenRejected: Kernel[] = [];
  const notAllowed: Kernel[] = [];
  const tooOld: Kernel[] = [];
  const notSleepable: Kernel[] = [];
  kernels.forEach((k, i) => {
    const a = avail[i];
    if (a.present === false) {
      if (legacy && legacy[i].present !== false) {
        // The loader calls the legacy helper instead; only its own program types matter then.
        if (legacyFact && allowedFor(legacyFact, pt) === false) rewrittenRejected.push(k);
        return;
      }
      missing.push(k);
      return;
    }
    if (a.present !== true) return;
    if (allowed === false) notAllowed.push(k);
    // Per-type floors are version numbers: on a kernel whose own helper list contradicts its
    // version (a backport), the version says nothing about the program type either.
    else if (since && compareVersions(k.version, since) < 0 && compareVersions(k.version, fact.since) >= 0) tooOld.push(k);
    else if (sleepOnly) notSleepable.push(k);
  });
  // A license the kernel does not take is the object's cause, reported once at the license (checkFile).

  const parts: string[] = [];
  if (missing.length) parts.push(missingSentence(name, fact, missing, kernels, avail));
  if (rewrittenRejected.length) {
    parts.push(
      `Where the kernel lacks it (${describeKernels(rewrittenRejected, kernels)}), the loader calls \`${rewrite}\` instead, which ${f.ctx.label} programs may not call.`,
    );
  }
  if (notAllowed.length) {
    parts.push(
      `${f.ctx.label} programs (${pt}) may not call \`${name}\`: the verifier rejects the load on ${onCount(notAllowed, kernels)} kernels this code runs on.`,
    );
  }
  if (tooOld.length) {
    parts.push(
      `${f.ctx.label} programs (${pt}) may call \`${name}\` only since ${since}: the verifier rejects it on ${tooOld.length} of ${kernels.length} kernels this code runs on: ${describeKernels(tooOld, kernels)}.`,
    );
  }
  if (notSleepable.length) {
    parts.push(
      `\`${name}\` may sleep, and the verifier offers it only to sleepable programs: SEC("${f.ctx.sec}") is not one, so the load fails ` +
        `("unknown func" or "helper call might sleep in a non-sleepable prog") on ${onCount(notSleepable, kernels)} kernels this code runs on. ` +
        `Use a sleepable variant of the section (\`${f.ctx.label}.s/…\`) where the hook allows one${/copy_from_user/.test(name) ? ', or read user memory with bpf_probe_read_user()' : ''}.`,
    );
  }
  if (parts.length === 0) return undefined;
  const failing = [...new Set([...missing, ...rewrittenRejected, ...notAllowed, ...tooOld, ...notSleepable])];
  const guarded = f.guards.kernelsAt(call).size < ctx.kernels.length ? '(Checked against the kernels its guards leave.)' : undefined;
  const onlyMissing = rewrittenRejected.length === 0 && notAllowed.length === 0 && tooOld.length === 0 && notSleepable.length === 0;
  const macro =
    via === 'bpf_printk'
      ? `With more than three arguments, libbpf's \`bpf_printk()\` expands to a call of \`${name}\`.`
      : via
        ? `\`${via}()\` reads with the helper \`${name}\`, which its expansion calls.`
        : undefined;
  // The headline: the first cause, in brief; every cause in full follows.
  const inCode = (ks: Kernel[]) => `${onCount(ks, kernels)} kernels this code runs on`;
  const [headline, consequence] = missing.length
    ? headlineWith(
        `${via ? `\`${via}()\` calls \`${name}\`, which` : `\`${name}\``} is missing on ${inCode(missing)}`,
        'the verifier rejects the call there',
      )
    : rewrittenRejected.length
      ? headlineWith(
          `\`${name}\`'s stand-in \`${rewrite}\` is not allowed in ${f.ctx.label} programs`,
          `the load fails on ${inCode(rewrittenRejected)}`,
        )
      : notAllowed.length
        ? headlineWith(`${f.ctx.label} programs may not call \`${name}\``, `the verifier rejects the load on ${inCode(notAllowed)}`)
        : tooOld.length
          ? headlineWith(`${f.ctx.label} programs may call \`${name}\` only since ${since}`, `the load fails on ${inCode(tooOld)}`)
          : headlineWith(`\`${name}\` may sleep, but SEC("${f.ctx.sec}") is not sleepable`, `the load fails on ${inCode(notSleepable)}`);
  return {
    node: call.childForFieldName('function') ?? call,
    message: findingMessage(headline, consequence, macro, ...parts, guarded),
    kernels: failing.map((k) => k.name),
    fixes:
      missing.length && !ctx.model.bcc && !via && notSleepable.length === 0
        ? missingFixes(ctx, call, name, missing, kernels, pt, onlyMissing)
        : [],
  };
}

/** "all 81" or "3 of 81": how many of `kernels` fail. */
function onCount(failing: readonly Kernel[], kernels: readonly Kernel[]): string {
  return failing.length === kernels.length ? `all ${kernels.length}` : `${failing.length} of ${kernels.length}`;
}

function missingSentence(name: string, fact: HelperFact, missing: Kernel[], kernels: Kernel[], avail: KernelAnswer[]): string {
  const floor = missing.filter((k) => avail[kernels.indexOf(k)].basis === 'facts');
  // Kernels older than the facts' version that have the helper all the same (distro backports).
  const backported = kernels.filter((k, i) => avail[i].present === true && compareVersions(k.version, fact.since) < 0);
  let s = `\`${name}\` is missing on ${describeKernels(missing, kernels)}`;
  if (floor.length)
    s += ` (on ${floor.length} of them by the facts' version floor ${fact.since}, for want of the kernel's own helper list)`;
  s += `; the verifier rejects the call as an unknown function there (it came in ${fact.since}`;
  if (backported.length) s += `, and is backported to ${describeKernels(backported, kernels)}`;
  return `${s}).`;
}

function missingFixes(
  ctx: RuleContext,
  call: Node,
  name: string,
  missing: Kernel[],
  kernels: Kernel[],
  pt: string | undefined,
  onlyMissing: boolean,
): Fix[] {
  const fixes: Fix[] = [];
  const legacyName = PROBE_READ_LEGACY[name];
  if (legacyName) {
    // The older equivalent helper, where it exists on every kernel that lacks the new one.
    const legacy = ctx.db.helper(legacyName, missing).kernels;
    const legacyFact = ctx.db.facts.helper(legacyName);
    const fn = call.childForFieldName('function');
    if (fn && legacy.every((a) => a.present === true) && (!legacyFact || allowedFor(legacyFact, pt) !== false)) {
      // The legacy helper is ambiguous between user and kernel memory, and not offered at all
      // on architectures whose address spaces overlap: only x86-64 and arm64 targets make it a drop-in.
      const plainArch = kernels.every((k) => k.arch === 'x86_64' || k.arch === 'arm64');
      fixes.push({
        title: `Use the older equivalent helper ${legacyName}`,
        safe: plainArch && onlyMissing,
        edits: [{ range: ctx.range(fn), newText: legacyName }],
      });
    }
  }
  const wrap = guardWrap(ctx, call, `bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_${name.replace(/^bpf_/, '')})`);
  if (wrap) {
    fixes.push({
      title: `Call ${name} only on kernels that have it (bpf_core_enum_value_exists)`,
      safe: onlyMissing,
      edits: [wrap],
      needsCoreRead: true,
      guard: true,
    });
  }
  return fixes;
}
