// The BPF macros the macro pass knows, grouped by how they are handled. Names come from libbpf's
// bpf_helpers.h, bpf_tracing.h and bpf_core_read.h, the kernel's bpf_experimental.h and
// bpf_arena_common.h, and BCC's helpers.h.

/** libbpf program wrappers, whose first argument is the program name. */
export const PROGRAM_WRAPPERS: ReadonlySet<string> = new Set([
  'BPF_KPROBE',
  'BPF_KRETPROBE',
  'BPF_KSYSCALL',
  'BPF_KPROBE_SYSCALL',
  'BPF_UPROBE',
  'BPF_URETPROBE',
  'BPF_USDT',
  'BPF_PROG',
  'BPF_PROG2',
]);

/**
 * Attribute-like macros without arguments. Each expands to an attribute or a BTF type tag that
 * tree-sitter-c sees as a stray identifier, so they are always blanked.
 */
export const ATTRIBUTE_MACROS: ReadonlySet<string> = new Set([
  // bpf_helpers.h
  '__always_inline',
  '__noinline',
  '__hidden',
  '__weak',
  '__ksym',
  '__kconfig',
  '__kptr',
  '__kptr_untrusted',
  '__kptr_ref',
  '__percpu_kptr',
  '__uptr',
  '__arg_ctx',
  '__arg_nonnull',
  '__arg_nullable',
  '__arg_trusted',
  '__arg_untrusted',
  '__arg_arena',
  // Kernel address-space and type tags that appear in parameters copied from kernel prototypes.
  '__user',
  '__rcu',
  '__percpu',
  '__iomem',
  '__force',
  // bpf_arena_common.h
  '__arena',
]);

/** Attribute-like macros with arguments, always blanked: `__contains(node_data, node)`. */
export const ATTRIBUTE_CALL_MACROS: ReadonlySet<string> = new Set(['__contains']);

/** The spellings of the GNU attribute keyword. */
export const GNU_ATTRIBUTE: ReadonlySet<string> = new Set(['__attribute__', '__attribute']);

/** BTF map member macros and how each is masked (see bpfMacros.ts). */
export const MAP_MEMBER_MACROS: ReadonlyMap<string, 'array' | 'function'> = new Map([
  ['__uint', 'array'],
  ['__ulong', 'array'],
  ['__type', 'function'],
  ['__array', 'function'],
]);

/** BCC map declarations, with the index of the argument that names the map. */
export const BCC_MAP_MACROS: ReadonlyMap<string, number> = new Map([
  ['BPF_TABLE', 3],
  ['BPF_TABLE_PINNED', 3],
  ['BPF_TABLE_SHARED', 3],
  ['BPF_TABLE_PUBLIC', 3],
  ['BPF_F_TABLE', 3],
  ['BPF_HASH', 0],
  ['BPF_PERCPU_HASH', 0],
  ['BPF_ARRAY', 0],
  ['BPF_PERCPU_ARRAY', 0],
  ['BPF_HISTOGRAM', 0],
  ['BPF_LPM_TRIE', 0],
  ['BPF_PERF_OUTPUT', 0],
  ['BPF_PERF_ARRAY', 0],
  ['BPF_RINGBUF_OUTPUT', 0],
  ['BPF_STACK_TRACE', 0],
  ['BPF_STACK_TRACE_BUILDID', 0],
  ['BPF_PROG_ARRAY', 0],
  ['BPF_DEVMAP', 0],
  ['BPF_CPUMAP', 0],
  ['BPF_XSKMAP', 0],
  ['BPF_ARRAY_OF_MAPS', 0],
  ['BPF_HASH_OF_MAPS', 0],
  ['BPF_SOCKMAP', 0],
  ['BPF_SOCKHASH', 0],
  ['BPF_CGROUP_ARRAY', 0],
  ['BPF_CGROUP_STORAGE', 0],
  ['BPF_PERCPU_CGROUP_STORAGE', 0],
  ['BPF_SK_STORAGE', 0],
  ['BPF_INODE_STORAGE', 0],
  ['BPF_TASK_STORAGE', 0],
  ['BPF_QUEUE', 0],
  ['BPF_STACK', 0],
]);

/** How a BCC probe macro names and attaches its program. */
export interface BccProbeMacro {
  /** BCC's probe type. */
  readonly type: string;
  /** How many leading arguments are names rather than parameters. */
  readonly nameArgs: number;
  /** The function name BCC generates from the name arguments. */
  programName(names: readonly string[]): string;
  /** The attach target from the name arguments. */
  target(names: readonly string[]): string;
}

const single = (type: string, prefix: string): BccProbeMacro => ({
  type,
  nameArgs: 1,
  programName: (names) => `${prefix}${names[0] ?? ''}`,
  target: (names) => names[0] ?? '',
});

