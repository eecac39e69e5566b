/**
 * The masking rules one by one: the exact same-length C each shape becomes, which attribute
 * positions are masked (only those tree-sitter-c rejects), and the invariants that keep positions
 * exact (length, line breaks, untouched non-ASCII text).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Parser } from 'web-tree-sitter';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { maskBlockEdit, maskBpfMacros, maskEdit, maskState } from '../../server/src/parse/bpfMacros';
import { lexC, lexText } from '../../server/src/parse/lexer';
import { loadCParser } from '../../server/src/parse/documents';
import { syntaxErrors } from './helpers';

let parser: Parser;
before(async () => {
  parser = (await loadCParser()).createParser();
});
after(() => parser.delete());

/** The errors tree-sitter-c reports on `text` as it is, and on its masked form. */
function errorsBeforeAndAfter(text: string): { before: string[]; after: string[] } {
  const plain = parser.parse(text)!;
  const masked = parser.parse(maskBpfMacros(text).masked)!;
  try {
    return { before: syntaxErrors(plain), after: syntaxErrors(masked) };
  } finally {
    plain.delete();
    masked.delete();
  }
}

/** Spaces as long as `s`: what a blanked piece of source becomes. */
const sp = (s: string) => ' '.repeat(s.length);

const MASKS: Array<[string, string, string]> = [
  ['SEC before a function', 'SEC("xdp") int f(void *ctx) { return 2; }', `${sp('SEC("xdp")')} int f(void *ctx) { return 2; }`],
  ['SEC after a variable', 'char LICENSE[] SEC("license") = "GPL";', `char LICENSE[] ${sp('SEC("license")')} = "GPL";`],
  ['SEC between type and declarator', 'struct bpf_map_def SEC("maps") m = {};', `struct bpf_map_def ${sp('SEC("maps")')} m = {};`],
  [
    '__uint and __ulong keep name and value as an array field',
    'struct { __uint(max_entries, 256 * 1024); __ulong(map_extra, 1ULL << 32); } m SEC(".maps");',
    `struct { int    max_entries[ 256 * 1024]; int     map_extra[ 1ULL << 32]; } m ${sp('SEC(".maps")')};`,
  ],
  [
    '__type and __array keep name and type as a function field',
    'struct { __type(key, u32); __array(values, struct inner); } m SEC(".maps");',
    `struct { int    key( u32); int     values( struct inner); } m ${sp('SEC(".maps")')};`,
  ],
  ['attribute macros become spaces', 'extern bool CONFIG_X __kconfig __weak;', `extern bool CONFIG_X ${sp('__kconfig')} ${sp('__weak')};`],
  [
    'function attribute macros become spaces',
    'static __always_inline int f(void) { return 0; }',
    `static ${sp('__always_inline')} int f(void) { return 0; }`,
  ],
  [
    '__contains is blanked with its arguments',
    'struct v { struct bpf_list_head h __contains(node_data, node); };',
    `struct v { struct bpf_list_head h ${sp('__contains(node_data, node)')}; };`,
  ],
  [
    'BCC maps declare their name',
    'BPF_HASH(counts, struct key_t, u64, 1024);',
    `int${sp('_HASH(')}counts${sp(', struct key_t, u64, 1024)')};`,
  ],
  [
    'BPF_TABLE names the map in its fourth argument',
    'BPF_TABLE("hash", struct key_t, u64, tbl, 64);',
    `int${sp('_TABLE("hash", struct key_t, u64, ')}tbl${sp(', 64)')};`,
  ],
  [
    'BCC probes become a function _ with the real parameters',
    'KFUNC_PROBE(do_unlinkat, int dfd) { return 0; }',
    `int${sp('NC_PROB')}_(${sp('do_unlinkat,')} int dfd) { return 0; }`,
  ],
  [
    'TRACEPOINT_PROBE has no written parameters',
    'TRACEPOINT_PROBE(sched, sched_switch) { return 0; }',
    `int${sp('CEPOINT_PROB')}_(${sp('sched, sched_switch')}) { return 0; }`,
  ],
  [
    'CO-RE type arguments become 0',
    'int f(void) { return bpf_core_enum_value(enum bpf_func_id, BPF_FUNC_x); }',
    `int f(void) { return bpf_core_enum_value(0${sp('num bpf_func_id')}, BPF_FUNC_x); }`,
  ],
  [
    'bpf_for becomes a while loop over a comma expression',
    'int f(void) { int i; bpf_for(i, 0, 3) { } return 0; }',
    'int f(void) { int i; while  (i, 0, 3) { } return 0; }',
  ],
  ['bpf_repeat becomes a while loop', 'int f(void) { bpf_repeat(4) g(); return 0; }', 'int f(void) { while     (4) g(); return 0; }'],
];

