/** Plain-text tables for terminal output. */

/** Renders rows under a header, columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** `yes`, `no` or `?` for a tri-state answer. */
export function yesNo(v: boolean | null): string {
  return v === null ? '?' : v ? 'yes' : 'no';
}