/** BCC probe macros, which stand where a function's return type and declarator would be. */
export const BCC_PROBE_MACROS: ReadonlyMap<string, BccProbeMacro> = new Map([
  [
    'TRACEPOINT_PROBE',
    {
      type: 'tracepoint',
      nameArgs: 2,
      programName: (names) => `tracepoint__${names[0] ?? ''}__${names[1] ?? ''}`,
      target: (names) => `${names[0] ?? ''}:${names[1] ?? ''}`,
    },
  ],
  ['RAW_TRACEPOINT_PROBE', single('raw_tracepoint', 'raw_tracepoint__')],
  ['KFUNC_PROBE', single('kfunc', 'kfunc__')],
  ['KRETFUNC_PROBE', single('kretfunc', 'kretfunc__')],
  ['KMOD_RET', single('kmod_ret', 'kmod_ret__')],
  ['LSM_PROBE', single('lsm', 'lsm__')],
  ['BPF_ITER', single('iter', 'bpf_iter__')],
]);

/**
 * Function-name prefixes that BCC attaches automatically, with their probe types. Kept to the
 * prefixes users write by hand; the macro-generated ones are reported through the macro.
 */
export const BCC_AUTO_PREFIXES: ReadonlyMap<string, string> = new Map([
  ['kprobe__', 'kprobe'],
  ['kretprobe__', 'kretprobe'],
  ['tracepoint__', 'tracepoint'],
  ['raw_tracepoint__', 'raw_tracepoint'],
]);

/** Methods BCC's rewriter accepts on maps. */
export const BCC_MAP_METHODS: ReadonlySet<string> = new Set([
  'lookup',
  'lookup_or_init',
  'lookup_or_try_init',
  'update',
  'insert',
  'delete',
  'increment',
  'atomic_increment',
  'perf_submit',
  'perf_submit_skb',
  'perf_read',
  'perf_counter_value',
  'ringbuf_output',
  'ringbuf_reserve',
  'ringbuf_submit',
  'ringbuf_discard',
  'get_stackid',
  'call',
  'redirect_map',
  'push',
  'pop',
  'peek',
  'sock_map_update',
  'sock_hash_update',
  'msg_redirect_hash',
  'msg_redirect_map',
  'sk_redirect_hash',
  'sk_redirect_map',
  'sk_storage_get',
  'sk_storage_delete',
  'inode_storage_get',
  'inode_storage_delete',
  'task_storage_get',
  'task_storage_delete',
  'get_local_storage',
]);

/**
 * CO-RE macros, with a function from the argument count to the indexes of arguments that are
 * types. C call syntax rejects a type with more than one word (`struct x`, `unsigned long`), so
 * those arguments are masked; the rest are expressions or field names and stay.
 */
export const CORE_MACROS: ReadonlyMap<string, (argCount: number) => number[]> = new Map<string, (argCount: number) => number[]>([
  ...[
    'BPF_CORE_READ',
    'BPF_CORE_READ_INTO',
    'BPF_CORE_READ_STR_INTO',
    'BPF_CORE_READ_USER',
    'BPF_CORE_READ_USER_INTO',
    'BPF_CORE_READ_USER_STR_INTO',
    'BPF_CORE_READ_BITFIELD',
    'BPF_CORE_READ_BITFIELD_PROBED',
    'BPF_CORE_WRITE_BITFIELD',
    'BPF_PROBE_READ',
    'BPF_PROBE_READ_INTO',
    'BPF_PROBE_READ_STR_INTO',
    'BPF_PROBE_READ_USER',
    'BPF_PROBE_READ_USER_INTO',
    'BPF_PROBE_READ_USER_STR_INTO',
    'bpf_core_read',
    'bpf_core_read_str',
    'bpf_core_read_user',
    'bpf_core_read_user_str',
    'bpf_ksym_exists',
  ].map((name): [string, (argCount: number) => number[]] => [name, () => []]),
  // The field macros take either one field expression or a type and a field name.
  ...['bpf_core_field_exists', 'bpf_core_field_size', 'bpf_core_field_offset'].map((name): [string, (argCount: number) => number[]] => [
    name,
    (argCount) => (argCount === 2 ? [0] : []),
  ]),
  ...[
    'bpf_core_type_exists',
    'bpf_core_type_size',
    'bpf_core_type_matches',
    'bpf_core_type_id_local',
    'bpf_core_type_id_kernel',
    'bpf_core_enum_value_exists',
    'bpf_core_enum_value',
  ].map((name): [string, (argCount: number) => number[]] => [name, () => [0]]),
  ['bpf_core_cast', (argCount) => (argCount === 2 ? [1] : [])],
]);

/** Open-coded iterator loop macros, which expand to a `for` header and take a statement after them. */
export const LOOP_MACROS: ReadonlySet<string> = new Set(['bpf_for', 'bpf_for_each', 'bpf_repeat']);

/** C keywords that can appear in a declaration's specifiers; never a declarator name. */
export const DECL_KEYWORDS: ReadonlySet<string> = new Set([
  'auto',
  'register',
  'static',
  'extern',
  'typedef',
  'inline',
  '__inline',
  '__inline__',
  'thread_local',
  '_Thread_local',
  'const',
  'volatile',
  'restrict',
  '__restrict',
  '__restrict__',
  '_Atomic',
  '__extension__',
  'void',
  'char',
  'short',
  'int',
  'long',
  'float',
  'double',
  'signed',
  'unsigned',
  '_Bool',
  'bool',
  '__int128',
  'struct',
  'union',
  'enum',
  'typeof',
  '__typeof__',
  '__typeof',
]);
