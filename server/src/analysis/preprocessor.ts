/**
 * Preprocessor conditions: which `#if`, `#ifdef`, `#ifndef`, `#elif` branches the build compiles,
 * as far as the file, the headers the analysis read and the project's flags say. A branch known
 * not to be compiled (`#if 0`, `#ifdef __TARGET_ARCH_arm64` in an x86 build, `#ifndef X` after
 * `#define X`) is an inactive region: nothing in it is a finding. A condition that depends on a
 * macro nobody here defines (libbpf's, vmlinux.h's, the system's) is unknown and changes nothing;
 * conditions on the kernel version are the guards' (`#if LINUX_VERSION_CODE …`).
 *
 * Expressions follow C's `#if` arithmetic: integers, `defined`, unary `! ~ - +`, the binary
 * operators and `?:`, with `&&`, `||` and `?:` short-circuiting over unknown operands.
 */
import type { Node, Tree } from 'web-tree-sitter';
import { lexC } from '../parse/lexer';
import type { FileModel } from './file';
import { versionCondition } from './versionCheck';

/** A value: a number, or unknown. */
type Value = bigint | undefined;

/**
 * What clang defines when it compiles for BPF (`clang -target bpf`: the target defines `__bpf__`
 * and `__BPF__`, no host architecture macro) — clang's lib/Basic/Targets/BPF.cpp.
 */
const DEFINED_FOR_BPF = new Set(['__bpf__', '__BPF__', '__clang__']);
const HOST_ARCH_MACROS = new Set([
  '__x86_64__',
  '__x86_64',
  '__i386__',
  '__aarch64__',
  '__arm__',
  '__powerpc__',
  '__powerpc64__',
  '__s390__',
  '__s390x__',
  '__riscv',
  '__mips__',
  '__loongarch__',
  '__sparc__',
]);
/** libbpf's bpf_tracing.h: `bpf_target_<arch>` from `__TARGET_ARCH_<arch>`. */
const BPF_TARGET: Readonly<Record<string, string>> = {
  x86_64: 'x86',
  arm64: 'arm64',
  arm: 'arm',
  s390x: 's390',
  ppc64le: 'powerpc',
  riscv64: 'riscv',
  loongarch64: 'loongarch',
  mips: 'mips',
  sparc: 'sparc',
};

/** Answers `defined(NAME)` and a name's value at one offset of the file. */
class MacroEnv {
  constructor(
    private readonly model: FileModel,
    private readonly at: number,
  ) {}

  /** 1n / 0n when known, undefined when not. */
  defined(name: string): Value {
    if (this.model.build.undefines.includes(name)) return 0n;
    const site = this.model.macroSites.get(name);
    if (site && !site.conditional && site.offset < this.at) return 1n;
    if (site) return site.offset < this.at ? undefined : this.notDefined(name);
    if (DEFINED_FOR_BPF.has(name)) return 1n;
    return this.notDefined(name);
  }

  /** 0n for names known not to be defined in this build, else unknown. */
  private notDefined(name: string): Value {
    if (this.model.macroSites.has(name)) return undefined;
    if (HOST_ARCH_MACROS.has(name)) return 0n;
    const arch = this.model.build.arch;
    if (arch) {
      const own = BPF_TARGET[arch];
      const m = /^(?:__TARGET_ARCH_|bpf_target_)(\w+)$/.exec(name);
      if (m && m[1] !== 'defined') return m[1] === own ? undefined : 0n;
    }
    return undefined;
  }

  /** The replacement text of an object-like macro defined here for sure, else undefined. */
  replacement(name: string): string | undefined {
    if (this.defined(name) !== 1n) return undefined;
    return this.model.macros.get(name) ?? (DEFINED_FOR_BPF.has(name) ? '1' : undefined);
  }
}

type Tok = { kind: 'num'; v: bigint } | { kind: 'id'; v: string } | { kind: 'op'; v: string };

