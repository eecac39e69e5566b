/**
 * The answers of the database's per-kernel queries, kept per query, arguments and kernel list:
 * rules ask the same questions about the same target on every keystroke. The database is
 * immutable once open (a kernel added or removed opens a new one), so nothing goes stale; the
 * cache is bounded and starts over when full. Answers are shared and frozen.
 */

import { detached } from '../strings';

/** What the cache needs of a kernel: its id in the open database. */
interface HasId {
  readonly id: number;
}

/** Entries kept before the cache starts over. */
const LIMIT = 20_000;

export class AnswerCache {
  private readonly answers = new Map<string, unknown>();
  /**
   * A kernel list's number, found once per list object (targets are reused arrays): lists with
   * the same kernels share it, and a key holds it instead of every kernel's id.
   */
  private listKeys = new WeakMap<readonly HasId[], number>();
  private readonly listNumbers = new Map<string, number>();
  /** Counts the times the cache started over: list numbers are only valid within one. */
  private round = 0;

  /**
   * The answer of `query(args…, kernels)`, computed by `compute` the first time it is asked.
   * `compute` gets copies of `args` of their own: an answer kept here outlives the document a name
   * was sliced from, and must not keep that document alive through the name.
   */
  get<T>(query: string, args: readonly string[], kernels: readonly HasId[], compute: (...args: string[]) => T): T {
    if (this.answers.size >= LIMIT) {
      // Start over, list numbers too (those of lists no longer held would only grow the map).
      this.answers.clear();
      this.listNumbers.clear();
      this.listKeys = new WeakMap();
      this.round++;
    }
    let list = this.listKeys.get(kernels);
    if (list === undefined) {
      const ids = kernels.map((k) => k.id).join(',');
      list = this.listNumbers.get(ids);
      if (list === undefined) this.listNumbers.set(ids, (list = this.listNumbers.size));
      this.listKeys.set(kernels, list);
    }
    // NUL cannot occur in a C identifier, a CONFIG name or a section name.
    const key = `${query}\u0000${args.join('\u0000')}\u0000${list}`;
    if (this.answers.has(key)) return this.answers.get(key) as T;
    const round = this.round;
    const r = compute(...args.map(detached));
    // A nested query that started the cache over renumbered the lists: this key may now name another.
    // The key, a copy of its own: built from the arguments, it may hold a slice of a document.
    if (round === this.round) this.answers.set(detached(key), Object.freeze(r));
    else Object.freeze(r);
    return r;
  }
}
