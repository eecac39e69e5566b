/**
 * Programs and maps that a libbpf loader chooses at run time. libbpf-tools and many other projects
 * ship variants of one hook (fentry + kprobe, tp_btf + raw_tp, ring buffer + perf buffer) and switch
 * one off from user space before loading: `bpf_program__set_autoload(obj->progs.x, false)`,
 * `bpf_map__set_type(obj->maps.events, BPF_MAP_TYPE_PERF_EVENT_ARRAY)`, often through helpers of
 * their own (`bpf_buffer__new(obj->maps.events, obj->maps.heap)` whose body calls
 * `bpf_map__set_type`). Read from the loader's C with the lexer, so comments and strings never count.
 */
import { lexC, type Token } from '../parse/lexer';

/** One user-space C file of the project. */
export interface LoaderSource {
  readonly path: string;
  readonly text: string;
}

/** What the loader may change, by program and map name, with the file and line that does it. */
export interface RuntimeChoices {
  /** Programs whose autoload the loader sets (so some kernels run another variant). */
  readonly programs: ReadonlyMap<string, string>;
  /** Maps whose type the loader may change (a ring buffer that becomes a perf buffer). */
  readonly maps: ReadonlyMap<string, string>;
  /**
   * Programs the loader treats as alternatives: switched off in the two branches of one
   * `if … else` (`if (tracepoint_exists(…)) off(a); else off(b);`), so one of them runs.
   */
  readonly alternatives: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Programs whose attach target the loader sets at run time: `bpf_program__set_attach_target`, or
   * an explicit attach call whose target is computed rather than written as a string
   * (`bpf_program__attach_kprobe(obj->progs.x, false, cfg->op_funcs[F_READ])`).
   */
  readonly retargeted: ReadonlyMap<string, string>;
  /**
   * Read-only globals the loader writes before loading (`obj->rodata->use_pidns = true;`), each
   * with where: libbpf freezes `.rodata`, so the verifier sees their values as constants.
   */
  readonly rodata: ReadonlyMap<string, string>;
  /**
   * Who chooses at run time which programs to attach, when not the libbpf calls above (an
   * Inspektor Gadget WASM module declared in `build.yaml`): a kprobe or tracepoint whose target
   * is missing fails only to attach, and that loader may leave it unattached.
   */
  readonly attachments?: string;
}

/** The libbpf calls that switch a program off or change a map's type. */
const PROGRAM_SWITCHES = new Set(['bpf_program__set_autoload']);
const RETARGETS = new Set(['bpf_program__set_attach_target']);
/**
 * libbpf's explicit attach calls that name a kernel target, with the positions of its name
 * (libbpf.h): the program attaches where the loader says, not where its `SEC()` says.
 */
const ATTACH_CALLS: ReadonlyMap<string, readonly number[]> = new Map([
  ['bpf_program__attach_kprobe', [2]],
  ['bpf_program__attach_kprobe_opts', [1]],
  ['bpf_program__attach_tracepoint', [1, 2]],
  ['bpf_program__attach_tracepoint_opts', [1, 2]],
  ['bpf_program__attach_raw_tracepoint', [1]],
  ['bpf_program__attach_raw_tracepoint_opts', [1]],
]);
const MAP_SWITCHES = new Set(['bpf_map__set_type']);

interface FunctionDef {
  readonly name: string;
  readonly params: string[];
  /** Token range of the body, braces included. */
  readonly body: [number, number];
}

/** Top-level function definitions: `name ( params ) {`. */
function functionDefs(tokens: readonly Token[], match: Int32Array): FunctionDef[] {
  const out: FunctionDef[] = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.text === '{') {
      if (depth === 0 && i > 0 && tokens[i - 1].text === ')') {
        const open = match[i - 1];
        const name = open > 0 ? tokens[open - 1] : undefined;
        if (name?.kind === 'ident' && match[i] > i) {
          const params: string[] = [];
          let last: string | undefined;
          for (let j = open + 1; j < i - 1; j++) {
            if (tokens[j].kind === 'ident') last = tokens[j].text;
            if (tokens[j].text === ',' && last) params.push(last);
          }
          if (last) params.push(last);
          out.push({ name: name.text, params, body: [i, match[i]] });
        }
      }
      depth++;
    } else if (t.text === '}') depth = Math.max(0, depth - 1);
  }
  return out;
}

