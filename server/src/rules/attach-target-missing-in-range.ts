/**
 * `attach-target-missing-in-range`: what a program attaches to — the kernel function of
 * `kprobe/…`, `fentry/…` and friends, the syscall of `ksyscall/…`, the tracepoint of
 * `tracepoint/…`, `raw_tp/…` or `tp_btf/…`, the LSM hook of `lsm/…`, and the same for BCC's
 * `kprobe__<fn>`, `TRACEPOINT_PROBE(cat, event)`, `KFUNC_PROBE(fn)`, `LSM_PROBE(hook)` — absent
 * or fully inlined on some target kernels.
 *
 * Kernel function lists cover only vmlinux: a function that lives in a module, or is built in on
 * some builds and modular on others, is missing from some lists without being missing from the
 * running system. So an absence counts only where it looks like the kernel's history, not its
 * build: never on a minimal test config, not when another build of the same version and
 * architecture has the function, not when the nearest older and newer versions both have it, not
 * when the kernel's distribution has it in none of its builds, not when no distribution has it on
 * the architecture while a developer's or CI build there does (a module's function or tracepoint,
 * like kvm's and nfs's on x86), and not at all for a name no kernel
 * of the database has. Inlining recorded by DepSurf always counts, and so does a function that a
 * booted kernel's kallsyms has only as compiler clones (`finish_task_switch.isra.0`): BTF keeps a
 * record of the plain name, but there is no symbol of it to attach to.
 */
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { compareVersions, majorMinor } from '../../../kernel-db/src/version';
import {
  belowTrampolineFloor,
  describeSome,
  reportPerSection,
  type SectionVerdict,
  usesTrampoline,
  type AttachPoint,
} from './attach-points';
import { findingMessage, headlineWith } from '../analysis/model';
import type { Rule, RuleContext } from './rule';

export const attachTargetMissingInRange: Rule = {
  meta: {
    id: 'attach-target-missing-in-range',
    description: 'Kernel function, syscall, tracepoint or LSM hook a program attaches to is absent or inlined on some target kernels',
    defaultSeverity: 'error',
    fixable: false,
  },
  checkFile(ctx) {
    reportPerSection(ctx, attachTargetMissingInRange.meta.id, (p) => check(ctx, p));
  },
};

/** What an attach point names. */
interface Target {
  readonly kind: 'function' | 'syscall' | 'tracepoint' | 'lsm';
  readonly name: string;
  /** How messages name it: "kprobe target `do_sys_openat2`". */
  readonly label: string;
  /** What happens on a kernel without it. */
  readonly consequence: string;
}

/** A target's state on one kernel. */
type Status = 'ok' | 'absent' | 'inlined' | 'clone' | 'unknown';

