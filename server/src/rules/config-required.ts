/**
 * `config-required`: a program type (its `SEC()`), a map type or a helper the program uses needs
 * a CONFIG option that some target kernels' configs leave off. Only kernels whose `.config` is
 * known can fail; the others are counted as unknown. Options every kernel with a config has on
 * (and CONFIG_BPF_SYSCALL, without which there is no BPF at all) never show up. Kernels where the
 * program type, map type or helper is missing altogether are the other rules' findings, not this
 * one's. Helper calls are checked per function against the kernels their guards leave, so a call
 * under `if (CONFIG_X)` with `extern … CONFIG_X __kconfig` stays silent.
 */
import { OwnedCache } from '../analysis/memo';
import type { FileModel } from '../analysis/file';
import { findingMessage, headlineWith } from '../analysis/model';
import { compareVersions } from '../../../kernel-db/src/version';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { KSet } from '../analysis/kset';
import { attachPoints, belowTrampolineFloor, describeSome, usesTrampoline, type AttachPoint } from './attach-points';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { capRelated } from './common';
import type { Node } from 'web-tree-sitter';

export const configRequired: Rule = {
  meta: {
    id: 'config-required',
    description: 'CONFIG option a program type, map type or helper needs is off on some target kernels',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFile(ctx) {
    // Programs of one kind share their gaps: report each distinct gap once, on the first of them,
    // with every program that has it as the code that fails (each of them fails to load alone).
    const seen = new Map<string, Node[]>();
    const reports: (() => void)[] = [];
    // What a section needs is computed once per section, not once per program.
    const needs = new Map<string, SectionNeeds | undefined>();
    const functions = new Map<string, Node>();
    for (const fn of ctx.model.functions) if (!functions.has(fn.name)) functions.set(fn.name, fn.node);
    for (const p of attachPoints(ctx.model, ctx.db.facts)) {
      const key = `${p.sec}\u0000${p.optional}`;
      if (!needs.has(key)) needs.set(key, needsCache.get(ctx.kernels, key, () => sectionNeeds(ctx, p) ?? null) ?? undefined);
      checkSection(ctx, p, needs.get(key), functions.get(p.program), seen, reports);
    }
    for (const r of reports) r();
    checkMaps(ctx);
  },
  checkFunction(ctx, f) {
    checkHelpers(ctx, f);
  },
};

/** Options that say nothing about one program: without them there is no BPF (the curated facts' `implied_configs`). */
function implied(ctx: RuleContext): ReadonlySet<string> {
  return impliedCache.get(ctx.db.facts, '', () => new Set(ctx.db.facts.analysis.implied_configs.map((c) => c.name)));
}
const impliedCache = new OwnedCache<object, ReadonlySet<string>>({
  name: 'config-required.implied',
  owner: "the database's curated facts",
  key: '—',
});

/**
 * Options a trampoline attached to a kernel function needs for program type `pt`, beyond the
 * section's own (the curated facts' `trampoline_configs`: ftrace direct calls, which the section
 * facts list for fentry/fexit but not for LSM programs, whose hooks attach the same way).
 */
function trampolineConfigs(ctx: RuleContext, pt: string | null): string[] {
  return ctx.db.facts.analysis.trampoline_configs.filter((c) => pt !== null && c.prog_types.includes(pt)).map((c) => c.name);
}

/**
 * Options the section's facts list that this attachment does not need (the curated facts'
 * `config_exemptions`: fmod_ret may always attach to security_* functions; error injection only
 * widens the set).
 */
function exempted(ctx: RuleContext, prefix: string, target: string): Set<string> {
  return new Set(
    ctx.db.facts.analysis.config_exemptions
      .filter((e) => prefix.startsWith(e.section_prefix) && target.startsWith(e.target_prefix))
      .map((e) => e.config),
  );
}

/** The options that are off, per option, among `kernels` (the ones a finding may name). */
interface ConfigGaps {
  /** Option → kernels whose config sets it to `n` or leaves it unset. */
  readonly off: Map<string, Kernel[]>;
  /** Kernels among `kernels` without a config. */
  readonly unknown: Kernel[];
}

const firstSeenCache = new OwnedCache<KernelDb, string | undefined>({
  name: 'config-required.firstSeen',
  owner: 'kernel database',
  key: 'CONFIG option',
});

/** The oldest version of any built-in kernel whose config mentions `option` (set or not set). */
function firstSeen(ctx: RuleContext, option: string): string | undefined {
  return firstSeenCache.get(ctx.db, option, () => {
    const mentioned = ctx.db
      .config(
        option,
        ctx.db.kernels.filter((k) => k.hasConfig && !k.user),
      )
      .filter((v) => v.value !== undefined && v.value !== 'unset')
      .map((v) => v.kernel.version);
    return mentioned.sort(compareVersions)[0];
  });
}

function gaps(ctx: RuleContext, configs: readonly string[], kernels: readonly Kernel[]): ConfigGaps {
  const off = new Map<string, Kernel[]>();
  for (const c of [...new Set(configs)].sort()) {
    if (implied(ctx).has(c)) continue;
    const vals = ctx.db.config(c, kernels);
    const since = firstSeen(ctx, c);
    // An option a config does not mention is off only once the option exists: Ubuntu 4.15 has no
    // CONFIG_ARCH_HAS_NON_OVERLAPPING_ADDRESS_SPACE (5.5) to turn on.
    const ks = kernels.filter(
      (k, i) => vals[i].value === 'n' || (vals[i].value === 'unset' && since !== undefined && compareVersions(k.version, since) >= 0),
    );
    if (ks.length > 0) off.set(c, ks);
  }
  return { off, unknown: kernels.filter((k) => !k.hasConfig) };
}

/**
 * "CONFIG_A and CONFIG_B are off on …; CONFIG_C is off on …", the failing kernels, and the unknown
 * note, counted against `of` — the headline's kernels ("81 target kernels"), so the counts agree.
 */
function describeGaps(ctx: RuleContext, g: ConfigGaps, of: string): { text: string; failing: Kernel[]; unknown: string } {
  // Options off on the same kernels share one clause.
  const bySet = new Map<string, { names: string[]; ks: Kernel[] }>();
  for (const [c, ks] of g.off) {
    const key = ks.map((k) => k.id).join(',');
    if (!bySet.has(key)) bySet.set(key, { names: [], ks });
    bySet.get(key)!.names.push(c);
  }
  const parts = [...bySet.values()].map(
    ({ names, ks }) =>
      `${names.length === 1 ? `${names[0]} is` : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are`} off on ${describeSome(ks, ctx.kernels)}`,
  );
  const failing = ctx.kernels.filter((k) => [...g.off.values()].some((ks) => ks.includes(k)));
  const unknown =
    g.unknown.length > 0
      ? ` ${g.unknown.length} of the ${of} have no known config and may lack ${g.off.size === 1 ? 'it' : 'them'} too.`
      : '';
  return { text: parts.join('; '), failing, unknown };
}

/** The options a section's programs need that some target kernels have off, and the BPF LSM note. */
interface SectionNeeds {
  readonly isLsm: boolean;
  readonly lsmNote: ReturnType<typeof inactiveBpfLsm>;
  /** The gaps, described; undefined when no kernel that has the program type lacks an option. */
  readonly d?: ReturnType<typeof describeGaps>;
}

/**
 * What a section needs, kept with the target kernel list: it reads only the section, whether it
 * is optional, the database and the target (typing in a function body changes none of them).
 */
const needsCache = new OwnedCache<readonly Kernel[], SectionNeeds | null>(
  { name: 'config-required.sectionNeeds', owner: 'one target kernel list (of one database)', key: 'section, optional' },
  10_000,
);

function sectionNeeds(ctx: RuleContext, p: AttachPoint): SectionNeeds | undefined {
  const m = ctx.db.facts.section(p.sec);
  if (!m || p.optional) return undefined;
  const f = m.fact;
  const configs = [...(f.configs ?? [])];
  const trampoline = usesTrampoline(f);
  if (trampoline) for (const c of trampolineConfigs(ctx, f.prog_type)) if (!configs.includes(c)) configs.push(c);
  const skip = exempted(ctx, f.prefix, m.target.replace(/\+.*$/, ''));
  const need = configs.filter((c) => !skip.has(c));
  // Only kernels that have the program type (and, for trampolines, an architecture that builds them).
  const base = ctx.db.section(f.prefix, ctx.kernels);
  const kernels = ctx.kernels.filter((k, i) => base.kernels[i].present !== false && !(trampoline && belowTrampolineFloor(ctx.db, k)));
  const g = gaps(ctx, need, kernels);
  const isLsm = f.prog_type === 'BPF_PROG_TYPE_LSM';
  const lsmNote = isLsm ? inactiveBpfLsm(ctx, kernels) : undefined;
  return { isLsm, lsmNote, ...(g.off.size > 0 ? { d: describeGaps(ctx, g, `${ctx.kernels.length} target kernels`) } : {}) };
}

function checkSection(
  ctx: RuleContext,
  p: AttachPoint,
  needs: SectionNeeds | undefined,
  fn: Node | undefined,
  seen: Map<string, Node[]>,
  reports: (() => void)[],
) {
  if (!needs) return;
  const { isLsm, lsmNote, d } = needs;
  if (!d) {
    if (lsmNote)
      ctx.report({
        span: p.span,
        severity: 'info',
        kernels: [],
        message: findingMessage(
          `${p.written}: BPF LSM is not active by default on ${lsmNote.count} of ${ctx.kernels.length} target kernels`,
          lsmNote.text,
        ),
      });
    return;
  }
  const sharing = seen.get(d.text);
  if (sharing) {
    if (fn) sharing.push(fn);
    return;
  }
  const uses: Node[] = fn ? [fn] : [];
  seen.set(d.text, uses);
  const what = p.bcc ? 'BCC cannot load the program there' : 'the program fails to load or attach there';
  reports.push(() => report(ctx, p, d, what, isLsm, lsmNote, uses));
}

function report(
  ctx: RuleContext,
  p: AttachPoint,
  d: ReturnType<typeof describeGaps>,
  what: string,
  isLsm: boolean,
  lsmNote: ReturnType<typeof inactiveBpfLsm>,
  uses: readonly Node[],
): void {
  ctx.report({
    span: p.span,
    ...(uses.length > 1
      ? {
          uses,
          related: capRelated(uses.slice(1), (n) => ({
            range: ctx.range(n),
            message: 'another program that needs the same kernel options',
          })),
        }
      : {}),
    kernels: d.failing.map((k) => k.name),
    message: findingMessage(
      ...headlineWith(
        `${p.written} needs kernel options off on ${d.failing.length} of ${ctx.kernels.length} target kernels`,
        p.bcc ? 'BCC cannot load it there' : 'it fails to load or attach there',
      ),
      `${capitalize(what)}.`,
      `${d.text}.${d.unknown}`,
      lsmNote
        ? lsmNote.text
        : isLsm
          ? 'BPF LSM programs also need `bpf` in the active LSM list, which the kernel command line (`lsm=`) can change and the linter cannot check.'
          : undefined,
    ),
  });
}

/**
 * BPF LSM built in but left out of the default LSM order (CONFIG_LSM) on some kernels: there the
 * hooks run only if the kernel command line enables them (`lsm=…,bpf`), which the linter cannot see.
 */
function inactiveBpfLsm(ctx: RuleContext, kernels: readonly Kernel[]): { count: number; text: string } | undefined {
  const lsm = ctx.db.config('CONFIG_BPF_LSM', kernels);
  const order = ctx.db.config('CONFIG_LSM', kernels);
  const inactive = kernels.filter(
    (_, i) => lsm[i].present === true && order[i].present === true && !(order[i].value ?? '').split(',').includes('bpf'),
  );
  if (inactive.length === 0) return undefined;
  return {
    count: inactive.length,
    text: `On ${describeSome(inactive, ctx.kernels)}, BPF LSM is built in but CONFIG_LSM leaves \`bpf\` out of the active LSMs, so the program runs only where the kernel command line adds it (\`lsm=…,bpf\`), which the linter cannot check.`,
  };
}