for (const [what, text, masked] of MASKS) {
  test(`mask: ${what}`, () => {
    assert.equal(maskBpfMacros(text).masked, masked);
    const { before: b, after: a } = errorsBeforeAndAfter(text);
    assert.notDeepEqual(b, [], 'tree-sitter-c parses this already, so it must not be masked');
    assert.deepEqual(a, []);
  });
}

test('BCC map declarations are masked even when plain C happens to parse them, so all give the same tree', () => {
  // With one-word types BPF_HASH(...) parses as a call at file level; with `struct k` it fails.
  // Masking both the same way keeps one tree shape per construct.
  const shapes = ['BPF_HASH(a, u32, u64);', 'BPF_HASH(b, struct k, u64);', 'BPF_PERF_OUTPUT(c);'].map((text) => {
    const tree = parser.parse(maskBpfMacros(text).masked)!;
    try {
      return tree.rootNode.toString();
    } finally {
      tree.delete();
    }
  });
  assert.deepEqual(new Set(shapes), new Set(['(translation_unit (declaration type: (primitive_type) declarator: (identifier)))']));
});

// Each GNU attribute placement: whether tree-sitter-c accepts it (then it must stay) or not (then
// it is masked). The expectation is the list of masked attribute texts.
const ATTRIBUTES: Array<[string, string[]]> = [
  ['int x __attribute__((unused)) = 0;', ['__attribute__((unused))']],
  ['char l[] __attribute__((section("license"), used)) = "GPL";', ['__attribute__((section("license"), used))']],
  ['int *p __attribute__((aligned(8)));', ['__attribute__((aligned(8)))']],
  ['static int v __attribute__((used)), w;', ['__attribute__((used))']],
  ['int f(void) { static int c __attribute__((unused)); return c; }', ['__attribute__((unused))']],
  ['int f(void) { for (int i __attribute__((unused)) = 0; i < 2; i++) {} return 0; }', ['__attribute__((unused))']],
  ['struct s { int a; } __attribute__((a)) __attribute__((b));', ['__attribute__((b))']],
  ['typedef struct s { int a; } __attribute__((a)) __attribute__((b)) s_t;', ['__attribute__((b))']],
  ['__attribute__((x)) struct s { int a; };', ['__attribute__((x))']],
  ['__attribute__((x)) union u;', ['__attribute__((x))']],
  ['struct s __attribute__((a)) { int a; };', ['__attribute__((a))']],
  ['union __attribute__((a)) u { int a; };', ['__attribute__((a))']],
  ['struct s { int a __attribute__((x)), b; };', ['__attribute__((x))']],
  ['struct s { int a __attribute__((x)) __attribute__((y)); };', ['__attribute__((y))']],
  ['typedef int t __attribute__((aligned(4))), u;', ['__attribute__((aligned(4)))']],
  // Accepted by the grammar: left alone.
  ['struct s { int a; } __attribute__((preserve_access_index));', []],
  ['struct s { int a; } __attribute__((a)) __attribute__((b)) v;', []],
  ['struct __attribute__((packed)) s { int a; };', []],
  ['struct s { int a __attribute__((aligned(8))); };', []],
  ['static int __attribute__((noinline)) f(void) { return 0; }', []],
  ['__attribute__((noinline)) int f(void) { return 0; }', []],
  ['__attribute__((x)) struct s { int a; } v;', []],
  ['int f(void) __attribute__((a)) __attribute__((b));', []],
  ['int f(int x __attribute__((unused)), int y) { return y; }', []],
  ['u64 __attribute__((aligned(8))) *p;', []],
  ['typedef int t __attribute__((aligned(4)));', []],
  ['enum e { A } __attribute__((packed));', []],
];

