/**
 * A copy of `s` that keeps nothing else alive. A slice of a long string refers to all of it (V8
 * keeps slices as views): a name sliced from a document and kept by a cache that outlives the
 * document's version would keep that whole version alive. Prefixing a character and slicing it
 * off makes V8 copy the text into a string of its own, which the result then views.
 */
export function detached(s: string): string {
  return ` ${s}`.slice(1);
}
