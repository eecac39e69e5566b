/**
 * Acceptance: every file of the BPF shape corpus parses through the macro mask with no ERROR or
 * MISSING node, and the macro sites found are exactly the expected ones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Parser } from 'web-tree-sitter';
import { maskBpfMacros, type BpfMacroSite } from '../../server/src/parse/bpfMacros';
import { loadCParser } from '../../server/src/parse/documents';
import { corpus, syntaxErrors } from './helpers';

let parser: Parser;
before(async () => {
  parser = (await loadCParser()).createParser();
});
after(() => parser.delete());

/** One line per site, naming what a rule would use: kind, section, program, parameters, … */
function describe(s: BpfMacroSite): string {
  const masked = s.masked ? ' (masked)' : '';
  const params = (ps: readonly { type: string; name: string }[]) => ps.map((p) => `${p.type}|${p.name}`).join(', ');
  const args = s.args.map((a) => a.text).join(', ');
  switch (s.kind) {
    case 'section':
      return `section ${JSON.stringify(s.section)} -> ${s.target ? `${s.target.kind} ${s.target.name}` : 'none'}`;
    case 'program':
      return `program ${s.name} ${s.programName}(${params(s.params)})`;
    case 'attribute':
      return `attribute ${s.name}${s.args.length ? `(${args})` : ''}${masked}`;
    case 'map-member':
      return `map-member ${s.map ?? '?'}.${s.member} = ${s.value.text.replace(/\s+/g, ' ')}`;
    case 'bcc-map':
      return `bcc-map ${s.name} ${s.mapName}`;
    case 'bcc-probe':
      return `bcc-probe ${s.name} ${s.programName} ${s.probe.type}:${s.probe.target} (${params(s.params)})${masked}`;
    case 'bcc-map-method':
      return `bcc-map-method ${s.mapName}.${s.method}(${args})`;
    case 'core':
      return `core ${s.name}(${s.args.map((a, i) => (s.typeArgs.includes(i) ? `type:${a.text}` : a.text)).join(', ')})`;
    case 'loop':
      return `loop ${s.name}(${args})`;
    case 'directive':
      return `directive ${s.name}${s.args.length ? ` [${s.args.map((a) => a.text).join(' | ')}]` : ''}`;
  }
}

