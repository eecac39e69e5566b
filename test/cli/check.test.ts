/** `ebpf-portability check`, run as CI runs it: JSON interface, exit codes, --fix. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headlineProblem } from '../../server/src/analysis/model';

const root = join(__dirname, '..', '..');
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ebpf-portability.js'), ...args], { encoding: 'utf8', cwd: root });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

/**
 * The program-level rules (program and map types, attach targets, CONFIG options) and the call
 * rules (helpers, kfuncs, verifier features) flag the examples' ring buffer, tp_btf program and
 * BCC kprobe on older kernels (and the BCC file's kernel-headers note); the tests of the layout
 * rules' interface turn them off so that
 * those findings do not change exit codes and counts.
 */
const PROGRAM_RULES_OFF =
  'prog-type-unavailable=off,map-type-unavailable=off,attach-target-missing-in-range=off,config-required=off,' +
  'helper-unavailable=off,kfunc-unavailable=off,legacy-probe-read=off,verifier-feature-unavailable=off,kernel-version-gate=off,' +
  'bcc-needs-kernel-headers=off';

test('check --format json: the versioned interface, with failing kernels and fixes', () => {
  const r = cli('check', 'examples', '--format', 'json', '--rule', PROGRAM_RULES_OFF);
  assert.equal(r.status, 1, 'error findings exit 1');
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.version, 1);
  assert.ok(doc.kernels.length > 40);
  const byPath = Object.fromEntries(doc.files.map((f: { path: string }) => [f.path, f]));
  assert.deepEqual(Object.keys(byPath).sort(), [
    'examples/bcc-opensnoop.c',
    'examples/process-tracer.bpf.c',
    'examples/task-flavors.bpf.c',
    'examples/tcp-connect.bpf.c',
  ]);
  assert.deepEqual(byPath['examples/bcc-opensnoop.c'].diagnostics, [], 'BCC files are compiled on the host: silent');
  const pt = byPath['examples/process-tracer.bpf.c'].diagnostics;
  const d = pt.find((x: { message: string }) => x.message.includes('real_parent'));
  assert.equal(d.rule, 'unsafe-kernel-deref');
  assert.equal(d.severity, 'error');
  const line = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8').split('\n')[d.range.start.line];
  assert.equal(line.slice(d.range.start.character, d.range.end.character), 'task->real_parent->tgid', '0-based UTF-16 range');
  assert.equal(d.kernels.length, doc.kernels.length);
  assert.equal(d.fixes[0].title, 'Read with BPF_CORE_READ(task, real_parent, tgid)');
  assert.deepEqual(d.fixes[0].edits[0], { range: d.range, newText: 'BPF_CORE_READ(task, real_parent, tgid)' });
  const tcp = byPath['examples/tcp-connect.bpf.c'].diagnostics.find((x: { message: string }) => x.message.includes('tcp_sock.srtt_us'));
  assert.ok(tcp.kernels.length > 0 && tcp.kernels.length < doc.kernels.length, 'only the kernels whose offset differs');
});

test('check text output and the target option', () => {
  // On Debian's four 6.1 builds the offset agrees, so the fixed read is right there: no finding.
  const r = cli('check', 'examples/tcp-connect.bpf.c', '--target', '6.1', '--distro', 'debian');
  assert.equal(r.status, 0);
  assert.doesNotMatch(r.stdout, /tcp_sock\.srtt_us/);
  const wide = cli('check', 'examples/tcp-connect.bpf.c', '--target', '5.10-6.12', '--distro', 'debian');
  assert.equal(wide.status, 1);
  // The headline on the finding's line, the source line with a caret, the details indented below.
  assert.match(
    wide.stdout,
    /error: reads `tcp_sock\.srtt_us` at a fixed offset, wrong on (\d+) of 12 target kernels; [^\n]* \[non-core-field-read\]\n +\d+ \| [^\n]*\n +\| [\t ]*\^~*\n {4}Its offset is [^\n]*differs on \1 of 12 target kernels/,
  );
  assert.match(wide.stdout, /breaks on \d+ of 12 target kernels: /);
  assert.match(r.stdout, /1 file checked against 4 kernels \(6\.1\)/);
});

