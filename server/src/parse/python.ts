/**
 * The BPF C a BCC tool written in Python hands to `BPF(text=…)`, found without running Python.
 *
 * A small tokenizer and statement reader follow what BCC tools do to build their program: string
 * literals assigned to names (`bpf_text = """…"""`), concatenations (`+`, `+=`, adjacent literals),
 * `%` / `.format` / f-string pieces, `.replace('X', '…')` with literal arguments, `if`/`elif`/`else`,
 * and the run-time probes BCC offers (`BPF.kernel_struct_has_field`, `BPF.tracepoint_exists`,
 * `BPF.get_kprobe_functions`, `BPF.support_raw_tracepoint`, `BPF.support_kfunc`, `BPF.support_lsm`,
 * `BPF.support_fmod_ret`, `BPF.kernel_enum_has_val`, `BPF.ksymname`). A condition that is a probe
 * forks the program into alternatives, each with the probe results that select it; a probe's
 * branch that ends the tool (`exit()`, `sys.exit()`, `raise`) ends that path; any other condition
 * (command-line options) takes its `else` branch, which is one real configuration of the tool.
 *
 * Each program is a virtual C text built of pieces: text copied verbatim from a Python string
 * literal (so a C offset maps to one Python offset exactly) and synthetic text standing for what
 * cannot be followed (a `%s`, an unknown variable, a placeholder no followed `.replace` filled),
 * which findings must not rest on. Python code itself never becomes C text.
 */

/** A probe BCC answers on the host at run time. */
export type BccProbe =
  | { readonly kind: 'field'; readonly struct: string; readonly field: string }
  | { readonly kind: 'tracepoint'; readonly category: string; readonly event: string }
  | { readonly kind: 'function'; readonly name: string }
  | { readonly kind: 'enum'; readonly enum: string; readonly value: string }
  | { readonly kind: 'raw_tracepoint' }
  | { readonly kind: 'kfunc' }
  | { readonly kind: 'lsm' };

/** A probe and the answer a program needs from it. */
export interface BccProbeAnswer {
  readonly probe: BccProbe;
  /** The Python text of the condition (for messages). */
  readonly source: string;
  readonly value: boolean;
}

/** A run of the virtual C text and where it comes from in the Python text. */
export interface PySegment {
  /** Start and end offsets in the virtual C text. */
  readonly start: number;
  readonly end: number;
  /** Offset in the Python text of the first character (copied text), or the anchor (synthetic text). */
  readonly py: number;
  /** Text the Python file does not hold as such (or a placeholder): findings there are dropped. */
  readonly synthetic: boolean;
}

/** One BPF program a tool compiles on one set of probe answers. */
export interface PyProgram {
  /** The C text BCC compiles (virtual). */
  readonly text: string;
  readonly segments: readonly PySegment[];
  /** The probe answers this program is built under (one set per path that builds this same text). */
  readonly when: readonly (readonly BccProbeAnswer[])[];
  /** Offset in the Python text of the `BPF(` call that compiles it. */
  readonly call: number;
}

/** What a Python file holds for BCC. */
export interface PyBcc {
  /** The file imports bcc (`import bcc`, `from bcc import …`). */
  readonly importsBcc: boolean;
  readonly programs: readonly PyProgram[];
  /** `BPF(src_file=…)` arguments given as literals: the C is in that file. */
  readonly srcFiles: readonly string[];
}

/** Whether Python text imports bcc. */
export function importsBcc(text: string): boolean {
  return /^[ \t]*(?:from[ \t]+bcc(?:\.\w+)*[ \t]+import\b|import[ \t]+(?:[\w.]+[ \t]*,[ \t]*)*bcc\b)/m.test(text);
}

// ---------------------------------------------------------------------------------------------
// Tokens

interface Tok {
  readonly kind: 'str' | 'name' | 'num' | 'op';
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** For strings: the content's offsets, raw (no escape processing), and the prefix letters. */
  readonly content?: { start: number; end: number; prefix: string };
}

interface Line {
  readonly indent: number;
  readonly toks: Tok[];
}

