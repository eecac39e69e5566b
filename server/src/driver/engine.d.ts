import type { Tree } from 'web-tree-sitter';
import type { BpfMacroSite } from '../parse/sites';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { type HoverInfo } from '../analysis/hover';
import { AnalysisCache } from './analyze';
import type { Finding } from '../analysis/model';
import { type Settings } from './settings';
/** Parses C text (with the BPF macro layer); returns undefined for text it will not parse. */
export type ParseFn = (text: string) => Tree | undefined;
/** Result of analysing one document. */
export interface DocumentResult {
  readonly findings: Finding[];
  readonly kernels: readonly Kernel[];
  /** Problems with settings (bad target spec…), to show the user once. */
  readonly problems: string[];
}
/** Shared analysis state. */
export declare class Engine {
  readonly db: KernelDb;
  private readonly parse;
  private readonly targetCache;
  /**
   * Local headers by path: valid while the file's mtime and size are the same and every header it
   * includes still has the fingerprint it had (so a change two includes down is seen too).
   */
  private readonly headers;
  private readonly caches;
  constructor(db: KernelDb, parse: ParseFn);
  /** The kernels a document's settings select; a bad spec falls back to the default. */
  targets(settings: Settings): {
    kernels: Kernel[];
    problem?: string;
  };
  /**
   * Analyses a parsed document. With `reuse`, findings of functions unchanged since the
   * document's previous analysis are reused (the language server passes it; one-shot callers don't).
   */
  analyzeDocument(
    uri: string,
    text: string,
    tree: Tree,
    settings: Settings,
    reuse?: boolean,
    sites?: readonly BpfMacroSite[],
  ): DocumentResult;
  /** The model of a local header `#include "path"` seen from document `from`, read from disk. */
  private header;
  /** Availability of what is at `offset` (a member, helper, kfunc, struct or SEC name), for hovers. */
  hover(uri: string, text: string, tree: Tree, settings: Settings, offset: number): HoverInfo | undefined;
  /** Drops what was kept for a document (it was closed). */
  forget(uri: string): void;
  /** Reuse statistics of a document's last analysis. */
  cacheStats(uri: string): AnalysisCache['stats'] | undefined;
  /** Frees parsed headers. */
  dispose(): void;
}
/** A filesystem path from a `file://` URI or a plain path; undefined for other schemes. */
export declare function toPath(uri: string): string | undefined;
