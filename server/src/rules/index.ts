/** The rule registry, sorted by id. Every rule here has a doc in docs/rules/<id>.md and tests. */
import { attachTargetMissingInRange } from './attach-target-missing-in-range';
import { configRequired } from './config-required';
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

/** Rules in the order they run: a chain claimed by an earlier rule is not reported again. */
export const RULES: readonly Rule[] = [unsafeKernelDeref, nonCoreFieldRead, fieldMissingInRange, invalidLintComment,
  fieldTypeChangedInRange, typeMissingInRange, enumValueNotRelocated, rcuPtrDirectDeref,
  progTypeUnavailable, mapTypeUnavailable, attachTargetMissingInRange, configRequired,
  helperUnavailable, kfuncUnavailable, legacyProbeRead,
  // The verifier-feature-unavailable group (groups.ts), in the order its checks always ran.
  verifierBoundedLoops, verifierOpenCodedIterators, verifierGlobalData, verifierAtomics, verifierArena, verifierSpinLockTimer,
  kernelVersionGate];

/** The ids users may name in settings and comments: every rule's and every group's, sorted. */
export const RULE_IDS: readonly string[] = [...RULES.map((r) => r.meta.id), ...Object.keys(RULE_GROUPS)].sort();

/** A rule by id. */
export function ruleById(id: string): Rule | undefined {
  return RULES.find((r) => r.meta.id === id);
}