/** The target an attach point names, if it names one this rule can check. */
function targetOf(prefix: string, target: string): Target | undefined {
  const base = prefix.replace(/\.(s|w)$/, '');
  // Patterns (`kprobe.multi/tcp_*`), module-qualified names and offsets are not plain names.
  if (!target || /[*?[\]:]/.test(target)) return undefined;
  const fn = target.replace(/\+(0x[0-9a-fA-F]+|\d+)$/, '');
  if (!/^[A-Za-z_][\w.]*$/.test(fn) && base !== 'tracepoint' && base !== 'tp') return undefined;
  switch (base) {
    case 'kprobe':
    case 'kretprobe':
      return { kind: 'function', name: fn, label: `${base} target \`${fn}\``, consequence: `attaching the ${base} fails there` };
    case 'fentry':
    case 'fexit':
    case 'fmod_ret':
    case 'fsession':
      return {
        kind: 'function',
        name: fn,
        label: `${base} target \`${fn}\``,
        consequence: 'the program fails to load there (no BTF function to attach to)',
      };
    case 'ksyscall':
    case 'kretsyscall':
      return {
        kind: 'syscall',
        name: fn,
        label: `syscall \`${fn}\` (${base} target)`,
        consequence: `attaching the ${base === 'ksyscall' ? 'kprobe' : 'kretprobe'} fails there`,
      };
    case 'tracepoint':
    case 'tp': {
      const m = /^([\w-]+)\/(\w+)$/.exec(target);
      if (!m) return undefined;
      // Syscall events are generated from the syscall table, not declared as tracepoints.
      const sys = m[1] === 'syscalls' ? /^sys_(?:enter|exit)_(\w+)$/.exec(m[2]) : null;
      if (sys)
        return {
          kind: 'syscall',
          name: sys[1],
          label: `syscall \`${sys[1]}\` (of tracepoint \`${target}\`)`,
          consequence: 'the tracepoint does not exist there and attaching fails',
        };
      return { kind: 'tracepoint', name: m[2], label: `tracepoint \`${target}\``, consequence: 'attaching fails there' };
    }
    case 'raw_tracepoint':
    case 'raw_tp':
      return { kind: 'tracepoint', name: fn, label: `raw tracepoint \`${fn}\``, consequence: 'attaching fails there' };
    case 'tp_btf':
      return {
        kind: 'tracepoint',
        name: fn,
        label: `BTF tracepoint \`${fn}\``,
        consequence: 'the program fails to load there (no btf_trace_ type to attach to)',
      };
    case 'lsm':
    case 'lsm_cgroup':
      return {
        kind: 'lsm',
        name: fn,
        label: `LSM hook \`${fn}\``,
        consequence: 'the program fails to load there (no bpf_lsm_ hook to attach to)',
      };
    default:
      return undefined;
  }
}

/** The syscall wrapper prefix libbpf's `ksyscall` and BCC use on each architecture. */
const SYSCALL_PREFIX: Record<string, string> = {
  x86_64: '__x64_sys_',
  arm64: '__arm64_sys_',
  riscv64: '__riscv_sys_',
  s390x: '__s390x_sys_',
  ppc64le: '__powerpc_sys_',
};

/** A function's state per kernel. */
function funcStatus(db: KernelDb, name: string, kernels: readonly Kernel[]): Status[] {
  return db
    .func(name, kernels)
    .map((a) => (a.present === null ? 'unknown' : a.inlined ? 'inlined' : a.clone ? 'clone' : a.present ? 'ok' : 'absent'));
}

/**
 * Whether a syscall exists per kernel: any of the names it is known by (the architecture's
 * wrapper, `sys_`, `__se_sys_`, `SyS_`, `__do_sys_`) in the kernel's function list. A syscall the
 * kernel has is always reachable through the wrapper libbpf picks, so any name is enough; it is
 * absent only where every name is known to be absent (a kernel of the era before the wrappers
 * names it `SyS_x`, which an incomplete function table may not list).
 */
function syscallStatus(db: KernelDb, name: string, kernels: readonly Kernel[]): Status[] {
  const names = [...new Set([...Object.values(SYSCALL_PREFIX), 'sys_', '__se_sys_', 'SyS_', '__do_sys_'].map((p) => `${p}${name}`))];
  const per = names.map((n) => db.func(n, kernels));
  const wrappers = db.facts.analysis.syscall_wrappers.since;
  return kernels.map((k, i) => {
    if (per.some((a) => a[i].present === true || a[i].inlined)) return 'ok';
    // Where the architecture wraps every syscall, the wrapper's absence is the syscall's.
    const prefix = SYSCALL_PREFIX[k.arch];
    const since = wrappers[k.arch];
    if (prefix && since && compareVersions(k.version, since) >= 0) {
      const wrapper = per[names.indexOf(`${prefix}${name}`)][i].present;
      return wrapper === false ? 'absent' : 'unknown';
    }
    return per.some((a) => a[i].present === null) ? 'unknown' : 'absent';
  });
}

