/**
 * Terminal styling and compiler-style diagnostics: colour only where a person reads the output
 * (stdout is a TTY, unless `NO_COLOR`; `FORCE_COLOR` turns it on anywhere), and positions in
 * UTF-8 bytes, as gcc and clang print them, so `file:line:col` means the same to every tool.
 */

/** Whether output written to a stream should be coloured, from the environment and the stream. */
export function colorWanted(env: NodeJS.ProcessEnv, isTTY: boolean | undefined): boolean {
  // https://force-color.org: FORCE_COLOR set to anything but "0" / "false" forces colour;
  // https://no-color.org: NO_COLOR set to a non-empty value turns it off.
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '0' && force !== 'false') return true;
  if (force === '0' || force === 'false') return false;
  if (env.NO_COLOR) return false;
  if (env.TERM === 'dumb') return false;
  return isTTY === true;
}

/** SGR codes for the few styles the CLI uses; with colour off each is the identity. */
export interface Style {
  bold(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  green(s: string): string;
  dim(s: string): string;
}

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;

/** The styles, coloured or plain. */
export function style(color: boolean): Style {
  const id = (s: string) => s;
  if (!color) return { bold: id, red: id, yellow: id, cyan: id, green: id, dim: id };
  return { bold: sgr(1, 22), red: sgr(31, 39), yellow: sgr(33, 39), cyan: sgr(36, 39), green: sgr(32, 39), dim: sgr(2, 22) };
}

/** The 1-based UTF-8 byte column of UTF-16 offset `character` in `line` (as compilers count). */
export function byteColumn(line: string, character: number): number {
  return Buffer.byteLength(line.slice(0, Math.min(character, line.length)), 'utf8') + 1;
}

/**
 * A source excerpt under a diagnostic, as gcc prints it: the line with its number, then a caret
 * under the first character of the range and `~` under the rest of it on that line. Tabs of the
 * line are kept in the marker line so the caret sits under the right character in any terminal.
 */
export function excerpt(
  lines: readonly string[],
  range: { start: { line: number; character: number }; end: { line: number; character: number } },
  st: Style,
): string {
  const text = lines[range.start.line];
  if (text === undefined) return '';
  const line = text.replace(/\r$/, '');
  const from = Math.min(range.start.character, line.length);
  const to = range.end.line === range.start.line ? Math.max(from + 1, Math.min(range.end.character, line.length)) : line.length;
  const pad = [...line.slice(0, from)].map((c) => (c === '\t' ? '\t' : ' ')).join('');
  const width = Math.max(1, [...line.slice(from, to)].length);
  const num = String(range.start.line + 1);
  const gutter = ' '.repeat(Math.max(5, num.length + 1));
  return `${num.padStart(gutter.length)} | ${line}\n${gutter} | ${pad}${st.green(`^${'~'.repeat(width - 1)}`)}\n`;
}
