import type { Tree } from 'web-tree-sitter';
import type { BpfMacroSite } from '../parse/sites';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { type IncludeResolver } from '../analysis/file';
import type { Finding } from '../analysis/model';
import type { Loader } from '../analysis/loader';
import { type RuleSetting } from './settings';
/** Findings of functions from the previous analysis of a document, for reuse. */
export declare class AnalysisCache {
  /** Key (file signature + function text) → findings relative to the function's start. */
  entries: Map<string, Finding[]>;
  /** Hits and misses of the last analysis (for tests and benchmarks). */
  stats: {
    hits: number;
    misses: number;
  };
}
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
  /** Reuse findings of unchanged functions from the previous analysis of this document. */
  readonly cache?: AnalysisCache;
  /** The loader (default libbpf 1.0). */
  readonly loader?: Loader;
  /** The BPF macro sites of `text`, when the caller has them (saves masking the text again). */
  readonly sites?: readonly BpfMacroSite[];
}
/** Analyses a file and returns its findings, sorted by position. */
export declare function analyze(input: AnalysisInput): Finding[];