/** Calls in `[from, to)`: callee name and, per argument, its tokens. */
function* callsBetween(
  tokens: readonly Token[],
  match: Int32Array,
  from: number,
  to: number,
): Generator<{ callee: string; at: Token; args: Token[][] }> {
  for (let i = from; i < to - 1; i++) {
    if (tokens[i].kind !== 'ident' || tokens[i + 1].text !== '(' || match[i + 1] < 0) continue;
    const close = match[i + 1];
    const args: Token[][] = [[]];
    for (let j = i + 2; j < close; j++) {
      const tk = tokens[j];
      if (tk.text === ',') args.push([]);
      else args[args.length - 1].push(tk);
      if ((tk.text === '(' || tk.text === '[' || tk.text === '{') && match[j] > j) {
        for (let k = j + 1; k <= match[j]; k++) args[args.length - 1].push(tokens[k]);
        j = match[j];
      }
    }
    yield { callee: tokens[i].text, at: tokens[i], args };
  }
}

/** `obj->progs.name` / `skel->maps.name` in an argument: the name after `progs.` or `maps.`. */
function memberOf(arg: readonly Token[], kind: 'progs' | 'maps'): string | undefined {
  for (let i = 0; i + 2 < arg.length; i++) {
    if (arg[i].text === kind && arg[i + 1].text === '.' && arg[i + 2].kind === 'ident') return arg[i + 2].text;
  }
  return undefined;
}

