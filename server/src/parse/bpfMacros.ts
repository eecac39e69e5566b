// BPF C is full of macros that plain tree-sitter-c cannot parse: `SEC("…")` sits where C allows no
// identifier, BTF map members look like calls inside a struct, `bpf_for(…)` is a loop header, and
// attribute macros such as `__ksym` look like stray identifiers. A custom grammar cannot be built
// here, so this pass rewrites exactly those uses into same-length C that tree-sitter-c accepts, and
// reports every BPF macro use it sees as a site. Masking never moves a character: the masked text
// has the same length and the same line breaks as the source, so every tree position is a source
// position.
//
// Shapes that tree-sitter-c already parses without ERROR or MISSING nodes (libbpf program wrappers
// such as `int BPF_KPROBE(name, struct file *f)`, `BPF_CORE_READ(…)` and other call-like macros,
// `__attribute__` where the grammar allows it, pragmas) are only reported, never masked.

import { detached } from '../../../kernel-db/src/strings';
import { directiveSite } from './directives';
import { lexC, type LexResult, spliceLex, type DirectiveToken, type Token } from './lexer';
import {
  ATTRIBUTE_CALL_MACROS,
  ATTRIBUTE_MACROS,
  BCC_AUTO_PREFIXES,
  BCC_MAP_MACROS,
  BCC_MAP_METHODS,
  BCC_PROBE_MACROS,
  CORE_MACROS,
  DECL_KEYWORDS,
  GNU_ATTRIBUTE,
  LOOP_MACROS,
  MAP_MEMBER_MACROS,
  PROGRAM_WRAPPERS,
} from './macroTables';
import type { BpfMacroSite, MacroArg, MaskResult, ProgramParam, SectionSite, SectionTarget } from './sites';

export type * from './sites';

/** Overwrites characters of a copy of the source without ever touching a line break. */
class Masker {
  private bytes: Buffer | null = null;
  private codes: Uint16Array | null = null;

  constructor(private readonly source: string) {}

  /** Replaces every character in [start, end) except CR and LF with a space. */
  blank(start: number, end: number): void {
    const codes = this.buffer();
    for (let i = start; i < end; i++) {
      const c = codes[i]!;
      if (c !== 10 && c !== 13) codes[i] = 32;
    }
  }

  /** Writes `s` at `offset`; callers only write over characters of a single token, never a line break. */
  write(offset: number, s: string): void {
    const codes = this.buffer();
    for (let i = 0; i < s.length; i++) codes[offset + i] = s.charCodeAt(i);
  }

  /** The masked text. */
  result(): string {
    // Node's UTF-16LE codec copies code units as they are, lone surrogates included, so the
    // round trip changes nothing but the masked characters.
    return this.bytes ? this.bytes.toString('utf16le') : this.source;
  }

  private buffer(): Uint16Array {
    if (!this.codes) {
      // Buffer.alloc is never pooled, so the buffer is aligned for a Uint16Array view.
      this.bytes = Buffer.alloc(this.source.length * 2);
      this.bytes.write(this.source, 'utf16le');
      this.codes = new Uint16Array(this.bytes.buffer, this.bytes.byteOffset, this.source.length);
    }
    return this.codes;
  }
}

/** Arguments of one parenthesized list, with the token indexes of the commas between them. */
interface SplitArgs {
  readonly args: MacroArg[];
  /** Token indexes of the top-level commas. */
  readonly commas: number[];
  /** Token index ranges [first, last] of each argument (first > last for an empty one). */
  readonly ranges: Array<[number, number]>;
}

type BraceKind = 'record' | 'enum' | 'block';
type ContextKind = 'top' | 'paren' | 'bracket' | BraceKind;

const STRUCT_LIKE = new Set(['struct', 'union', 'enum']);

/** Decodes a C string literal's body (without quotes); enough for section names and licenses. */
export function decodeStringBody(body: string): string {
  return body.replace(/\\(x[0-9a-fA-F]+|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' };
    return simple[e] ?? e;
  });
}

/** The state of one masking run over one text. */
class MacroPass {
  private readonly tokens: readonly Token[];
  private readonly match: Int32Array;
  private readonly directives: readonly DirectiveToken[];
  /** Innermost enclosing matched opener of each token, or -1 at file level. */
  private readonly parent: Int32Array;
  /** Kind of each matched `{` (by token index). */
  private readonly braceKinds = new Map<number, BraceKind>();
  /** Tokens that become spaces in every case (SEC, attribute macros): invisible to neighbours. */
  private readonly transparent: Uint8Array;
  private readonly masker: Masker;
  private readonly sites: BpfMacroSite[] = [];
  private readonly gnuAttributes: Array<{ ident: number; close: number }> = [];
  /** Section sites of `__attribute__((section(…)))`, by the attribute's token: masked with it. */
  private readonly attributeSections = new Map<number, Mutable<SectionSite>>();
  private readonly sections: Array<{ ident: number; close: number; site: Mutable<SectionSite> }> = [];
  private readonly mapMembers: Array<{ brace: number; site: { map: string | null } }> = [];
  private readonly methodCandidates: Array<{ ident: number; close: number }> = [];
  private readonly autoProbeCandidates: Array<{ ident: number; close: number }> = [];
  private readonly bccMapNames = new Set<string>();
  /** The text's tokens, directives and comments. */
  readonly lexed: LexResult;