for (const [text, expected] of ATTRIBUTES) {
  test(`attribute placement: ${text}`, () => {
    const { sites } = maskBpfMacros(text);
    const masked = sites.filter((s) => s.kind === 'attribute' && s.masked).map((s) => text.slice(s.start, s.end));
    assert.deepEqual(masked, expected);
    const { before: b, after: a } = errorsBeforeAndAfter(text);
    assert.deepEqual(a, []);
    // Masking happens exactly when the plain parse fails.
    assert.equal(b.length > 0, expected.length > 0, `plain parse errors: ${b.join('; ')}`);
  });
}

test('line breaks inside a masked use stay where they are (LF, CRLF, lone CR)', () => {
  for (const nl of ['\n', '\r\n', '\r']) {
    const text = `struct {${nl}\t__uint(type,${nl}\t\tBPF_MAP_TYPE_HASH);${nl}} m SEC(${nl}".maps");${nl}SEC("xdp")${nl}int f(void *c) { return 2; }${nl}`;
    const { masked } = maskBpfMacros(text);
    assert.equal(masked.length, text.length);
    for (let i = 0; i < text.length; i++) {
      const isBreak = (s: string) => s === '\n' || s === '\r';
      assert.equal(isBreak(masked[i]!), isBreak(text[i]!), `offset ${i}`);
      if (isBreak(text[i]!)) assert.equal(masked[i], text[i]);
    }
    assert.deepEqual(errorsBeforeAndAfter(text).after, []);
  }
});

test('non-ASCII text, including lone surrogates, survives masking untouched', () => {
  const text = '/* é 😀 \uD800 */ SEC("xdp") int f(void) { return \'\uDC00\'; } // 😀\n';
  const { masked, sites } = maskBpfMacros(text);
  assert.equal(masked, text.replace('SEC("xdp")', ' '.repeat(10)));
  assert.equal(text.slice(sites[0]!.start, sites[0]!.end), 'SEC("xdp")');
});

test('a SEC with escapes or several literals decodes; a SEC naming a macro has no section', () => {
  const { sites } = maskBpfMacros('SEC("kprobe/" "x\\x41\\101") int a(void) { return 0; }\nSEC(NAME) int b(void) { return 0; }\n');
  assert.deepEqual(
    sites.map((s) => (s.kind === 'section' ? [s.section, s.target?.name] : null)),
    [
      ['kprobe/xAA', 'a'],
      [null, 'b'],
    ],
  );
});

test('half-typed macros are neither sites nor masked', () => {
  for (const text of [
    'SEC("kprobe/x"\nint f(void) { return 0; }\n',
    'struct { __uint(type, ; } m;\n',
    'int f(void) { bpf_for(i, 0, ) {} }\n',
    'SEC(',
  ]) {
    const { masked, sites } = maskBpfMacros(text);
    assert.equal(masked, text, JSON.stringify(text));
    assert.deepEqual(sites, [], JSON.stringify(text));
  }
});

test('macros only count where they can be: BCC maps at file level, loops in bodies, map members in structs', () => {
  const text = 'int f(void) { BPF_HASH(x, u32, u64); return 0; }\nbpf_for(i, 0, 3);\nint g(void) { __uint(type, 1); return 0; }\n';
  assert.deepEqual(maskBpfMacros(text).sites, []);
});

test('directives: pragmas and defines that matter to BPF are reported, others are not', () => {
  const text = [
    '#pragma once',
    '#  pragma   clang attribute push(__attribute__((preserve_access_index)), apply_to = record)',
    '#pragma clang attribute pop',
    '#pragma GCC unroll 4 // as many as the ring has slots',
    '#define BPF_NO_GLOBAL_DATA',
    '#define BPF_NO_PRESERVE_ACCESS_INDEX_X 1',
    '',
  ].join('\n');
  const { sites } = maskBpfMacros(text);
  assert.deepEqual(
    sites.map((s) => [s.kind, s.name, s.args.map((a) => a.text)]),
    [
      ['directive', 'pragma clang attribute push', ['__attribute__((preserve_access_index))', 'apply_to = record']],
      ['directive', 'pragma clang attribute pop', []],
      ['directive', 'pragma GCC unroll', ['4']],
      ['directive', 'define BPF_NO_GLOBAL_DATA', []],
    ],
  );
  for (const s of sites) for (const a of s.args) assert.equal(text.slice(a.start, a.end), a.text);
});

