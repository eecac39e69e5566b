/**
 * Where a file's programs attach, shared by the program-level rules (`prog-type-unavailable`,
 * `attach-target-missing-in-range`, `config-required`): each libbpf `SEC("…")` on a function and
 * each BCC probe (`kprobe__do_sys_open`, `TRACEPOINT_PROBE(sched, sched_switch)`,
 * `KFUNC_PROBE(do_exit)`), expressed as the `SEC()` name libbpf would give it, with the source
 * span a finding should cover. Also the per-architecture floor for BPF trampolines.
 */
import { LIBBPF } from '../analysis/loader';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import type { Facts, SectionFact } from '../../../kernel-db/src/query/facts';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { compareVersions } from '../../../kernel-db/src/version';
import type { FileModel } from '../analysis/file';
import { OwnedCache, OwnedValue } from '../analysis/memo';
import type { BpfMacroSite } from '../parse/sites';
import type { RuleContext } from './rule';

/** One program's attach point. */
export interface AttachPoint {
  /** The section libbpf resolves: the `SEC()` string without a leading `?`, or what a BCC probe amounts to. */
  readonly sec: string;
  /** How the source spells it, for messages: `SEC("fentry/do_exit")`, `kprobe__do_sys_open`, `TRACEPOINT_PROBE(sched, sched_switch)`. */
  readonly written: string;
  /** UTF-16 offsets of the text a finding covers: the `SEC()` string literal, or the BCC probe's name. */
  readonly span: { readonly start: number; readonly end: number };
  /** The program's (function's) name. */
  readonly program: string;
  /** Declared through BCC, which compiles and attaches on each host. */
  readonly bcc: boolean;
  /**
   * `SEC("?…")`: libbpf does not load the program unless user space turns autoload on, which
   * is how programs that only some kernels support are made optional.
   */
  readonly optional: boolean;
  /** What a section verdict depends on of the point: its section as written, optional or not, BCC or not. */
  readonly key: string;
}

/** The {@link AttachPoint.key} of a point. */
function pointKey(p: Omit<AttachPoint, 'key'>): string {
  return `${p.sec}\u0000${p.written}\u0000${p.optional}\u0000${p.bcc}`;
}

/** Prefixes BCC strips from a kprobe name to find a syscall, which it then attaches through the host's syscall wrapper. */
const BCC_SYSCALL_PREFIXES = [
  'sys_',
  '__x64_sys_',
  '__arm64_sys_',
  '__s390x_sys_',
  '__riscv_sys_',
  '__ia32_compat_sys_',
  '__x32_compat_sys_',
];

/** The libbpf section a BCC probe type and target amount to. */
function bccSection(type: string, target: string): string | undefined {
  const syscall = (t: string) => {
    const p = BCC_SYSCALL_PREFIXES.find((x) => t.startsWith(x) && t.length > x.length);
    return p ? t.slice(p.length) : undefined;
  };
  switch (type) {
    case 'kprobe': {
      const s = syscall(target);
      return s ? `ksyscall/${s}` : `kprobe/${target}`;
    }
    case 'kretprobe': {
      const s = syscall(target);
      return s ? `kretsyscall/${s}` : `kretprobe/${target}`;
    }
    case 'tracepoint':
      return `tracepoint/${target.replace(':', '/')}`;
    case 'raw_tracepoint':
      return `raw_tp/${target}`;
    case 'kfunc':
      return `fentry/${target}`;
    case 'kretfunc':
      return `fexit/${target}`;
    case 'kmod_ret':
      return `fmod_ret/${target}`;
    case 'lsm':
      return `lsm/${target}`;
    case 'iter':
      return `iter/${target}`;
    default:
      return undefined;
  }
}

/** A finding on a program's `SEC()`, but where: the same for every program of its section. */
export type SectionVerdict = Omit<Parameters<RuleContext['report']>[0], 'span' | 'node'>;

const verdictCache = new OwnedCache<readonly Kernel[], Map<string, SectionVerdict | null>>(
  {
    name: 'attach-points.verdicts',
    owner: 'one target kernel list (of one database)',
    key: 'rule and loader, then the section as written, optional, BCC',
  },
  1_000,
);
/** Verdicts kept per rule and loader before they start over. */
const VERDICTS_PER_RULE = 10_000;

/**
 * Reports `rule`'s `verdict` of each attach point on its `SEC()`, computed once per distinct
 * section (as written, optional or not, BCC or not) for a target kernel list and loader, and kept
 * with that list: a file's programs often share a few sections (200 kprobes on one function), and
 * typing in a function body changes none. `verdict` must read only the section, the database,
 * the target kernels and the loader (not the attach point's span or program, nor the file).
 */
export function reportPerSection(ctx: RuleContext, rule: string, verdict: (p: AttachPoint) => SectionVerdict | undefined): void {
  // The verdicts of this rule and loader, by point key: one look-up per point, with the key the
  // point already holds (no key string built per point on every edit).
  const verdicts = verdictCache.get(ctx.kernels, `${rule}\u0000${JSON.stringify(ctx.loader)}`, () => new Map());
  for (const p of attachPoints(ctx.model, ctx.db.facts)) {
    let v = verdicts.get(p.key);
    if (v === undefined) {
      if (verdicts.size >= VERDICTS_PER_RULE) verdicts.clear();
      verdicts.set(p.key, (v = verdict(p) ?? null));
    }
    if (v) ctx.report({ span: p.span, ...v });
  }
}

const pointsCache = new OwnedCache<FileModel, readonly AttachPoint[]>({ name: 'attach-points.points', owner: 'file model', key: '—' });