function statusOf(db: KernelDb, t: Target, kernels: readonly Kernel[]): Status[] {
  switch (t.kind) {
    case 'function':
      return funcStatus(db, t.name, kernels);
    case 'lsm':
      return funcStatus(db, `bpf_lsm_${t.name}`, kernels);
    case 'syscall':
      return syscallStatus(db, t.name, kernels);
    case 'tracepoint':
      return db.tracepoint(t.name, kernels).map((a) => (a.present === null ? 'unknown' : a.present ? 'ok' : 'absent'));
  }
}

/** A distribution's kernel as shipped to users (not a developer's, CI's, local or imported build). */
function isDistribution(k: Kernel): boolean {
  return !['vanilla', 'unknown', 'local', 'user'].includes(k.distro) && k.fidelity !== 'btf-minimal-config';
}

/**
 * Whether kernel `k`'s absence looks like a build difference rather than the kernel's history
 * (see the file comment), given every kernel's status.
 */
function buildDifference(k: Kernel, all: readonly Kernel[], status: Map<number, Status>): boolean {
  if (k.fidelity === 'btf-minimal-config') return true;
  const mm = majorMinor(k.version);
  const known = all.filter((o) => o.id !== k.id && status.get(o.id) !== 'unknown' && status.get(o.id) !== undefined);
  const sameArch = known.filter((o) => o.arch === k.arch);
  if (sameArch.some((o) => majorMinor(o.version) === mm && status.get(o.id) === 'ok')) return true;
  // A distribution that has it in none of its builds of this architecture while other kernels of
  // the same years do configures it out or builds it as a module (md_flush_request is md-mod on
  // every Debian kernel, built in on Ubuntu up to 6.8). A distribution whose kernels all postdate
  // the last kernel that has it (inotify_handle_event, gone in 5.11, on Debian 5.10.262+) is history.
  const family = k.distro === 'unknown' ? [] : sameArch.filter((o) => o.distro === k.distro);
  if (family.length > 0 && !family.some((o) => status.get(o.id) === 'ok')) {
    const oldest = family.map((o) => majorMinor(o.version)).reduce((a, b) => (compareVersions(a, b) <= 0 ? a : b), mm);
    if (known.some((o) => o.distro !== k.distro && status.get(o.id) === 'ok' && compareVersions(majorMinor(o.version), oldest) >= 0))
      return true;
  }
  // A target that no distribution build of this architecture has while a developer's or CI's build
  // of it has, and distribution builds of that era or later exist, lives in code distributions build
  // as a module (kvm's and nfs's tracepoints are in kvm.ko and nfs.ko on x86, built in on some test
  // configs): vmlinux cannot tell its history on any build of the architecture.
  const era = sameArch.filter((o) => !isDistribution(o) && status.get(o.id) === 'ok').map((o) => majorMinor(o.version));
  if (era.length > 0) {
    const first = era.reduce((a, b) => (compareVersions(a, b) <= 0 ? a : b));
    const distros = sameArch.filter(isDistribution);
    if (!distros.some((o) => status.get(o.id) === 'ok') && distros.some((o) => compareVersions(majorMinor(o.version), first) >= 0))
      return true;
  }
  // The nearest version on one side: whether some build of it has the target, or undefined when
  // there is no older (newer) kernel of this architecture.
  const side = (older: boolean): boolean | undefined => {
    const cands = sameArch.filter((o) =>
      older ? compareVersions(majorMinor(o.version), mm) < 0 : compareVersions(majorMinor(o.version), mm) > 0,
    );
    if (cands.length === 0) return undefined;
    const nearest = cands
      .map((o) => majorMinor(o.version))
      .reduce((a, b) => ((older ? compareVersions(a, b) > 0 : compareVersions(a, b) < 0) ? a : b));
    return cands.some((o) => majorMinor(o.version) === nearest && status.get(o.id) === 'ok');
  };
  const before = side(true);
  const after = side(false);
  if (before && after) return true;
  // The oldest (newest) kernel of its architecture: another architecture's build of the same
  // version stands in for the missing neighbour.
  const otherArch = known.some((o) => o.arch !== k.arch && majorMinor(o.version) === mm && status.get(o.id) === 'ok');
  return otherArch && ((before === undefined && after === true) || (after === undefined && before === true));
}

