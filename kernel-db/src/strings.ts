/**
 * A copy of `s` that keeps nothing else alive. A slice of a long string refers to all of it (V8
 * keeps slices as views): a name sliced from a document and kept by a cache that outlives the
 * document's version would keep that whole version alive. Prefixing a character and slicing it
 * off makes V8 copy the text into a string of its own, which the result then views.
 */
export function detached(s: string): string {
  return ` ${s}`.slice(1);
}

/**
 * `s` in double quotes for a message, its control characters escaped (a NUL or a line break in a
 * setting stays one visible line; backslashes stay as written, so a Windows path reads as one),
 * and past `max` characters cut to its start and end around `…`, never inside a surrogate pair:
 * the value is the user's, and may be 100,000 characters long.
 */
export function quoted(s: string, max = 60): string {
  const t = s.length > max ? `${headOf(s, max - 20)}…${tailOf(s, 19)}` : s;
  return `"${t.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: it finds the control characters to escape
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** The first `n` UTF-16 units of `s`, one fewer where the cut would split a surrogate pair. */
export function headOf(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

/** The last `n` UTF-16 units of `s`, one fewer where the cut would split a surrogate pair. */
export function tailOf(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(s.length - n);
  return s.slice(c >= 0xdc00 && c <= 0xdfff ? s.length - n + 1 : s.length - n);
}
