/**
 * One analysis of one file against a set of target kernels: build the file model, type every
 * function, find member chains, run the rules, apply severities. Plain data in, plain data out;
 * the language server and the CLI both call this.
 */
import type { Node, Tree } from 'web-tree-sitter';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { RULES } from '../rules';
import type { FunctionFacts, RuleContext } from '../rules/rule';
import { findChains, type Chain } from './chains';
import { buildFileModel, type IncludeResolver } from './file';
import { LineIndex } from './lines';
import type { Finding, Severity } from './model';
import { functionContexts } from './program';
import { FunctionScope, TypeEnv } from './scope';

/** A rule's configured severity, or `off`. */
export type RuleSetting = Severity | 'off';

/** Everything one analysis needs. */
export interface AnalysisInput {
  readonly uri: string;
  readonly text: string;
  readonly tree: Tree;
  readonly db: KernelDb;
  readonly kernels: readonly Kernel[];
  readonly resolveInclude?: IncludeResolver;
  /** Per-rule severity overrides. */
  readonly rules?: Readonly<Record<string, RuleSetting>>;
}

/** Analyses a file and returns its findings, sorted by position. */
export function analyze(input: AnalysisInput): Finding[] {
  const { text, tree, db, kernels } = input;
  if (kernels.length === 0) return [];
  const model = buildFileModel(input.uri, text, tree, input.resolveInclude);
  const env = new TypeEnv(model, db);
  const lines = new LineIndex(text);
  const contexts = functionContexts(model, db.facts);
  const functions: FunctionFacts[] = model.functions.map((fn) => {
    const ctx = contexts.get(fn)!;
    const scope = new FunctionScope(env, fn, ctx);
    return { fn, ctx, scope, chains: fn.body ? findChains(fn.body, scope, text) : [] };
  });
  const findings: Finding[] = [];
  const claimed = new Set<Chain>();
  for (const rule of RULES) {
    const setting = input.rules?.[rule.meta.id];
    if (setting === 'off') continue;
    const ctx: RuleContext = {
      model, env, db, kernels, lines, functions, claimed,
      text: (n: Node) => text.slice(n.startIndex, n.endIndex),
      range: (n: Node) => lines.range(n.startIndex, n.endIndex),
      report: (f) => {
        // A rule lowers a finding to info when no target kernel breaks; otherwise the setting wins.
        const severity = f.severity === 'info' ? 'info' : setting ?? f.severity ?? rule.meta.defaultSeverity;
        findings.push({
          rule: rule.meta.id, severity, message: f.message, range: lines.range(f.node.startIndex, f.node.endIndex),
          kernels: f.kernels, fixes: f.fixes ?? [], ...(f.related ? { related: f.related } : {}),
        });
      },
    };
    rule.check(ctx);
  }
  return findings.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character || (a.rule < b.rule ? -1 : 1));
}