const EXPECTED: Record<string, string[]> = {
  'attributes.bpf.c': [
    'directive define BPF_NO_PRESERVE_ACCESS_INDEX',
    'directive pragma clang attribute push [__attribute__((preserve_access_index)) | apply_to = record]',
    'directive pragma clang attribute pop',
    'attribute __kconfig (masked)',
    'attribute __kconfig (masked)',
    'attribute __weak (masked)',
    'attribute __kconfig (masked)',
    'attribute __ksym (masked)',
    'attribute __ksym (masked)',
    'attribute __weak (masked)',
    'attribute __ksym (masked)',
    'attribute __ksym (masked)',
    'attribute __ksym (masked)',
    'attribute __weak (masked)',
    'attribute __ksym (masked)',
    'attribute __attribute__(preserve_access_index)',
    'attribute __attribute__(preserve_access_index)',
    'attribute __attribute__(aligned(2))',
    'attribute __attribute__(packed)',
    'attribute __attribute__(aligned(8))',
    // SEC written out: a section like SEC's, beside the attribute it is.
    'section "license" -> variable legacy_license',
    'attribute __attribute__(section("license"), used) (masked)',
    'attribute __attribute__(used) (masked)',
    'attribute __attribute__(aligned(8)) (masked)',
    'attribute __always_inline (masked)',
    'attribute __noinline (masked)',
    'attribute __attribute__(noinline)',
    'attribute __hidden (masked)',
    'attribute __weak (masked)',
    'attribute __attribute__(always_inline)',
    'core bpf_core_field_exists(type:struct task_struct___n, __state)',
    'section "lsm/bprm_check_security" -> function check_exec',
    'program BPF_PROG check_exec(struct linux_binprm *|bprm, int|ret)',
    'attribute __attribute__(unused) (masked)',
    'core bpf_ksym_exists(bpf_task_acquire)',
    'section "license" -> variable LICENSE',
  ],
  'bcc-tools.bpf.c': [
    'bcc-map BPF_HASH start',
    'bcc-map BPF_HASH counts',
    'bcc-map BPF_PERF_OUTPUT events',
    'bcc-map BPF_RINGBUF_OUTPUT rb',
    'bcc-map BPF_ARRAY totals',
    'bcc-map BPF_PERCPU_ARRAY scratch',
    'bcc-map BPF_STACK_TRACE stack_traces',
    'bcc-map BPF_HISTOGRAM dist',
    'bcc-map BPF_TABLE lru',
    'bcc-probe kprobe__do_sys_openat2 kprobe__do_sys_openat2 kprobe:do_sys_openat2 (struct pt_regs *|ctx, int|dfd, const char __user *|filename)',
    'attribute __user (masked)',
    'bcc-map-method start.update(&pid, &ts)',
    'bcc-probe kretprobe__do_sys_openat2 kretprobe__do_sys_openat2 kretprobe:do_sys_openat2 (struct pt_regs *|ctx)',
    'bcc-map-method start.lookup(&pid)',
    'bcc-map-method events.perf_submit(ctx, &data, sizeof(data))',
    'bcc-map-method rb.ringbuf_output(&data, sizeof(data), 0)',
    'bcc-map-method counts.increment(key)',
    'bcc-map-method totals.atomic_increment(zero)',
    'bcc-map-method dist.increment(bpf_log2l(data.delta_us))',
    'bcc-map-method stack_traces.get_stackid(ctx, BPF_F_USER_STACK)',
    'bcc-map-method start.delete(&pid)',
    'bcc-probe TRACEPOINT_PROBE tracepoint__sched__sched_process_exit tracepoint:sched:sched_process_exit () (masked)',
    'bcc-map-method start.delete(&pid)',
    'bcc-probe RAW_TRACEPOINT_PROBE raw_tracepoint__sched_switch raw_tracepoint:sched_switch () (masked)',
    'bcc-probe KFUNC_PROBE kfunc__do_unlinkat kfunc:do_unlinkat (int|dfd, struct filename *|name) (masked)',
    'bcc-probe KRETFUNC_PROBE kretfunc__do_unlinkat kretfunc:do_unlinkat (int|dfd, struct filename *|name, long|ret) (masked)',
    'bcc-probe LSM_PROBE lsm__bpf lsm:bpf (int|cmd, union bpf_attr *|attr, unsigned int|size) (masked)',
  ],
  'core-reads.bpf.c': [
    'attribute __attribute__(preserve_access_index)',
    'attribute __always_inline (masked)',
    'core BPF_CORE_READ(task, real_parent, tgid)',
    'core BPF_CORE_READ_INTO(&tgid, task, real_parent, tgid)',
    'section "tp_btf/sched_switch" -> function on_switch',
    'program BPF_PROG on_switch(bool|preempt, struct task_struct *|prev, struct task_struct *|next)',
    'core BPF_CORE_READ_STR_INTO(&comm, next, comm)',
    'core BPF_CORE_READ_BITFIELD_PROBED(prev, in_iowait)',
    'core bpf_core_field_exists(prev->sched_task_group)',
    'core bpf_core_type_exists(type:struct rq___old)',
    'core bpf_core_enum_value_exists(type:enum bpf_func_id, BPF_FUNC_get_func_ip)',
    'core bpf_core_enum_value(type:enum bpf_func_id, BPF_FUNC_get_func_ip)',
    'core bpf_core_field_size(prev->pid)',
    'core bpf_core_type_size(type:unsigned long)',
    'core bpf_core_field_offset(type:struct task_struct, pid)',
    'core bpf_core_type_matches(type:struct rq___old)',
    'core bpf_core_cast(prev, type:struct task_struct)',
    'loop bpf_for(i, 0, max_depth)',
    'loop bpf_repeat(4)',
    'loop bpf_for_each(task, pos, NULL, BPF_TASK_ITER_ALL_PROCS)',
    'directive pragma unroll',
    'directive pragma clang loop [unroll(full)]',
    'section "license" -> variable LICENSE',
  ],
  'kptr-arena.bpf.c': [
    'attribute __kptr (masked)',
    'attribute __kptr_untrusted (masked)',
    'attribute __contains(node_data, node) (masked)',
    'map-member task_refs.type = BPF_MAP_TYPE_HASH',
    'map-member task_refs.max_entries = 64',
    'map-member task_refs.key = int',
    'map-member task_refs.value = struct map_value',
    'section ".maps" -> variable task_refs',
    'map-member arena.type = BPF_MAP_TYPE_ARENA',
    'map-member arena.map_flags = BPF_F_MMAPABLE',
    'map-member arena.max_entries = 100',
    'section ".maps" -> variable arena',
    'attribute __arena (masked)',
    'attribute __arena (masked)',
    'attribute __arena (masked)',
    'attribute __noinline (masked)',
    'attribute __arg_ctx (masked)',
    'attribute __arena (masked)',
    'attribute __arg_arena (masked)',
    'attribute __ksym (masked)',
    'attribute __ksym (masked)',
    'section "syscall" -> function stash_task',
    'section "license" -> variable LICENSE',
  ],
  'maps.bpf.c': [
    'map-member inner_a.type = BPF_MAP_TYPE_ARRAY',
    'map-member inner_a.max_entries = 1',
    'map-member inner_a.key = int',
    'map-member inner_a.value = __u64',
    'section ".maps" -> variable inner_a',
    'section ".maps" -> variable inner_b',
    'map-member outer.type = BPF_MAP_TYPE_ARRAY_OF_MAPS',
    'map-member outer.max_entries = 2',
    'map-member outer.key = int',
    'map-member outer.values = struct inner_map',
    'section ".maps" -> variable outer',
    'map-member per_cgroup.type = BPF_MAP_TYPE_HASH_OF_MAPS',
    'map-member per_cgroup.max_entries = 16',
    'map-member per_cgroup.key = __u32',
    'map-member per_cgroup.values = struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u32); __type(value, unsigned long long); }',
    'map-member ?.type = BPF_MAP_TYPE_HASH',
    'map-member ?.max_entries = 64',
    'map-member ?.key = __u32',
    'map-member ?.value = unsigned long long',
    'section ".maps" -> variable per_cgroup',
    'map-member jump_table.type = BPF_MAP_TYPE_PROG_ARRAY',
    'map-member jump_table.max_entries = 4',
    'map-member jump_table.key = __u32',
    'map-member jump_table.values = int (void *)',
    'section ".maps" -> variable jump_table',
    'map-member seen.type = BPF_MAP_TYPE_BLOOM_FILTER',
    'map-member seen.max_entries = 1000',
    'map-member seen.map_extra = 3',
    'map-member seen.value = __u32',
    'section ".maps" -> variable seen',
    'map-member user_rb.type = BPF_MAP_TYPE_USER_RINGBUF',
    'map-member user_rb.max_entries = 4096',
    'map-member user_rb.map_extra = 1ULL << 32',
    'section ".maps" -> variable user_rb',
    'map-member scratch.type = BPF_MAP_TYPE_PERCPU_ARRAY',
    'map-member scratch.max_entries = 1',
    'map-member scratch.key = __u32',
    'map-member scratch.value = char[64]',
    'section ".maps" -> variable scratch',
    'section "maps" -> variable legacy_counts',
    'section ".bss" -> variable hits',
    'section ".data.config" -> variable config_flags',
    'section "tp/sched/sched_process_exec" -> function handle_exec',
    'section "license" -> variable _license',
  ],
  // SEC, __ksym, BPF_HASH, bpf_for and BPF_CORE_READ appear here only in comments, strings, macro
  // definitions, as member names or as plain variables; the only real use is the license.
  'near-misses.bpf.c': ['section "license" -> variable LICENSE'],
  'programs.bpf.c': [
    'map-member calls.type = BPF_MAP_TYPE_PERCPU_ARRAY',
    'map-member calls.max_entries = 1',
    'map-member calls.key = u32',
    'map-member calls.value = u64',
    'section ".maps" -> variable calls',
    'attribute __always_inline (masked)',
    'section "fentry/do_unlinkat" -> function unlink_entry',
    'program BPF_PROG unlink_entry(int|dfd, struct filename *|name)',
    'section "fexit/do_unlinkat" -> function unlink_exit',
    'program BPF_PROG unlink_exit(int|dfd, struct filename *|name, long|ret)',
    'section "fentry/bpf_testmod_test_struct_arg_1" -> function struct_arg',
    'program BPF_PROG2 struct_arg(struct bpf_testmod_struct_arg_2|a, int|b, int|c)',
    'section "ksyscall/kill" -> function kill_entry',
    'program BPF_KSYSCALL kill_entry(pid_t|pid, int|sig)',
    'section "uprobe//bin/bash:readline" -> function readline_entry',
    'program BPF_UPROBE readline_entry(const char *|prompt)',
    'section "uretprobe//bin/bash:readline" -> function readline_exit',
    'program BPF_URETPROBE readline_exit(const void *|ret)',
    'section "usdt/libc.so.6:libc:setjmp" -> function on_setjmp',
    'program BPF_USDT on_setjmp(void *|buf, int|val)',
    'section "xdp" -> function xdp_pass',
    'section "tc" -> function classify',
    'attribute __noinline (masked)',
    'section "tracepoint/syscalls/sys_enter_execve" -> function handle_execve',
    'section "struct_ops/dctcp_init" -> function dctcp_init',
    'program BPF_PROG dctcp_init(struct sock *|sk)',
    'section ".struct_ops.link" -> variable dctcp',
    'section "license" -> variable LICENSE',
  ],
  'unlink-tracer.bpf.c': [
    'map-member events.type = BPF_MAP_TYPE_RINGBUF',
    'map-member events.max_entries = 256 * 1024',
    'section ".maps" -> variable events',
    'map-member inflight.type = BPF_MAP_TYPE_HASH',
    'map-member inflight.max_entries = 10240',
    'map-member inflight.key = u32',
    'map-member inflight.value = struct event',
    'section ".maps" -> variable inflight',
    'section "license" -> variable LICENSE',
    'section "kprobe/do_unlinkat" -> function do_unlinkat',
    'program BPF_KPROBE do_unlinkat(int|dfd, struct filename *|name)',
    'core BPF_CORE_READ(name, name)',
    'section "kretprobe/do_unlinkat" -> function do_unlinkat_exit',
    'program BPF_KRETPROBE do_unlinkat_exit(long|ret)',
  ],
};

