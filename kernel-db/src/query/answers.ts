/**
 * The answers of the database's per-kernel queries, kept per query, arguments and kernel list:
 * rules ask the same questions about the same target on every keystroke. The database is
 * immutable once open (a kernel added or removed opens a new one), so nothing goes stale; the
 * cache is bounded and starts over when full. Answers are shared and frozen.
 */

/** What the cache needs of a kernel: its id in the open database. */
interface HasId {
  readonly id: number;
}

/** Entries kept before the cache starts over. */
const LIMIT = 20_000;

export class AnswerCache {
  private readonly answers = new Map<string, unknown>();
  /** A kernel list's key, computed once per list object (targets are reused arrays). */
  private readonly listKeys = new WeakMap<readonly HasId[], string>();

  /** The answer of `query(args…, kernels)`, computed by `compute` the first time it is asked. */
  get<T>(query: string, args: readonly string[], kernels: readonly HasId[], compute: () => T): T {
    let list = this.listKeys.get(kernels);
    if (list === undefined) this.listKeys.set(kernels, (list = kernels.map((k) => k.id).join(',')));
    // NUL cannot occur in a C identifier, a CONFIG name or a section name.
    const key = `${query}\u0000${args.join('\u0000')}\u0000${list}`;
    if (this.answers.has(key)) return this.answers.get(key) as T;
    const r = compute();
    if (this.answers.size >= LIMIT) this.answers.clear();
    this.answers.set(key, Object.freeze(r));
    return r;
  }
}
