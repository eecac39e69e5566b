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
  let t = s;
  if (s.length > max) {
    let head = max - 20;
    let tail = s.length - 19;
    if (isHighSurrogate(s.charCodeAt(head - 1))) head--;
    if (isLowSurrogate(s.charCodeAt(tail))) tail++;
    t = `${s.slice(0, head)}…${s.slice(tail)}`;
  }
  return `"${t.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: it finds the control characters to escape
const CONTROL = /[\u0000-\u001f\u007f]/g;
const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;
