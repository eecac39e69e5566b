/**
 * What a rule is: metadata users see (its public id is used in settings and suppression
 * comments) beside a check over the analysed file.
 */
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import type { Chain } from '../analysis/chains';
import type { FileModel, FunctionInfo } from '../analysis/file';
import type { LineIndex } from '../analysis/lines';
import type { Finding, Fix, Range, Severity } from '../analysis/model';
import type { ProgramContext } from '../analysis/program';
import type { Guards } from '../analysis/guards';
import type { Loader } from '../analysis/loader';
import type { FunctionScope, TypeEnv } from '../analysis/scope';
import type { Node } from 'web-tree-sitter';

/** A rule's public description. */
export interface RuleMeta {
  /** Lowercase kebab id naming the flagged construct. */
  readonly id: string;
  readonly description: string;
  readonly defaultSeverity: Severity;
  readonly fixable: boolean;
  /**
   * Rules that run before this one: a member chain one of them claimed (reported) is not
   * reported by this rule, so one construct gets one finding. The run order follows from these.
   */
  readonly after?: readonly string[];
}

/** Member chains reported so far in a function, as a rule sees them. */
export interface ChainClaims {
  /** Whether a rule this rule runs `after` reported the chain. */
  has(chain: Chain): boolean;
  /** Records that this rule reported the chain. */
  add(chain: Chain): void;
}

/** One analysed function. */
export interface FunctionFacts {
  readonly fn: FunctionInfo;
  readonly ctx: ProgramContext;
  readonly scope: FunctionScope;
  /** Member chains written as C (`a->b->c`). */
  readonly chains: Chain[];
  /** Member chains spelled as CO-RE macro arguments (`BPF_CORE_READ(a, b, c)`). */
  readonly macroChains: Chain[];
  /** Which target kernels each node of the function runs on. */
  readonly guards: Guards;
}

/** What a rule sees, and how it reports. */
export interface RuleContext {
  readonly model: FileModel;
  readonly env: TypeEnv;
  readonly db: KernelDb;
  /** The target kernels. */
  readonly kernels: readonly Kernel[];
  readonly lines: LineIndex;
  /** The loader that will load the program (libbpf rewrites some helpers; BCC compiles on the host). */
  readonly loader: Loader;
  /** Source text of a node. */
  text(n: Node): string;
  /** Range of a node. */
  range(n: Node): Range;
  /**
   * Reports a finding at a node, or at a `span` of UTF-16 offsets (for text no node covers, such
   * as a `SEC()` string or a comment); the rule id and configured severity are filled in.
   */
  report(
    f: ({ node: Node } | { span: { start: number; end: number } }) & {
      message: string;
      kernels: string[];
      fixes?: Fix[];
      severity?: Severity;
      related?: Finding['related'];
      /** The nodes whose execution fails, when not `node` itself (see {@link Finding.uses}). */
      uses?: readonly Node[];
    },
  ): void;
  /** Every rule and group id the registry knows (for comments that name rules). */
  readonly ruleIds: readonly string[];
  /** Chains already reported by the rules this one runs after (so one construct gets one finding). */
  readonly claimed: ChainClaims;
}

/**
 * A rule. `checkFunction` sees one function at a time, so its findings can be reused while the
 * function's text (and everything outside function bodies) is unchanged; `checkFile` sees the rest.
 */
export interface Rule {
  readonly meta: RuleMeta;
  checkFunction?(ctx: RuleContext, f: FunctionFacts): void;
  checkFile?(ctx: RuleContext): void;
}
