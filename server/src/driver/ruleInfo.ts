/**
 * What the command line's reports need of the rules layer, handed through the driver (the CLI
 * sits above the driver and imports no rule directly): every rule's metadata, for SARIF's rule
 * table, and a file's programs as the rules see them, for the portability report.
 */
import { RULES } from '../rules';
import type { RuleMeta } from '../rules/rule';

export { attachPoints, usesTrampoline, type AttachPoint } from '../rules/attach-points';

/** Every rule's metadata, sorted by id. */
export const RULE_METAS: readonly RuleMeta[] = RULES.map((r) => r.meta);
