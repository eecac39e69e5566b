/** "Did you mean" suggestions: the known names nearest to a misspelt one by edit distance. */

/** Edit distance between `a` and `b`: insertions, deletions, substitutions and swaps of neighbours. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/**
 * Up to `max` names of `known` close to `name`: within a third of its length in edits (at least
 * two), or containing it / contained in it; nearest first, then alphabetically.
 */
export function nearest(name: string, known: Iterable<string>, max = 3): string[] {
  const limit = Math.max(2, Math.floor(name.length / 3));
  const scored: [string, number][] = [];
  for (const k of new Set(known)) {
    if (k === name) continue;
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    const sub = name.length >= 3 && (k.includes(name) || name.includes(k)) && k.length >= 3;
    if (d <= limit || sub) scored.push([k, sub ? Math.min(d, limit) : d]);
  }
  return scored
    .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))
    .slice(0, max)
    .map(([k]) => k);
}
