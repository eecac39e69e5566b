/**
 * What each CO-RE macro (and each C operator that takes an expression without evaluating it) does
 * with the member chains in its arguments. Every rule asks this table; none keeps its own list.
 *
 * - `reads`: kernel memory is read (a probe read, so no plain load of the chain happens);
 *   `source` is the index of the argument the field names that follow it start from.
 * - `relocates`: clang emits a CO-RE relocation for the chain (libbpf fixes it per kernel).
 * - `toleratesMissing`: the program still loads on a kernel without the member or type (an
 *   existence or size check, or a compile-time operator); elsewhere a failed relocation makes
 *   libbpf poison the instruction, and the verifier rejects the program if it can be reached.
 *
 * - `helper`: the BPF helper the expansion calls, which the program type must be allowed to call.
 *
 * Sources: libbpf's bpf_core_read.h (the macros, the relocation kinds and helpers they emit) and
 * libbpf's relocation resolution (`bpf_core_calc_relo`: exists/size relocations on a missing
 * target resolve to 0 instead of failing).
 */

/** What one macro or operator does with the chain it is given. */
export interface CoreMacro {
  readonly reads: boolean;
  /** For read macros: the argument the field list starts from (after a destination, if any). */
  readonly source?: number;
  readonly relocates: boolean;
  readonly toleratesMissing: boolean;
  /** A read macro that copies a string (`…_STR_INTO`). */
  readonly string?: boolean;
  /** A read macro that extracts a bitfield. */
  readonly bitfield?: boolean;
  /**
   * The BPF helper the macro's expansion calls (`bpf_probe_read_kernel` for `BPF_CORE_READ`), as
   * libbpf releases that rewrite the new probe-read helpers on old kernels spell it.
   */
  readonly helper?: string;
}

const read = (source: number | undefined, relocates: boolean, helper: string, extra: Partial<CoreMacro> = {}): CoreMacro => ({
  reads: true,
  ...(source !== undefined ? { source } : {}),
  relocates,
  toleratesMissing: false,
  helper,
  ...extra,
});
const KERNEL = 'bpf_probe_read_kernel';
const KERNEL_STR = 'bpf_probe_read_kernel_str';
const USER = 'bpf_probe_read_user';
const USER_STR = 'bpf_probe_read_user_str';
const check = (toleratesMissing: boolean): CoreMacro => ({ reads: false, relocates: true, toleratesMissing });
const operator: CoreMacro = { reads: false, relocates: false, toleratesMissing: true };

/** Every macro and operator the analysis knows, by name. */
export const CORE_MACRO_SEMANTICS: ReadonlyMap<string, CoreMacro> = new Map<string, CoreMacro>([
  // Reads through a CO-RE relocation.
  ['BPF_CORE_READ', read(0, true, KERNEL)],
  ['BPF_CORE_READ_INTO', read(1, true, KERNEL)],
  ['BPF_CORE_READ_STR_INTO', read(1, true, KERNEL_STR, { string: true })],
  ['BPF_CORE_READ_USER', read(0, true, USER)],
  ['BPF_CORE_READ_USER_INTO', read(1, true, USER)],
  ['BPF_CORE_READ_USER_STR_INTO', read(1, true, USER_STR, { string: true })],
  // A plain load of the bitfield's bytes: no helper.
  ['BPF_CORE_READ_BITFIELD', { reads: true, source: 0, relocates: true, toleratesMissing: false, bitfield: true }],
  ['BPF_CORE_READ_BITFIELD_PROBED', read(0, true, KERNEL, { bitfield: true })],
  // The same chains as probe reads without relocations.
  ['BPF_PROBE_READ', read(0, false, KERNEL)],
  ['BPF_PROBE_READ_INTO', read(1, false, KERNEL)],
  ['BPF_PROBE_READ_STR_INTO', read(1, false, KERNEL_STR, { string: true })],
  ['BPF_PROBE_READ_USER', read(0, false, USER)],
  ['BPF_PROBE_READ_USER_INTO', read(1, false, USER)],
  ['BPF_PROBE_READ_USER_STR_INTO', read(1, false, USER_STR, { string: true })],
  // `bpf_core_read(dst, sz, src)` and its kin: one relocated probe read of an expression.
  ['bpf_core_read', read(undefined, true, KERNEL)],
  ['bpf_core_read_str', read(undefined, true, KERNEL_STR, { string: true })],
  ['bpf_core_read_user', read(undefined, true, USER)],
  ['bpf_core_read_user_str', read(undefined, true, USER_STR, { string: true })],
  // Relocations that read nothing.
  ['bpf_core_field_exists', check(true)],
  ['bpf_core_field_size', check(false)],
  ['bpf_core_field_offset', check(false)],
  ['bpf_core_field_signed', check(false)],
  ['bpf_core_type_exists', check(true)],
  ['bpf_core_type_matches', check(true)],
  ['bpf_core_type_size', check(true)],
  ['bpf_core_type_id_kernel', check(true)],
  ['bpf_core_type_id_local', check(true)],
  // C operators that do not evaluate their operand.
  ['sizeof', operator],
  ['alignof', operator],
  ['offsetof', operator],
  ['typeof', operator],
  ['__typeof__', operator],
]);

/** The semantics of `name`, if it is a CO-RE macro or a non-evaluating operator. */
export function coreMacro(name: string | undefined): CoreMacro | undefined {
  return name === undefined ? undefined : CORE_MACRO_SEMANTICS.get(name);
}

/** A chain inside `within` loads on kernels that lack its member or type. */
export function toleratesMissing(within: string | undefined): boolean {
  return coreMacro(within)?.toleratesMissing === true;
}

/** A chain inside `within` is not read at all (a check or a compile-time operator). */
export function readsNothing(within: string | undefined): boolean {
  const m = coreMacro(within);
  return m !== undefined && !m.reads;
}
