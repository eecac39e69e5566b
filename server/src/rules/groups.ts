/**
 * Rule groups: one id that stands for several rules, in settings (`ebpfPortability.rules`,
 * `--rule`) and in suppression comments, as the single rule it once was. A setting for a member
 * rule overrides its group's; a comment naming the group silences every member.
 *
 * This module imports nothing, so that the settings, the comment reader and the registry can all
 * use it.
 */

/** Group id → member rule ids. */
export const RULE_GROUPS: Readonly<Record<string, readonly string[]>> = {
  'verifier-feature-unavailable': [
    'verifier-bounded-loops',
    'verifier-open-coded-iterators',
    'verifier-global-data',
    'verifier-atomics',
    'verifier-arena',
    'verifier-spin-lock-timer',
  ],
};

/** The groups rule `id` belongs to. */
export function groupsOf(id: string): string[] {
  return Object.keys(RULE_GROUPS).filter((g) => RULE_GROUPS[g].includes(id));
}