/** Findings whose headline is over 120 characters, was cut to fit, or is not the JSON summary. */
function badHeadlines(doc: { files: { path: string; diagnostics: { rule: string; message: string; summary: string }[] }[] }): string[] {
  const bad: string[] = [];
  for (const f of doc.files)
    for (const d of f.diagnostics) {
      const problem = d.summary === d.message.split('\n')[0] ? headlineProblem(d.message) : 'the summary is not the first line';
      if (problem) bad.push(`${f.path} ${d.rule}: ${problem}: ${d.message}`);
    }
  return bad;
}

test('check: every finding opens with a headline of at most 120 characters, the JSON summary', () => {
  let findings = 0;
  for (const target of [[], ['--target', '*', '--arch', '*']]) {
    const doc = JSON.parse(cli('check', 'examples', '--format', 'json', ...target).stdout);
    findings += doc.files.reduce((n: number, f: { diagnostics: unknown[] }) => n + f.diagnostics.length, 0);
    assert.deepEqual(badHeadlines(doc), [], target.join(' '));
  }
  assert.ok(findings > 10, `the examples have findings to check (${findings})`);
  // The text output prints the source line and a caret under the headline, then each detail
  // line indented.
  const text = cli('check', 'examples/process-tracer.bpf.c').stdout;
  assert.match(
    text,
    /: error: `task->real_parent->tgid` reads struct task_struct memory directly; [^\n]*\n {3}31 \| \te->ppid = task->real_parent->tgid;\n {6}\| \t {10}\^~{22}\n {4}It reads through `task`/,
  );
});

test('check exit codes: 0 clean, 2 for bad usage or unreadable input', () => {
  assert.equal(cli('check', 'examples/bcc-opensnoop.c', '--rule', PROGRAM_RULES_OFF).status, 0);
  const bad = cli('check', 'examples', '--target', '4.14-');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /malformed target "4\.14-"/);
  const missing = cli('check', 'no/such/file.bpf.c');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no\/such\/file\.bpf\.c: cannot read: ENOENT/);
  assert.equal(cli('check').status, 2);
  assert.match(cli('check', 'examples', '--rule', 'nope=error').stderr, /unknown rule "nope"/);
  assert.equal(
    cli('check', 'examples', '--rule', `unsafe-kernel-deref=off,non-core-field-read=warning,${PROGRAM_RULES_OFF}`).status,
    0,
    'no error-severity findings left',
  );
  assert.equal(
    cli('check', 'examples', '--rule', 'unsafe-kernel-deref=off', '--rule=non-core-field-read=warning', '--rule', PROGRAM_RULES_OFF).status,
    0,
    '--rule repeated adds up',
  );
  for (const [args, re] of [
    [['--bogus'], /unknown option --bogus/],
    [['--target'], /--target needs a value/],
    [['--fix=yes'], /--fix takes no value/],
  ] as const) {
    const r = cli('check', 'examples', ...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, re);
    assert.match(r.stderr, /\(see ebpf-portability check --help\)/);
  }
});

test('check --fix rewrites files and leaves them clean', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-fix-'));
  try {
    cpSync(join(root, 'examples'), dir, { recursive: true });
    writeFileSync(join(dir, 'garbage.bpf.c'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0x53, 0x45, 0x43, 0x28]));
    const r = cli('check', dir, '--fix', '--rule', PROGRAM_RULES_OFF);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /fixed 3 files/);
    const fixed = readFileSync(join(dir, 'process-tracer.bpf.c'), 'utf8');
    assert.match(fixed, /e->ppid = BPF_CORE_READ\(task, real_parent, tgid\);/);
    assert.match(readFileSync(join(dir, 'tcp-connect.bpf.c'), 'utf8'), /#include <bpf\/bpf_core_read.h>\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check: the program rules on the BCC example (kprobe on do_sys_openat2, a 5.6 function)', () => {
  const r = cli('check', 'examples/bcc-opensnoop.c', '--format', 'json');
  assert.equal(r.status, 1);
  const d = JSON.parse(r.stdout).files[0].diagnostics.find((x: { rule: string }) => x.rule === 'attach-target-missing-in-range');
  assert.match(d.message, /^Kprobe target `do_sys_openat2` is unavailable on \d+ of \d+ target kernels/);
  assert.ok(d.kernels.includes('ubuntu-5.4.0-26-generic-amd64') && !d.kernels.includes('ubuntu-5.8.0-25-generic-amd64'));
});

