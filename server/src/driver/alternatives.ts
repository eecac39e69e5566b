/**
 * Variants chosen at run time. A program is optional when its section starts with `?` or its
 * loader may switch it off (`bpf_program__set_autoload`, see analysis/runtimeChoices.ts). Its
 * variants are the programs of the same hook (fentry and kprobe of one function, tp_btf and raw_tp
 * of one tracepoint) or, when there are none, the programs the loader switches in the other
 * branch of the same `if … else`. A failure of an optional program is a warning where a variant
 * loads on every kernel it names, or where it has no variant (the loader switches it off and the
 * rest of the object loads); on kernels where no variant loads it stays an error, for those
 * kernels only. A missing attach target of a program the loader retargets, and a map type the
 * loader changes, are warnings too.
 */
import type { FileModel } from '../analysis/file';
import type { LineIndex } from '../analysis/lines';
import { type Finding, type Range, withDetail } from '../analysis/model';
import type { RuntimeChoices } from '../analysis/runtimeChoices';
import { type AttachPoint, attachPoints } from '../rules/attach-points';
import type { FlagRegion } from '../analysis/loaderFlags';
import type { Kernel } from '../../../kernel-db/src/query/db';
import type { Facts } from '../../../kernel-db/src/query/facts';
import { compareVersions } from '../../../kernel-db/src/version';

/**
 * Sections whose target is looked up only when attaching (kprobes, uprobes, tracepoints, raw
 * tracepoints): the program loads where the target is missing; fentry, tp_btf and LSM programs
 * name their target's BTF when they load.
 */
const ATTACHED_BY_NAME = /^(kprobe|kretprobe|uprobe|uretprobe|ksyscall|kretsyscall|tracepoint|tp|raw_tp|raw_tracepoint)\//;

/** Entry, return or tracepoint: what kind of event an attach-by-name section observes. */
function attachKind(sec: string): string {
  const kind = sec.slice(0, sec.indexOf('/'));
  return /ret/.test(kind) ? 'exit' : /^(kprobe|uprobe|ksyscall)$/.test(kind) ? 'entry' : 'tp';
}

/** An error in code only a loader-set flag turns on is a warning that names the flag. */
function underFlag(f: Finding, flagged: readonly FlagRegion[], lines: LineIndex): Finding {
  if (f.severity !== 'error') return f;
  // Every use that fails must be under the flag (the finding's own range when it names none).
  const regions = (f.uses ?? [f.range]).map((u) => {
    const at = lines.offsetAt(u.start);
    return flagged.find((x) => at >= x.start && at < x.end);
  });
  const r = regions[0];
  if (!r || regions.some((x) => !x)) return f;
  return {
    ...f,
    severity: 'warning',
    message: withDetail(
      f.message,
      `This code runs only where the loader sets \`${r.flag}\` (${r.where}); elsewhere the flag is a constant false and the verifier skips it.`,
    ),
  };
}

/** The hook a section attaches to, shared by its variants; undefined when it has no known variants. */
export function hookOf(sec: string): string | undefined {
  const slash = sec.indexOf('/');
  if (slash < 0) return undefined;
  const kind = sec.slice(0, slash);
  const rest = sec.slice(slash + 1);
  const last = rest.slice(rest.lastIndexOf('/') + 1);
  switch (kind) {
    case 'fentry':
    case 'kprobe':
      return rest && !rest.includes('/') ? `entry:${rest}` : undefined;
    case 'fexit':
    case 'kretprobe':
      return rest && !rest.includes('/') ? `exit:${rest}` : undefined;
    case 'tp_btf':
    case 'raw_tp':
    case 'raw_tracepoint':
    case 'tp':
    case 'tracepoint':
      return last ? `tp:${last}` : undefined;
    default:
      return undefined;
  }
}

interface Program {
  readonly point: AttachPoint;
  readonly hook: string | undefined;
  /** Offsets the program covers: its `SEC()` string and its function. */
  readonly spans: readonly Range[];
  /** Why it is optional (`SEC("?…")`, or the loader's line), if it is. */
  readonly optional?: string;
}