test('the corpus and the expectations name the same files', () => {
  assert.deepEqual(
    corpus().map((c) => c.name),
    Object.keys(EXPECTED).sort(),
  );
});

for (const { name, text } of corpus()) {
  test(`${name}: parses through the mask with no ERROR or MISSING node`, () => {
    const { masked } = maskBpfMacros(text);
    const tree = parser.parse(masked)!;
    try {
      assert.deepEqual(syntaxErrors(tree), []);
    } finally {
      tree.delete();
    }
  });

  test(`${name}: plain tree-sitter-c fails on it, so the mask is what makes it parse`, () => {
    const tree = parser.parse(text)!;
    try {
      assert.notDeepEqual(syntaxErrors(tree), []);
    } finally {
      tree.delete();
    }
  });

  test(`${name}: finds exactly the expected macro sites`, () => {
    assert.deepEqual(maskBpfMacros(text).sites.map(describe), EXPECTED[name]);
  });

  test(`${name}: site offsets point at the source text`, () => {
    for (const site of maskBpfMacros(text).sites) {
      const at = text.slice(site.start, site.end);
      const head = site.kind === 'bcc-map-method' ? `${site.mapName}.` : site.kind === 'directive' ? '#' : site.name;
      assert.ok(at.startsWith(head), `${describe(site)} starts at ${JSON.stringify(at.slice(0, 30))}`);
      for (const arg of site.args) assert.equal(text.slice(arg.start, arg.end), arg.text, describe(site));
      if (site.kind === 'section' && site.target) assert.equal(text.slice(site.target.start, site.target.end), site.target.name);
      if (site.kind === 'program' || site.kind === 'bcc-probe') {
        for (const p of site.params) assert.equal(text.slice(p.start, p.end), p.text);
      }
      if (site.kind === 'map-member') assert.equal(text.slice(site.value.start, site.value.end), site.value.text);
    }
  });

  test(`${name}: the mask changes nothing but masked sites, and no line break`, () => {
    const { masked, sites } = maskBpfMacros(text);
    assert.equal(masked.length, text.length);
    const inMasked = new Uint8Array(text.length);
    for (const s of sites) if (s.masked) inMasked.fill(1, s.start, s.end);
    for (let i = 0; i < text.length; i++) {
      if (masked[i] === text[i]) continue;
      assert.ok(inMasked[i], `offset ${i} changed outside any masked site`);
      assert.ok(text[i] !== '\n' && text[i] !== '\r', `line break at ${i} changed`);
    }
  });

  test(`${name}: attributes left in place are attribute_specifier nodes; masked ones are gone`, () => {
    const { masked, sites } = maskBpfMacros(text);
    const tree = parser.parse(masked)!;
    try {
      const specs = new Set(tree.rootNode.descendantsOfType('attribute_specifier').map((n) => `${n!.startIndex}-${n!.endIndex}`));
      for (const s of sites) {
        if (s.kind !== 'attribute' || !s.name.startsWith('__attribute')) continue;
        assert.equal(specs.has(`${s.start}-${s.end}`), !s.masked, describe(s));
        if (s.masked) assert.match(masked.slice(s.start, s.end), /^\s*$/);
      }
    } finally {
      tree.delete();
    }
  });
}

