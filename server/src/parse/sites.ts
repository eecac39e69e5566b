// The plain data the macro pass reports. All offsets are UTF-16 code units into the original
// text, which is also what LSP positions and web-tree-sitter indices count.

/** One macro argument: its text without surrounding whitespace, and where it is. */
export interface MacroArg {
  /** The argument's source text, trimmed; equal to `text.slice(start, end)` of the source. */
  readonly text: string;
  /** UTF-16 offset of the argument's first character (for an empty argument, where it would be). */
  readonly start: number;
  /** UTF-16 offset just after the argument's last character. */
  readonly end: number;
}

/** What every site has. */
export interface MacroSiteBase {
  /** The macro as written: `SEC`, `BPF_KPROBE`, `__ksym`, `__attribute__`, `bpf_for`, … */
  readonly name: string;
  /** UTF-16 offset where the use starts: the macro name, the map name of a BCC method call, or a directive's `#`. */
  readonly start: number;
  /** UTF-16 offset just after the use (after its closing parenthesis, if it has arguments). */
  readonly end: number;
  /** The arguments in the parentheses, split at top-level commas; empty when there are none. */
  readonly args: readonly MacroArg[];
  /** Whether the masked text differs from the source inside this use. */
  readonly masked: boolean;
}

/** What a `SEC("…")` annotates. */
export interface SectionTarget {
  /** A function (a program) or a variable (a map, the license, a global). */
  readonly kind: 'function' | 'variable';
  /** The function or variable name; for a libbpf wrapper, the program name (its first argument). */
  readonly name: string;
  /** UTF-16 offset of the name. */
  readonly start: number;
  /** UTF-16 offset just after the name. */
  readonly end: number;
}

/** `SEC("kprobe/do_unlinkat")`, before a function or after a variable's declarator. */
export interface SectionSite extends MacroSiteBase {
  readonly kind: 'section';
  /** The section name, decoded from its string literal(s); null when it is not a literal. */
  readonly section: string | null;
  /** The function or variable the section applies to, when it can be told from the tokens. */
  readonly target: SectionTarget | null;
}

/** One parameter of a program, split into its type and name. */
export interface ProgramParam {
  /** The parameter's source text (for `BPF_PROG2`, from the type to the name, comma included). */
  readonly text: string;
  /** UTF-16 offset of the parameter's first character. */
  readonly start: number;
  /** UTF-16 offset just after the parameter's last character. */
  readonly end: number;
  /** The type with the name taken out, whitespace collapsed: `struct file *`, `char [16]`. */
  readonly type: string;
  /** The parameter name, or `''` when the text declares none. */
  readonly name: string;
}

/** A libbpf program wrapper: `int BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)`. */
export interface ProgramSite extends MacroSiteBase {
  readonly kind: 'program';
  /** The program (function) name: the wrapper's first argument. */
  readonly programName: string;
  /** The program's real parameters (the arguments after the name). */
  readonly params: readonly ProgramParam[];
}

/**
 * An attribute: a libbpf/kernel attribute macro (`__ksym`, `__always_inline`, `__user`,
 * `__contains(…)`), or a GNU `__attribute__((…))` whose arguments are the attribute list.
 */
export interface AttributeSite extends MacroSiteBase {
  readonly kind: 'attribute';
}

/** A BTF map member: `__uint(max_entries, 256 * 1024)`, `__type(key, u32)`, `__array(…)`, `__ulong(…)`. */
export interface MapMemberSite extends MacroSiteBase {
  readonly kind: 'map-member';
  /** The member name (`type`, `max_entries`, `key`, `value`, `values`, `map_extra`, …). */
  readonly member: string;
  /** The member's value: a constant expression for `__uint`/`__ulong`, a type otherwise. */
  readonly value: MacroArg;
  /** The map variable whose definition this member is in, when it is declared right after it. */
  readonly map: string | null;
}

/** A BCC map declaration: `BPF_HASH(start, u32, u64);`, `BPF_TABLE("hash", …, name, …)`. */
export interface BccMapSite extends MacroSiteBase {
  readonly kind: 'bcc-map';
  /** The declared map's name. */
  readonly mapName: string;
}

/** What a BCC probe attaches to. */
export interface BccProbeTarget {
  /** BCC's probe type: `kprobe`, `kretprobe`, `tracepoint`, `raw_tracepoint`, `kfunc`, `kretfunc`, `lsm`, `kmod_ret`, `iter`. */
  readonly type: string;
  /** The attach target: a kernel function, `category:event`, an LSM hook or an iterator. */
  readonly target: string;
}

/**
 * A BCC program: a probe macro (`TRACEPOINT_PROBE(sched, sched_switch) {…}`, `KFUNC_PROBE(…)`),
 * or a function whose name BCC attaches automatically (`int kprobe__do_sys_open(…) {…}`).
 */
export interface BccProbeSite extends MacroSiteBase {
  readonly kind: 'bcc-probe';
  /** The function name BCC gives the program: `tracepoint__sched__sched_switch`, `kfunc__do_unlinkat`. */
  readonly programName: string;
  /** What the program attaches to. */
  readonly probe: BccProbeTarget;
  /** The parameters written in the source (none for the tracepoint macros, whose context is implicit). */
  readonly params: readonly ProgramParam[];
}

/** A method call on a BCC map declared in the same file: `events.perf_submit(ctx, &data, sizeof(data))`. */
export interface BccMapMethodSite extends MacroSiteBase {
  readonly kind: 'bcc-map-method';
  /** The map the method is called on. */
  readonly mapName: string;
  /** The method name (`perf_submit`, `update`, `lookup`, …); also in `name`. */
  readonly method: string;
}

/** A CO-RE macro: `BPF_CORE_READ(t, a, b)`, `bpf_core_field_exists(…)`, `bpf_core_type_exists(struct x)`. */
export interface CoreSite extends MacroSiteBase {
  readonly kind: 'core';
  /** Indexes into `args` of the arguments that are types (these are masked in the tree). */
  readonly typeArgs: readonly number[];
}

/** An open-coded iterator loop macro: `bpf_for(i, 0, n)`, `bpf_for_each(…)`, `bpf_repeat(n)`. */
export interface LoopSite extends MacroSiteBase {
  readonly kind: 'loop';
}

/**
 * A preprocessor directive that matters to BPF portability: `#pragma clang attribute push/pop`,
 * loop-unrolling pragmas, `#define BPF_NO_PRESERVE_ACCESS_INDEX`. `name` is the directive's words
 * joined by single spaces without the `#` (`pragma clang attribute push`, `pragma unroll`,
 * `define BPF_NO_PRESERVE_ACCESS_INDEX`); `args` is the parenthesized list, if any.
 */
export interface DirectiveSite extends MacroSiteBase {
  readonly kind: 'directive';
}

/** Every kind of site the macro pass reports. */
export type BpfMacroSite =
  | SectionSite
  | ProgramSite
  | AttributeSite
  | MapMemberSite
  | BccMapSite
  | BccProbeSite
  | BccMapMethodSite
  | CoreSite
  | LoopSite
  | DirectiveSite;

/** The `kind` of a site. */
export type BpfMacroKind = BpfMacroSite['kind'];

/** The result of masking: text for tree-sitter, and the macro uses found in the source. */
export interface MaskResult {
  /**
   * The text to parse: as long as the source, with the same line breaks at the same offsets, and
   * identical to it outside the macro uses that tree-sitter-c cannot parse.
   */
  readonly masked: string;
  /** Every macro use found, in source order. */
  readonly sites: BpfMacroSite[];
}