/** Splits Python text into logical lines of tokens (comments dropped, brackets and `\` joined). */
function logicalLines(text: string): Line[] {
  const lines: Line[] = [];
  let toks: Tok[] = [];
  let depth = 0;
  let indent = -1;
  let lineStart = 0;
  let i = 0;
  const flush = () => {
    if (toks.length) lines.push({ indent: Math.max(indent, 0), toks });
    toks = [];
    indent = -1;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      if (depth === 0) flush();
      i++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      i += 2;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (indent < 0) indent = i - lineStart;
    const pm = /([rRbBuUfF]{0,2})('''|"""|'|")/y;
    pm.lastIndex = i;
    const sm = /[A-Za-z_]/.test(c) || c === '"' || c === "'" ? pm.exec(text) : null;
    if (sm) {
      const prefix = sm[1].toLowerCase();
      const q = sm[2];
      const cs = i + sm[0].length;
      const raw = prefix.includes('r');
      let j = cs;
      while (j < text.length) {
        if (text[j] === '\\' && !raw) {
          j += 2;
          continue;
        }
        if (text[j] === '\\' && raw) {
          j += 2;
          continue;
        }
        if (text.startsWith(q, j)) break;
        if (q.length === 1 && text[j] === '\n') break;
        j++;
      }
      const ce = Math.min(j, text.length);
      const end = Math.min(ce + q.length, text.length);
      toks.push({ kind: 'str', start: i, end, text: text.slice(i, end), content: { start: cs, end: ce, prefix } });
      i = end;
      continue;
    }
    if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[\w\u0080-\uffff]/.test(text[j])) j++;
      toks.push({ kind: 'name', start: i, end: j, text: text.slice(i, j) });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < text.length && /[\w.]/.test(text[j])) j++;
      toks.push({ kind: 'num', start: i, end: j, text: text.slice(i, j) });
      i = j;
      continue;
    }
    const op = /^(\*\*=|\/\/=|>>=|<<=|->|:=|[-+*/%&|^@<>=!]=|\*\*|\/\/|<<|>>|.)/.exec(text.slice(i, i + 3))![0];
    if ('([{'.includes(op)) depth++;
    else if (')]}'.includes(op)) depth = Math.max(0, depth - 1);
    if (op === ';' && depth === 0) {
      const ind = indent;
      flush();
      indent = ind;
      i++;
      continue;
    }
    toks.push({ kind: 'op', start: i, end: i + op.length, text: op });
    i += op.length;
  }
  flush();
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Statements

type Stmt =
  | { readonly kind: 'simple'; readonly toks: Tok[] }
  | { readonly kind: 'if'; readonly branches: { cond: Tok[] | undefined; body: Stmt[] }[] }
  | { readonly kind: 'block'; readonly run: boolean; readonly try?: boolean; readonly body: Stmt[] };

const COMPOUND = new Set(['if', 'elif', 'else', 'for', 'while', 'def', 'class', 'try', 'except', 'finally', 'with', 'async']);

/** The index of the `:` that ends a compound statement's header, at bracket depth 0. */
function headerColon(toks: Tok[]): number {
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.kind !== 'op') continue;
    if ('([{'.includes(t.text)) depth++;
    else if (')]}'.includes(t.text)) depth--;
    else if (t.text === ':' && depth === 0 && !(toks[0].text === 'lambda')) return i;
  }
  return -1;
}

/** Reads the statements of a block starting at `lines[at]`; returns them and the next line's index. */
function readBlock(lines: Line[], at: number, indent: number): [Stmt[], number] {
  const out: Stmt[] = [];
  let i = at;
  while (i < lines.length && lines[i].indent >= indent) {
    const line = lines[i];
    if (line.indent > indent) {
      // An indented line where none is expected: read it as a block of its own.
      const [body, next] = readBlock(lines, i, line.indent);
      out.push({ kind: 'block', run: true, body });
      i = next;
      continue;
    }
    const [stmt, next] = readCompound(lines, i);
    const key = stmt.key;
    if (key === 'elif' || key === 'else') {
      const last = out[out.length - 1];
      if (last?.kind === 'if' && (key === 'elif' || last.branches.every((b) => b.cond))) {
        last.branches.push({ cond: key === 'elif' ? stmt.header : undefined, body: stmt.body });
        i = next;
        continue;
      }
      // `else` of a for/while/try: run with its statement.
      out.push({ kind: 'block', run: key === 'else', body: stmt.body });
    } else if (key === 'if') out.push({ kind: 'if', branches: [{ cond: stmt.header, body: stmt.body }] });
    else if (key === 'except') {
      // A `try` that asserts what the host must have (`assert(version >= "0507")`) is the
      // variant for some hosts only; its handler is the one every host can take.
      const last = out[out.length - 1];
      const asserts = last?.kind === 'block' && last.try && last.body.some((b) => b.kind === 'simple' && b.toks[0]?.text === 'assert');
      if (asserts) out[out.length - 1] = { ...last, run: false };
      out.push({ kind: 'block', run: !!asserts, body: stmt.body });
    } else if (key === 'try') out.push({ kind: 'block', run: true, try: true, body: stmt.body });
    else if (key) out.push({ kind: 'block', run: true, body: stmt.body });
    else out.push({ kind: 'simple', toks: line.toks });
    i = next;
  }
  return [out, i];
}

/** A compound statement's keyword, header tokens and body (inline after `:` or indented below). */
function readCompound(lines: Line[], i: number): [{ key?: string; header: Tok[]; body: Stmt[] }, number] {
  const line = lines[i];
  let toks = line.toks;
  if (toks[0]?.text === 'async' && toks.length > 1) toks = toks.slice(1);
  const key = toks[0]?.kind === 'name' && COMPOUND.has(toks[0].text) ? toks[0].text : undefined;
  const colon = key ? headerColon(toks) : -1;
  if (!key || colon < 0) return [{ header: [], body: [] }, i + 1];
  const header = toks.slice(1, colon);
  const inline = toks.slice(colon + 1);
  if (inline.length) return [{ key, header, body: [{ kind: 'simple', toks: inline }] }, i + 1];
  const next = lines[i + 1];
  if (!next || next.indent <= line.indent) return [{ key, header, body: [] }, i + 1];
  const [body, after] = readBlock(lines, i + 1, next.indent);
  return [{ key, header, body }, after];
}

// ---------------------------------------------------------------------------------------------
// Values

/** A piece of a string value: Python text copied verbatim, or synthetic text anchored at `at`. */
type Piece =
  | { readonly k: 'lit'; readonly start: number; readonly end: number; readonly hole?: boolean }
  | { readonly k: 'gap'; readonly text: string; readonly at: number };

type Val = readonly Piece[];

interface State {
  env: Map<string, Val>;
  /** Boolean variables holding a probe's answer. */
  probes: Map<string, Probe>;
  answers: BccProbeAnswer[];
  programs: { val: Val; call: number }[];
  /** The tool exits on this path (a probe's branch that ends it): nothing after runs. */
  ended?: boolean;
}

interface Probe {
  readonly probe: BccProbe;
  readonly key: string;
  readonly source: string;
  /** The answer that makes the condition true. */
  readonly value: boolean;
}

/** Paths followed at most; further probes are read as unknown conditions. */
const MAX_PATHS = 16;
/** Statements executed at most (a bound on pathological input). */
const MAX_STEPS = 200_000;

class Interpreter {
  private steps = 0;
  /** Every literal first argument of a `.replace()` in the file: text Python substitutes. */
  readonly placeholders = new Set<string>();
  readonly srcFiles: string[] = [];

  constructor(private readonly text: string) {}

  run(stmts: Stmt[], states: State[]): State[] {
    for (const s of stmts) {
      if (++this.steps > MAX_STEPS) return states;
      if (s.kind === 'simple') {
        for (const st of states) if (!st.ended) this.simple(s.toks, st);
      } else if (s.kind === 'block') {
        if (s.run) states = this.run(s.body, states);
      } else states = this.branch(s.branches, states);
    }
    return states;
  }

  private branch(branches: { cond: Tok[] | undefined; body: Stmt[] }[], states: State[]): State[] {
    const out: State[] = [];
    for (const state of states) {
      if (state.ended) {
        out.push(state);
        continue;
      }
      let pending: State[] = [state];
      // The paths a probe of this `if` chose: a branch of theirs that exits ends them.
      const probed = new Set<State>();
      const take = (body: Stmt[], st: State) => {
        const after = this.run(body, [st]);
        if (probed.has(st) && body.some(exits)) for (const a of after) a.ended = true;
        out.push(...after);
      };
      for (const b of branches) {
        const next: State[] = [];
        for (const st of pending) {
          const c = b.cond ? this.condition(b.cond, st) : true;
          if (c === true) take(b.body, st);
          else if (c === false) next.push(st);
          else if (states.length + out.length + pending.length >= MAX_PATHS) next.push(st);
          else {
            // A probe not answered yet on this path: both answers.
            const yes = fork(st, { probe: c.probe, source: c.source, value: c.value });
            const no = fork(st, { probe: c.probe, source: c.source, value: !c.value });
            probed.add(yes);
            probed.add(no);
            take(b.body, yes);
            next.push(no);
          }
        }
        pending = next;
        if (!pending.length) break;
      }
      out.push(...pending);
    }
    return out;
  }

  /** True, false, or a probe to fork on. Unknown conditions (options) are false; `__name__` checks true. */
  private condition(toks: Tok[], st: State): boolean | Probe {
    if (toks.some((t) => t.text === '__name__')) return true;
    // `probe or option`: options are off, so the probe decides; `probe and option` never holds.
    const ors = splitTop(toks, 'or');
    if (ors.length > 1) {
      const probes = ors.map((d) => this.probe(d, st));
      const known = probes.filter((p): p is Probe => !!p);
      if (known.length !== 1) return false;
      toks = ors[probes.indexOf(known[0])];
    } else if (splitTop(toks, 'and').length > 1) return false;
    const p = this.probe(toks, st);
    if (!p) return false;
    const known = st.answers.find((a) => probeKey(a.probe) === p.key);
    if (known) return known.value === p.value;
    return p;
  }

  /** A condition that is one probe (optionally negated or compared with 0, 1 or -1). */
  private probe(toks: Tok[], st: State): Probe | undefined {
    let neg = false;
    let body = toks;
    // `not`s and enclosing brackets in any order: `(not BPF.support_fmod_ret())`.
    for (;;) {
      if (body[0]?.text === 'not') {
        neg = !neg;
        body = body.slice(1);
      } else if (body[0]?.text === '(' && body[body.length - 1]?.text === ')' && closeOf(body, 0) === body.length - 1)
        body = body.slice(1, -1);
      else break;
    }
    // A comparison at the end: `== 1`, `!= 0`, `== -1`, `is True`…
    const m = /^(==|!=|is|is not)\s*(-?\d+|True|False|None)$/;
    let cmp: RegExpExecArray | null = null;
    for (let j = body.length - 1; j > 0 && j >= body.length - 4; j--) {
      const op = body[j - 1]?.text === 'is' && body[j]?.text === 'not' ? undefined : body[j].text;
      if (!op || !['==', '!=', 'is'].includes(op)) continue;
      const rest = body
        .slice(j + 1)
        .map((t) => t.text)
        .join('');
      const opText = op === 'is' && body[j + 1]?.text === 'not' ? 'is not' : op;
      const value = opText === 'is not' ? rest.replace(/^not/, '') : rest;
      cmp = m.exec(`${opText} ${value}`);
      if (cmp) {
        body = body.slice(0, j);
        break;
      }
    }
    let p: Omit<Probe, 'value'> | undefined;
    if (body.length === 1 && body[0].kind === 'name') {
      const v = st.probes.get(body[0].text);
      if (!v) return undefined;
      p = v;
      if (!v.value) neg = !neg;
    } else p = this.probeCall(body);
    if (!p) return undefined;
    let value = true;
    if (cmp) {
      const [op, lit] = [cmp[1], cmp[2]];
      // What the probe returns when it says yes: 1 / a list / an address; no: 0 / [] / -1.
      const truthy =
        p.probe.kind === 'function' && /ksymname/.test(p.source) ? lit !== '-1' : lit !== '0' && lit !== 'False' && lit !== 'None';
      const equal = op === '==' || op === 'is';
      if (p.probe.kind === 'function' && /ksymname/.test(p.source) && lit !== '-1') return undefined;
      value = equal ? truthy : !truthy;
    }
    return { ...p, value: neg ? !value : value };
  }

  /** `X.kernel_struct_has_field(b'S', b'F')` and the other BCC probes, spanning all of `toks`. */
  private probeCall(toks: Tok[]): Omit<Probe, 'value'> | undefined {
    const open = toks.findIndex((t) => t.text === '(');
    if (open < 1 || toks[open - 1].kind !== 'name' || closeOf(toks, open) !== toks.length - 1) return undefined;
    // The receiver is a dotted name (`BPF`, `bcc.BPF`, `b`, `self.bpf`), nothing else before it.
    if (!toks.slice(0, open - 1).every((t, n) => (n % 2 === 0 ? t.kind === 'name' : t.text === '.')) || open % 2 !== 1) return undefined;
    const method = toks[open - 1].text;
    const args = splitArgs(toks.slice(open + 1, -1)).map((a) =>
      a.length === 1 && a[0].kind === 'str' ? literalText(this.text, a[0]) : undefined,
    );
    const source = this.text.slice(toks[0].start, toks[toks.length - 1].end);
    let probe: BccProbe | undefined;
    if (method === 'kernel_struct_has_field' && args.length === 2 && args[0] && args[1])
      probe = { kind: 'field', struct: args[0], field: args[1] };
    else if (method === 'tracepoint_exists' && args.length === 2 && args[0] && args[1])
      probe = { kind: 'tracepoint', category: args[0], event: args[1] };
    else if ((method === 'get_kprobe_functions' || method === 'ksymname' || method === 'ksym') && args.length === 1 && args[0]) {
      const name = /^\^?([A-Za-z_]\w*)\$?$/.exec(args[0])?.[1];
      if (name && (method !== 'get_kprobe_functions' || args[0].startsWith('^') || /^\w+$/.test(args[0])))
        probe = { kind: 'function', name };
    } else if (method === 'support_raw_tracepoint' && args.length === 0) probe = { kind: 'raw_tracepoint' };
    else if (method === 'support_kfunc' && args.length === 0) probe = { kind: 'kfunc' };
    else if (method === 'support_lsm' && args.length === 0) probe = { kind: 'lsm' };
    else if (method === 'kernel_enum_has_val' && args.length === 2 && args[0] && args[1])
      probe = { kind: 'enum', enum: args[0], value: args[1] };
    // BCC answers support_fmod_ret() with kernel_enum_has_val("bpf_attach_type", "BPF_MODIFY_RETURN").
    else if (method === 'support_fmod_ret' && args.length === 0)
      probe = { kind: 'enum', enum: 'bpf_attach_type', value: 'BPF_MODIFY_RETURN' };
    return probe ? { probe, key: probeKey(probe), source } : undefined;
  }

  private simple(toks: Tok[], st: State): void {
    // BPF(text=…) / BPF(src_file=…), anywhere in the statement.
    for (let i = 0; i + 1 < toks.length; i++) {
      if (toks[i].text !== 'BPF' || toks[i + 1].text !== '(' || (i > 0 && toks[i - 1].text === 'def')) continue;
      const close = closeOf(toks, i + 1);
      const args = splitArgs(toks.slice(i + 2, close < 0 ? toks.length : close));
      for (const [n, a] of args.entries()) {
        const kw = a.length > 2 && a[0].kind === 'name' && a[1].text === '=' ? a[0].text : n === 0 ? 'text' : undefined;
        const expr = kw && a[1]?.text === '=' ? a.slice(2) : a;
        if (kw === 'text') {
          const v = this.expr(expr, st);
          if (v?.some((p) => p.k === 'lit')) st.programs.push({ val: v, call: toks[i].start });
        } else if (kw === 'src_file') {
          const v = this.expr(expr, st);
          if (v && v.every((p) => p.k === 'lit' && !p.hole)) this.srcFiles.push(this.render(v));
        }
      }
    }
    // Assignments: NAME = expr, NAME += expr (NAME may be dotted: self.program).
    let eq = -1;
    let depth = 0;
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i];
      if ('([{'.includes(t.text)) depth++;
      else if (')]}'.includes(t.text)) depth--;
      else if (depth === 0 && (t.text === '=' || t.text === '+=')) {
        eq = i;
        break;
      }
    }
    if (eq < 1) return;
    const target = toks.slice(0, eq);
    if (!target.every((t, n) => (n % 2 === 0 ? t.kind === 'name' : t.text === '.'))) return;
    const name = target.map((t) => t.text).join('');
    const rhs = toks.slice(eq + 1);
    if (toks[eq].text === '=') {
      const probe = rhs.length > 2 ? this.probeCall(rhs) : undefined;
      st.probes.delete(name);
      if (probe) {
        st.probes.set(name, { ...probe, value: true });
        st.env.delete(name);
        return;
      }
      const v = this.expr(rhs, st);
      if (v) st.env.set(name, v);
      else st.env.delete(name);
    } else {
      const old = st.env.get(name);
      if (!old) return;
      const v = this.expr(rhs, st) ?? [{ k: 'gap', text: '', at: rhs[0]?.start ?? toks[eq].end } as const];
      st.env.set(name, [...old, ...v]);
    }
  }

  /** The string value of an expression, or undefined when it is not a string the file spells. */
  expr(toks: Tok[], st: State): Val | undefined {
    // `A if cond else B`: options are off, so B.
    const ifAt = topLevel(toks, 'if');
    if (ifAt > 0) {
      const elseAt = topLevel(toks, 'else');
      return elseAt > ifAt ? this.expr(toks.slice(elseAt + 1), st) : undefined;
    }
    const terms = splitTop(toks, '+');
    if (terms.length > 1) {
      const vals = terms.map((t) => this.term(t, st));
      if (!vals.some((v) => v)) return undefined;
      return vals.flatMap((v, n) => v ?? [{ k: 'gap', text: '', at: terms[n][0]?.start ?? 0 } as const]);
    }
    return this.term(toks, st);
  }

  /** A term: a postfix expression with `%` formatting applied. */
  private term(toks: Tok[], st: State): Val | undefined {
    const parts = splitTop(toks, '%');
    const v = this.postfix(parts[0], st);
    if (!v || parts.length === 1) return v;
    return formatPercent(this.text, v);
  }

  private postfix(toks: Tok[], st: State): Val | undefined {
    if (!toks.length) return undefined;
    let i = 0;
    let v: Val | undefined;
    let name: string | undefined;
    const t = toks[0];
    if (t.kind === 'str') {
      const pieces: Piece[] = [];
      while (toks[i]?.kind === 'str') pieces.push(...literalPieces(this.text, toks[i++]));
      v = pieces;
    } else if (t.text === '(') {
      const close = closeOf(toks, 0);
      if (close < 0) return undefined;
      v = this.expr(toks.slice(1, close), st);
      i = close + 1;
    } else if (t.kind === 'name') {
      name = t.text;
      i = 1;
      while (
        toks[i]?.text === '.' &&
        toks[i + 1]?.kind === 'name' &&
        toks[i + 2]?.text !== '(' &&
        st.env.has(`${name}.${toks[i + 1].text}`)
      ) {
        name = `${name}.${toks[i + 1].text}`;
        i += 2;
      }
      v = st.env.get(name);
      if (!v) return undefined;
    } else return undefined;
    while (i < toks.length) {
      if (toks[i].text !== '.' || toks[i + 1]?.kind !== 'name' || toks[i + 2]?.text !== '(') return undefined;
      const method = toks[i + 1].text;
      const close = closeOf(toks, i + 2);
      if (close < 0 || !v) return undefined;
      const args = splitArgs(toks.slice(i + 3, close));
      if (method === 'replace' && args.length === 2 && args[0].length === 1 && args[0][0].kind === 'str') {
        const from = literalText(this.text, args[0][0]);
        const to = this.expr(args[1], st) ?? [{ k: 'gap', text: '0', at: args[1][0]?.start ?? toks[i].start } as const];
        if (from) v = replace(this.text, v, from, to);
      } else if (method === 'format') v = formatBraces(this.text, v);
      else if (!['strip', 'lstrip', 'rstrip', 'encode', 'decode'].includes(method)) return undefined;
      i = close + 1;
    }
    return v;
  }

  render(v: Val): string {
    return v.map((p) => (p.k === 'lit' ? this.text.slice(p.start, p.end) : p.text)).join('');
  }
}

/** A statement that ends the tool: `exit(…)`, `sys.exit(…)`, `quit(…)`, `os._exit(…)`, `raise …`. */
function exits(s: Stmt): boolean {
  if (s.kind !== 'simple') return false;
  const t = s.toks.map((x) => x.text);
  return (
    t[0] === 'raise' ||
    ((t[0] === 'exit' || t[0] === 'quit') && t[1] === '(') ||
    (((t[0] === 'sys' && t[2] === 'exit') || (t[0] === 'os' && t[2] === '_exit')) && t[1] === '.' && t[3] === '(')
  );
}

function fork(st: State, answer: BccProbeAnswer): State {
  return {
    env: new Map(st.env),
    probes: new Map(st.probes),
    answers: [...st.answers, answer],
    programs: [...st.programs],
  };
}

function probeKey(p: BccProbe): string {
  switch (p.kind) {
    case 'field':
      return `field:${p.struct}.${p.field}`;
    case 'tracepoint':
      return `tp:${p.category}:${p.event}`;
    case 'function':
      return `func:${p.name}`;
    case 'enum':
      return `enum:${p.enum}.${p.value}`;
    default:
      return p.kind;
  }
}

/** The index of the bracket closing the one at `open`, or -1. */
function closeOf(toks: Tok[], open: number): number {
  let depth = 0;
  for (let i = open; i < toks.length; i++) {
    const t = toks[i].text;
    if (toks[i].kind !== 'op') continue;
    if ('([{'.includes(t)) depth++;
    else if (')]}'.includes(t) && --depth === 0) return i;
  }
  return -1;
}

/** Splits at `sep` tokens at bracket depth 0. */
function splitTop(toks: Tok[], sep: string): Tok[][] {
  const out: Tok[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t.kind === 'op' && '([{'.includes(t.text)) depth++;
    else if (t.kind === 'op' && ')]}'.includes(t.text)) depth--;
    if (depth === 0 && (t.kind === 'op' || t.kind === 'name') && t.text === sep) out.push([]);
    else out[out.length - 1].push(t);
  }
  return out;
}

function splitArgs(toks: Tok[]): Tok[][] {
  return toks.length ? splitTop(toks, ',').filter((a) => a.length) : [];
}

function topLevel(toks: Tok[], word: string): number {
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.kind === 'op' && '([{'.includes(t.text)) depth++;
    else if (t.kind === 'op' && ')]}'.includes(t.text)) depth--;
    else if (depth === 0 && t.kind === 'name' && t.text === word) return i;
  }
  return -1;
}

/** The text of a plain literal (no f-string), escapes left as written; undefined when it has `\`. */
function literalText(text: string, t: Tok): string | undefined {
  const c = t.content!;
  if (c.prefix.includes('f')) return undefined;
  const s = text.slice(c.start, c.end);
  return s.includes('\\') ? undefined : s;
}

/** A literal's pieces: its content, f-string fields as synthetic `0`, `{{`/`}}` as one brace. */
function literalPieces(text: string, t: Tok): Piece[] {
  const c = t.content!;
  if (!c.prefix.includes('f')) return c.end > c.start ? [{ k: 'lit', start: c.start, end: c.end }] : [];
  return braces(text, c.start, c.end);
}

/** `{…}` fields of a template between `start` and `end` as synthetic `0`, doubled braces as one. */
function braces(text: string, start: number, end: number): Piece[] {
  const out: Piece[] = [];
  let from = start;
  let i = start;
  while (i < end) {
    const c = text[i];
    if ((c === '{' || c === '}') && text[i + 1] === c) {
      if (i > from) out.push({ k: 'lit', start: from, end: i });
      out.push({ k: 'lit', start: i, end: i + 1 });
      i += 2;
      from = i;
    } else if (c === '{') {
      let depth = 1;
      let j = i + 1;
      while (j < end && depth) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}') depth--;
        j++;
      }
      if (i > from) out.push({ k: 'lit', start: from, end: i });
      out.push({ k: 'gap', text: '0', at: i });
      i = j;
      from = j;
    } else i++;
  }
  if (end > from) out.push({ k: 'lit', start: from, end });
  return out;
}

/** `.format()` applied: the literal pieces' fields become synthetic. */
function formatBraces(text: string, v: Val): Val {
  return v.flatMap((p) => (p.k === 'lit' && !p.hole ? braces(text, p.start, p.end) : [p]));
}

/** `%` formatting applied: conversions become synthetic `0`, `%%` one `%`. */
function formatPercent(text: string, v: Val): Val {
  const spec = /%(?:\([^)]*\))?[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])/g;
  return v.flatMap((p): Piece[] => {
    if (p.k !== 'lit' || p.hole) return [p];
    const out: Piece[] = [];
    const s = text.slice(p.start, p.end);
    let from = 0;
    for (const m of s.matchAll(spec)) {
      const at = m.index;
      if (at > from) out.push({ k: 'lit', start: p.start + from, end: p.start + at });
      if (m[1] === '%') out.push({ k: 'lit', start: p.start + at, end: p.start + at + 1 });
      else out.push({ k: 'gap', text: '0', at: p.start + at });
      from = at + m[0].length;
    }
    if (s.length > from) out.push({ k: 'lit', start: p.start + from, end: p.end });
    return out;
  });
}

/** `v.replace(from, to)` on the text the pieces copy (an occurrence across two pieces is not seen). */
function replace(text: string, v: Val, from: string, to: Val): Val {
  return v.flatMap((p): Piece[] => {
    if (p.k !== 'lit' || p.hole) return [p];
    const s = text.slice(p.start, p.end);
    if (!s.includes(from)) return [p];
    const out: Piece[] = [];
    let at = 0;
    for (let j = s.indexOf(from); j >= 0; j = s.indexOf(from, at)) {
      if (j > at) out.push({ k: 'lit', start: p.start + at, end: p.start + j });
      out.push(...to);
      at = j + from.length;
    }
    if (s.length > at) out.push({ k: 'lit', start: p.start + at, end: p.end });
    return out;
  });
}

/** Placeholders left in the text (a `.replace` on a path not followed): kept as written, marked. */
function markPlaceholders(text: string, v: Val, placeholders: ReadonlySet<string>): Val {
  const words = [...placeholders].filter((p) => /^[A-Za-z_]\w*$/.test(p) && p.length >= 3);
  if (!words.length) return v;
  const re = new RegExp(`\\b(?:${words.sort((a, b) => b.length - a.length).join('|')})\\b`, 'g');
  return v.flatMap((p): Piece[] => {
    if (p.k !== 'lit' || p.hole) return [p];
    const s = text.slice(p.start, p.end);
    const out: Piece[] = [];
    let from = 0;
    for (const m of s.matchAll(re)) {
      if (m.index > from) out.push({ k: 'lit', start: p.start + from, end: p.start + m.index });
      out.push({ k: 'lit', start: p.start + m.index, end: p.start + m.index + m[0].length, hole: true });
      from = m.index + m[0].length;
    }
    if (!out.length) return [p];
    if (s.length > from) out.push({ k: 'lit', start: p.start + from, end: p.end });
    return out;
  });
}

/** The BCC programs of a Python file (none when it does not import bcc). */
export function extractBccPython(text: string): PyBcc {
  if (!importsBcc(text)) return { importsBcc: false, programs: [], srcFiles: [] };
  const lines = logicalLines(text);
  const [stmts] = readBlock(lines, 0, 0);
  const interp = new Interpreter(text);
  // Every `.replace('X', …)` of the file, on followed paths or not: X is a placeholder.
  for (const { toks } of lines)
    for (let i = 0; i + 3 < toks.length; i++)
      if (toks[i].text === '.' && toks[i + 1].text === 'replace' && toks[i + 2].text === '(' && toks[i + 3].kind === 'str') {
        const p = literalText(text, toks[i + 3]);
        if (p) interp.placeholders.add(p);
      }
  const start: State = { env: new Map(), probes: new Map(), answers: [], programs: [] };
  const finals = interp.run(stmts, [start]);
  const byText = new Map<string, PyProgram & { when: BccProbeAnswer[][] }>();
  const srcFiles = new Set(interp.srcFiles);
  for (const st of finals) {
    for (const prog of st.programs) {
      const val = markPlaceholders(text, prog.val, interp.placeholders);
      const built = build(text, val);
      const key = `${prog.call}\u0000${built.text}`;
      const have = byText.get(key);
      if (have) have.when.push(st.answers);
      else byText.set(key, { ...built, call: prog.call, when: [st.answers] });
    }
  }
  return { importsBcc: true, programs: [...byText.values()], srcFiles: [...srcFiles] };
}

/** The virtual C text of a value and its segments. */
function build(text: string, v: Val): { text: string; segments: PySegment[] } {
  let out = '';
  const segments: PySegment[] = [];
  for (const p of v) {
    const s = p.k === 'lit' ? text.slice(p.start, p.end) : p.text;
    segments.push({
      start: out.length,
      end: out.length + s.length,
      py: p.k === 'lit' ? p.start : p.at,
      synthetic: p.k === 'gap' || !!p.hole,
    });
    out += s;
  }
  return { text: out, segments };
}

/**
 * The Python offset of virtual offset `offset`: exact inside copied text; a synthetic run maps to
 * its anchor. `side` picks the segment at a boundary (the end of a range belongs to the run before).
 */
export function toPython(
  program: Pick<PyProgram, 'segments'>,
  offset: number,
  side: 'start' | 'end' = 'start',
): { py: number; synthetic: boolean } {
  const segs = program.segments;
  let lo = 0;
  let hi = segs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segs[mid];
    if (side === 'start' ? offset < s.start : offset <= s.start) hi = mid - 1;
    else {
      found = mid;
      lo = mid + 1;
    }
  }
  if (found < 0) return segs.length ? { py: segs[0].py, synthetic: true } : { py: 0, synthetic: true };
  const s = segs[found];
  if (s.synthetic) return { py: s.py, synthetic: true };
  const inside = side === 'start' ? offset < s.end : offset <= s.end;
  return inside ? { py: s.py + (offset - s.start), synthetic: false } : { py: s.py + (s.end - s.start), synthetic: true };
}

/** Whether virtual range [start, end) touches synthetic text (a finding there rests on what is not followed). */
export function touchesSynthetic(program: Pick<PyProgram, 'segments'>, start: number, end: number): boolean {
  for (const s of program.segments) {
    if (!s.synthetic) continue;
    if (s.start === s.end ? s.start > start && s.start < end : s.start < Math.max(end, start + 1) && s.end > start) return true;
  }
  return false;
}