test('program wrappers stay function declarators named after the macro, with the real parameters', () => {
  const text = 'SEC("kprobe/do_unlinkat")\nint BPF_KPROBE(do_unlinkat, int dfd, struct filename *name) { return 0; }\n';
  const { masked, sites } = maskBpfMacros(text);
  // Only the SEC is masked: the wrapper is valid C as it stands.
  assert.equal(masked, `${' '.repeat(25)}\nint BPF_KPROBE(do_unlinkat, int dfd, struct filename *name) { return 0; }\n`);
  const tree = parser.parse(masked)!;
  try {
    assert.equal(
      tree.rootNode.toString(),
      '(translation_unit (function_definition type: (primitive_type) declarator: (function_declarator declarator: (identifier) ' +
        'parameters: (parameter_list (parameter_declaration type: (type_identifier)) (parameter_declaration type: (primitive_type) declarator: (identifier)) ' +
        '(parameter_declaration type: (struct_specifier name: (type_identifier)) declarator: (pointer_declarator declarator: (identifier))))) ' +
        'body: (compound_statement (return_statement (number_literal)))))',
    );
    assert.equal(tree.rootNode.descendantsOfType('function_declarator')[0]!.childForFieldName('declarator')!.text, 'BPF_KPROBE');
  } finally {
    tree.delete();
  }
  assert.deepEqual(sites.map(describe), [
    'section "kprobe/do_unlinkat" -> function do_unlinkat',
    'program BPF_KPROBE do_unlinkat(int|dfd, struct filename *|name)',
  ]);
});

