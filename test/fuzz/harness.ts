/**
 * A seeded, structure-aware fuzzer of the analysis. Inputs are the project's BPF programs (the
 * examples, the shape fixtures, the C snippets of the rule tests, ../shared/corpus when present)
 * mutated by token and line: deleted, duplicated, swapped, truncated, braces unbalanced, `#if`
 * nests, macros, unicode and lone surrogates, CRLF and lone CR, NUL bytes, long lines, deep nesting,
 * half-typed declarations. BCC tools in Python (the bcc tests' snippets, ../shared/corpus's tools) are
 * mutated the same way and analysed as the editor analyses them: the C they hand BCC, found in
 * their strings and the edits they make to it. Each input goes through parsing (masking, limits),
 * the whole analysis (preprocessing, every rule), the portability report and hovers (C only), and
 * must hold:
 *
 * - nothing throws, and no rule throws (the analysis records those in `failures`: a crash here);
 * - every finding's range and every hover's range lies inside the text;
 * - every fix fits: edits inside the text, none overlapping.
 *
 * Used by test/fuzz/fuzz.test.ts (a fixed seed, in CI) and `npm run fuzz` (longer runs).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Tree } from 'web-tree-sitter';
import { KernelDb } from '../../kernel-db/src/query/db';
import { fixFits } from '../../server/src/analysis/fixes';
import { LineIndex } from '../../server/src/analysis/lines';
import type { Range } from '../../server/src/analysis/model';
import { Engine } from '../../server/src/driver/engine';
import { documentReport } from '../../server/src/driver/requirements';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { type CParser, loadCParser } from '../../server/src/parse/documents';
import { prng } from '../kernel-db/helpers';

const ROOT = join(__dirname, '..', '..');
/** Where crashing inputs are kept as regression fixtures. */
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'fuzz');

/** A text mutations start from: BPF C, or a BCC tool in Python. */
export interface Seed {
  readonly name: string;
  readonly text: string;
  readonly python?: boolean;
}

/** The texts mutations start from, by name. */
export function seedTexts(withCorpus = true, extraDirs: readonly string[] = []): Seed[] {
  const out: Seed[] = [];
  const addDir = (dir: string, re: RegExp, depth = 0) => {
    if (!existsSync(dir) || depth > 6) return;
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const st = statSync(p);
      if (st.isDirectory()) addDir(p, re, depth + 1);
      else if (re.test(n) && st.size < 200_000)
        out.push({ name: relative(ROOT, p), text: readFileSync(p, 'utf8'), ...(n.endsWith('.py') ? { python: true } : {}) });
    }
  };
  addDir(join(ROOT, 'examples'), /\.c$/);
  addDir(join(ROOT, 'test', 'fixtures', 'shapes'), /\.c$/);
  // The C snippets of the rule tests: template literals that hold a SEC() program.
  for (const n of readdirSync(join(ROOT, 'test', 'server')).sort()) {
    if (!n.endsWith('.test.ts')) continue;
    const src = readFileSync(join(ROOT, 'test', 'server', n), 'utf8');
    let i = 0;
    for (const m of src.matchAll(/`([^`$\\]*(?:\\.[^`$\\]*)*)`/g)) {
      if (m[1].includes('SEC(') && m[1].length > 40) out.push({ name: `test/server/${n}#${i++}`, text: m[1] });
      // A BCC tool: Python that hands BCC its C.
      else if (/\bBPF\s*\(/.test(m[1]) && /^\s*(from|import)\s+bcc\b/m.test(m[1]))
        out.push({ name: `test/server/${n}#${i++}`, text: m[1], python: true });
    }
  }
  if (withCorpus) {
    addDir(join(ROOT, '..', 'shared', 'corpus'), /\.bpf\.c$/);
    addDir(join(ROOT, '..', 'shared', 'corpus', 'bcc'), /\.py$/);
  }
  // Other projects' BPF C, programs and headers alike (`npm run fuzz -- --seeds DIR`).
  for (const dir of extraDirs) addDir(dir, /\.(c|h)$/);
  return out;
}

const TOKEN =
  /[A-Za-z_]\w*|0[xX][0-9a-fA-F]+|\d+|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?|\/\*[\s\S]*?\*\/|\/\/[^\n]*|->|\+\+|--|&&|\|\||[<>=!]=|<<|>>|#\s*\w+|\S/g;

/** Spans of the tokens of `text`. */
function tokens(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of text.matchAll(TOKEN)) out.push([m.index, m.index + m[0].length]);
  return out;
}

const SNIPPETS = [
  '"abc\nextern*bpf_iter_num_next(s __ksym;\n',
  'SEC("license") int f(void) { return 0; }\n',
  'extern int bpf_iter_num_next(struct bpf_iter_num *it) __ksym __weak;\n',
  '/* unterminated',
  '"unterminated',
  '#define X(a, b',
  '#include "',
  'BPF_CORE_READ(',
  'BPF_CORE_READ(task, real_parent, real_parent, tgid)',
  'if (bpf_core_field_exists(t->__state)) {',
  'struct task_struct *t = (void *)bpf_get_current_task();',
  '__attribute__((',
  'SEC("kprobe/")',
  'SEC("")',
  'char _license[] SEC("license") = ',
  '#pragma unroll\n',
  'asm volatile("" ::: "memory");',
  '\\\n',
  '??=',
];
const UNICODE = ['é', '日本', '😀', '\u{1F600}'.slice(0, 1), '\uDC00', '\u200B', '\u202E', 'e\u0301', '\uFEFF', '\u00A0'];