test('check: -I, -D and the project files; the output names the configuration that applied', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-check-project-'));
  try {
    const program = `#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <net/aliases.h>
char LICENSE[] SEC("license") = "GPL";
SEC("kprobe/tcp_connect")
int BPF_KPROBE(on_connect, struct sock *sk)
{
    return BPF_CORE_READ(sk, sk_family);
}
`;
    writeFileSync(join(dir, 'prog.bpf.c'), program);
    const inc = join(dir, 'inc', 'net');
    mkdirSync(inc, { recursive: true });
    writeFileSync(join(inc, 'aliases.h'), '#define sk_family __sk_common.skc_family\n');
    const prog = join(dir, 'prog.bpf.c');
    // Near miss first: without the include path, the alias reads as a member nobody has.
    const alone = cli('check', prog, '--format', 'json');
    assert.equal(alone.status, 1);
    assert.deepEqual(
      JSON.parse(alone.stdout).files[0].diagnostics.map((d: { rule: string }) => d.rule),
      ['field-missing-in-range'],
    );
    const withI = cli('check', prog, '-I', join(dir, 'inc'), '--format', 'json');
    assert.equal(withI.status, 0, withI.stdout);
    assert.deepEqual(JSON.parse(withI.stdout).files[0].diagnostics, []);
    assert.equal(cli('check', prog, `-Dsk_family=__sk_common.skc_family`).status, 0);
    assert.equal(cli('check', prog, '-D', '1bad').status, 2, 'a malformed -D is a usage error');

    writeFileSync(join(dir, '.ebpf-portability.json'), JSON.stringify({ includePaths: ['inc'], targetKernels: '6.1+' }));
    const text = cli('check', prog);
    assert.equal(text.status, 0, text.stdout);
    assert.match(
      text.stdout,
      new RegExp(`project: ${join(dir, '.ebpf-portability.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(1 file\\)`),
    );
    const json = JSON.parse(cli('check', prog, '--format', 'json').stdout);
    assert.deepEqual(json.files[0].project, [join(dir, '.ebpf-portability.json')]);
    assert.match(json.files[0].target, /^6\.1\+/);
    assert.equal(cli('check', prog, '--no-config').status, 1, '--no-config ignores the file');
    writeFileSync(join(dir, '.ebpf-portability.json'), JSON.stringify({ includePaths: ['inc'], loader: 'bpftool' }));
    const bad = cli('check', prog);
    assert.match(bad.stderr, /\.ebpf-portability\.json: loader must be/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const clangPath = [...(process.env.PATH ?? '').split(':'), '/usr/bin'].map((d) => join(d, 'clang')).find((p) => existsSync(p));

test("check --compile: an object without global data drops the source pass's global data finding; one with it keeps it", {
  skip: clangPath ? false : 'skipped: clang is not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-check-global-data-'));
  try {
    const program = (global: string, use: string) =>
      `#define SEC(n) __attribute__((section(n), used))\nstruct gmaps { int limit; int shift; };\n${global}\n` +
      `SEC("kprobe/do_exit")\nint prog(void *ctx)\n{\n${use}\n}\nchar LICENSE[] SEC("license") = "GPL";\n`;
    const rules = (file: string, ...extra: string[]) =>
      JSON.parse(
        cli('check', file, '--arch', 'x86_64', '--target', '4.14-5.1', '--format', 'json', ...extra).stdout,
      ).files[0].diagnostics.map((d: { rule: string }) => d.rule);
    // The address stored in a local: the source pass cannot tell that clang folds it away.
    const folded = join(dir, 'folded.bpf.c');
    writeFileSync(
      folded,
      program('static struct gmaps maps = { .limit = 4, .shift = 1 };', '    struct gmaps *m = &maps;\n    return m->limit << m->shift;'),
    );
    assert.ok(rules(folded, '--no-compile').includes('verifier-global-data'));
    assert.ok(!rules(folded).includes('verifier-global-data'), 'the object has no .data or .rodata');
    // Near miss: a const volatile the loader may set stays in .rodata.
    const kept = join(dir, 'kept.bpf.c');
    writeFileSync(kept, program('const volatile int limit = 4;', '    return limit;'));
    assert.ok(rules(kept).includes('verifier-global-data'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check --compile: the object pass resolves CO-RE relocations with their guards; a file clang rejects stays source-only', {
  skip: clangPath ? false : 'skipped: clang is not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-check-compile-'));
  try {
    const prog = join(dir, 'relocations.bpf.c');
    cpSync(join(root, 'test', 'fixtures', 'objects', 'relocations.bpf.c'), prog);
    const lines = (doc: { files: { diagnostics: { rule: string; range: { start: { line: number } }; basis?: string }[] }[] }) =>
      doc.files[0].diagnostics
        .filter((d) => d.rule === 'field-missing-in-range')
        .map((d) => `${d.range.start.line + 1}${d.basis ? ` ${d.basis}` : ''}`);
    // The source pass does not see the raw __builtin_preserve_field_info guard, nor the local
    // rss_stat type: it reports the guarded `state` reads and misses rss_stat.
    const source = JSON.parse(cli('check', prog, '--arch', 'x86_64', '--format', 'json', '--no-compile').stdout);
    assert.deepEqual(lines(source), ['16', '17']);
    assert.equal(source.files[0].object, undefined);
    assert.match(cli('check', prog, '--no-compile').stdout, /object pass: not run \(--no-compile\); checked from source/);
    // With clang found, the object pass runs by default; --compile only insists on it.
    for (const extra of [[], ['--compile']]) {
      const object = JSON.parse(cli('check', prog, '--arch', 'x86_64', '--format', 'json', ...extra).stdout);
      assert.deepEqual(object.files[0].object, { mode: 'object', arches: ['x86_64'] });
      assert.deepEqual(lines(object), ['18 object']);
    }
    assert.equal(cli('check', prog, '--compile', '--no-compile').status, 2);
    // Suppression comments apply to the object pass's findings like to any other.
    const lines18 = readFileSync(prog, 'utf8').split('\n');
    lines18.splice(17, 0, '    // ebpf-portability-disable-next-line field-missing-in-range');
    const quiet = join(dir, 'quiet.bpf.c');
    writeFileSync(quiet, lines18.join('\n'));
    const suppressed = JSON.parse(cli('check', quiet, '--arch', 'x86_64', '--format', 'json').stdout);
    assert.deepEqual(suppressed.files[0].object, { mode: 'object', arches: ['x86_64'] });
    assert.deepEqual(lines(suppressed), []);
    // So do optional programs: a failing relocation in a SEC("?…") program is a warning.
    const optional = join(dir, 'optional.bpf.c');
    writeFileSync(optional, readFileSync(prog, 'utf8').replace('SEC("kprobe/do_exit")', 'SEC("?kprobe/do_exit")'));
    const opt = JSON.parse(cli('check', optional, '--arch', 'x86_64', '--format', 'json').stdout);
    const member = opt.files[0].diagnostics.find((d: { rule: string }) => d.rule === 'field-missing-in-range');
    assert.deepEqual([member?.basis, member?.severity], ['object', 'warning']);
    const text = cli('check', prog, '--arch', 'x86_64', '--compile');
    assert.match(text.stdout, /object pass \(.*clang\): 1 of 1 file compiled and checked as objects/);

    // A file clang rejects: said so, and checked from source.
    const broken = join(dir, 'broken.bpf.c');
    writeFileSync(broken, '#include "vmlinux.h"\nchar LICENSE[] __attribute__((section("license"))) = "GPL";\nint x = ;\n');
    const b = cli('check', broken, '--compile');
    assert.match(b.stdout, /broken\.bpf\.c: object pass skipped: \w+: does not compile: 'vmlinux\.h' file not found/);
    assert.equal(cli('check', prog, '--clang', join(dir, 'no-such-clang')).status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check: the object pass narrows every rule to the code each kernel runs, and adds what only the object shows', {
  skip: clangPath ? false : 'skipped: clang is not installed',
}, () => {
  const prog = join(root, 'test', 'fixtures', 'objects', 'linked.bpf.c');
  const text = readFileSync(prog, 'utf8').split('\n');
  const at = (s: string) => text.findIndex((l) => l.includes(s)) + 1;
  type Doc = { files: { diagnostics: { rule: string; range: { start: { line: number } }; basis?: string; message: string }[] }[] };
  const found = (doc: Doc) =>
    doc.files[0].diagnostics
      .filter((d) => d.rule !== 'kernel-version-gate')
      .map((d) => `${d.range.start.line + 1} ${d.rule}${d.basis ? ` ${d.basis}` : ''}`);
  const args = ['check', prog, '--arch', 'x86_64', '--target', '4.14-7.x', '--format', 'json'];
  const source = found(JSON.parse(cli(...args, '--no-compile').stdout));
  const object = found(JSON.parse(cli(...args, '--compile').stdout));
  const neverCalled = `${at('return bpf_get_func_ip(ctx);')} helper-unavailable`;
  const weakGuard = `${at('        bpf_rcu_read_lock();')} kfunc-unavailable`;
  // From source: a static function nothing calls, and a call under `if (weak_kfunc)`, look reachable.
  assert.ok(source.includes(neverCalled) && source.includes(weakGuard), source.join('\n'));
  // The object has no code for the first and reaches the second only where libbpf resolves the kfunc.
  assert.ok(!object.includes(neverCalled) && !object.includes(weakGuard), object.join('\n'));
  // What both see stays: the callback's helper, bpf_loop, the missing kfuncs (near misses of the narrowing).
  for (const s of ['return bpf_get_func_ip(ctx) ?', 'bpf_loop(4']) assert.ok(object.includes(`${at(s)} helper-unavailable`), s);
  assert.ok(object.includes(`${at('bpf_task_release(a)')} kfunc-unavailable`));
  // A kfunc declared with a prototype the kernels refuse: the source pass reads this declaration,
  // and the object's own verdict on it does not repeat it.
  const proto = `${at('bpf_task_acquire((struct')} kfunc-unavailable`;
  assert.ok(source.includes(proto), source.join('\n'));
  assert.equal(object.filter((x) => x.startsWith(proto)).length, 2, object.join('\n'));
  const protoCount = (doc: Doc) => doc.files[0].diagnostics.filter((d) => /prototype/.test(d.message.split('\n')[0])).length;
  assert.equal(protoCount(JSON.parse(cli(...args, '--compile').stdout)), 1);
});

test('check: an object verdict is placed on the member it reads, one per read, whatever lines clang spread it over', {
  skip: clangPath ? false : 'skipped: clang is not installed',
}, () => {
  const prog = join(root, 'test', 'fixtures', 'objects', 'bitfields.bpf.c');
  const text = readFileSync(prog, 'utf8').split('\n');
  const doc = JSON.parse(cli('check', prog, '--arch', 'x86_64', '--target', '4.14-7.x', '--format', 'json').stdout);
  const found = doc.files[0].diagnostics.filter((d: { rule: string }) => d.rule === 'field-missing-in-range');
  // The unguarded read (not the existence check, not the guarded read, not sk_kern_sock's line).
  const line = text.findIndex((l) => l.startsWith('    v += READ_BITFIELD(sk, sk_gso_disabled)'));
  assert.deepEqual(
    found.map((d: { range: { start: { line: number; character: number } }; basis: string }) => [
      d.range.start.line,
      d.range.start.character,
      d.basis,
    ]),
    [[line, text[line].indexOf('sk_gso_disabled'), 'object']],
  );
  assert.match(found[0].message, /relocations? finds? no matching member \(by name and kind\) in `sock`/);
});

test('check: a guarded callback helper still fails before callbacks existed, with the object pass as without it', {
  skip: clangPath ? false : 'skipped: clang is not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-check-callback-'));
  try {
    const prog = join(dir, 'loop.bpf.c');
    writeFileSync(
      prog,
      [
        '#define SEC(n) __attribute__((section(n), used))',
        '#define bpf_core_enum_value_exists(t, v) __builtin_preserve_enum_value(*(typeof(t) *)v, 0)',
        'enum bpf_func_id { BPF_FUNC_loop = 181 };',
        'static long (*bpf_loop)(unsigned int nr, void *fn, void *ctx, unsigned long long flags) = (void *) 181;',
        'static long step(unsigned int i, void *ctx) { return 0; }',
        'SEC("kprobe/do_exit")',
        'int prog(void *ctx)',
        '{',
        '    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop))',
        '        bpf_loop(4, step, ctx, 0);',
        '    return 0;',
        '}',
        'char LICENSE[] SEC("license") = "GPL";',
        '',
      ].join('\n'),
    );
    const kernelsOf = (extra: string) => {
      const doc = JSON.parse(cli('check', prog, '--arch', 'x86_64', '--target', '4.14-7.x', '--format', 'json', extra).stdout);
      assert.deepEqual(doc.files[0].object?.mode, extra === '--compile' ? 'object' : undefined);
      const d = doc.files[0].diagnostics.filter((x: { rule: string }) => x.rule === 'helper-unavailable');
      assert.equal(d.length, 1, JSON.stringify(d));
      assert.equal(d[0].range.start.line, 9);
      return d[0].kernels as string[];
    };
    const source = kernelsOf('--no-compile');
    const object = kernelsOf('--compile');
    // The guard hides the call where bpf_loop is missing, but verifiers before BPF_PSEUDO_FUNC reject
    // the callback's address whatever the guard: those kernels, and only those, stay.
    assert.deepEqual(object, source);
    const list = JSON.parse(cli('db', 'list', '--json').stdout).kernels as { name: string; version: string }[];
    const version = new Map(list.map((k) => [k.name, k.version.split('.').map(Number)]));
    const before513 = ([a, b]: number[]) => a < 5 || (a === 5 && b < 13);
    assert.ok(object.length > 0);
    for (const name of object) assert.ok(before513(version.get(name)!), name);
    // The near miss: 5.13 to 5.16 lack bpf_loop too, but the guard keeps the call from running there.
    assert.ok(list.some((k) => !before513(version.get(k.name)!) && /^5\.1[3-6]\./.test(k.version) && !object.includes(k.name)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check: a helper called through a project macro is checked from the object (the source pass cannot see the call)', {
  skip: clangPath ? false : 'skipped: clang is not installed',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-check-macro-helper-'));
  try {
    const prog = join(dir, 'emit.bpf.c');
    const lines = [
      '#define SEC(n) __attribute__((section(n), used))',
      '#define bpf_core_enum_value_exists(t, v) __builtin_preserve_enum_value(*(typeof(t) *)v, 0)',
      'enum bpf_func_id { BPF_FUNC_ringbuf_output = 130 };',
      'static long (*bpf_ringbuf_output)(void *ringbuf, void *data, unsigned long size, unsigned long flags) = (void *) 130;',
      '#define EMIT(v) bpf_ringbuf_output(0, &(v), sizeof(v), 0)',
      'SEC("kprobe/do_exit")',
      'int emit_exit(void *ctx)',
      '{',
      '    long v = 1;',
      '    EMIT(v);',
      '    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output))',
      '        EMIT(v);',
      '    return 0;',
      '}',
      'char LICENSE[] SEC("license") = "GPL";',
      '',
    ];
    writeFileSync(prog, lines.join('\n'));
    const run = (extra: string) =>
      JSON.parse(
        cli('check', prog, '--arch', 'x86_64', '--target', '4.14-7.x', '--format', 'json', extra).stdout,
      ).files[0].diagnostics.filter((d: { rule: string }) => d.rule === 'helper-unavailable') as {
        range: { start: { line: number } };
        basis?: string;
        message: string;
        kernels: string[];
      }[];
    // From source, the macro hides the call.
    assert.deepEqual(run('--no-compile'), []);
    // The object has it: the unguarded use fails before ring buffers; the guarded one (near miss) does not.
    const found = run('--compile');
    assert.deepEqual(
      found.map((d) => [d.range.start.line, d.basis]),
      [[lines.indexOf('    EMIT(v);'), 'object']],
    );
    assert.match(found[0].message, /`bpf_ringbuf_output` is missing on \d+ of \d+ target kernels/);
    assert.ok(found[0].kernels.length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
