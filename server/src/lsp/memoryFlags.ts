/**
 * V8 settings the language server's launcher (boot.ts) sets before the server's bundle runs, to
 * bound the server's memory. Only the process that starts Node can size V8's heap on the command
 * line, and editors start the server without flags, so these are the settings V8 also reads while
 * it runs:
 *
 * - `--liftoff-only`: WebAssembly stays on V8's baseline compiler. The parser's hot code (the C
 *   grammar's lexer, one very large function) was otherwise recompiled by the optimizing compiler
 *   during the first large parse, which held ~40 MB at its peak and took ~60 ms; a full parse of
 *   the 2,000-line bench file is then ~21 ms instead of ~12 ms once optimized, and an incremental
 *   one (what typing runs) ~0.2 ms either way.
 * - the young generation stops growing at {@link YOUNG_GENERATION_CAP} bytes: V8 otherwise doubles
 *   it up to 32 MiB while a large file is analysed, and keeps that memory. Whether it may grow is
 *   decided after each collection (`--semi-space-growth-factor`: 1 stops it, V8's default 2
 *   doubles it), so a young generation V8 shrank on its own may grow back to the cap.
 *
 * V8's code cache records the flags it was made under, and refuses a cache whose flags differ;
 * {@link MemoryFlags.settle} puts the growth factor back to the value the start had before the
 * launcher writes its cache.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/**
 * The size of the young generation (both halves) past which it stops growing: 16 MiB. Measured on
 * the 2,000-line bench file (201 edits) and 20 open documents: V8's own 32 MiB costs ~275 ms of
 * scavenges and a peak of ~196 MiB; 16 MiB ~350 ms (0.4 ms an edit) and ~177 MiB; 8 MiB ~470 ms
 * (1 ms an edit) and ~169 MiB. Typing that inserts (every token after the edit is a new object
 * that survives) pays more: ~650 ms against ~360 ms over 200 keystrokes at 16 MiB, 1.4 ms each,
 * with no change in the 95th percentile.
 */
export const YOUNG_GENERATION_CAP = 16 * 1024 * 1024;

/** V8's own `--semi-space-growth-factor`. */
const V8_GROWTH_FACTOR = 2;

/** The young generation's size now, in bytes (both halves). */
export function youngGenerationSize(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

export interface MemoryFlags {
  /** Stops watching collections and restores the flags as they were when the bundle was compiled. */
  settle(): void;
}

/** Sets the flags above; `EBPF_PORTABILITY_V8_FLAGS=off` leaves V8 as Node started it. */
export function boundMemory(env: NodeJS.ProcessEnv = process.env): MemoryFlags {
  if (env.EBPF_PORTABILITY_V8_FLAGS === 'off') return { settle: () => undefined };
  setFlagsFromString('--liftoff-only');
  let growing = true;
  const observer = new PerformanceObserver(() => {
    const grow = youngGenerationSize() < YOUNG_GENERATION_CAP;
    if (grow === growing) return;
    growing = grow;
    setFlagsFromString(`--semi-space-growth-factor=${grow ? V8_GROWTH_FACTOR : 1}`);
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    settle() {
      observer.disconnect();
      if (!growing) setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH_FACTOR}`);
      growing = true;
    },
  };
}