/** One mutation of `text`; `other` is another seed text to splice from. */
function mutateOnce(rand: () => number, text: string, other: string): string {
  const pick = (n: number) => Math.floor(rand() * n);
  const toks = tokens(text);
  const tok = () => toks[pick(toks.length)] ?? [0, 0];
  const lines = text.split('\n');
  const at = pick(text.length + 1);
  const put = (s: string, where = at) => text.slice(0, where) + s + text.slice(where);
  switch (pick(19)) {
    case 0: {
      const [s, e] = tok();
      return text.slice(0, s) + text.slice(e);
    }
    case 1: {
      const [s, e] = tok();
      return text.slice(0, e) + text.slice(s, e) + text.slice(e);
    }
    case 2: {
      let [a, b] = [tok(), tok()];
      if (a[0] > b[0]) [a, b] = [b, a];
      if (a[1] > b[0]) return text;
      return text.slice(0, a[0]) + text.slice(b[0], b[1]) + text.slice(a[1], b[0]) + text.slice(a[0], a[1]) + text.slice(b[1]);
    }
    case 3:
      lines.splice(pick(lines.length), 1 + pick(3));
      return lines.join('\n');
    case 4: {
      const i = pick(lines.length);
      lines.splice(i, 0, ...lines.slice(i, i + 1 + pick(4)));
      return lines.join('\n');
    }
    case 5: {
      const i = pick(lines.length);
      const j = pick(lines.length);
      [lines[i], lines[j]] = [lines[j], lines[i]];
      return lines.join('\n');
    }
    case 6:
      return text.slice(0, at);
    case 7:
      return put('{}()[]'[pick(6)].repeat(1 + pick(3)));
    case 8: {
      // An #if nest around some lines, balanced or not.
      const i = pick(lines.length);
      const j = Math.min(lines.length, i + pick(8));
      const cond = ['0', '1', 'LINUX_VERSION_CODE >= KERNEL_VERSION(5, 8, 0)', 'defined(__TARGET_ARCH_x86)', 'X'][pick(5)];
      const depth = 1 + pick(rand() < 0.05 ? 300 : 4);
      lines.splice(j, 0, ...(rand() < 0.8 ? Array(depth).fill('#endif') : rand() < 0.5 ? ['#else'] : []));
      lines.splice(i, 0, ...Array(depth).fill(`#if ${cond}`));
      return lines.join('\n');
    }
    case 9:
      return put(UNICODE[pick(UNICODE.length)]);
    case 10:
      return rand() < 0.7 ? text.replace(/\n/g, '\r\n') : text.replace(/\n/g, '\r');
    case 11:
      return put('\0');
    case 12: {
      // A long line: under the line limit usually, over it sometimes.
      const n = rand() < 0.05 ? 70_000 : 500 + pick(8_000);
      return put(rand() < 0.5 ? `\nint long_${pick(9)} = 1${' + 1'.repeat(Math.floor(n / 4))};\n` : `\n// ${'x'.repeat(n)}\n`);
    }
    case 13: {
      const [s] = tok();
      const o = tokens(other);
      if (o.length === 0) return text;
      const from = pick(o.length);
      const span = o.slice(from, from + 1 + pick(30));
      return put(other.slice(span[0][0], span[span.length - 1][1]), s);
    }
    case 14:
      return put(SNIPPETS[pick(SNIPPETS.length)]);
    case 15: {
      // Deep nesting of parentheses or blocks.
      const n = 50 + pick(rand() < 0.1 ? 3000 : 200);
      return rand() < 0.5 ? put(`(${'('.repeat(n)}x${')'.repeat(n)})`) : put(`{${'{'.repeat(n)}${'}'.repeat(n)}}`);
    }
    case 16: {
      const [s, e] = tok();
      const word = text.slice(s, e);
      return /^[A-Za-z_]\w*$/.test(word) ? `#define ${word} ${['0', '1', '(', 'x->y', '"s"', ''][pick(6)]}\n${text}` : text;
    }
    case 18: {
      // A deeply nested expression: each level holds the next (subscripts, calls, casts, unary
      // operators, ?:), split over lines as the input limits allow.
      const n = 50 + pick(rand() < 0.1 ? 3000 : 200);
      const [open, inner, close] = [
        ['t->comm[', '0', ']'],
        ['f(t->pid + ', 'x', ')'],
        ['(long)', 't->pid', ''],
        ['!', 't->pid', ''],
        ['t->pid ? ', '1', ' : t->tgid'],
      ][pick(5)];
      const levels = Array.from({ length: n }, (_, i) => `${i % 20 === 19 ? '\n' : ''}${open}`).join('');
      return put(`\nx = ${levels}${inner}${close.repeat(n)};\n`);
    }
    default: {
      // A token's text replaced by another token of the file.
      const [s, e] = tok();
      const [s2, e2] = tok();
      return text.slice(0, s) + text.slice(s2, e2) + text.slice(e);
    }
  }
}