  constructor(private readonly text: string) {
    const lexed = lexC(text);
    this.lexed = lexed;
    this.tokens = lexed.tokens;
    this.match = lexed.match;
    this.directives = lexed.directives;
    this.parent = new Int32Array(this.tokens.length).fill(-1);
    this.transparent = new Uint8Array(this.tokens.length);
    this.masker = new Masker(text);
    this.computeParents();
  }

  /** Offsets of the `{` and `}` of each top-level block (function bodies, initializers), flat. */
  topBlocks(): Int32Array {
    const out: number[] = [];
    for (const [i, kind] of this.braceKinds) {
      if (kind !== 'block' || this.parent[i] !== -1) continue;
      out.push(this.tokens[i]!.start, this.tokens[this.match[i]!]!.start);
    }
    return Int32Array.from(out);
  }

  /**
   * Whether this pass, run over one `{…}` alone, found only what reads the same in place: the
   * block is balanced from its first token to its last, holds no directive, and its macro uses
   * are CO-RE reads and loop macros, which look at nothing outside their own arguments (a SEC, an
   * attribute, a map method or a map member may depend on the rest of the file).
   */
  localBlock(): boolean {
    const n = this.tokens.length;
    return (
      n >= 2 &&
      this.tokens[0]!.text === '{' &&
      this.match[0] === n - 1 &&
      this.tokens[n - 1]!.end === this.text.length &&
      this.directives.length === 0 &&
      this.gnuAttributes.length === 0 &&
      this.sections.length === 0 &&
      this.methodCandidates.length === 0 &&
      this.autoProbeCandidates.length === 0 &&
      this.sites.every(isLocalSite)
    );
  }

  run(): MaskResult {
    this.visitIdents();
    this.maskGnuAttributes();
    this.resolveSectionTargets();
    this.resolveMapOwners();
    this.resolveMethodCalls();
    this.resolveAutoProbes();
    this.visitDirectives();
    this.sites.sort((a, b) => a.start - b.start || a.end - b.end);
    return { masked: this.masker.result(), sites: this.sites };
  }

  /**
   * The token loop, in a method of its own: V8 compiles a long loop while it runs (on-stack
   * replacement) before the code after it has ever run; had that code been in the same method,
   * every later call (one per edit, on one function body) would enter the loop's compiled code
   * and fall back out of it at that code.
   */
  private visitIdents(): void {
    for (let i = 0; i < this.tokens.length; i++) {
      if (this.tokens[i]!.kind === 'ident') this.visitIdent(i);
    }
  }

  // ---- Structure ---------------------------------------------------------------------------

  private computeParents(): void {
    const stack: number[] = [];
    const { tokens, match } = this;
    for (let i = 0; i < tokens.length; i++) {
      while (stack.length && match[stack[stack.length - 1]!] === i) stack.pop();
      this.parent[i] = stack.length ? stack[stack.length - 1]! : -1;
      // A closer of the innermost opener was popped above; unmatched brackets never nest anything.
      const t = tokens[i]!;
      if (t.kind === 'punct' && (t.text === '(' || t.text === '[' || t.text === '{') && match[i]! > i) {
        if (t.text === '{') this.braceKinds.set(i, this.classifyBrace(i));
        stack.push(i);
      }
    }
  }

  /** Tells a struct/union body and an enum body from a block or an initializer. */
  private classifyBrace(open: number): BraceKind {
    let j = this.skipAttributesBackward(open - 1);
    const t = this.tokens[j];
    if (!t) return 'block';
    if (t.kind === 'ident' && !STRUCT_LIKE.has(t.text)) j = this.skipAttributesBackward(j - 1);
    const kw = this.tokens[j];
    if (kw?.text === 'struct' || kw?.text === 'union') return 'record';
    if (kw?.text === 'enum') return 'enum';
    return 'block';
  }

  /** From token j going backward, skips `__attribute__((…))` groups; returns the first other token. */
  private skipAttributesBackward(j: number): number {
    for (;;) {
      const t = this.tokens[j];
      if (!t || t.text !== ')') return j;
      const open = this.match[j]!;
      const ident = this.tokens[open - 1];
      if (open < 0 || !ident || !GNU_ATTRIBUTE.has(ident.text)) return j;
      j = open - 2;
    }
  }

  private contextOf(i: number): ContextKind {
    const p = this.parent[i]!;
    if (p < 0) return 'top';
    const s = this.tokens[p]!.text;
    if (s === '(') return 'paren';
    if (s === '[') return 'bracket';
    return this.braceKinds.get(p) ?? 'block';
  }

  /** The next token after i that is not transparent, or -1. */
  private sigNext(i: number): number {
    let j = i + 1;
    while (j < this.tokens.length && this.transparent[j]) j++;
    return j < this.tokens.length ? j : -1;
  }

  /** The previous token before i that is not transparent, or -1. */
  private sigPrev(i: number): number {
    let j = i - 1;
    while (j >= 0 && this.transparent[j]) j--;
    return j;
  }

