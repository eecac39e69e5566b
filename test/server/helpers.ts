/**
 * Shared helpers of the parsing tests: the corpus of BPF shapes, the loaded C parser, and ways to
 * look at a tree (its ERROR/MISSING nodes, a dump with every node's type and position).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Node, Tree } from 'web-tree-sitter';

/** The repository root. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/** The corpus of BPF macro shapes. */
export const SHAPES_DIR = join(REPO_ROOT, 'test', 'fixtures', 'shapes');

/** Every corpus file, by file name, in name order. */
export function corpus(): Array<{ name: string; text: string }> {
  return readdirSync(SHAPES_DIR)
    .filter((f) => f.endsWith('.c'))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(SHAPES_DIR, name), 'utf8') }));
}

/** Every ERROR or MISSING node, as `ERROR 3:4 "text"` with 1-based line and column. */
export function syntaxErrors(tree: Tree): string[] {
  const out: string[] = [];
  const walk = (n: Node): void => {
    if (n.isError || n.isMissing) {
      out.push(
        `${n.isMissing ? `MISSING ${n.type}` : 'ERROR'} ${n.startPosition.row + 1}:${n.startPosition.column + 1} ${JSON.stringify(n.text.slice(0, 60))}`,
      );
    }
    if (!n.hasError && !n.isMissing) return;
    for (const c of n.children) if (c) walk(c);
  };
  walk(tree.rootNode);
  return out;
}

/**
 * Every node of the tree, one line each, with its type, field name, offsets and points. Two trees
 * with equal dumps have the same structure and the same positions, which an S-expression alone
 * does not show.
 */
export function dumpTree(tree: Tree): string {
  const lines: string[] = [];
  const cursor = tree.walk();
  try {
    let depth = 0;
    for (;;) {
      const n = cursor.currentNode;
      const field = cursor.currentFieldName;
      lines.push(
        `${' '.repeat(depth)}${field ? `${field}: ` : ''}${n.type}${n.isMissing ? ' MISSING' : ''} ` +
          `[${n.startIndex}-${n.endIndex}] ${n.startPosition.row}:${n.startPosition.column}-${n.endPosition.row}:${n.endPosition.column}`,
      );
      if (cursor.gotoFirstChild()) {
        depth++;
        continue;
      }
      while (!cursor.gotoNextSibling()) {
        if (!cursor.gotoParent()) return lines.join('\n');
        depth--;
      }
    }
  } finally {
    cursor.delete();
  }
}

/** The first node (in document order) whose type is `type` and whose text is `text`. */
export function findNode(tree: Tree, type: string, text: string): Node | null {
  const walk = (n: Node): Node | null => {
    if (n.type === type && n.text === text) return n;
    for (const c of n.children) {
      const hit = c && walk(c);
      if (hit) return hit;
    }
    return null;
  };
  return walk(tree.rootNode);
}

/** A deterministic pseudo-random generator (the kernel-db tests' mulberry32), so failures reproduce. */
export { prng as rng } from '../kernel-db/helpers';
