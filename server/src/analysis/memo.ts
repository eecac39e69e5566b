/**
 * Memoised answers that cannot go stale: each entry lives with its owner object (a file model, a
 * kernel database, a database answer), which is immutable while anyone holds it, so there is
 * nothing to invalidate by hand. A new text gives a new file model; a kernel imported or removed
 * gives a new database. Every such cache is created here with a name, its owner and its key, and
 * ARCHITECTURE.md ("Caches") lists them all beside the caches that live inside one object.
 */

import { detached } from '../../../kernel-db/src/strings';

/** What a cache is for: shown in ARCHITECTURE.md and checked by test/tidy.test.ts. */
export interface CacheInfo {
  /** Unique, e.g. `calls.graph`. */
  readonly name: string;
  /** What the entries live with (and are dropped with). */
  readonly owner: string;
  /** What distinguishes entries under one owner. */
  readonly key: string;
}

const registry: CacheInfo[] = [];

/** Every owned cache created so far (all are created when their modules load). */
export function ownedCaches(): readonly CacheInfo[] {
  return registry;
}

/**
 * The owner of caches keyed by text alone: their entries hold for any file (what a function's
 * own text says, say), so they live with the process, bounded by their limit. Like every owned
 * cache, they keep copies of their keys ({@link detached}): a key sliced from a document would
 * keep that whole version of the document alive, one for every edit, as long as the entry.
 */
export const TEXT_KEYED: object = Object.freeze({});

export { detached };

/** Adds a cache to the registry; names are unique. */
function register(info: CacheInfo): void {
  if (registry.some((c) => c.name === info.name)) throw new Error(`cache ${info.name} is declared twice`);
  registry.push(info);
}

/** One value per owner object: an owned cache without a key (no map per owner). */
export class OwnedValue<O extends object, V> {
  private readonly byOwner = new WeakMap<O, V>();

  constructor(readonly info: CacheInfo) {
    register(info);
  }

  /** The value of `owner`, computed by `compute` the first time. */
  get(owner: O, compute: () => V): V {
    const v = this.byOwner.get(owner);
    if (v !== undefined || this.byOwner.has(owner)) return v as V;
    const computed = compute();
    this.byOwner.set(owner, computed);
    return computed;
  }
}

/** A cache of values per owner object and string key. */
export class OwnedCache<O extends object, V> {
  private readonly byOwner = new WeakMap<O, Map<string, V>>();

  /** `limit` bounds the entries kept per owner (the map starts over when full). */
  constructor(
    readonly info: CacheInfo,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {
    register(info);
  }

  /** Drops every entry of `owner` (for an owner that outlives the use of its entries). */
  drop(owner: O): void {
    this.byOwner.delete(owner);
  }

  /** The value for `key` under `owner`, computed by `compute` the first time. */
  get(owner: O, key: string, compute: () => V): V {
    let m = this.byOwner.get(owner);
    if (!m) this.byOwner.set(owner, (m = new Map()));
    if (m.has(key)) return m.get(key) as V;
    const v = compute();
    if (m.size >= this.limit) m.clear();
    // A copy of the key: one built from a document's names may hold a slice of that document,
    // and an owner may outlive it (the process, the kernel database).
    m.set(detached(key), v);
    return v;
  }
}
