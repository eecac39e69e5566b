/**
 * `prog-type-unavailable`: a program whose `SEC("…")` needs a program type, an expected attach
 * type or a kernel feature (sleepable programs, multi-buffer XDP, …) that some target kernels
 * lack, or a BPF trampoline their architecture's JIT cannot build yet; and a `SEC()` name libbpf
 * does not know at all. What the section attaches to (function, tracepoint, LSM hook) is
 * `attach-target-missing-in-range`'s business, and CONFIG options are `config-required`'s.
 */
import { LIBBPF } from '../analysis/loader';
import { findingMessage, fitting } from '../analysis/model';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { compareVersions } from '../../../kernel-db/src/version';
import {
  belowTrampolineFloor,
  describeSome,
  libbpfSince,
  reportPerSection,
  type SectionVerdict,
  trampolineFloor,
  usesTrampoline,
  type AttachPoint,
} from './attach-points';
import type { Rule, RuleContext } from './rule';

export const progTypeUnavailable: Rule = {
  meta: {
    id: 'prog-type-unavailable',
    description: 'Program type, attach type or trampoline a SEC() needs is missing on some target kernels',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFile(ctx) {
    reportPerSection(ctx, progTypeUnavailable.meta.id, (p) => check(ctx, p));
  },
};

function check(ctx: RuleContext, p: AttachPoint): SectionVerdict | undefined {
  const m = ctx.db.facts.section(p.sec);
  if (!m) return unknownSection(ctx, p);
  // `SEC("?…")` programs are loaded only where user space turns them on.
  if (p.optional) return undefined;
  const f = m.fact;
  // The section without its target: the program type, attach type and feature floor alone.
  const base = ctx.db.section(f.prefix, ctx.kernels);
  const trampoline = usesTrampoline(f);
  // Each reason with the kernels it holds on; a kernel may have several.
  const reasons = new Map<string, Kernel[]>();
  const add = (why: string, k: Kernel) => {
    if (!reasons.has(why)) reasons.set(why, []);
    reasons.get(why)!.push(k);
  };
  base.kernels.forEach((a, i) => {
    const k = ctx.kernels[i];
    const noProgType = a.reasons.includes(`${f.prog_type} missing`);
    // Without the program type, its attach types and later features are missing too: say it once.
    if (a.present === false) for (const r of noProgType ? [`${f.prog_type} missing`] : a.reasons) add(reasonText(r), k);
    if (trampoline && !noProgType && belowTrampolineFloor(ctx.db, k)) {
      add(`the ${k.arch} JIT builds BPF trampolines only from ${trampolineFloor(ctx.db, k)}`, k);
    }
  });
  const libbpf = libbpfNote(ctx, p, f.since_libbpf);
  const failing = ctx.kernels.filter((k) => [...reasons.values()].some((ks) => ks.includes(k)));
  if (failing.length === 0) {
    if (libbpf) {
      return {
        severity: 'warning',
        kernels: ctx.kernels.map((k) => k.name),
        message: findingMessage(
          `${p.written} needs a newer libbpf than the settings' minimum; built with an older one, it loads on no kernel`,
          `${libbpf.text} Built with an older libbpf, the program has no type and fails to load on every kernel.`,
          libbpf.hint,
        ),
      };
    }
    return undefined;
  }
  const parts = [...reasons].map(([why, ks]) => `${why} on ${describeSome(ks, ctx.kernels)}`);
  // Where only the attach type is missing and the program type does not check it at load, the
  // program loads and attaching it fails: a failure of its own kind.
  const attachOnly =
    !p.bcc &&
    !!f.attach_type &&
    !!f.prog_type &&
    !ctx.db.facts.analysis.load_checked_attach_types.prog_types.includes(f.prog_type) &&
    [...reasons.keys()].every((why) => why === reasonText(`${f.attach_type} missing`));
  if (attachOnly) {
    const what = `${p.written} loads but cannot attach on ${failing.length} of ${ctx.kernels.length} target kernels`;
    return {
      kernels: failing.map((k) => k.name),
      message: findingMessage(
        fitting(`${what}; ${f.attach_type} is missing there`, what),
        `${capitalize(parts.join('; '))}. ${f.prog_type} programs load there (the kernel does not check the attach type at load), but attaching one fails (EINVAL or EOPNOTSUPP).`,
        extraNote(f.prefix),
        libbpf?.text,
      ),
    };
  }
  const how = p.bcc ? 'BCC cannot load the program there' : 'the program fails to load there';
  // The headline names the reason that holds on the most kernels, when it fits.
  const [main] = [...reasons].sort((a, b) => b[1].length - a[1].length);
  const what = `${p.written} cannot load on ${failing.length} of ${ctx.kernels.length} target kernels`;
  const headline =
    reasons.size > 1
      ? fitting(`${what}; ${main[0]}, among other reasons`, `${what}; ${main[0]} on ${main[1].length}`, what)
      : fitting(`${what}; ${main[0]} there`, what);
  return {
    kernels: failing.map((k) => k.name),
    message: findingMessage(headline, `${capitalize(parts.join('; '))}; ${how}.`, extraNote(f.prefix), libbpf?.text),
  };
}

/** A reason from the database (`BPF_PROG_TYPE_LSM missing`) as words for a message. */
function reasonText(r: string): string {
  const missing = /^(\S+) missing$/.exec(r);
  if (missing) return `${missing[1]} is missing`;
  return r;
}

/** What a message adds for sections with a well-known trap. */
function extraNote(prefix: string): string {
  if (prefix === 'tc/ingress' || prefix === 'tc/egress') {
    return `With libbpf 1.3 and later, SEC("${prefix}") is a tcx program (BPF_TCX_${prefix === 'tc/ingress' ? 'INGRESS' : 'EGRESS'}, kernel 6.6), not the legacy cls_bpf classifier; SEC("tc") attached with bpf_tc_attach() works from 4.1.`;
  }
  if (prefix === 'lsm' || prefix === 'lsm.s' || prefix === 'lsm_cgroup') {
    return 'BPF LSM programs also need `bpf` in the active LSM list (CONFIG_LSM or `lsm=` on the kernel command line), which the linter cannot check.';
  }
  return '';
}

/**
 * The libbpf version note for a section newer than the minimum libbpf the settings allow, with
 * the setting that states a newer minimum; undefined when every allowed libbpf knows it.
 */
function libbpfNote(ctx: RuleContext, p: AttachPoint, sinceLibbpf: string): { text: string; hint: string } | undefined {
  if (ctx.loader.kind !== 'libbpf' || p.bcc) return undefined;
  const since = libbpfSince(sinceLibbpf);
  const min = ctx.loader.minVersion ?? LIBBPF.defaultMinVersion;
  if (!since || compareVersions(min, since) >= 0) return undefined;
  const named = since === LIBBPF.unreleased ? "only libbpf's development branch" : `libbpf ${since} and later`;
  return {
    text: `Only ${named} know${since === LIBBPF.unreleased ? 's' : ''} this section, and the minimum libbpf in the settings is ${min}.`,
    hint:
      since === LIBBPF.unreleased ? '' : `If you build with libbpf ${since} or later, set ebpfPortability.loader to "libbpf>=${since}".`,
  };
}

/** A `SEC()` name libbpf has no definition for. */
function unknownSection(ctx: RuleContext, p: AttachPoint): SectionVerdict | undefined {
  // Other loaders have their own section tables, and BCC probes never reach here.
  if (ctx.loader.kind !== 'libbpf' || p.bcc) return undefined;
  return {
    severity: 'warning',
    kernels: ctx.kernels.map((k) => k.name),
    message: findingMessage(
      `libbpf does not know ${p.written}: the object loads on no kernel with libbpf 1.0 and later`,
      'The program gets no program type, and libbpf 1.0 and later refuse to load the object on every kernel ' +
        '("missing BPF prog type, check ELF section name").',
      'Use a section name from libbpf\'s table, e.g. SEC("kprobe/<function>") or SEC("tracepoint/<category>/<event>").',
    ),
  };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
