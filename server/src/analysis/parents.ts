/**
 * Parents of syntax nodes in time independent of depth. Tree-sitter's `Node.parent` descends from
 * the root to find a node's parent, so walking up from a node `d` levels deep costs `d²`, and
 * code that asks for every node's ancestors (guards, chain modes) grows with the cube of nesting:
 * an else-if chain of 1,000 branches nests 2,000 levels. Here the parents of one top-level item
 * (a function, a declaration, a file-level `#if`) are recorded in one walk of its subtree, the
 * first time a node inside it is asked about, and kept with the tree.
 */
import type { Node, Tree } from 'web-tree-sitter';
import { OwnedCache } from './memo';

/** Node id → parent, for the top-level items walked so far. */
class ParentIndex {
  private readonly parents = new Map<number, Node | null>();
  private readonly walked = new Set<number>();
  private top: Node[] | undefined;

  constructor(private readonly tree: Tree) {}

  of(node: Node): Node | null {
    const known = this.parents.get(node.id);
    if (known !== undefined) return known;
    const root = this.tree.rootNode;
    if (node.id === root.id) return null;
    this.top ??= root.children.filter((c): c is Node => !!c);
    for (const item of this.itemsAround(node)) {
      if (this.walked.has(item.id)) continue;
      this.walk(item, root);
      const hit = this.parents.get(node.id);
      if (hit !== undefined) return hit;
    }
    // A node the walks did not meet (not of this tree's current shape): ask tree-sitter.
    const p = node.parent;
    this.parents.set(node.id, p);
    return p;
  }

  /** The top-level items whose span holds `node` (more than one only at zero-width edges). */
  private itemsAround(node: Node): Node[] {
    const items = this.top ?? [];
    let lo = 0;
    let hi = items.length;
    // The first item that ends at or after the node's start.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (items[mid].endIndex < node.startIndex) lo = mid + 1;
      else hi = mid;
    }
    const out: Node[] = [];
    for (let i = lo; i < items.length && items[i].startIndex <= node.endIndex; i++) out.push(items[i]);
    return out;
  }

  private walk(item: Node, root: Node): void {
    this.walked.add(item.id);
    this.parents.set(item.id, root);
    const cursor = item.walk();
    const stack: Node[] = [];
    try {
      for (;;) {
        // A node object only for the nodes that are parents; a leaf is known by its id alone.
        if (stack.length > 0) this.parents.set(cursor.nodeId, stack[stack.length - 1]);
        if (cursor.gotoFirstChild()) {
          cursor.gotoParent();
          stack.push(cursor.currentNode);
          cursor.gotoFirstChild();
          continue;
        }
        for (;;) {
          if (stack.length === 0) return;
          if (cursor.gotoNextSibling()) break;
          cursor.gotoParent();
          stack.pop();
        }
      }
    } finally {
      cursor.delete();
    }
  }
}

const indexes = new OwnedCache<Tree, ParentIndex>({ name: 'parents.index', owner: 'syntax tree', key: '—' });

/**
 * Forgets the parents recorded for `tree`. An analysis calls it when it ends: an open document's
 * tree lives until the next edit, and the index of a 2,000-line program holds tens of thousands
 * of nodes that only that analysis needed (a hover walks again the one item it asks about).
 */
export function releaseParents(tree: Tree): void {
  indexes.drop(tree);
}

/** The parent of `node` (null for the root), as `node.parent` answers, without its cost in depth. */
export function parentOf(node: Node): Node | null {
  const tree = node.tree;
  return indexes.get(tree, '', () => new ParentIndex(tree)).of(node);
}
