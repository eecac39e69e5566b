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
 * `s` in double quotes for a message, escaped as JSON escapes a string (a NUL or a line break in a
 * setting stays one line), and past `max` characters cut to its start and end around `…`: the
 * value is the user's, and may be 100,000 characters long.
 */
export function quoted(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max - 20)}…${s.slice(s.length - 19)}` : s);
}