  /** Like sigNext, also skipping `__attribute__((…))` groups. */
  private sigNextSkipAttributes(i: number): number {
    let j = this.sigNext(i);
    while (j >= 0 && GNU_ATTRIBUTE.has(this.tokens[j]!.text) && this.callClose(j) > 0) j = this.sigNext(this.callClose(j));
    return j;
  }

  /** Like sigPrev, also skipping `__attribute__((…))` groups. */
  private sigPrevSkipAttributes(i: number): number {
    let j = this.sigPrev(i);
    for (;;) {
      const t = this.tokens[j];
      if (!t || t.text !== ')') return j;
      const open = this.match[j]!;
      if (open < 1 || !GNU_ATTRIBUTE.has(this.tokens[open - 1]!.text)) return j;
      j = this.sigPrev(open - 1);
    }
  }

  /** If token i is followed by a matched `(`, the index of its `)`; otherwise -1. */
  private callClose(i: number): number {
    const next = this.tokens[i + 1];
    if (!next || next.text !== '(') return -1;
    const close = this.match[i + 1]!;
    return close > i + 1 ? close : -1;
  }

  private isText(i: number, ...texts: string[]): boolean {
    const t = this.tokens[i];
    return !!t && texts.includes(t.text);
  }

  /**
   * Splits the tokens between `(` at `open` and `)` at `close` at top-level commas. Returns null
   * when a `;` (or, unless allowed, a brace) appears at the top level: such a "macro use" is
   * really half-typed code that runs into the next statement.
   */
  private splitArgs(open: number, close: number, allowBraces = false): SplitArgs | null {
    const args: MacroArg[] = [];
    const commas: number[] = [];
    const ranges: Array<[number, number]> = [];
    if (close === open + 1) return { args, commas, ranges };
    let first = open + 1;
    const push = (last: number, endOffset: number): void => {
      ranges.push([first, last]);
      if (last < first) {
        args.push({ text: '', start: endOffset, end: endOffset });
      } else {
        const start = this.tokens[first]!.start;
        const end = this.tokens[last]!.end;
        // A copy of its own: sites outlive this text (an edit keeps those it does not touch), and a
        // slice would keep the whole of it alive.
        args.push({ text: detached(this.text.slice(start, end)), start, end });
      }
    };
    for (let j = open + 1; j < close; j++) {
      const t = this.tokens[j]!;
      if (t.text === ';') return null;
      if (t.text === '{' || t.text === '}') {
        if (!allowBraces) return null;
      }
      if (t.text === ',') {
        push(j - 1, t.start);
        commas.push(j);
        first = j + 1;
        continue;
      }
      const m = this.match[j]!;
      if (m > j && (t.text === '(' || t.text === '[' || t.text === '{')) j = m;
    }
    push(close - 1, this.tokens[close]!.start);
    return { args, commas, ranges };
  }

  // ---- Identifiers ---------------------------------------------------------------------------

  private visitIdent(i: number): void {
    const t = this.tokens[i]!;
    const name = t.text;
    const prev = this.tokens[i - 1];
    if (prev && (prev.text === '.' || prev.text === '->')) {
      if (prev.text === '.' && BCC_MAP_METHODS.has(name) && this.tokens[i - 2]?.kind === 'ident' && this.callClose(i) > 0) {
        this.methodCandidates.push({ ident: i, close: this.callClose(i) });
      }
      return;
    }
    const close = this.callClose(i);
    const context = this.contextOf(i);
    if (name === 'SEC') {
      if (close > 0) this.visitSection(i, close);
    } else if (ATTRIBUTE_MACROS.has(name)) {
      this.transparent[i] = 1;
      this.masker.blank(t.start, t.end);
      this.sites.push({ kind: 'attribute', name, start: t.start, end: t.end, args: [], masked: true });
    } else if (ATTRIBUTE_CALL_MACROS.has(name)) {
      const split = close > 0 ? this.splitArgs(i + 1, close) : null;
      if (!split) return;
      this.transparent.fill(1, i, close + 1);
      const end = this.tokens[close]!.end;
      this.masker.blank(t.start, end);
      this.sites.push({ kind: 'attribute', name, start: t.start, end, args: split.args, masked: true });
    } else if (GNU_ATTRIBUTE.has(name)) {
      if (close > 0) {
        this.gnuAttributes.push({ ident: i, close });
        this.visitAttributeSection(i, close);
      }
    } else if (close < 0) {
      return;
    } else if (PROGRAM_WRAPPERS.has(name)) {
      if (context === 'top') this.visitProgram(i, close);
    } else if (MAP_MEMBER_MACROS.has(name)) {
      if (context === 'record') this.visitMapMember(i, close);
    } else if (BCC_MAP_MACROS.has(name)) {
      if (context === 'top') this.visitBccMap(i, close);
    } else if (BCC_PROBE_MACROS.has(name)) {
      if (context === 'top') this.visitBccProbe(i, close);
    } else if (CORE_MACROS.has(name)) {
      this.visitCore(i, close);
    } else if (LOOP_MACROS.has(name)) {
      if (context === 'block') this.visitLoop(i, close);
    } else if (context === 'top' && this.isText(close + 1, '{')) {
      for (const prefix of BCC_AUTO_PREFIXES.keys()) {
        if (name.startsWith(prefix) && name.length > prefix.length) {
          this.autoProbeCandidates.push({ ident: i, close });
          break;
        }
      }
    }
  }

