/**
 * Texts that are not analysed, and why: binary content (a NUL byte or mostly control
 * characters), a line longer than any written C has (generated or minified text), or more lines
 * than any BPF program. Such a text would cost the parser and the analysis time and memory out of
 * proportion (a 5 MB line, 178,000 lines of repeated programs) for no finding anyone can use, so
 * the language server and the CLI say why they skip it instead. The size limit itself is
 * `DEFAULT_PARSE_LIMITS.maxChars` (cParser.ts).
 */

/** The longest line analysed, in UTF-16 code units (real BPF C stays under 200). */
export const MAX_LINE_CHARS = 64 * 1024;
/** The most lines analysed (the largest BPF C programs have about 2,000). */
export const MAX_LINES = 50_000;
/** How much of the text's start is looked at for control characters. */
const SNIFF = 64 * 1024;
// biome-ignore lint/suspicious/noControlCharactersInRegex: it finds control characters to tell binary content
const CONTROL = /[\x00-\x08\x0e-\x1f\x7f\ufffd]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: as above, every one of them
const CONTROLS = /[\x00-\x08\x0e-\x1f\x7f\ufffd]/g;

/**
 * Why `text` is not analysed, or undefined when it is. `lineStarts` (each line's first offset,
 * as the editor counts lines), when the caller has them, save scanning the text for lines again.
 */
export function unanalysable(text: string, lineStarts?: readonly number[]): string | undefined {
  const nul = text.indexOf('\0');
  if (nul >= 0) return `binary content (a NUL byte at offset ${nul}), not C source`;
  const sniff = Math.min(text.length, SNIFF);
  // Control characters other than tab, line feed, vertical tab, form feed and carriage return
  // (the regular expression scans natively; source text has none, so nothing is collected).
  const head = text.length > SNIFF ? text.slice(0, SNIFF) : text;
  const control = CONTROL.test(head) ? (head.match(CONTROLS)?.length ?? 0) : 0;
  if (sniff >= 512 && control * 10 > sniff)
    return `binary content (${Math.round((control * 100) / sniff)}% control characters), not C source`;
  if (lineStarts) {
    if (lineStarts.length > MAX_LINES)
      return `more than ${MAX_LINES.toLocaleString('en-US')} lines (${lineStarts.length.toLocaleString('en-US')}): larger than any BPF program`;
    for (let l = 0; l < lineStarts.length; l++) {
      // A line's length without its `\n`.
      const len = (l + 1 < lineStarts.length ? lineStarts[l + 1] - 1 : text.length) - lineStarts[l];
      if (len > MAX_LINE_CHARS)
        return `line ${l + 1} has ${len.toLocaleString('en-US')} characters (the limit is ${MAX_LINE_CHARS.toLocaleString('en-US')}): generated or minified text`;
    }
    return undefined;
  }
  let lines = 1;
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end - start > MAX_LINE_CHARS)
      return `line ${lines} has ${(end - start).toLocaleString('en-US')} characters (the limit is ${MAX_LINE_CHARS.toLocaleString('en-US')}): generated or minified text`;
    if (nl < 0) break;
    start = nl + 1;
    if (++lines > MAX_LINES)
      return `more than ${MAX_LINES.toLocaleString('en-US')} lines (${countLines(text).toLocaleString('en-US')}): larger than any BPF program`;
  }
  return undefined;
}

function countLines(text: string): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** A `vmlinux.h` by name (bpftool's dump, or a project's per-version copy). */
const VMLINUX_DOCUMENT = /(^|[/\\])vmlinux[^/\\]*\.h$/;

/**
 * Why a document is not parsed because of what it is, whatever its size: a `vmlinux.h` holds the
 * kernel's type declarations (megabytes of them), is not a BPF program, and the programs that
 * include it are analysed with those types from the kernel database, never from the header.
 */
export function notAProgram(uri: string): string | undefined {
  return VMLINUX_DOCUMENT.test(uri)
    ? 'a vmlinux.h (kernel type declarations) is not a BPF program; programs including it are analysed against the kernel database'
    : undefined;
}
