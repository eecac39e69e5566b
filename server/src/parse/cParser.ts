// Loads web-tree-sitter and the C grammar once, and parses with limits so that no input can hang
// the server.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as TreeSitter from 'web-tree-sitter';
import type { Language, Parser, Tree } from 'web-tree-sitter';
import { maskBpfMacros } from './bpfMacros';

// NOTE: esbuild resolves an `import` statement with the package's "import" condition even when it
// emits CommonJS, which bundles web-tree-sitter's ES module build; that build needs
// `import.meta.url` and fails in the CommonJS bundle. `require` selects tree-sitter.cjs, which works
// both in the bundle and under tsx. See https://esbuild.github.io/api/#conditions
const webTreeSitter = require('web-tree-sitter') as typeof TreeSitter;

/** Limits for one parse. */
export interface ParseLimits {
  /** Texts longer than this (in UTF-16 code units) are not parsed at all. */
  readonly maxChars: number;
  /** A parse that takes longer than this (in milliseconds) is abandoned. */
  readonly timeoutMs: number;
}

/**
 * Default limits: 5 Mi characters is far beyond any BPF program, and a C parse of that size takes
 * about 2 s; pathological input (binary data) is cut off after 2 s instead of running for minutes.
 */
export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxChars: 5 * 1024 * 1024, timeoutMs: 2000 };

/** The loaded C grammar and ways to parse with it. */
export interface CParser {
  /** The tree-sitter-c language. */
  readonly language: Language;
  /** The ABI version the grammar reports (recorded in grammars/PROVENANCE.md). */
  readonly abiVersion: number;
  /** Creates a new parser set to the C language; the caller deletes it. */
  createParser(): Parser;
  /**
   * Masks BPF macros and parses the text once, within the default limits (or `limits`). Returns
   * undefined when the text is too large or the parse timed out. The caller owns the tree and must
   * delete it.
   */
  parseText(text: string, limits?: Partial<ParseLimits>): Tree | undefined;
}

/** Where a WASM file may be: next to the bundle first, then in the source tree. */
function wasmCandidates(file: 'tree-sitter.wasm' | 'tree-sitter-c.wasm'): string[] {
  // In the bundle, __dirname is dist/, where scripts/build.mjs copies both files. From sources,
  // __dirname is server/src/parse/.
  const root = resolve(__dirname, '..', '..', '..');
  const fromSources = file === 'tree-sitter.wasm' ? join(root, 'node_modules', 'web-tree-sitter', file) : join(root, 'grammars', file);
  return [join(__dirname, file), fromSources];
}

/** The path of a WASM file, or an error naming every place that was tried. */
export function locateWasm(file: 'tree-sitter.wasm' | 'tree-sitter-c.wasm'): string {
  const candidates = wasmCandidates(file);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`cannot find ${file}; looked in: ${candidates.join(', ')}`);
  return found;
}

/**
 * Parses `text` (already masked) with `parser`, abandoning the parse after `timeoutMs`. Returns
 * null on timeout or if tree-sitter fails; the parser is then reset, because otherwise its next
 * parse would resume the abandoned one.
 */
export function parseWithTimeout(parser: Parser, text: string, oldTree: Tree | null, timeoutMs: number): Tree | null {
  const deadline = performance.now() + timeoutMs;
  let tree: Tree | null = null;
  try {
    // web-tree-sitter 0.25 deprecates setTimeoutMicros in favour of a progress callback that
    // returns true to cancel; it is called every few hundred bytes of input.
    tree = parser.parse(text, oldTree, { progressCallback: () => performance.now() > deadline });
  } catch {
    tree = null;
  }
  if (!tree) parser.reset();
  return tree ? counted(tree) : null;
}

/**
 * Trees parsed and not yet deleted. A tree lives in WASM memory that JavaScript's garbage
 * collector never frees, so one not deleted when it is replaced or its document closed is a leak
 * only this count shows (the language server's `ebpfPortability/stats` reports it).
 */
let live = 0;

/** How many trees parsed here are alive (not deleted). */
export function liveTrees(): number {
  return live;
}

function counted(tree: Tree): Tree {
  live++;
  const free = tree.delete.bind(tree);
  let deleted = false;
  tree.delete = () => {
    if (!deleted) {
      deleted = true;
      live--;
    }
    free();
  };
  return tree;
}

let loading: Promise<CParser> | undefined;

/**
 * Loads web-tree-sitter and the C grammar, once: later calls return the same promise (a failed load
 * is retried on the next call). Finds both WASM files next to the bundle (dist/) or in the source
 * tree (grammars/, node_modules/web-tree-sitter/).
 */
export function loadCParser(): Promise<CParser> {
  loading ??= load().catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

async function load(): Promise<CParser> {
  const runtime = locateWasm('tree-sitter.wasm');
  const grammar = locateWasm('tree-sitter-c.wasm');
  await webTreeSitter.Parser.init({ locateFile: (name: string) => (name === 'tree-sitter.wasm' ? runtime : name) });
  // Read here and handed over as bytes: the library's own file loading goes through a dynamic
  // import() of fs/promises, which ties the bundle to the ESM loader for one read.
  const language = await webTreeSitter.Language.load(new Uint8Array(await readFile(grammar)));
  const createParser = (): Parser => new webTreeSitter.Parser().setLanguage(language);
  let shared: Parser | undefined;
  return {
    language,
    abiVersion: language.abiVersion,
    createParser,
    parseText(text, limits) {
      const { maxChars, timeoutMs } = { ...DEFAULT_PARSE_LIMITS, ...limits };
      if (text.length > maxChars) return undefined;
      shared ??= createParser();
      return parseWithTimeout(shared, maskBpfMacros(text).masked, null, timeoutMs) ?? undefined;
    },
  };
}
