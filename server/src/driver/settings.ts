/**
 * User settings (`ebpfPortability.*`), validated: a bad value never breaks analysis; it is
 * replaced by the default and reported once in words the user can act on.
 */
import { RULE_IDS } from '../rules';

export { RULE_IDS };
import { RULE_GROUPS } from '../rules/groups';
import type { Severity } from '../analysis/model';
import { LIBBPF, parseLoader, type Loader } from '../analysis/loader';
import { quoted } from '../../../kernel-db/src/strings';

/** A rule's configured severity, or `off`. */
export type RuleSetting = Severity | 'off';

/** Settings that shape one document's analysis. */
export interface Settings {
  /** Target spec, e.g. `4.14-7.x` (see kernel-db/src/query/target.ts). */
  readonly targetKernels: string;
  /** Architecture filter (empty: all). */
  readonly architectures: readonly string[];
  /** Distro filter (empty: all). */
  readonly distros: readonly string[];
  /**
   * Per-rule severity or `off`, by rule id. A group id (`verifier-feature-unavailable`) is
   * resolved by {@link validateSettings} into its members, so only rule ids remain.
   */
  readonly rules: Readonly<Record<string, RuleSetting>>;
  /** The loader that will load the program. */
  readonly loader: Loader;
  /** When the language server compiles the file for the object pass (`onSave`: on open and save). */
  readonly compile: 'onSave' | 'off';
  /** The clang to compile with; empty: clang on PATH. */
  readonly clangPath: string;
}

/**
 * Defaults: every built-in x86_64 and arm64 kernel from 4.14 to the newest 7.x, loaded by libbpf.
 * The few 32-bit arm, ppc64le and riscv64 images (Ubuntu 5.4) are there for who targets them.
 */
export const DEFAULT_SETTINGS: Settings = {
  targetKernels: '4.14-7.x',
  architectures: ['x86_64', 'arm64'],
  distros: [],
  rules: {},
  loader: { kind: 'libbpf', minVersion: LIBBPF.defaultMinVersion },
  compile: 'onSave',
  clangPath: '',
};

const SEVERITIES = new Set(['error', 'warning', 'info', 'off']);

/** Reads raw settings (from `workspace/configuration` or the CLI), keeping what is valid. */
export function validateSettings(raw: unknown): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  if (raw === undefined || raw === null) return { settings: DEFAULT_SETTINGS, problems };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { settings: DEFAULT_SETTINGS, problems: ['ebpfPortability settings must be an object; using defaults'] };
  }
  const r = raw as Record<string, unknown>;
  let targetKernels = DEFAULT_SETTINGS.targetKernels;
  if (r.targetKernels !== undefined) {
    if (typeof r.targetKernels === 'string' && r.targetKernels.trim() !== '') targetKernels = r.targetKernels;
    else problems.push(`ebpfPortability.targetKernels must be a non-empty string such as "4.14-7.x"; using "${targetKernels}"`);
  }
  const list = (key: 'architectures' | 'distros'): string[] => {
    const v = r[key];
    if (v === undefined) return [...DEFAULT_SETTINGS[key]];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    if (typeof v === 'string')
      return v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    problems.push(`ebpfPortability.${key} must be a list of strings; ignoring it`);
    return [];
  };
  const rules: Record<string, RuleSetting> = {};
  if (r.rules !== undefined) {
    if (typeof r.rules !== 'object' || r.rules === null || Array.isArray(r.rules)) {
      problems.push('ebpfPortability.rules must map rule ids to "error", "warning", "info" or "off"; ignoring it');
    } else {
      for (const [id, v] of Object.entries(r.rules as Record<string, unknown>)) {
        if (!RULE_IDS.includes(id)) problems.push(`ebpfPortability.rules: unknown rule ${quoted(id)} (known: ${RULE_IDS.join(', ')})`);
        else if (typeof v !== 'string' || !SEVERITIES.has(v))
          problems.push(`ebpfPortability.rules.${id} must be "error", "warning", "info" or "off"`);
        else rules[id] = v as RuleSetting;
      }
    }
  }
  expandGroups(rules);
  let loader = DEFAULT_SETTINGS.loader;
  if (r.loader !== undefined) {
    const l = typeof r.loader === 'string' ? parseLoader(r.loader) : undefined;
    if (l) loader = l;
    else
      problems.push(
        'ebpfPortability.loader must be "libbpf", "libbpf>=1.3" (a minimum libbpf version), "cilium/ebpf" or "bcc"; using "libbpf"',
      );
  }
  let compile = DEFAULT_SETTINGS.compile;
  if (r.compile !== undefined) {
    if (r.compile === 'onSave' || r.compile === 'off') compile = r.compile;
    else problems.push(`ebpfPortability.compile must be "onSave" or "off"; using "${compile}"`);
  }
  let clangPath = DEFAULT_SETTINGS.clangPath;
  if (r.clangPath !== undefined) {
    if (typeof r.clangPath === 'string') clangPath = r.clangPath;
    else problems.push('ebpfPortability.clangPath must be a path (a string); using clang on PATH');
  }
  return {
    settings: { targetKernels, architectures: list('architectures'), distros: list('distros'), rules, loader, compile, clangPath },
    problems,
  };
}

/**
 * Replaces each group id in `rules` by its member rules, except members set on their own: a
 * specific id overrides its group whatever the order of the keys.
 */
export function expandGroups(rules: Record<string, RuleSetting>): void {
  for (const [group, members] of Object.entries(RULE_GROUPS)) {
    const v = rules[group];
    if (v === undefined) continue;
    delete rules[group];
    for (const m of members) if (!(m in rules)) rules[m] = v;
  }
}