function check(ctx: RuleContext, p: AttachPoint): SectionVerdict | undefined {
  const m = ctx.db.facts.section(p.sec);
  if (!m || p.optional) return undefined;
  const t = targetOf(m.fact.prefix, m.target);
  if (!t) return undefined;
  // The whole database, so that versions outside the target still tell history from builds.
  const all = ctx.db.kernels;
  const statuses = statusOf(ctx.db, t, all);
  const status = new Map(all.map((k, i) => [k.id, statuses[i]]));
  // A name no kernel has is a module's, or a typo the loader will name: not this rule's to guess.
  if (!statuses.includes('ok')) return undefined;
  const base = ctx.db.section(m.fact.prefix, ctx.kernels);
  const trampoline = usesTrampoline(m.fact);
  const bpfLsm = t.kind === 'lsm' ? ctx.db.config('CONFIG_BPF_LSM', ctx.kernels) : undefined;
  const absent: Kernel[] = [];
  const inlined: Kernel[] = [];
  const cloned: Kernel[] = [];
  let builds = 0;
  ctx.kernels.forEach((k, i) => {
    const s = status.get(k.id);
    if (s !== 'absent' && s !== 'inlined' && s !== 'clone') return;
    // Kernels that cannot run the program type at all, or have BPF LSM configured out, are the
    // other program rules' findings.
    if (base.kernels[i].present === false || (trampoline && belowTrampolineFloor(ctx.db, k)) || bpfLsm?.[i].present === false) return;
    if (s === 'inlined') inlined.push(k);
    else if (s === 'clone') cloned.push(k);
    else if (buildDifference(k, all, status)) builds++;
    else absent.push(k);
  });
  const failing = ctx.kernels.filter((k) => absent.includes(k) || inlined.includes(k) || cloned.includes(k));
  if (failing.length === 0) return undefined;
  const parts: string[] = [];
  if (absent.length > 0) parts.push(`missing on ${describeSome(absent, ctx.kernels)}`);
  if (inlined.length > 0) parts.push(`fully inlined, with no symbol to attach to, on ${describeSome(inlined, ctx.kernels)}`);
  if (cloned.length > 0) {
    // Only kernel functions get cloned; the kallsyms of the booted kernels say which.
    const clone = ctx.db.func(t.name, cloned)[0]?.clone;
    parts.push(
      `compiled only as a clone${clone ? ` (\`${clone}\`)` : ''}, with no symbol of its own name (kallsyms), on ${describeSome(cloned, ctx.kernels)}: ` +
        'its BTF record remains, but fentry finds no address for it and a kprobe no symbol',
    );
  }
  const how = p.bcc ? t.consequence.replace('the program fails to load', 'BCC cannot load the program') : t.consequence;
  // "the program fails to load there (no BTF function to attach to)": the why goes to the details.
  const why = /^(.*?) \((.*)\)$/.exec(how);
  const [headline, consequence] = headlineWith(
    `${capitalize(t.label)} is unavailable on ${failing.length} of ${ctx.kernels.length} target kernels`,
    why ? why[1] : how,
  );
  return {
    kernels: failing.map((k) => k.name),
    message: findingMessage(
      headline,
      consequence,
      `It is ${parts.join('; ')}.${why ? ` ${capitalize(why[2])}.` : ''}`,
      builds > 0
        ? `(${builds} more kernel${builds === 1 ? ' lacks' : 's lack'} it only in ${builds === 1 ? 'its' : 'their'} build, e.g. as a module, and ${builds === 1 ? 'is' : 'are'} not counted.)`
        : undefined,
    ),
  };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