const inside = (r: Range, s: Range) =>
  (r.start.line > s.start.line || (r.start.line === s.start.line && r.start.character >= s.start.character)) &&
  (r.start.line < s.end.line || (r.start.line === s.end.line && r.start.character <= s.end.character));

/**
 * Findings with optional programs' and switchable maps' failures made warnings where a variant
 * serves, and failures in code that runs only when the loader sets a read-only flag made warnings.
 */
export function applyAlternatives(
  findings: Finding[],
  model: FileModel,
  lines: LineIndex,
  runtime: RuntimeChoices | undefined,
  flagged: readonly FlagRegion[],
  kernels: readonly Kernel[],
  facts: Facts,
): Finding[] {
  if (flagged.length) findings = findings.map((f) => underFlag(f, flagged, lines));
  const points = attachPoints(model, facts).filter((p) => !p.bcc);
  // Most files have neither a loader nor `SEC("?…")` programs: nothing to weigh (asked before
  // the programs' ranges are built: this runs on every edit, over every program of the file).
  if (!runtime && !points.some((p) => p.optional)) return findings;
  const fnByName = new Map(model.functions.map((f) => [f.name, f]));
  const programs: Program[] = points.map((point) => {
    const fn = fnByName.get(point.program);
    const spans = [lines.range(point.span.start, point.span.end), ...(fn ? [lines.range(fn.node.startIndex, fn.node.endIndex)] : [])];
    const why = point.optional ? `${point.written} is off unless the loader turns it on` : runtime?.programs.get(point.program);
    return { point, hook: hookOf(point.sec), spans, ...(why ? { optional: why } : {}) };
  });
  const programOf = (f: Finding) => programs.find((p) => p.spans.some((s) => inside(f.range, s)));
  // Kernels on which each program fails to load, from its error findings.
  const failing = new Map<Program, Set<string>>(programs.map((p) => [p, new Set<string>()]));
  for (const f of findings) {
    const p = f.severity === 'error' ? programOf(f) : undefined;
    if (p) for (const k of f.kernels) failing.get(p)!.add(k);
  }
  const mapOf = (f: Finding): string | undefined => {
    for (const s of model.sites()) {
      if (s.kind !== 'map-member' || s.member !== 'type' || !s.map) continue;
      if (inside(f.range, lines.range(s.value.start, s.value.end))) return s.map;
    }
    return undefined;
  };
  const byName = new Map(programs.map((p) => [p.point.program, p]));
  /** Kernels on which each program's attach target is missing. */
  const targetMissing = new Map<Program, Set<string>>(programs.map((p) => [p, new Set<string>()]));
  for (const f of findings) {
    const p = f.rule === 'attach-target-missing-in-range' ? programOf(f) : undefined;
    if (p) for (const k of f.kernels) targetMissing.get(p)!.add(k);
  }
  const version = new Map(kernels.map((k) => [k.name, k.version]));
  /** The oldest and newest version among kernel names. */
  const span = (names: Iterable<string>): [string, string] | undefined => {
    const vs = [...names].map((n) => version.get(n)).filter((v): v is string => !!v);
    if (!vs.length) return undefined;
    vs.sort(compareVersions);
    return [vs[0], vs[vs.length - 1]];
  };
  /**
   * Another program of the same kind (entry, return, tracepoint) attached by name whose target
   * took over from this one's (or the reverse): present on every kernel `f` names, missing only
   * where this one is present, on versions on the other side of it with no kernel between that
   * has both (inotify_handle_event up to 5.10, inotify_handle_inode_event from 5.11). Unrelated
   * hooks, present together on some kernels between their gaps, are not replacements.
   */
  const replacementOf = (p: Program, f: Finding): Program | undefined => {
    const kind = attachKind(p.point.sec);
    const mine = targetMissing.get(p)!;
    const mySpan = span(mine);
    if (!mySpan) return undefined;
    return programs.find((q) => {
      if (q === p || attachKind(q.point.sec) !== kind || !ATTACHED_BY_NAME.test(q.point.sec)) return false;
      const missing = targetMissing.get(q)!;
      if (missing.size === 0 || f.kernels.some((k) => missing.has(k)) || [...missing].some((k) => mine.has(k))) return false;
      const theirs = span(missing);
      if (!theirs) return false;
      // One gap entirely before the other, and no kernel strictly between them has both targets.
      const [lo, hi] = compareVersions(mySpan[1], theirs[0]) < 0 ? [mySpan[1], theirs[0]] : [theirs[1], mySpan[0]];
      if (compareVersions(lo, hi) >= 0) return false;
      return !kernels.some(
        (k) => compareVersions(k.version, lo) > 0 && compareVersions(k.version, hi) < 0 && !mine.has(k.name) && !missing.has(k.name),
      );
    });
  };
  /** The loader's exclusive alternatives of `p`: programs it switches in the other branch of an `if … else`. */
  const exclusiveOf = (p: Program): Program[] =>
    [...(runtime?.alternatives.get(p.point.program) ?? [])].map((n) => byName.get(n)).filter((q): q is Program => !!q && q !== p);
  const variantsOf = (p: Program): Program[] => {
    const same = p.hook ? programs.filter((q) => q !== p && q.hook === p.hook) : [];
    return [...new Set([...same, ...exclusiveOf(p)])];
  };
  return findings.map((f) => {
    if (f.severity !== 'error') return f;
    const alone = f.kernels;
    if (f.rule === 'map-type-unavailable' && runtime) {
      const map = mapOf(f);
      const where = map ? runtime.maps.get(map) : undefined;
      return where
        ? { ...f, alone, severity: 'warning', message: withDetail(f.message, `The loader changes this map's type at run time (${where}).`) }
        : f;
    }
    const p = programOf(f);
    if (!p) return f;
    const retarget = f.rule === 'attach-target-missing-in-range' ? runtime?.retargeted.get(p.point.program) : undefined;
    if (retarget)
      return {
        ...f,
        alone,
        severity: 'warning',
        message: withDetail(f.message, `The loader sets this program's attach target at run time (${retarget}).`),
      };
    if (f.rule === 'attach-target-missing-in-range' && runtime?.attachments && ATTACHED_BY_NAME.test(p.point.sec)) {
      const replacement = replacementOf(p, f);
      return {
        ...f,
        alone,
        severity: 'warning',
        message: replacement
          ? withDetail(
              f.message,
              `The program loads without its target (it is looked up when attaching); \`${replacement.point.program}\` attaches where it is missing, and ${runtime.attachments} chooses what to attach at run time.`,
            )
          : withDetail(
              f.message,
              `The program loads without its target (it is looked up when attaching), and ${runtime.attachments} chooses what to attach at run time; where it attaches this program anyway, that fails.`,
            ),
      };
    }
    if (!p.optional) return f;
    const variants = variantsOf(p);
    if (variants.length === 0) {
      return {
        ...f,
        alone,
        severity: 'warning',
        message: withDetail(f.message, `The program is optional (${p.optional}): where it cannot load, the rest of the object still does.`),
      };
    }
    const servedBy = (k: string) => variants.filter((q) => !failing.get(q)!.has(k));
    const uncovered = f.kernels.filter((k) => servedBy(k).length === 0);
    const names = [...new Set(f.kernels.flatMap(servedBy))].map((q) => `\`${q.point.program}\``);
    if (uncovered.length === 0) {
      return {
        ...f,
        alone,
        severity: 'warning',
        message: withDetail(f.message, `This variant is optional (${p.optional}); ${names.join(' or ')} serves these kernels.`),
      };
    }
    // Only an if/else in the loader proves that one of the variants must load; otherwise the
    // loader may switch them all off there, and the rest of the object still loads.
    if (exclusiveOf(p).length === 0) {
      return {
        ...f,
        alone,
        severity: 'warning',
        message: withDetail(f.message, `The program is optional (${p.optional}): where no variant loads, the loader may switch it off.`),
      };
    }
    if (uncovered.length === f.kernels.length) return f;
    return {
      ...f,
      alone,
      kernels: uncovered,
      message: withDetail(
        f.message,
        `${names.join(' or ')} serves ${f.kernels.length - uncovered.length} of them; no variant of this hook loads on ${uncovered.length}: ${uncovered.slice(0, 3).join(', ')}${uncovered.length > 3 ? ', …' : ''}.`,
      ),
    };
  });
}
