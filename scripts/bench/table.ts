/**
 * The bench's summary: each figure issue 14 sets a target for, with ours, the baseline measured in
 * the same run (clangd, bpftool, one kernel), the ratio and whether the target is met. The sections
 * record figures as they measure them; `printTable` prints them last, as one table.
 */

export interface Figure {
  readonly figure: string;
  /** Our value, formatted with its unit. */
  readonly ours: string;
  /** The baseline's value, or why there is none. */
  readonly baseline: string;
  /** The ratio the target speaks of, formatted, or '—'. */
  readonly ratio: string;
  readonly target: string;
  /** undefined: not measured (a baseline or input missing). */
  readonly met: boolean | undefined;
}

const figures: Figure[] = [];

export function record(f: Figure): void {
  figures.push(f);
}

/** The figures recorded so far in this process (a section run in a child hands them back). */
export function recorded(): readonly Figure[] {
  return figures;
}

/** Tenths below 100 ms: a p95 of 15.3 ms against a 15 ms target must not print as "15 ms … not met". */
export const ms = (x: number): string => `${x < 100 ? x.toFixed(1) : x.toFixed(0)} ms`;

export function printTable(): void {
  console.log('\n# summary: issue 14 targets (2-core machine; baselines measured in this run)');
  const head: Figure = { figure: 'figure', ours: 'ours', baseline: 'baseline', ratio: 'ratio', target: 'target', met: undefined };
  const rows = [head, ...figures];
  const w = (k: keyof Figure) => Math.max(...rows.map((r) => String(r[k]).length));
  const cols: (keyof Figure)[] = ['figure', 'ours', 'baseline', 'ratio', 'target'];
  const widths = cols.map(w);
  for (const r of rows) {
    const met = r === head ? 'met' : r.met !== undefined ? (r.met ? 'met' : 'not met') : r.target.startsWith('(') ? '—' : 'not measured';
    console.log(`${cols.map((c, i) => String(r[c]).padEnd(widths[i])).join('  ')}  ${met}`);
  }
}