/** Operators `#if` arithmetic knows (anything else makes the expression unknown). */
const OPS = new Set([
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '&&',
  '||',
  '(',
  ')',
  '!',
  '~',
  '-',
  '+',
  '*',
  '/',
  '%',
  '<',
  '>',
  '&',
  '^',
  '|',
  '?',
  ':',
  ',',
]);

/** The condition's tokens, from the one C lexer; undefined for what `#if` cannot hold. */
function tokenize(s: string): Tok[] | undefined {
  const out: Tok[] = [];
  for (const t of lexC(s).tokens) {
    if (t.kind === 'ident') out.push({ kind: 'id', v: t.text });
    else if (t.kind === 'number') {
      const m = /^(0[xX][0-9a-fA-F]+|0[bB][01]+|\d+)[uUlL]*$/.exec(t.text);
      if (!m) return undefined;
      out.push({ kind: 'num', v: /^0\d/.test(m[1]) ? BigInt(`0o${m[1].slice(1)}`) : BigInt(m[1]) });
    } else if (t.kind === 'char') {
      const c = /^'(\\?.)'$/.exec(t.text)?.[1];
      if (!c) return undefined;
      out.push({ kind: 'num', v: BigInt(c.length === 1 ? c.charCodeAt(0) : c[1] === 'n' ? 10 : c.charCodeAt(1)) });
    } else if (t.kind === 'punct' && OPS.has(t.text)) out.push({ kind: 'op', v: t.text });
    else return undefined;
  }
  return out;
}

const MAX_EXPANSION = 32;

/** Evaluates one `#if` expression; undefined when its value is not known. */
export function evaluateCondition(text: string, model: FileModel, at: number): Value {
  const env = new MacroEnv(model, at);
  const toks = tokenize(text);
  if (!toks) return undefined;
  const expanded = expand(toks, env, 0, new Set());
  if (!expanded) return undefined;
  const p = new Parser(expanded);
  const v = p.ternary();
  return p.done() ? v : undefined;
}

/** Replaces `defined X` by its value and object-like macros by their replacement. */
function expand(toks: Tok[], env: MacroEnv, depth: number, active: Set<string>): Tok[] | undefined {
  if (depth > MAX_EXPANSION) return undefined;
  const out: Tok[] = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.kind === 'id' && t.v === 'defined') {
      const paren = toks[i + 1]?.kind === 'op' && toks[i + 1].v === '(';
      const name = toks[i + (paren ? 2 : 1)];
      if (name?.kind !== 'id') return undefined;
      if (paren && !(toks[i + 3]?.kind === 'op' && toks[i + 3].v === ')')) return undefined;
      const d = env.defined(name.v);
      out.push(d === undefined ? { kind: 'id', v: '\u0000unknown' } : { kind: 'num', v: d });
      i += paren ? 3 : 1;
      continue;
    }
    if (t.kind === 'id' && !active.has(t.v)) {
      // A function-like use (`NAME(`) is not something this evaluator expands: unknown.
      if (toks[i + 1]?.kind === 'op' && toks[i + 1].v === '(') {
        out.push({ kind: 'id', v: '\u0000unknown' });
        let depthParen = 0;
        for (i++; i < toks.length; i++) {
          const x = toks[i];
          if (x.kind === 'op' && x.v === '(') depthParen++;
          if (x.kind === 'op' && x.v === ')' && --depthParen === 0) break;
        }
        continue;
      }
      const r = env.replacement(t.v);
      if (r !== undefined) {
        const inner = tokenize(r);
        const sub = inner && inner.length ? expand(inner, env, depth + 1, new Set([...active, t.v])) : undefined;
        if (!sub) return undefined;
        out.push({ kind: 'op', v: '(' }, ...sub, { kind: 'op', v: ')' });
        continue;
      }
      // A name known not to be a macro is 0, as in C; any other is unknown.
      out.push(env.defined(t.v) === 0n ? { kind: 'num', v: 0n } : { kind: 'id', v: '\u0000unknown' });
      continue;
    }
    out.push(t);
  }
  return out;
}

const BINARY: readonly (readonly string[])[] = [
  ['||'],
  ['&&'],
  ['|'],
  ['^'],
  ['&'],
  ['==', '!='],
  ['<', '>', '<=', '>='],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];