/** The 1-based line of an offset. */
function lineOf(text: string, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

/**
 * What `loaders` (the files that open the object: they include its skeleton) may switch at run
 * time, with `helpers` (the project's other user-space C) defining wrappers such as
 * `bpf_buffer__new` whose parameters reach `bpf_map__set_type` or `bpf_program__set_autoload`.
 */
export function runtimeChoices(loaders: readonly LoaderSource[], helpers: readonly LoaderSource[]): RuntimeChoices {
  const lexed = [...loaders, ...helpers].map((s) => ({ src: s, lex: lexC(s.text) }));
  // Wrappers: parameter positions that reach a switch, found to a fixed point (wrappers of wrappers).
  const progWrappers = new Map<string, Set<number>>([...PROGRAM_SWITCHES].map((n) => [n, new Set([0])]));
  const mapWrappers = new Map<string, Set<number>>([...MAP_SWITCHES].map((n) => [n, new Set([0])]));
  const retargetWrappers = new Map<string, Set<number>>([...RETARGETS].map((n) => [n, new Set([0])]));
  const defs = lexed.flatMap(({ lex }) => functionDefs(lex.tokens, lex.match).map((d) => ({ d, lex })));
  for (let round = 0, changed = true; changed && round < 4; round++) {
    changed = false;
    for (const { d, lex } of defs) {
      for (const call of callsBetween(lex.tokens, lex.match, d.body[0], d.body[1])) {
        for (const [table] of [[progWrappers], [mapWrappers], [retargetWrappers]] as const) {
          const positions = table.get(call.callee);
          if (!positions) continue;
          for (const p of positions) {
            const arg = call.args[p];
            const param = arg?.length === 1 && arg[0].kind === 'ident' ? d.params.indexOf(arg[0].text) : -1;
            if (param < 0) continue;
            let mine = table.get(d.name);
            if (!mine) table.set(d.name, (mine = new Set()));
            if (!mine.has(param)) {
              mine.add(param);
              changed = true;
            }
          }
        }
      }
    }
  }
  const programs = new Map<string, string>();
  const maps = new Map<string, string>();
  const retargeted = new Map<string, string>();
  const alternatives = new Map<string, Set<string>>();
  /** Programs switched off by calls in token range [from, to). */
  const switchedIn = (lex: (typeof lexed)[number]['lex'], from: number, to: number): string[] => {
    const out: string[] = [];
    for (const call of callsBetween(lex.tokens, lex.match, from, to)) {
      for (const p of progWrappers.get(call.callee) ?? []) {
        const name = call.args[p] && memberOf(call.args[p], 'progs');
        if (name) out.push(name);
      }
    }
    return out;
  };
  const rodata = new Map<string, string>();
  for (const { src, lex } of lexed.slice(0, loaders.length)) {
    const t = lex.tokens;
    for (let i = 0; i + 3 < t.length; i++) {
      // `…rodata->name = …` or `…rodata->name[i] = …` (not `==`).
      if (t[i].text !== 'rodata' || t[i + 1].text !== '->' || t[i + 2].kind !== 'ident') continue;
      let j = i + 3;
      if (t[j]?.text === '[' && lex.match[j] > j) j = lex.match[j] + 1;
      if (t[j]?.text === '=' && !rodata.has(t[i + 2].text)) rodata.set(t[i + 2].text, `${src.path}:${lineOf(src.text, t[i].start)}`);
    }
    for (const [a, b] of ifElseBranches(lex.tokens, lex.match)) {
      const left = switchedIn(lex, a[0], a[1]);
      const right = switchedIn(lex, b[0], b[1]);
      for (const x of left) {
        for (const y of right) {
          if (x === y) continue;
          if (!alternatives.has(x)) alternatives.set(x, new Set());
          if (!alternatives.has(y)) alternatives.set(y, new Set());
          alternatives.get(x)!.add(y);
          alternatives.get(y)!.add(x);
        }
      }
    }
    for (const call of callsBetween(lex.tokens, lex.match, 0, lex.tokens.length)) {
      const where = () => `${src.path}:${lineOf(src.text, call.at.start)}`;
      for (const p of retargetWrappers.get(call.callee) ?? []) {
        const name = call.args[p] && memberOf(call.args[p], 'progs');
        if (name && !retargeted.has(name)) retargeted.set(name, where());
      }
      // A string target is as fixed as the SEC() name; only a computed one moves the program.
      const targets = ATTACH_CALLS.get(call.callee);
      if (targets?.some((t) => call.args[t] && !(call.args[t].length > 0 && call.args[t].every((tok) => tok.kind === 'string')))) {
        const name = call.args[0] && memberOf(call.args[0], 'progs');
        if (name && !retargeted.has(name)) retargeted.set(name, where());
      }
      for (const p of progWrappers.get(call.callee) ?? []) {
        const name = call.args[p] && memberOf(call.args[p], 'progs');
        if (name && !programs.has(name)) programs.set(name, where());
      }
      for (const p of mapWrappers.get(call.callee) ?? []) {
        const name = call.args[p] && memberOf(call.args[p], 'maps');
        if (name && !maps.has(name)) maps.set(name, where());
      }
    }
  }
  return { programs, maps, alternatives, retargeted, rodata };
}

/** The end (exclusive) of the statement starting at token `i`: a braced block, or up to its `;`. */
function statementEnd(tokens: readonly Token[], match: Int32Array, i: number): number {
  if (i >= tokens.length) return i;
  if (tokens[i].text === '{' && match[i] > i) return match[i] + 1;
  if (tokens[i].text === 'if' && tokens[i + 1]?.text === '(' && match[i + 1] > i) {
    let end = statementEnd(tokens, match, match[i + 1] + 1);
    if (tokens[end]?.text === 'else') end = statementEnd(tokens, match, end + 1);
    return end;
  }
  let j = i;
  while (j < tokens.length && tokens[j].text !== ';') {
    if ((tokens[j].text === '(' || tokens[j].text === '[' || tokens[j].text === '{') && match[j] > j) j = match[j];
    j++;
  }
  return Math.min(j + 1, tokens.length);
}

/** The token ranges of the two branches of every `if (…) … else …`. */
function ifElseBranches(tokens: readonly Token[], match: Int32Array): [[number, number], [number, number]][] {
  const out: [[number, number], [number, number]][] = [];
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (tokens[i].text !== 'if' || tokens[i + 1].text !== '(' || match[i + 1] < 0) continue;
    const thenStart = match[i + 1] + 1;
    const thenEnd = statementEnd(tokens, match, thenStart);
    if (tokens[thenEnd]?.text !== 'else') continue;
    const elseEnd = statementEnd(tokens, match, thenEnd + 1);
    out.push([
      [thenStart, thenEnd],
      [thenEnd + 1, elseEnd],
    ]);
  }
  return out;
}
