/**
 * User settings (`ebpfPortability.*`), validated: a bad value never breaks analysis; it is
 * replaced by the default and reported once in words the user can act on.
 */
import { RULE_IDS } from '../rules';
export { RULE_IDS };
import type { Severity } from '../analysis/model';
import { type Loader } from '../analysis/loader';
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
}
/**
 * Defaults: every built-in x86_64 and arm64 kernel from 4.14 to the newest 7.x, loaded by libbpf.
 * The few 32-bit arm, ppc64le and riscv64 images (Ubuntu 5.4) are there for who targets them.
 */
export declare const DEFAULT_SETTINGS: Settings;
/** Reads raw settings (from `workspace/configuration` or the CLI), keeping what is valid. */
export declare function validateSettings(raw: unknown): {
  settings: Settings;
  problems: string[];
};
/**
 * Replaces each group id in `rules` by its member rules, except members set on their own: a
 * specific id overrides its group whatever the order of the keys.
 */
export declare function expandGroups(rules: Record<string, RuleSetting>): void;
