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
import { verifierFeatureUnavailable } from './verifier-feature-unavailable';

/** Rules in the order they run: a chain claimed by an earlier rule is not reported again. */
export const RULES: readonly Rule[] = [unsafeKernelDeref, nonCoreFieldRead, fieldMissingInRange, invalidLintComment,
  fieldTypeChangedInRange, typeMissingInRange, enumValueNotRelocated, rcuPtrDirectDeref,
  progTypeUnavailable, mapTypeUnavailable, attachTargetMissingInRange, configRequired,
  helperUnavailable, kfuncUnavailable, legacyProbeRead, verifierFeatureUnavailable, kernelVersionGate];

/** Rule ids, sorted. */
export const RULE_IDS: readonly string[] = RULES.map((r) => r.meta.id).sort();

/** A rule by id. */
export function ruleById(id: string): Rule | undefined {
  return RULES.find((r) => r.meta.id === id);
}
