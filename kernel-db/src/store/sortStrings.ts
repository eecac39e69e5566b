/**
 * Orders a list of strings that may repeat a text, as a store's string table needs them: each
 * text once, in UTF-16 code-unit order (the order of `<` and of the default
 * `Array.prototype.sort`), and each id's place in that order.
 *
 * A kernel's names are ASCII. Their bytes are laid end to end once; ids are then placed by their
 * first two bytes by counting, and sorted within each place without a comparator call per pair: a
 * string's next few bytes and its place are packed into one number, which the engine sorts
 * natively, and each run of strings that agree on those bytes is sorted again by the bytes after
 * them. For an import's ~166,000 strings this takes ~45–60 ms here (~70–85 ms in a process's
 * first import), against ~90–180 ms for a native sort of the strings and a map from each text
 * back to its place.
 */

export interface RankedStrings {
  /** Each text once, in order. */
  readonly strings: string[];
  /** The place in {@link strings} of each id's text. */
  readonly rank: Int32Array;
}

/** Runs this short are sorted by comparing bytes, one insertion at a time. */
const SHORT = 12;

/** The buckets of the first pass: every pair of a first and a second key byte. */
const BUCKETS = 128 * 128;

/** Ranks `list` (see the module's comment). */
export function rankStrings(list: readonly string[]): RankedStrings {
  const n = list.length;
  const joined = list.join('');
  const bytes = Buffer.from(joined, 'latin1');
  // A key packs each byte + 1 (0 is past the end) in 7 bits: bytes 0–126 fit, which every
  // kernel name does; anything else (DEL, or beyond ASCII) is sorted by comparing.
  const fits = Buffer.byteLength(joined, 'utf8') === joined.length && !joined.includes('\u007f');
  const order = fits ? byBytes(list, bytes) : byComparing(list);
  const strings: string[] = [];
  const rank = new Int32Array(n);
  let prev: string | undefined;
  for (let i = 0; i < n; i++) {
    const s = list[order[i]];
    if (s !== prev) {
      strings.push(s);
      prev = s;
    }
    rank[order[i]] = strings.length - 1;
  }
  return { strings, rank };
}

/** The ids in their strings' order, by a comparator (any text). */
function byComparing(list: readonly string[]): Int32Array {
  const ids = Array.from({ length: list.length }, (_, i) => i);
  ids.sort((a, b) => (list[a] < list[b] ? -1 : list[a] > list[b] ? 1 : a - b));
  return Int32Array.from(ids);
}

/** The ids in their strings' order; `bytes` holds the strings (bytes 0–126 only) end to end. */
function byBytes(list: readonly string[], bytes: Uint8Array): Int32Array {
  const n = list.length;
  const start = new Int32Array(n + 1);
  for (let i = 0, o = 0; i <= n; i++) {
    start[i] = o;
    if (i < n) o += list[i].length;
  }
  const ids = new Int32Array(n);
  const keys = new Float64Array(n);
  const moved = new Int32Array(n);
  // Ranges still to sort, with the number of bytes their strings are known to share.
  const stack = byFirstTwoBytes(bytes, start, ids);
  while (stack.length > 0) {
    const depth = stack.pop()!;
    const to = stack.pop()!;
    const from = stack.pop()!;
    const m = to - from;
    if (m < 2) continue;
    if (m <= SHORT) {
      insertionSort(bytes, start, ids, from, to, depth);
      continue;
    }
    // The place in the range takes as many bits as the range needs; 7-bit bytes take the rest
    // of a double's 53 (five of them for a range of up to 2^18 strings).
    let bits = 1;
    while (2 ** bits < m) bits++;
    const width = Math.floor((53 - bits) / 7);
    const scale = 2 ** bits;
    for (let i = 0; i < m; i++) {
      const id = ids[from + i];
      const at = start[id] + depth;
      const end = start[id + 1];
      let key = 0;
      // Past the end counts as 0, below every byte: a string sorts before its extensions.
      for (let j = 0; j < width; j++) key = key * 128 + (at + j < end ? bytes[at + j] + 1 : 0);
      keys[i] = key * scale + i;
    }
    const sorted = keys.subarray(0, m).sort();
    for (let i = 0; i < m; i++) moved[i] = ids[from + (sorted[i] % scale)];
    ids.set(moved.subarray(0, m), from);
    // Runs of one key agree up to depth + width; where the key's last byte is past the end,
    // every string of the run ended there and they are equal.
    for (let s = 0, i = 1; i <= m; i++) {
      if (i < m && Math.floor(sorted[i] / scale) === Math.floor(sorted[s] / scale)) continue;
      if (i - s > 1 && Math.floor(sorted[s] / scale) % 128 !== 0) stack.push(from + s, from + i, depth + width);
      s = i;
    }
  }
  return ids;
}

/**
 * Places every id in `ids` by its string's first two bytes, by counting: in one pass and in id
 * order (ties keep it), 128 × 128 buckets, a byte + 1 in each place and 0 past the end, as in the
 * packed keys. A native sort of all the ids by their first key took ~10 ms more warm and ~20 ms
 * more cold. Returns the buckets still to sort as `from, to, depth` triples (depth 2): a bucket
 * whose second place is past the end holds one text (or only the empty string).
 */
function byFirstTwoBytes(bytes: Uint8Array, start: Int32Array, ids: Int32Array): number[] {
  const n = ids.length;
  const count = new Int32Array(BUCKETS + 1);
  const bucket = new Int32Array(n);
  for (let id = 0; id < n; id++) {
    const at = start[id];
    const end = start[id + 1];
    const b = (at < end ? bytes[at] + 1 : 0) * 128 + (at + 1 < end ? bytes[at + 1] + 1 : 0);
    bucket[id] = b;
    count[b + 1]++;
  }
  for (let b = 0; b < BUCKETS; b++) count[b + 1] += count[b];
  const next = count.slice(0, BUCKETS);
  for (let id = 0; id < n; id++) ids[next[bucket[id]]++] = id;
  const ranges: number[] = [];
  for (let b = 0; b < BUCKETS; b++) if (count[b + 1] - count[b] > 1 && b % 128 !== 0) ranges.push(count[b], count[b + 1], 2);
  return ranges;
}

/** Sorts `ids[from, to)`, whose strings share `depth` bytes, by their bytes; ties keep their order. */
function insertionSort(bytes: Uint8Array, start: Int32Array, ids: Int32Array, from: number, to: number, depth: number): void {
  for (let i = from + 1; i < to; i++) {
    const x = ids[i];
    let j = i - 1;
    while (j >= from && compareBytes(bytes, start, ids[j], x, depth) > 0) {
      ids[j + 1] = ids[j];
      j--;
    }
    ids[j + 1] = x;
  }
}

function compareBytes(bytes: Uint8Array, start: Int32Array, a: number, b: number, depth: number): number {
  let p = start[a] + depth;
  let q = start[b] + depth;
  const pe = start[a + 1];
  const qe = start[b + 1];
  for (; p < pe && q < qe; p++, q++) {
    const d = bytes[p] - bytes[q];
    if (d !== 0) return d;
  }
  return pe - p - (qe - q);
}