test('the lexer keeps comments, strings and directives opaque and pairs brackets', () => {
  const text = '#define A(x) SEC(x) \\\n  more\nint /* ( */ f(char *s = ")", int c = \'(\') { g(a[1]); } )';
  const { tokens, directives, match } = lexC(text);
  assert.deepEqual(
    directives.map((d) => d.text),
    ['#define A(x) SEC(x) \\\n  more'],
  );
  assert.deepEqual(
    tokens.map((t) => t.text),
    [
      'int',
      'f',
      '(',
      'char',
      '*',
      's',
      '=',
      '")"',
      ',',
      'int',
      'c',
      '=',
      "'('",
      ')',
      '{',
      'g',
      '(',
      'a',
      '[',
      '1',
      ']',
      ')',
      ';',
      '}',
      ')',
    ],
  );
  assert.equal(match[2], 13);
  assert.equal(match[14], 23);
  assert.equal(match[18], 20);
  assert.equal(match[24], -1);
});

test('an edit inside a function body re-masks only that body, and equals masking the whole new text', () => {
  const dirs = [join(__dirname, '..', '..', 'examples'), join(__dirname, '..', 'fixtures', 'shapes')];
  const sources = dirs.flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.c'))
      // Padded past the lexer's memo threshold (4 KiB), so the spliced tokens are what lexC answers.
      .map((f) => `${readFileSync(join(dir, f), 'utf8')}\n/* ${'padding '.repeat(600)}*/\n#define AFTER 1\n`),
  );
  // What typing inserts: plain code, brackets, comment and string openers, directives, macro uses
  // the block may hold (CO-RE reads, loops) and ones it may not (SEC, attributes, map methods).
  const typed = [
    'x',
    '1',
    ';',
    ' ',
    '\n',
    '{',
    '}',
    '(',
    ')',
    '[',
    ']',
    '/*',
    '*/',
    '//',
    '"',
    "'",
    '#',
    '\n#if 0\n',
    '\n#endif\n',
    '\\\n',
    'é',
    '😀',
    '',
    'BPF_CORE_READ(t, pid)',
    'BPF_CORE_READ_INTO(&v, t, a, b)',
    'bpf_for(i, 0, 3) ',
    'SEC("xdp")',
    '__always_inline ',
    'counts.lookup(&k)',
    '__attribute__((unused)) ',
    'struct { __uint(type, 1); } m;',
    '{ x; }',
    '} int g() {',
  ];
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed >>> 8) % n;
  };
  let edits = 0;
  let local = 0;
  for (const source of sources) {
    const initial = maskState(source);
    let state = initial;
    for (let i = 0; i < 250; i++) {
      // Runs of eight edits on the text the previous ones left, then the source again.
      if (i % 8 === 0) state = initial;
      const text = state.text;
      // Mostly inside a function body, where typing happens; sometimes anywhere.
      const blocks = state.blocks;
      const k = rand(Math.max(1, blocks.length / 2));
      const from = rand(4) > 0 && blocks.length ? blocks[2 * k]! + 1 + rand(blocks[2 * k + 1]! - blocks[2 * k]!) : rand(text.length + 1);
      const start = Math.min(from, text.length);
      const end = Math.min(text.length, start + (rand(3) === 0 ? rand(4) : 0));
      const inserted = typed[rand(typed.length)]!;
      const next = text.slice(0, start) + inserted + text.slice(end);
      const whole = maskState(next);
      const block = maskBlockEdit(state, start, end, inserted, next);
      edits++;
      if (block) {
        local++;
        const at = `edit ${i} of a source: [${start}, ${end}) -> ${JSON.stringify(inserted)}`;
        assert.equal(block.masked, whole.masked, at);
        assert.deepEqual(block.sites, whole.sites, at);
        assert.deepEqual([...block.blocks], [...whole.blocks], at);
        // The file model reads this text's directives and comments from the spliced tokens.
        assert.deepEqual(lexC(next), lexText(next), at);
      }
      assert.deepEqual(maskEdit(state, start, end, inserted, next).masked, whole.masked);
      state = whole;
    }
  }
  // Enough edits must take the block path, or this test proves nothing (about a third of the
  // insertions are ones it must refuse, and a quarter of the edits land anywhere).
  assert.ok(local > edits / 4, `${local} of ${edits} edits re-masked one block`);
});
