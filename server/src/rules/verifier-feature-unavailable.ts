/**
 * `verifier-feature-unavailable`: the group of rules for constructs that older verifiers (or the
 * loader on older kernels) reject, each feature its own rule so it can be configured and
 * suppressed on its own, the group id standing for all of them (`groups.ts`):
 *
 * - `verifier-bounded-loops`: loops without `#pragma unroll` (`bounded_loops`);
 * - `verifier-open-coded-iterators`: `bpf_for()`, `bpf_for_each()`, `bpf_repeat()`
 *   (`open_coded_iterators`), per kernel by the iterator kfuncs its BTF has;
 * - `verifier-global-data`: globals, static locals, `__kconfig` externs and `bpf_printk()`
 *   (`global_data`, `kconfig_externs`), per kernel by `BPF_MAP_FREEZE` in its `enum bpf_cmd`;
 * - `verifier-atomics`: atomics with fetch (`atomics`);
 * - `verifier-spin-lock-timer`: `struct bpf_spin_lock` / `struct bpf_timer` in a map value
 *   (`spin_lock`, `bpf_timer`), per kernel by whether its BTF has the struct;
 * - `verifier-arena`: `__arena` pointers (`arena`), per kernel by `BPF_MAP_TYPE_ARENA`.
 *
 * Every floor a message quotes is the curated facts' (`features.json`, through
 * `Facts.featureSince`); a feature the facts lack keeps its rule silent, and a test fails. Version
 * floors are compared with `KernelDb.effectiveVersion`, so a kernel with backported helpers counts
 * as the version of its newest helper.
 *
 * Helper and kfunc calls that stand for a feature (`bpf_loop`, `bpf_spin_lock()`, `bpf_timer_*`,
 * `bpf_dynptr_*`, `bpf_arena_*`) are reported by helper-unavailable and kfunc-unavailable, so one
 * construct gets one finding.
 *
 * This module holds what the members share.
 */
import type { Node } from 'web-tree-sitter';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { FunctionFacts, RuleContext } from './rule';

/** The group id. */
export const VERIFIER_FEATURE_GROUP = 'verifier-feature-unavailable';

/** "N of M kernels this code runs on: …". */
export function where(missing: readonly Kernel[], kernels: readonly Kernel[]): string {
  return `${missing.length} of ${kernels.length} kernels this code runs on: ${describeKernels(missing, kernels)}`;
}

/** How many of the kernels this code runs on lack the feature: `3 of 81 kernels this code runs on`. */
export function count(missing: readonly Kernel[], kernels: readonly Kernel[]): string {
  return `${missing.length} of ${kernels.length} kernels this code runs on`;
}

/** The note a finding under a guard carries. */
export function guardedNote(ctx: RuleContext, f: FunctionFacts, n: Node): string | undefined {
  return f.guards.kernelsAt(n).size < ctx.kernels.length ? '(Checked against the kernels its guards leave.)' : undefined;
}
