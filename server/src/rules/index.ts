/**
 * The rule registry. Every rule here has a doc in docs/rules/<id>.md, tests and a setting; the
 * order rules run in comes from their metadata (`after`), not from this list.
 */
import { attachTargetMissingInRange } from './attach-target-missing-in-range';
import { bccNeedsKernelHeaders } from './bcc-needs-kernel-headers';
import { configRequired } from './config-required';
import { doesNotCompile } from './does-not-compile';
import { enumValueNotRelocated } from './enum-value-not-relocated';
import { fieldMissingInRange } from './field-missing-in-range';
import { fieldTypeChangedInRange } from './field-type-changed-in-range';
import { helperUnavailable } from './helper-unavailable';
import { invalidLintComment } from './invalid-lint-comment';
import { kernelVersionGate } from './kernel-version-gate';
import { kfuncUnavailable } from './kfunc-unavailable';
import { legacyProbeRead } from './legacy-probe-read';
import { mapTypeUnavailable } from './map-type-unavailable';
import { nonCoreFieldRead } from './non-core-field-read';
import { progTypeUnavailable } from './prog-type-unavailable';
import { rcuPtrDirectDeref } from './rcu-ptr-direct-deref';
import type { Rule } from './rule';
import { typeMissingInRange } from './type-missing-in-range';
import { unsafeKernelDeref } from './unsafe-kernel-deref';
import { RULE_GROUPS } from './groups';
import { verifierArena } from './verifier-arena';
import { verifierAtomics } from './verifier-atomics';
import { verifierBoundedLoops } from './verifier-bounded-loops';
import { verifierGlobalData } from './verifier-global-data';
import { verifierOpenCodedIterators } from './verifier-open-coded-iterators';
import { verifierSpinLockTimer } from './verifier-spin-lock-timer';

/** Every rule, sorted by id. */
export const RULES: readonly Rule[] = [
  attachTargetMissingInRange,
  bccNeedsKernelHeaders,
  configRequired,
  doesNotCompile,
  enumValueNotRelocated,
  fieldMissingInRange,
  fieldTypeChangedInRange,
  helperUnavailable,
  invalidLintComment,
  kernelVersionGate,
  kfuncUnavailable,
  legacyProbeRead,
  mapTypeUnavailable,
  nonCoreFieldRead,
  progTypeUnavailable,
  rcuPtrDirectDeref,
  typeMissingInRange,
  unsafeKernelDeref,
  verifierArena,
  verifierAtomics,
  verifierBoundedLoops,
  verifierGlobalData,
  verifierOpenCodedIterators,
  verifierSpinLockTimer,
];

/**
 * `rules` in an order where each rule runs after the rules its metadata names (`after`), ties
 * broken by id. Throws on a rule that names an unknown rule or on a cycle: both are registry bugs.
 */
export function runOrder(rules: readonly Rule[]): Rule[] {
  const byId = new Map(rules.map((r) => [r.meta.id, r]));
  const known = new Set(RULES.map((r) => r.meta.id));
  const out: Rule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (r: Rule, path: string[]) => {
    const s = state.get(r.meta.id);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`rule order: cycle ${[...path, r.meta.id].join(' → ')}`);
    state.set(r.meta.id, 'visiting');
    for (const id of [...(r.meta.after ?? [])].sort()) {
      if (!known.has(id)) throw new Error(`rule ${r.meta.id} runs after unknown rule ${id}`);
      const dep = byId.get(id);
      if (dep) visit(dep, [...path, r.meta.id]);
    }
    state.set(r.meta.id, 'done');
    out.push(r);
  };
  for (const r of [...rules].sort((a, b) => (a.meta.id < b.meta.id ? -1 : 1))) visit(r, []);
  return out;
}

/** The ids users may name in settings and comments: every rule's and every group's, sorted. */
export const RULE_IDS: readonly string[] = [...RULES.map((r) => r.meta.id), ...Object.keys(RULE_GROUPS)].sort();

/** A rule by id. */
export function ruleById(id: string): Rule | undefined {
  return RULES.find((r) => r.meta.id === id);
}