/**
 * Nesting an `#if` expression may have here (parentheses, unary operators and `?:` arms, each one
 * level, and each object-like macro's replacement, which is read in parentheses): clang stops past
 * 256 levels of brackets (`-fbracket-depth`). Past it the value is not known; the recursion stays
 * far inside the stack (a level is about a dozen calls).
 */
const MAX_NESTING = 256;

class Parser {
  private i = 0;
  private failed = false;
  private depth = 0;
  constructor(private readonly toks: Tok[]) {}

  done(): boolean {
    return !this.failed && this.i === this.toks.length;
  }

  private peekOp(ops: readonly string[]): string | undefined {
    const t = this.toks[this.i];
    return t?.kind === 'op' && ops.includes(t.v) ? t.v : undefined;
  }

  ternary(): Value {
    return this.nested(() => this.conditional());
  }

  /** `read` one level deeper; unknown past {@link MAX_NESTING}. */
  private nested(read: () => Value): Value {
    if (this.depth > MAX_NESTING) {
      this.failed = true;
      return undefined;
    }
    this.depth++;
    try {
      return read();
    } finally {
      this.depth--;
    }
  }

  private conditional(): Value {
    const c = this.binary(0);
    if (!this.peekOp(['?'])) return c;
    this.i++;
    const a = this.ternary();
    if (!this.peekOp([':'])) {
      this.failed = true;
      return undefined;
    }
    this.i++;
    const b = this.ternary();
    if (c === undefined) return a !== undefined && a === b ? a : undefined;
    return c !== 0n ? a : b;
  }

  private binary(level: number): Value {
    if (level >= BINARY.length) return this.unary();
    let l = this.binary(level + 1);
    for (let op = this.peekOp(BINARY[level]); op; op = this.peekOp(BINARY[level])) {
      this.i++;
      const r = this.binary(level + 1);
      l = apply(op, l, r);
    }
    return l;
  }

  private unary(): Value {
    const op = this.peekOp(['!', '~', '-', '+']);
    if (op) {
      this.i++;
      const v = this.nested(() => this.unary());
      if (v === undefined) return undefined;
      return op === '!' ? (v === 0n ? 1n : 0n) : op === '~' ? ~v : op === '-' ? -v : v;
    }
    const t = this.toks[this.i];
    if (!t) {
      this.failed = true;
      return undefined;
    }
    this.i++;
    if (t.kind === 'num') return t.v;
    if (t.kind === 'id') return undefined;
    if (t.v === '(') {
      const v = this.ternary();
      if (!this.peekOp([')'])) {
        this.failed = true;
        return undefined;
      }
      this.i++;
      return v;
    }
    this.failed = true;
    return undefined;
  }
}

function apply(op: string, l: Value, r: Value): Value {
  if (op === '&&') return l === 0n || r === 0n ? 0n : l === undefined || r === undefined ? undefined : 1n;
  if (op === '||')
    return (l !== undefined && l !== 0n) || (r !== undefined && r !== 0n) ? 1n : l === undefined || r === undefined ? undefined : 0n;
  if (l === undefined || r === undefined) return undefined;
  switch (op) {
    case '|':
      return l | r;
    case '^':
      return l ^ r;
    case '&':
      return l & r;
    case '==':
      return l === r ? 1n : 0n;
    case '!=':
      return l !== r ? 1n : 0n;
    case '<':
      return l < r ? 1n : 0n;
    case '>':
      return l > r ? 1n : 0n;
    case '<=':
      return l <= r ? 1n : 0n;
    case '>=':
      return l >= r ? 1n : 0n;
    case '<<':
      return r >= 0n && r < 64n ? l << r : undefined;
    case '>>':
      return r >= 0n && r < 64n ? l >> r : undefined;
    case '+':
      return l + r;
    case '-':
      return l - r;
    case '*':
      return l * r;
    case '/':
      return r === 0n ? undefined : l / r;
    case '%':
      return r === 0n ? undefined : l % r;
    default:
      return undefined;
  }
}