/**
 * Every program attach point of the file, in source order (found once per file model: rules ask
 * for them in every function). `facts` say which sections hold data (`license`, `.maps`,
 * `.rodata`): a function put in one is not a program libbpf loads, so it has no attach point.
 * They are the database's facts, the same for every model it analyses.
 */
export function attachPoints(model: FileModel, facts: Facts): readonly AttachPoint[] {
  return pointsCache.get(model, '', () => findAttachPoints(model, facts));
}

function findAttachPoints(model: FileModel, facts: Facts): AttachPoint[] {
  const out: AttachPoint[] = [];
  let programSecs: Set<string> | undefined;
  for (const site of model.sites()) {
    if (site.kind === 'section') {
      if (site.section === null || !site.args[0]) continue;
      // Variables (maps, the license, globals) have sections too; only functions are programs.
      const isProgram = site.target
        ? site.target.kind === 'function'
        : (programSecs ??= new Set(model.functions.map((f) => f.sec).filter((s): s is string => !!s))).has(site.section);
      if (!isProgram || facts.section(site.section)?.fact.kind === 'elf_data_section') continue;
    } else if (site.kind !== 'bcc-probe') continue;
    const p = pointCache.get(site, () => pointOf(site));
    if (p) out.push(p);
  }
  return out;
}

/**
 * The attach point a `SEC()` or BCC probe site declares (whether a section site's target is a
 * program is the caller's question). Kept per site: an edit elsewhere keeps the site object.
 */
const pointCache = new OwnedValue<BpfMacroSite, AttachPoint | undefined>({
  name: 'attach-points.point',
  owner: 'a macro use (a site)',
  key: '—',
});

function pointOf(site: BpfMacroSite): AttachPoint | undefined {
  const withKey = (p: Omit<AttachPoint, 'key'>): AttachPoint => ({ ...p, key: pointKey(p) });
  if (site.kind === 'section') {
    const lit = site.args[0];
    if (site.section === null || !lit) return undefined;
    const optional = site.section.startsWith('?');
    return withKey({
      sec: optional ? site.section.slice(1) : site.section,
      written: `SEC("${site.section}")`,
      span: { start: lit.start, end: lit.end },
      program: site.target?.name ?? '',
      bcc: false,
      optional,
    });
  }
  if (site.kind !== 'bcc-probe') return undefined;
  const sec = bccSection(site.probe.type, site.probe.target);
  if (!sec || !site.probe.target) return undefined;
  // A probe macro is reported on its name arguments; a function BCC attaches by name, on that name.
  const names = site.masked ? site.args.slice(0, site.probe.type === 'tracepoint' ? 2 : 1) : [];
  const span =
    names.length > 0
      ? { start: names[0].start, end: names[names.length - 1].end }
      : { start: site.start, end: site.start + site.name.length };
  return withKey({
    sec,
    written: site.masked ? `${site.name}(${names.map((a) => a.text).join(', ')})` : site.name,
    span,
    program: site.programName,
    bcc: true,
    optional: false,
  });
}

/**
 * Whether programs of this section attach through a BPF trampoline (fentry, fexit, fmod_ret,
 * fsession, LSM, freplace, struct_ops): the kernel builds the trampoline with the
 * architecture's JIT (`arch_prepare_bpf_trampoline`), which each architecture gained at its own
 * version.
 */
export function usesTrampoline(fact: SectionFact): boolean {
  switch (fact.prog_type) {
    case 'BPF_PROG_TYPE_LSM':
    case 'BPF_PROG_TYPE_EXT':
    case 'BPF_PROG_TYPE_STRUCT_OPS':
      return true;
    case 'BPF_PROG_TYPE_TRACING':
      return /^BPF_(TRACE_FENTRY|TRACE_FEXIT|MODIFY_RETURN|TRACE_FSESSION)/.test(fact.attach_type ?? '');
    default:
      return false;
  }
}

/** The facts' name for a kernel's architecture. */
function archKey(arch: string): string {
  return arch === 's390x' ? 's390' : arch;
}

/**
 * The version from which kernel `k`'s architecture builds BPF trampolines, from the facts'
 * `fentry_fexit_trampolines.arch_since` row (x86-64 5.5, arm64 6.0, riscv64 6.3, s390 6.3);
 * undefined for an architecture the facts do not list, which is unknown rather than unsupported.
 */
export function trampolineFloor(db: KernelDb, k: Kernel): string | undefined {
  const row = db.facts.feature('fentry_fexit_trampolines') as { arch_since?: Record<string, string> } | undefined;
  return row?.arch_since?.[archKey(k.arch)];
}

/** Whether kernel `k` is older than its architecture's trampoline floor (false when the floor is unknown). */
export function belowTrampolineFloor(db: KernelDb, k: Kernel): boolean {
  const floor = trampolineFloor(db, k);
  return floor !== undefined && compareVersions(k.version, floor) < 0;
}

/**
 * The libbpf release that first knows a section (its facts' `since_libbpf`), as `M.m`. Unreleased sections (only on libbpf's master) count as newer than
 * any release.
 */
export function libbpfSince(v: string | undefined): string | undefined {
  if (!v) return undefined;
  if (/^unreleased/.test(v)) return LIBBPF.unreleased;
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? `${m[1]}.${m[2]}` : undefined;
}

/**
 * `subset` within `all` for a message: version ranges and distro families, or the kernels' own
 * names when there are at most three of them, since a range such as "5.4 (Ubuntu 5.4)" does not
 * say which of several builds of one version it means.
 */
export function describeSome(subset: readonly Kernel[], all: readonly Kernel[]): string {
  if (subset.length > 0 && subset.length <= 3 && subset.length < all.length) return subset.map((k) => k.name).join(', ');
  return describeKernels(subset, all);
}