test('near misses: SEC in comments, strings, macro bodies and as a name is not a site', () => {
  const cases = [
    '// SEC("xdp") int f(void) { return 0; }\nint x;\n',
    '/* SEC("xdp") */ int x;\n',
    'const char *s = "SEC(\\"xdp\\")";\n',
    "char c = 'S'; int SEC = 1;\n",
    '#define PROG(n) SEC("kprobe/" #n) int n(void *ctx)\n',
    'struct s { int SEC; }; int f(struct s *p) { return p->SEC + (p)->SEC; }\n',
    'int f(void) { return SECTION("x"); }\n',
  ];
  for (const c of cases) {
    const { masked, sites } = maskBpfMacros(c);
    assert.deepEqual(sites, [], c);
    assert.equal(masked, c, c);
  }
});

test('near misses: BCC-looking method calls and names need a BCC map or a BCC file', () => {
  // cfg is not declared with a BCC map macro, so cfg.update(...) is an ordinary call.
  const notBcc = 'struct ops { int (*update)(int); } cfg;\nint f(void) { return cfg.update(1); }\n';
  assert.deepEqual(maskBpfMacros(notBcc).sites, []);
  const bcc = 'BPF_HASH(start, u32, u64);\nint f(void) { u32 k = 0; u64 v = 1; start.update(&k, &v); return 0; }\n';
  assert.deepEqual(maskBpfMacros(bcc).sites.map(describe), ['bcc-map BPF_HASH start', 'bcc-map-method start.update(&k, &v)']);
  // A libbpf file (it has a SEC) may name a helper kprobe__x; only a BCC file attaches by name.
  const libbpf = 'int kprobe__helper(int x) { return x; }\nchar LICENSE[] SEC("license") = "GPL";\n';
  assert.deepEqual(maskBpfMacros(libbpf).sites.map(describe), ['section "license" -> variable LICENSE']);
});