const CONDITIONALS = new Set(['preproc_if', 'preproc_ifdef', 'preproc_elif', 'preproc_elifdef']);

/**
 * The regions of the file the build does not compile, as sorted [start, end) offsets: the body of
 * a branch whose condition is known false, and the `#else`/`#elif` arms after one known true.
 */
export function inactiveRegions(model: FileModel, tree: Tree): [number, number][] {
  const out: [number, number][] = [];
  // Only files with conditionals pay for the walk.
  if (!model.directives.some((d) => /^#[ \t]*(if|ifdef|ifndef|elif|elifdef|elifndef)\b/.test(d.text))) return out;
  // Directive starts in order, to ask whether a node holds any directive by binary search.
  const starts = model.directives.map((d) => d.start).sort((a, b) => a - b);
  const hasConditional = (n: Node) => {
    if (n.startIndex === n.endIndex) return false;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid] < n.startIndex) lo = mid + 1;
      else hi = mid;
    }
    return lo < starts.length && starts[lo] < n.endIndex;
  };
  // A stack, not recursion: conditionals nest as deep as a file makes them.
  const pending: Node[] = [tree.rootNode];
  for (let n = pending.pop(); n; n = pending.pop()) {
    if (CONDITIONALS.has(n.type)) {
      const v = branchValue(n, model);
      const alt = n.childForFieldName('alternative');
      const head = n.childForFieldName('condition') ?? n.childForFieldName('name');
      if (v === 0n && head) out.push([head.endIndex, alt ? alt.startIndex : n.endIndex]);
      else if (v !== undefined && v !== 0n && alt) out.push([alt.startIndex, alt.endIndex]);
    }
    for (const c of n.namedChildren) if (c && (c.type.startsWith('preproc') || hasConditional(c))) pending.push(c);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** The value of one branch's condition (1/0), or undefined. */
function branchValue(n: Node, model: FileModel): Value {
  if (n.type === 'preproc_ifdef' || n.type === 'preproc_elifdef') {
    const name = n.childForFieldName('name');
    if (!name) return undefined;
    const negated = /^#\s*(ifndef|elifndef)/.test(model.text.slice(n.startIndex, name.startIndex));
    const d = new MacroEnv(model, n.startIndex).defined(model.text.slice(name.startIndex, name.endIndex));
    return d === undefined ? undefined : negated ? 1n - d : d;
  }
  const cond = n.childForFieldName('condition');
  return cond ? evaluateCondition(model.text.slice(cond.startIndex, cond.endIndex), model, n.startIndex) : undefined;
}

/**
 * In a BCC program, the conditionals the host's kernel headers decide (`#ifdef INIT_PID_LINK`, a
 * macro neither the file nor the build defines; not a `LINUX_VERSION_CODE` comparison, which the
 * guards evaluate per kernel), as sorted [start, end) offsets of the whole conditional: which arm
 * compiles differs from host to host and the kernel data cannot say, so nothing there is proved.
 */
export function hostDependentRegions(model: FileModel, tree: Tree): [number, number][] {
  const out: [number, number][] = [];
  if (!model.bcc || !model.directives.some((d) => /^#[ \t]*(if|ifdef|ifndef)\b/.test(d.text))) return out;
  const pending: Node[] = [tree.rootNode];
  for (let n = pending.pop(); n; n = pending.pop()) {
    if ((n.type === 'preproc_if' || n.type === 'preproc_ifdef') && branchValue(n, model) === undefined) {
      const cond = n.childForFieldName('condition');
      if (!cond || !versionCondition(cond.text)) {
        out.push([n.startIndex, n.endIndex]);
        continue;
      }
    }
    for (const c of n.namedChildren) if (c && c.endIndex > c.startIndex && c.type !== 'comment') pending.push(c);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Whether `offset` lies in one of `regions` (sorted, as {@link inactiveRegions} returns them). */
export function inRegions(regions: readonly [number, number][], offset: number): boolean {
  for (const [a, b] of regions) {
    if (a > offset) return false;
    if (offset < b) return true;
  }
  return false;
}