/** A mutant of `text`: one to four mutations. */
export function mutate(rand: () => number, text: string, other: string): string {
  let out = text;
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) out = mutateOnce(rand, out, other);
  return out;
}

/** What went wrong with one input. */
export interface Crash {
  readonly what: string;
  readonly text: string;
  /** A BCC tool in Python (kept as a `.py` fixture and replayed as one). */
  readonly python?: boolean;
}

/** Checks one input through parse, analysis, fixes, the portability report and hovers; returns what broke, if anything. */
export class Checker {
  private constructor(
    private readonly parser: CParser,
    private readonly engine: Engine,
  ) {}

  static async create(): Promise<Checker> {
    const parser = await loadCParser();
    const db = KernelDb.open({ noUser: true });
    return new Checker(parser, new Engine(db, (t) => parser.parseText(t)));
  }

  check(text: string, rand: () => number, python = false): string | undefined {
    let tree: Tree | undefined;
    try {
      // A Python document's C is parsed by the analysis itself, program by program.
      tree = python ? undefined : this.parser.parseText(text);
      if (!tree && !python) return undefined;
      const uri = python ? 'file:///fuzz/tool.py' : 'file:///fuzz/input.bpf.c';
      const r = this.engine.analyzeDocument(uri, text, tree as Tree, { ...DEFAULT_SETTINGS });
      if (r.failures.length) return `rule failure: ${r.failures[0].rule ?? 'analysis'}: ${r.failures[0].message}`;
      const lines = new LineIndex(text);
      const inside = (x: Range) => {
        const back = lines.range(lines.offsetAt(x.start), lines.offsetAt(x.end));
        return (
          back.start.line === x.start.line &&
          back.start.character === x.start.character &&
          back.end.line === x.end.line &&
          back.end.character === x.end.character
        );
      };
      for (const f of r.findings) {
        if (!inside(f.range)) return `${f.rule}: range outside the text: ${JSON.stringify(f.range)}`;
        for (const x of f.fixes) if (!fixFits(x, lines)) return `${f.rule}: fix "${x.title}" does not fit: ${JSON.stringify(x.edits)}`;
      }
      if (!tree) return undefined;
      // The portability report (the CLI's requirements, the editor's report and code lenses).
      const report = documentReport(this.engine.db, { path: 'input.bpf.c', uri, text, tree, findings: r.findings }, r.kernels);
      for (const g of report.grid)
        if (g.line < 0 || g.line >= lines.lineCount) return `report: a program on line ${g.line}, outside the text`;
      // One hover an input (each builds the file model again): on a finding half of the time.
      const on = r.findings[Math.floor(rand() * r.findings.length * 2)];
      for (const o of [on ? lines.offsetAt(on.range.start) : Math.floor(rand() * (text.length + 1))]) {
        const h = this.engine.hover(uri, text, tree, { ...DEFAULT_SETTINGS }, o);
        if (h && !inside(h.range)) return `hover at ${o}: range outside the text: ${JSON.stringify(h.range)}`;
      }
      return undefined;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      return `threw: ${err.message}\n${(err.stack ?? '').split('\n').slice(1, 4).join('\n')}`;
    } finally {
      tree?.delete();
    }
  }
}

/** Runs `count` mutants from `seed`; calls `onCrash` for each broken input. */
export async function fuzz(opts: {
  count: number;
  seed: number;
  withCorpus?: boolean;
  /** More directories of seeds (`.c` and `.h` files). */
  seedDirs?: readonly string[];
  onCrash?: (c: Crash, index: number) => void;
  onProgress?: (done: number) => void;
}): Promise<{ inputs: number; crashes: Crash[]; ms: number }> {
  const checker = await Checker.create();
  const seeds = seedTexts(opts.withCorpus ?? true, opts.seedDirs);
  const rand = prng(opts.seed);
  const crashes: Crash[] = [];
  const t0 = performance.now();
  const python = seeds.filter((s) => s.python);
  const c = seeds.filter((s) => !s.python);
  for (let i = 0; i < opts.count; i++) {
    // One input in ten a BCC tool (while there are some), spliced from another.
    const kind = python.length && rand() < 0.1 ? python : c;
    const a = kind[Math.floor(rand() * kind.length)];
    const b = kind[Math.floor(rand() * kind.length)];
    const text = mutate(rand, a.text, b.text);
    const what = checker.check(text, rand, a.python);
    if (what) {
      const c = { what: `${a.name}: ${what}`, text, ...(a.python ? { python: true } : {}) };
      crashes.push(c);
      opts.onCrash?.(c, i);
    }
    if (opts.onProgress && (i + 1) % 1000 === 0) opts.onProgress(i + 1);
  }
  return { inputs: opts.count, crashes, ms: performance.now() - t0 };
}
