/**
 * A store's string table is ranked without a comparator per pair (`rankStrings`); its order must
 * be exactly the default sort's (UTF-16 code units), each text once, whatever the strings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rankStrings } from '../../kernel-db/src/store/sortStrings';
import { prng } from './helpers';

/** What the ranking must equal: the distinct texts sorted by the default sort, and each id's place. */
function reference(list: readonly string[]): { strings: string[]; rank: number[] } {
  const strings = [...new Set(list)].sort();
  const at = new Map(strings.map((s, i) => [s, i]));
  return { strings, rank: list.map((s) => at.get(s)!) };
}

function check(list: string[], what: string): void {
  const got = rankStrings(list);
  const want = reference(list);
  assert.deepEqual(got.strings, want.strings, `${what}: the texts in order`);
  assert.deepEqual(Array.from(got.rank), want.rank, `${what}: each id's place`);
}

test('kernel-like names: shared prefixes longer than a key, prefixes of each other, repeats, the empty string', () => {
  const list = [''];
  for (let i = 0; i < 3000; i++) {
    list.push(`__bpf_trace_sched_switch_${i % 97}`, `__bpf_trace_sched_${i}`, `bpf_lsm_${(i * 7919) % 1000}`, `x${i % 13}`);
  }
  list.push('a', 'ab', 'abc', 'abcde', 'abcdef', 'abcdefghij', 'abcdefghijk', 'abcde', '', 'Z', '_', '~', '\u0001', 'a\u0000b');
  // The first pass's buckets: one character and its repeats, a NUL second character (a byte, not
  // the end), and strings that agree only on their first two characters.
  list.push('q', 'q', 'q\u0000', 'q\u0000x', 'q\u0000a', 'q\u0000', '\u0000', '\u0000\u0000', 'qz', 'qa', 'qzz', 'qa');
  check(list, 'kernel-like names');
});

test('random ASCII strings of every length, many runs of one key', () => {
  const rnd = prng(7);
  for (const [n, alphabet] of [
    [5000, 'ab'],
    [20000, 'abc_'],
    [3000, ' !~\u0000azAZ09'],
    // DEL does not fit a key's 7 bits: the whole list is sorted by comparing.
    [3000, ' !~\u0000\u007fazAZ09'],
  ] as const) {
    const list = [''];
    for (let i = 0; i < n; i++) {
      const len = Math.floor(rnd() * 24);
      let s = '';
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      list.push(s);
    }
    check(list, `${n} strings over ${JSON.stringify(alphabet)}`);
  }
});

test('text beyond ASCII (Latin-1, surrogates, astral) sorts as the default sort does', () => {
  // 'é' (U+00E9) is one Latin-1 byte but must sort after '~' and before U+0100; the astral
  // character's surrogates sort before U+FFFD, as code units do (code points would not).
  const list = ['', 'é', 'e', 'Ā', '~', '\u{1F600}', '\uFFFD', '\uD800', 'a\u0000', 'a', 'é', 'ab'];
  for (let i = 0; i < 200; i++) list.push(`name_${i}`, `nåme_${i % 50}`);
  check(list, 'non-ASCII');
});

test('the near miss: a list a length-first order would get wrong', () => {
  // 'b' < 'aa' by code units, not by length.
  assert.deepEqual(rankStrings(['', 'b', 'aa']).strings, ['', 'aa', 'b']);
});

test('more than 2^18 strings: four bytes to a key instead of five', () => {
  const rnd = prng(3);
  const list = [''];
  for (let i = 0; i < 270_000; i++) {
    const len = 1 + Math.floor(rnd() * 12);
    let s = i % 3 === 0 ? 'bpf_' : '';
    for (let j = 0; j < len; j++) s += 'abcdefgh_'[Math.floor(rnd() * 9)];
    list.push(s);
  }
  check(list, '270,000 strings');
});
