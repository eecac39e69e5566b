/**
 * Function-like macros of a file and its headers, as far as reads go: which of a macro's
 * parameters it reads through a probe read. Projects wrap their kernel reads in macros
 * (`#define READ_KERN(p) ({ typeof(p) _v; bpf_probe_read(&_v, sizeof(_v), &p); _v; })`), so
 * `READ_KERN(task->pid)` is a probe read of `task->pid` — not a load through `task` — and the
 * member chain in the argument is an address the macro hands to the helper.
 */
import { lexC, type Token } from '../parse/lexer';
import { OwnedCache, TEXT_KEYED } from './memo';

/** A function-like macro: its parameters, and those it only reads through a probe read. */
export interface FunctionMacro {
  readonly name: string;
  readonly params: readonly string[];
  readonly variadic: boolean;
  /** The replacement text. */
  readonly body: string;
  /** Indexes of parameters every evaluated use of which is `&param` handed to a probe-read helper (or to such a macro). */
  readonly probeReads: ReadonlySet<number>;
}

/**
 * Helpers that read memory at their third argument into their first, and libbpf's
 * `bpf_core_read()` family, which calls them on a relocated address.
 */
const PROBE_READ = /^(bpf_probe_read(_kernel|_user)?(_str)?|bpf_core_read(_user)?(_str)?)$/;
/** Operators whose operand is not evaluated. */
const UNEVALUATED = new Set(['typeof', '__typeof__', '__typeof', 'sizeof', '__alignof__', '_Alignof']);

/** Parses `#define NAME(params) body`; undefined for other directives. */
export function parseFunctionMacro(directive: string): { name: string; params: string[]; variadic: boolean; body: string } | undefined {
  const m = /^#[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)([\s\S]*)$/.exec(directive);
  if (!m) return undefined;
  const raw = m[2]
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const variadic = raw.length > 0 && raw[raw.length - 1].endsWith('...');
  const params = raw.map((p) => (p === '...' ? '__VA_ARGS__' : p.replace(/\.\.\.$/, '')));
  if (!params.every((p) => /^[A-Za-z_]\w*$/.test(p))) return undefined;
  return { name: m[1], params, variadic, body: m[3].replace(/\\\r?\n/g, ' ').trim() };
}

type RawMacro = { name: string; params: string[]; variadic: boolean; body: string };

/**
 * Classifies the parameters of `macros` (name → parsed macro), following macros that hand a
 * parameter to another macro's probe-read parameter (to a fixed point). The answer depends on the
 * macros' texts alone, and an edit seldom changes them (most come from headers): it is kept by
 * those texts, and shared, hence read-only.
 */
export function classifyMacros(macros: ReadonlyMap<string, RawMacro>): ReadonlyMap<string, FunctionMacro> {
  // Names and parameters are identifiers, and each body comes with its length: no two sets of
  // macros spell the same key.
  let key = '';
  for (const [k, m] of macros) key += `${k} ${m.name}(${m.params.join(',')})${m.variadic ? '...' : ''}${m.body.length}:${m.body}`;
  return classified.get(TEXT_KEYED, key, () => classify(macros));
}

const classified = new OwnedCache<object, ReadonlyMap<string, FunctionMacro>>(
  {
    name: 'functionMacros.classified',
    owner: 'the process (text-keyed; starts over at 32 macro sets)',
    key: "the function-like macros' names, parameters and bodies, in order",
  },
  32,
);

function classify(macros: ReadonlyMap<string, RawMacro>): Map<string, FunctionMacro> {
  const lexed = new Map([...macros].map(([k, m]) => [k, lexC(m.body)]));
  const out = new Map<string, FunctionMacro>();
  for (const [k, m] of macros) out.set(k, { ...m, probeReads: new Set() });
  for (let round = 0, changed = true; changed && round < 6; round++) {
    changed = false;
    for (const [k, m] of macros) {
      const { tokens, match } = lexed.get(k)!;
      const reads = out.get(k)!.probeReads as Set<number>;
      m.params.forEach((p, i) => {
        if (reads.has(i)) return;
        if (readsThroughProbe(tokens, match, p, out)) {
          reads.add(i);
          changed = true;
        }
      });
    }
  }
  return out;
}

/** Whether every evaluated use of `param` in the tokens is an address handed to a probe read. */
function readsThroughProbe(tokens: readonly Token[], match: Int32Array, param: string, known: ReadonlyMap<string, FunctionMacro>): boolean {
  let reads = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i].text !== param || tokens[i].kind !== 'ident') continue;
    const call = enclosingCall(tokens, match, i);
    if (call && UNEVALUATED.has(tokens[call.fn].text)) continue;
    // `&param` (optionally cast) as the third argument of a probe read.
    const amp = i > 0 && tokens[i - 1].text === '&';
    if (call && amp && PROBE_READ.test(tokens[call.fn].text) && call.arg === 2) {
      reads++;
      continue;
    }
    // `param` alone as an argument another macro reads through a probe read.
    const macro = call ? known.get(tokens[call.fn].text) : undefined;
    if (call && macro?.probeReads.has(call.arg) && call.alone) {
      reads++;
      continue;
    }
    return false;
  }
  return reads > 0;
}

/** The call whose argument list holds token `i`: the callee's token, the argument's index, and whether the token is the whole argument. */
function enclosingCall(tokens: readonly Token[], match: Int32Array, i: number): { fn: number; arg: number; alone: boolean } | undefined {
  for (let j = i - 1; j >= 0; j--) {
    if (tokens[j].text !== '(' || match[j] < i) continue;
    if (j === 0 || tokens[j - 1].kind !== 'ident') {
      // A parenthesised expression or cast: look further out.
      continue;
    }
    let arg = 0;
    let start = j + 1;
    for (let k = j + 1; k < i; k++) {
      if ((tokens[k].text === '(' || tokens[k].text === '[' || tokens[k].text === '{') && match[k] > k) {
        if (match[k] >= i) break;
        k = match[k];
        continue;
      }
      if (tokens[k].text === ',') {
        arg++;
        start = k + 1;
      }
    }
    const end = (() => {
      for (let k = i + 1; k < match[j]; k++) {
        if ((tokens[k].text === '(' || tokens[k].text === '[') && match[k] > k) k = match[k];
        else if (tokens[k].text === ',') return k;
      }
      return match[j];
    })();
    return { fn: j - 1, arg, alone: start === i && end === i + 1 };
  }
  return undefined;
}