  /** `SEC("…")`: blanked wherever it is; its target is resolved once all masks are known. */
  private visitSection(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close);
    if (!split) return;
    const t = this.tokens[i]!;
    const end = this.tokens[close]!.end;
    this.transparent.fill(1, i, close + 1);
    this.masker.blank(t.start, end);
    const only = split.args.length === 1 ? split.ranges[0]! : undefined;
    this.addSection(i, close, split.args, only ? this.literal(only[0], only[1]) : null, true);
  }

  /** The value of the string literals of tokens `first`…`last` (adjacent ones joined); null for anything else. */
  private literal(first: number, last: number): string | null {
    if (first > last) return null;
    let s = '';
    for (let j = first; j <= last; j++) {
      const tok = this.tokens[j]!;
      if (tok.kind !== 'string' || !tok.text.startsWith('"') || !tok.text.endsWith('"') || tok.text.length < 2) return null;
      s += decodeStringBody(tok.text.slice(1, -1));
    }
    return s;
  }

  /** A section site from token `i` (`SEC` or `__attribute__`) to `close`; its target is resolved later. */
  private addSection(i: number, close: number, args: MacroArg[], section: string | null, masked: boolean): Mutable<SectionSite> {
    const site: Mutable<SectionSite> = {
      kind: 'section',
      name: this.tokens[i]!.text,
      start: this.tokens[i]!.start,
      end: this.tokens[close]!.end,
      args,
      masked,
      section,
      target: null,
    };
    this.sites.push(site);
    this.sections.push({ ident: i, close, site });
    return site;
  }

  /**
   * `__attribute__((section("kprobe/x"), used))`, what `SEC("kprobe/x")` expands to, written out
   * (Tetragon declares its programs and its license so): a section like SEC's, of the function or
   * variable it annotates. The attribute itself is masked or not as any other.
   */
  private visitAttributeSection(i: number, close: number): void {
    for (let j = i + 1; j < close; j++) {
      const t = this.tokens[j]!;
      if (t.kind !== 'ident' || (t.text !== 'section' && t.text !== '__section__')) continue;
      const before = this.tokens[j - 1]?.text;
      if ((before !== '(' && before !== ',') || this.tokens[j + 1]?.text !== '(') continue;
      const end = this.match[j + 1]!;
      if (end <= j + 1 || end >= close) return;
      // `section(("…"))`: redundant parentheses around the name.
      let a = j + 2;
      let b = end - 1;
      while (a < b && this.tokens[a]!.text === '(' && this.match[a] === b) {
        a++;
        b--;
      }
      // The name's literal is the argument, as SEC's is: findings about the section point at it.
      const from = this.tokens[a]!.start;
      const to = this.tokens[b]!.end;
      const args = a <= b ? [{ text: detached(this.text.slice(from, to)), start: from, end: to }] : [];
      this.attributeSections.set(i, this.addSection(i, close, args, this.literal(a, b), false));
      return;
    }
  }

  /** `int BPF_KPROBE(name, params…)` parses as a function declarator as it is: report, don't mask. */
  private visitProgram(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close);
    if (!split || split.args.length === 0 || split.ranges[0]![0] !== split.ranges[0]![1]) return;
    const name = this.tokens[i]!.text;
    const t = this.tokens[i]!;
    const params: ProgramParam[] = [];
    if (name === 'BPF_PROG2') {
      // BPF_PROG2 takes each parameter as two arguments, its type and its name.
      for (let k = 1; k < split.args.length; k += 2) {
        const type = split.args[k]!;
        const pname = split.args[k + 1];
        const end = pname ? pname.end : type.end;
        params.push({
          text: detached(this.text.slice(type.start, end)),
          start: type.start,
          end,
          type: type.text.replace(/\s+/g, ' '),
          name: pname?.text ?? '',
        });
      }
    } else {
      for (let k = 1; k < split.args.length; k++) params.push(this.splitParam(split.args[k]!, split.ranges[k]!));
    }
    this.sites.push({
      kind: 'program',
      name,
      start: t.start,
      end: this.tokens[close]!.end,
      args: split.args,
      masked: false,
      programName: split.args[0]!.text,
      params,
    });
  }

  /** Splits a parameter declaration into its type and the declared name. */
  private splitParam(arg: MacroArg, [first, last]: [number, number]): ProgramParam {
    let nameIdx = -1;
    for (let j = first; j <= last; j++) {
      const t = this.tokens[j]!;
      const m = this.match[j]!;
      if (m > j && (t.text === '(' || t.text === '[')) {
        j = m;
        continue;
      }
      if (t.kind !== 'ident' || DECL_KEYWORDS.has(t.text) || j === first) continue;
      if (STRUCT_LIKE.has(this.tokens[j - 1]!.text)) continue;
      nameIdx = j;
    }
    if (nameIdx < 0) return { ...arg, type: arg.text.replace(/\s+/g, ' '), name: '' };
    const n = this.tokens[nameIdx]!;
    const type = `${this.text.slice(arg.start, n.start)} ${this.text.slice(n.end, arg.end)}`.replace(/\s+/g, ' ').trim();
    return { ...arg, type, name: n.text };
  }

  /**
   * BTF map members. `__uint(name, val)` becomes `int    name[val]` and `__type(name, T)` becomes
   * `int    name( T)`: the member name stays a field name, a `__uint` value stays an expression
   * (as the array size) and a `__type` type stays a type (as a parameter type), all in place.
   */
  private visitMapMember(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close, true);
    if (!split || split.args.length !== 2) return;
    const [first, last] = split.ranges[0]!;
    if (first !== last || this.tokens[first]!.kind !== 'ident' || split.args[1]!.text === '') return;
    const t = this.tokens[i]!;
    const form = MAP_MEMBER_MACROS.get(t.text)!;
    this.masker.write(t.start, 'int');
    this.masker.blank(t.start + 3, this.tokens[i + 1]!.end);
    const comma = this.tokens[split.commas[0]!]!;
    if (form === 'array') {
      this.masker.write(comma.start, '[');
      this.masker.write(this.tokens[close]!.start, ']');
    } else {
      this.masker.write(comma.start, '(');
    }
    const site = {
      kind: 'map-member' as const,
      name: t.text,
      start: t.start,
      end: this.tokens[close]!.end,
      args: split.args,
      masked: true,
      member: split.args[0]!.text,
      value: split.args[1]!,
      map: null as string | null,
    };
    this.sites.push(site);
    this.mapMembers.push({ brace: this.parent[i]!, site });
  }

  /**
   * BCC map declarations take types as arguments, which C call syntax rejects as soon as a type has
   * two words, so every one is masked the same way: `BPF_HASH(start, u32, u64)` becomes
   * `int      start          `, a declaration of the map's name.
   */
  private visitBccMap(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close);
    const t = this.tokens[i]!;
    const nameIndex = BCC_MAP_MACROS.get(t.text)!;
    if (!split || split.args.length <= nameIndex) return;
    const [first, last] = split.ranges[nameIndex]!;
    if (first !== last || this.tokens[first]!.kind !== 'ident') return;
    const nameArg = split.args[nameIndex]!;
    const end = this.tokens[close]!.end;
    this.masker.write(t.start, 'int');
    this.masker.blank(t.start + 3, nameArg.start);
    this.masker.blank(nameArg.end, end);
    this.bccMapNames.add(nameArg.text);
    this.sites.push({ kind: 'bcc-map', name: t.text, start: t.start, end, args: split.args, masked: true, mapName: nameArg.text });
  }

  /**
   * BCC probe macros stand where a return type and declarator belong. They become a function named
   * `_` whose parameter list keeps the real parameters: `KFUNC_PROBE(do_unlinkat, int dfd)` becomes
   * `int        _(            int dfd)`.
   */
  private visitBccProbe(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close);
    const t = this.tokens[i]!;
    const macro = BCC_PROBE_MACROS.get(t.text)!;
    if (!split || split.args.length < macro.nameArgs) return;
    const names = split.args.slice(0, macro.nameArgs).map((a) => a.text);
    const hasParams = split.args.length > macro.nameArgs;
    this.masker.write(t.start, 'int');
    this.masker.blank(t.start + 3, t.end - 1);
    this.masker.write(t.end - 1, '_');
    const blankEnd = hasParams ? this.tokens[split.commas[macro.nameArgs - 1]!]!.end : this.tokens[close]!.start;
    this.masker.blank(this.tokens[i + 1]!.end, blankEnd);
    const params: ProgramParam[] = [];
    for (let k = macro.nameArgs; k < split.args.length; k++) params.push(this.splitParam(split.args[k]!, split.ranges[k]!));
    this.sites.push({
      kind: 'bcc-probe',
      name: t.text,
      start: t.start,
      end: this.tokens[close]!.end,
      args: split.args,
      masked: true,
      programName: macro.programName(names),
      probe: { type: macro.type, target: macro.target(names) },
      params,
    });
  }

  /** CO-RE macros: type arguments become `0` padded with spaces; the call itself stays. */
  private visitCore(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close);
    if (!split) return;
    const t = this.tokens[i]!;
    const typeArgs = CORE_MACROS.get(t.text)!(split.args.length).filter((k) => k < split.args.length && split.args[k]!.text !== '');
    for (const k of typeArgs) {
      const arg = split.args[k]!;
      this.masker.write(arg.start, '0');
      this.masker.blank(arg.start + 1, arg.end);
    }
    this.sites.push({
      kind: 'core',
      name: t.text,
      start: t.start,
      end: this.tokens[close]!.end,
      args: split.args,
      masked: typeArgs.length > 0,
      typeArgs,
    });
  }

  /**
   * `bpf_for(i, 0, n) body` expands to a `for` header, so it becomes `while  (i, 0, n) body`: a loop
   * whose body is the real body, with the arguments kept as a comma expression.
   */
  private visitLoop(i: number, close: number): void {
    const split = this.splitArgs(i + 1, close);
    if (!split || split.args.length === 0 || split.args.some((a) => a.text === '')) return;
    const t = this.tokens[i]!;
    this.masker.write(t.start, 'while');
    this.masker.blank(t.start + 5, t.end);
    this.sites.push({ kind: 'loop', name: t.text, start: t.start, end: this.tokens[close]!.end, args: split.args, masked: true });
  }

  // ---- GNU attributes -------------------------------------------------------------------------

  /**
   * `__attribute__((…))` is masked only where tree-sitter-c's grammar has no place for it. The
   * grammar allows any number of attributes among declaration specifiers, after a function
   * declarator and after a parameter; one after `struct`; one after a struct, union or enum body
   * or tag; one at the end of a field declaration. It allows none after the declarator of a plain
   * declaration, none after `union`/`enum`, none in a typedef's specifiers, and none before a
   * declaration that declares only a type. Runs of consecutive attributes are decided together.
   */
  private maskGnuAttributes(): void {
    const list = this.gnuAttributes;
    let g = 0;
    while (g < list.length) {
      let k = g + 1;
      while (k < list.length && this.sigNext(list[k - 1]!.close) === list[k]!.ident) k++;
      const group = list.slice(g, k);
      const keep = this.attributesAllowed(group[0]!.ident, group[group.length - 1]!.close, group.length);
      group.forEach((a, n) => this.reportGnuAttribute(a.ident, a.close, n >= keep));
      g = k;
    }
  }

  private reportGnuAttribute(ident: number, close: number, mask: boolean): void {
    const t = this.tokens[ident]!;
    const end = this.tokens[close]!.end;
    // The attribute list is inside the inner parentheses of `__attribute__((…))`.
    const inner = this.tokens[ident + 2]?.text === '(' && this.match[ident + 2] === close - 1;
    const split = inner ? this.splitArgs(ident + 2, close - 1) : this.splitArgs(ident + 1, close);
    if (mask) this.masker.blank(t.start, end);
    this.sites.push({ kind: 'attribute', name: t.text, start: t.start, end, args: split?.args ?? [], masked: mask });
    const section = this.attributeSections.get(ident);
    if (section) section.masked = mask;
  }

  /** How many attributes of a run starting at `first` and ending at `last` the grammar accepts. */
  private attributesAllowed(first: number, last: number, count: number): number {
    const prevIdx = this.sigPrev(first);
    const nextIdx = this.sigNext(last);
    const prev = prevIdx >= 0 ? this.tokens[prevIdx]! : null;
    const next = nextIdx >= 0 ? this.tokens[nextIdx]!.text : '';
    const context = this.contextOf(first);
    const nextStartsDeclarator = nextIdx >= 0 && (this.tokens[nextIdx]!.kind === 'ident' || next === '*' || next === '(');

    if (prev?.text === 'struct') return 1;
    if (prev?.text === 'union' || prev?.text === 'enum') return 0;

    const afterBody =
      prev?.text === '}' &&
      this.braceKinds.get(this.match[prevIdx]!) !== undefined &&
      this.braceKinds.get(this.match[prevIdx]!) !== 'block';
    const afterTag = prev?.kind === 'ident' && STRUCT_LIKE.has(this.tokens[this.sigPrev(prevIdx)]?.text ?? '');
    // Between a struct or union tag and its body the grammar has no place for an attribute.
    if (afterTag && next === '{') return 0;
    if (afterBody || afterTag) {
      // The struct/union/enum specifier takes one; the rest are specifiers of the declaration,
      // which needs a declarator after them and must not be a typedef.
      const restAllowed = nextStartsDeclarator && !this.statementHasTypedef(prevIdx);
      return restAllowed ? count : 1;
    }

    if (prev?.text === ')') return context === 'record' ? (next === ';' ? 1 : 0) : count;

    const afterDeclarator =
      prev?.text === ']' || (prev?.kind === 'ident' && !DECL_KEYWORDS.has(prev.text) && !nextStartsDeclarator && next !== '{');
    if (afterDeclarator) {
      if (context === 'record') return next === ';' ? 1 : 0;
      if (context === 'paren') return next === '=' || next === ';' ? 0 : count;
      if (this.statementHasTypedef(prevIdx)) return next === ';' ? count : 0;
      return 0;
    }

    // Declaration specifiers: fine unless nothing but a type follows, or in a typedef.
    if (next === '' || next === ';' || next === '}' || next === 'typedef') return 0;
    if (this.statementHasTypedef(prevIdx)) return 0;
    if (STRUCT_LIKE.has(next) && this.declaresOnlyType(nextIdx)) return 0;
    return count;
  }

  /** Whether the statement containing token `from` (looking backward) has a `typedef`. */
  private statementHasTypedef(from: number): boolean {
    let j = from;
    while (j >= 0) {
      const t = this.tokens[j]!;
      if (t.text === ';') return false;
      if (t.text === ')' || t.text === ']' || t.text === '}') {
        const open = this.match[j]!;
        if (open < 0) return false;
        if (t.text === '}' && (this.braceKinds.get(open) ?? 'block') === 'block') return false;
        j = open - 1;
        continue;
      }
      if (t.text === '(' || t.text === '[' || t.text === '{') return false;
      if (t.text === 'typedef') return true;
      j--;
    }
    return false;
  }

  /** Whether `struct|union|enum [tag] [{…}] [attributes] ;` starts at `kw`. */
  private declaresOnlyType(kw: number): boolean {
    let j = this.sigNextSkipAttributes(kw);
    if (j >= 0 && this.tokens[j]!.kind === 'ident') j = this.sigNextSkipAttributes(j);
    if (j >= 0 && this.tokens[j]!.text === '{' && this.match[j]! > j) j = this.sigNextSkipAttributes(this.match[j]!);
    return j >= 0 && this.tokens[j]!.text === ';';
  }

  // ---- Resolution after all masks are known ---------------------------------------------------

  /** Finds what each SEC annotates: the declarator before it, or the function or variable after it. */
  private resolveSectionTargets(): void {
    for (const { ident, close, site } of this.sections) {
      const nextIdx = this.sigNextSkipAttributes(close);
      const next = nextIdx >= 0 ? this.tokens[nextIdx]!.text : '';
      if (nextIdx < 0 || next === '=' || next === ';' || next === ',') {
        let j = this.sigPrevSkipAttributes(ident);
        while (j >= 0 && this.tokens[j]!.text === ']' && this.match[j]! >= 0) j = this.sigPrevSkipAttributes(this.match[j]!);
        const t = this.tokens[j];
        if (t && t.kind === 'ident' && !DECL_KEYWORDS.has(t.text)) site.target = this.targetOf('variable', t);
        continue;
      }
      site.target = this.scanForwardTarget(nextIdx);
    }
  }

  private targetOf(kind: SectionTarget['kind'], t: Token | MacroArg): SectionTarget {
    return { kind, name: t.text, start: t.start, end: t.end };
  }

  /** Scans a declaration that follows a SEC for its declarator name. */
  private scanForwardTarget(from: number): SectionTarget | null {
    let last = -1;
    let j = from;
    for (let steps = 0; j >= 0 && steps < 256; steps++) {
      const t = this.tokens[j]!;
      if (GNU_ATTRIBUTE.has(t.text) && this.callClose(j) > 0) {
        j = this.sigNext(this.callClose(j));
        continue;
      }
      if (t.kind === 'ident') {
        if (!DECL_KEYWORDS.has(t.text)) last = j;
        j = this.sigNext(j);
        continue;
      }
      if (t.text === '*') {
        j = this.sigNext(j);
        continue;
      }
      if (t.text === '{' && this.match[j]! > j && this.braceKinds.get(j) !== 'block') {
        last = -1;
        j = this.sigNext(this.match[j]!);
        continue;
      }
      if (t.text === '(' && last >= 0) {
        const name = this.tokens[last]!;
        if (PROGRAM_WRAPPERS.has(name.text) && this.match[j]! > j) {
          const split = this.splitArgs(j, this.match[j]!);
          const first = split?.args[0];
          return first && first.text !== '' ? this.targetOf('function', first) : null;
        }
        return this.targetOf('function', name);
      }
      if ((t.text === '=' || t.text === ';' || t.text === ',' || t.text === '[') && last >= 0) {
        return this.targetOf('variable', this.tokens[last]!);
      }
      return null;
    }
    return null;
  }

  /** Names the map variable declared right after the struct body holding each map member. */
  private resolveMapOwners(): void {
    for (const { brace, site } of this.mapMembers) {
      const closeBrace = this.match[brace]!;
      const j = this.sigNextSkipAttributes(closeBrace);
      const t = this.tokens[j];
      if (t && t.kind === 'ident' && !DECL_KEYWORDS.has(t.text)) site.map = t.text;
    }
  }

  /** Keeps method calls whose receiver is a BCC map declared in this file. */
  private resolveMethodCalls(): void {
    for (const { ident, close } of this.methodCandidates) {
      const receiver = this.tokens[ident - 2]!;
      if (!this.bccMapNames.has(receiver.text)) continue;
      const split = this.splitArgs(ident + 1, close);
      if (!split) continue;
      const method = this.tokens[ident]!.text;
      this.sites.push({
        kind: 'bcc-map-method',
        name: method,
        start: receiver.start,
        end: this.tokens[close]!.end,
        args: split.args,
        masked: false,
        mapName: receiver.text,
        method,
      });
    }
  }

  /**
   * Functions BCC attaches by name. BCC programs never use SEC, and a libbpf program may give its
   * own functions the same prefixes, so a file with any SEC has none.
   */
  private resolveAutoProbes(): void {
    if (this.sections.length > 0) return;
    for (const { ident, close } of this.autoProbeCandidates) {
      const t = this.tokens[ident]!;
      const prev = this.tokens[this.sigPrev(ident)];
      if (!prev || (prev.kind !== 'ident' && prev.text !== '*')) continue;
      const split = this.splitArgs(ident + 1, close);
      if (!split) continue;
      let type = '';
      let rest = '';
      for (const [prefix, probeType] of BCC_AUTO_PREFIXES) {
        if (t.text.startsWith(prefix)) {
          type = probeType;
          rest = t.text.slice(prefix.length);
          break;
        }
      }
      // tracepoint__<category>__<event>: the category has no double underscore.
      const cut = rest.indexOf('__');
      const target = type === 'tracepoint' && cut > 0 ? `${rest.slice(0, cut)}:${rest.slice(cut + 2)}` : rest;
      this.sites.push({
        kind: 'bcc-probe',
        name: t.text,
        start: t.start,
        end: this.tokens[close]!.end,
        args: split.args,
        masked: false,
        programName: t.text,
        probe: { type, target },
        params: split.args.map((a, k) => this.splitParam(a, split.ranges[k]!)),
      });
    }
  }

  // ---- Directives -----------------------------------------------------------------------------

  private visitDirectives(): void {
    for (const d of this.directives) {
      const site = directiveSite(d.text, d.start);
      if (site) this.sites.push(site);
    }
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Masks the BPF macro uses that tree-sitter-c cannot parse and reports every BPF macro use.
 *
 * The masked text has exactly the source's length and line breaks; inside a masked use, characters
 * are replaced by spaces or by same-length C (`__uint(a, b)` → `int    a[b]`), and everything
 * else is untouched. Site offsets are UTF-16 code units into `text`.
 */
export function maskBpfMacros(text: string): MaskResult {
  return new MacroPass(text).run();
}

/** Macro uses that depend only on their own tokens. */
function isLocalSite(s: BpfMacroSite): boolean {
  return s.kind === 'core' || s.kind === 'loop';
}

/** A text's masking, with what lets an edit inside one function body re-mask only that body. */
export interface MaskState {
  readonly text: string;
  /** As in {@link MaskResult}. */
  readonly masked: string;
  /** As in {@link MaskResult}; shared between states, hence read-only. */
  readonly sites: readonly BpfMacroSite[];
  /** Offsets of each top-level block's `{` and `}`, flat, in source order. */
  readonly blocks: Int32Array;
}

/** Masks a whole text (see {@link maskBpfMacros}). */
export function maskState(text: string): MaskState {
  const pass = new MacroPass(text);
  const r = pass.run();
  return { text, masked: r.masked, sites: r.sites, blocks: pass.topBlocks() };
}

/**
 * The masking of `text`, which is `prev.text` with [start, oldEnd) replaced by `inserted`. An
 * edit inside one top-level block (typing in a function body) re-masks only that block when it
 * reads the same alone as in place (`MacroPass.localBlock`): the rest of the masked text, its
 * macro uses and its tokens are the previous ones, moved. Anything else masks the whole text.
 * Either way the result equals `maskState(text)` (test/server/masking.test.ts replays edits).
 */
export function maskEdit(prev: MaskState, start: number, oldEnd: number, inserted: string, text: string): MaskState {
  return maskBlockEdit(prev, start, oldEnd, inserted, text) ?? maskState(text);
}

/** {@link maskEdit}'s block path alone: undefined when the edit needs the whole text masked. */
export function maskBlockEdit(prev: MaskState, start: number, oldEnd: number, inserted: string, text: string): MaskState | undefined {
  const { blocks } = prev;
  // The last block opening before the edit.
  let lo = 0;
  let hi = blocks.length / 2 - 1;
  let k = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[2 * mid]! < start) {
      k = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (k < 0) return undefined;
  const open = blocks[2 * k]!;
  const close = blocks[2 * k + 1]!;
  if (oldEnd > close) return undefined;
  const delta = inserted.length - (oldEnd - start);
  // The block's old macro uses must be local too: their replacements come from the block alone.
  const inside = (s: { start: number; end: number }) => s.end > open && s.start <= close;
  if (prev.sites.some((s) => inside(s) && (!isLocalSite(s) || s.start < open || s.end > close + 1))) return undefined;
  const body = text.slice(open, close + delta + 1);
  const pass = new MacroPass(body);
  const r = pass.run();
  if (!pass.localBlock()) return undefined;
  const old = lexC(prev.text);
  const first = tokenAt(old.tokens, open);
  const last = tokenAt(old.tokens, close);
  if (first < 0 || last < 0) return undefined;
  spliceLex(text, old, first, last, pass.lexed, open, delta);
  const moved = (d: number) => (s: BpfMacroSite) => (d ? shiftOffsets(s, d) : s);
  const sites = [
    ...prev.sites.filter((s) => s.end <= open),
    ...r.sites.map(moved(open)),
    ...prev.sites.filter((s) => s.start > close).map(moved(delta)),
  ];
  const next = blocks.slice();
  next[2 * k + 1] = close + delta;
  if (delta) for (let i = 2 * k + 2; i < next.length; i++) next[i] = next[i]! + delta;
  const masked = prev.masked.slice(0, open) + r.masked + prev.masked.slice(close + 1);
  return { text, masked, sites, blocks: next };
}

/** The index of the token starting at `offset`, or -1. */
function tokenAt(tokens: readonly Token[], offset: number): number {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = tokens[mid]!.start;
    if (s === offset) return mid;
    if (s < offset) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** A copy of a macro use with every `start` and `end` offset in it moved by `d`. */
function shiftOffsets<T>(x: T, d: number): T {
  if (x === null || typeof x !== 'object') return x;
  if (Array.isArray(x)) {
    const a: unknown[] = new Array(x.length);
    for (let i = 0; i < x.length; i++) a[i] = shiftOffsets(x[i], d);
    return a as T;
  }
  // Sites are plain data: their own keys, no prototype chain to walk.
  const out: Record<string, unknown> = {};
  const src = x as Record<string, unknown>;
  for (const k in src) {
    const v = src[k];
    out[k] = (k === 'start' || k === 'end') && typeof v === 'number' ? v + d : typeof v === 'object' ? shiftOffsets(v, d) : v;
  }
  return out as T;
}