function checkMaps(ctx: RuleContext) {
  for (const site of ctx.model.sites()) {
    if (site.kind !== 'map-member' || site.member !== 'type' || !/^BPF_MAP_TYPE_\w+$/.test(site.value.text)) continue;
    const av = ctx.db.mapType(site.value.text, ctx.kernels);
    const kernels = ctx.kernels.filter((_, i) => av.kernels[i].present !== false);
    const g = gaps(ctx, av.configs ?? [], kernels);
    if (g.off.size === 0) continue;
    const d = describeGaps(ctx, g, `${ctx.kernels.length} target kernels`);
    ctx.report({
      span: { start: site.value.start, end: site.value.end },
      kernels: d.failing.map((k) => k.name),
      message: findingMessage(
        ...headlineWith(
          `${site.value.text}${site.map ? ` (map \`${site.map}\`)` : ''} needs kernel options off on ${d.failing.length} of ${ctx.kernels.length} target kernels`,
          'creating the map fails there',
        ),
        `${d.text}.${d.unknown}`,
      ),
    });
  }
}

/** The options the file's program sections need (a model is analysed against one database). */
const sectionConfigs = new OwnedCache<FileModel, ReadonlySet<string>>({
  name: 'config-required.sectionConfigs',
  owner: 'file model',
  key: '—',
});

function checkHelpers(ctx: RuleContext, f: FunctionFacts) {
  const body = f.fn.body;
  if (!body) return;
  // Options a program section of the file needs are reported once, on that section: the object
  // loads all its programs together, so it fails on those kernels whatever this call needs.
  const secConfigs = sectionConfigs.get(
    ctx.model,
    '',
    () =>
      new Set(
        [...new Set(attachPoints(ctx.model, ctx.db.facts).map((p) => p.sec))].flatMap(
          (sec) => ctx.db.facts.section(sec)?.fact.configs ?? [],
        ),
      ),
  );
  for (const call of body.descendantsOfType('call_expression')) {
    const fnNode = call?.childForFieldName('function');
    if (!call || fnNode?.type !== 'identifier') continue;
    const name = ctx.text(fnNode);
    if (!name.startsWith('bpf_')) continue;
    const fact = ctx.db.facts.helper(name);
    if (!fact) continue;
    const extra = f.ctx.progType ? (fact.prog_type_details?.[f.ctx.progType]?.configs ?? []) : [];
    const configs = [...(fact.configs ?? []), ...extra].filter((c) => !secConfigs.has(c));
    if (configs.length === 0) continue;
    const at = f.guards.kernelsAt(call);
    if (at.empty) continue;
    // Kernels without the helper are `helper-unavailable`'s findings.
    const has = ctx.db.helper(name, ctx.kernels).kernels;
    const runs = at.and(KSet.where(ctx.kernels, (_, i) => has[i].present !== false));
    const kernels = runs.kernels();
    const g = gaps(ctx, configs, kernels);
    if (g.off.size === 0) continue;
    const d = describeGaps(ctx, g, `${at.size} kernels this code runs on`);
    ctx.report({
      node: fnNode,
      kernels: d.failing.map((k) => k.name),
      message: findingMessage(
        ...headlineWith(
          `\`${name}\` needs kernel options off on ${d.failing.length} of ${at.size} kernels this code runs on`,
          'the verifier rejects the call there',
        ),
        `${d.text}; the helper is not offered there and the verifier rejects the program.${d.unknown}` +
          (at.size < ctx.kernels.length ? ' (Checked against the kernels its guards leave.)' : ''),
        `Guard the call with \`if (${[...g.off.keys()][0]})\` and \`extern bool ${[...g.off.keys()][0]} __kconfig __weak;\` if the program must load there.`,
      ),
    });
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
