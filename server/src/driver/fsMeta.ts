/**
 * What the file system says of paths (`stat`) and directories (their names), kept for a moment.
 *
 * Every analysis asks the same questions again: where each include is, and whether it changed;
 * which project files sit in the directories above; which loaders sit beside the program. In an
 * editor an analysis runs on every keystroke, and in a real tree the answers cost a few hundred
 * system calls each time (bcc's libbpf-tools: 66 user-space C files beside each program, ~0.4 ms).
 * With `ttlMs` > 0 an answer is reused for that long, and {@link clear} drops them all: the
 * language server calls it when the client says files changed, or a document was saved. With
 * `ttlMs` 0 (the CLI, the tests) every question goes to the disk.
 */
import { readdirSync, type Stats, statSync } from 'node:fs';
import { detached } from '../../../kernel-db/src/strings';

/** Answers kept at most; past it all are dropped (a tree walked once should not stay in memory). */
const MAX_ENTRIES = 8192;

/** An error the disk gave, kept to be given again (callers tell `ELOOP`, `EACCES`… apart by `code`). */
interface Failure {
  readonly code: string | undefined;
  readonly message: string;
}

type Entry<T> = { readonly at: number; readonly value?: T; readonly failure?: Failure };

export class FsMeta {
  private readonly stats = new Map<string, Entry<Stats | undefined>>();
  private readonly listings = new Map<string, Entry<readonly string[]>>();

  /** @param ttlMs how long an answer is reused, in milliseconds; 0 asks the disk every time. */
  constructor(public ttlMs = 0) {}

  /** `statSync(path)`, undefined where nothing is; other failures (a link loop, a refusal) throw. */
  stat(path: string): Stats | undefined {
    return this.answer(this.stats, path, () => statSync(path, { throwIfNoEntry: false }));
  }

  /** `readdirSync(dir)`: the names in `dir`; throws where it cannot be listed. */
  names(dir: string): readonly string[] {
    return this.answer(this.listings, dir, () => readdirSync(dir));
  }

  /** Forgets every answer: the next question of each path goes to the disk. */
  clear(): void {
    this.stats.clear();
    this.listings.clear();
  }

  /** Answers kept now (the server's memory report). */
  get size(): number {
    return this.stats.size + this.listings.size;
  }

  private answer<T>(map: Map<string, Entry<T>>, key: string, ask: () => T): T {
    if (this.ttlMs <= 0) return ask();
    const now = performance.now();
    let e = map.get(key);
    if (!e || now - e.at > this.ttlMs) {
      try {
        e = { at: now, value: ask() };
      } catch (err) {
        const x = err as NodeJS.ErrnoException;
        e = { at: now, failure: { code: x.code, message: x.message } };
      }
      if (map.size >= MAX_ENTRIES) map.clear();
      // A path may be built from an include's text: the key must not keep the document alive.
      map.set(detached(key), e);
    }
    if (e.failure) throw Object.assign(new Error(e.failure.message), { code: e.failure.code });
    return e.value as T;
  }
}
