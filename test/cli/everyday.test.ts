/**
 * The command line as a new user and a CI job meet it: --version and help, exit status 2 when
 * nothing is checked, bad option values named with the valid ones, "did you mean", compiler-style
 * text (byte columns, an excerpt with a caret, colour only when asked), SARIF 2.1.0 valid against
 * its schema, --max-warnings and --rules, .gitignore'd paths skipped, explain, requirements (the
 * examples' floors computed by hand from the facts) and doctor on a fixture root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Ajv from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { versionRanges } from '../../kernel-db/src/query/summary';
import { ignoredBy, parseGitignore } from '../../cli/src/gitignore';
import { editDistance, nearest } from '../../cli/src/suggest';
import { colorWanted } from '../../cli/src/style';

const root = join(__dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'ebpf-everyday-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

/** The bundled CLI, with no imported kernels and no colour settings inherited. */
function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, EBPF_PORTABILITY_HOME: join(scratch, 'home'), ...opts.env };
  for (const k of ['FORCE_COLOR', 'NO_COLOR'] as const) if (!opts.env || !(k in opts.env)) delete env[k];
  const r = spawnSync(process.execPath, [join(root, 'bin', 'ebpf-portability.js'), ...args], {
    encoding: 'utf8',
    cwd: opts.cwd ?? root,
    env,
    timeout: 60000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const ESC = String.fromCharCode(27);

/** A kprobe that reads `t->pid` directly (unsafe-kernel-deref, an error on every kernel). */
const KPROBE = (line = '  return t->pid;') =>
  [
    '#include "vmlinux.h"',
    '#include <bpf/bpf_helpers.h>',
    'SEC("kprobe/do_sys_open")',
    'int prog(struct pt_regs *ctx) {',
    '  struct task_struct *t = (void *)bpf_get_current_task();',
    line,
    '}',
    'char LICENSE[] SEC("license") = "GPL";',
    '',
  ].join('\n');
/** An XDP program without findings. */
const XDP = '#include <bpf/bpf_helpers.h>\nSEC("xdp")\nint pass(void *ctx) { return 2; }\nchar LICENSE[] SEC("license") = "GPL";\n';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, 'tree-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

test('--version, help and lsp --help exit 0; no command is a usage error', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const v = cli(['--version']);
  assert.equal(v.status, 0);
  assert.equal(v.stdout, `ebpf-portability ${pkg.version}\n`);
  const lsp = cli(['lsp', '--help']);
  assert.equal(lsp.status, 0);
  assert.match(lsp.stdout, /usage: ebpf-portability lsp --stdio/);
  assert.equal(cli(['lsp', '--bogus']).status, 2);
  const bare = cli(['lsp']);
  assert.equal(bare.status, 2);
  assert.match(bare.stderr, /lsp takes --stdio/);
  assert.equal(cli(['--help']).status, 0);
  assert.match(cli(['--help']).stdout, /requirements …[\s\S]*explain RULE[\s\S]*doctor/);
  assert.equal(cli([]).status, 2);
});

test('lsp --stdio starts the language server without loading the CLI bundle; it answers and exits 0 after shutdown', () => {
  // A preload that lists, at exit, the files the process loaded.
  const hook = join(scratch, 'loaded.js');
  writeFileSync(hook, "process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(Object.keys(require.cache)) + '\\n'));\n");
  const frame = (m: object) => {
    const body = JSON.stringify(m);
    return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  const input =
    frame({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { processId: null, capabilities: {} } }) +
    frame({ jsonrpc: '2.0', id: 2, method: 'shutdown' }) +
    frame({ jsonrpc: '2.0', method: 'exit' });
  const r = spawnSync(process.execPath, ['-r', hook, join(root, 'bin', 'ebpf-portability.js'), 'lsp', '--stdio'], {
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /"id":1,"result":\{"capabilities"/);
  const loaded: string[] = JSON.parse(/LOADED (.*)/.exec(r.stderr)![1]);
  assert.ok(loaded.includes(join(root, 'dist', 'server.js')), loaded.join('\n'));
  assert.ok(!loaded.includes(join(root, 'dist', 'cli.js')), 'the CLI bundle was loaded');
});

test('check exits 2 when no BPF C file is found: an empty directory, a directory without BPF code', () => {
  const empty = tree({});
  const r = cli(['check', empty]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no BPF C files found in ".*tree-\w+"/);
  const plain = tree({ 'main.c': 'int main(void) { return 0; }\n', 'README.md': '# x\n' });
  assert.equal(cli(['check', plain]).status, 2);
  assert.equal(cli(['requirements', plain]).status, 2);
  // The near miss: the same directory with a BPF file is checked (and clean).
  writeFileSync(join(plain, 'pass.bpf.c'), XDP);
  const ok = cli(['check', '--no-compile', plain]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^1 file checked against \d+ kernels \(4\.14-7\.x\): 0 errors, 0 warnings$/m);
});

test('--arch and --distro name the bad value and the valid ones; --target user without imports hints db add', () => {
  for (const cmd of [
    ['check', 'examples'],
    ['db', 'helper', 'bpf_loop'],
  ]) {
    const arch = cli([...cmd, '--arch', 'x86']);
    assert.equal(arch.status, 2);
    assert.match(arch.stderr, /--arch: no kernel has architecture "x86" \(valid: [^)]*\barm64\b[^)]*\bx86_64\b[^)]*\)/);
    const distro = cli([...cmd, '--distro', 'fedora']);
    assert.equal(distro.status, 2);
    assert.match(distro.stderr, /--distro: no kernel has distro family "fedora" \(valid: [^)]*\bdebian\b[^)]*\bubuntu\b/);
  }
  const user = cli(['check', 'examples', '--target', 'user']);
  assert.equal(user.status, 2);
  assert.match(user.stderr, /no kernel is imported yet; import one with `ebpf-portability db add \/sys\/kernel\/btf\/vmlinux`/);
  // Imported kernels of an architecture the default filter leaves out: said, with the way round it.
  const home = { EBPF_PORTABILITY_HOME: join(scratch, 'imported') };
  const blob = join(root, 'test', 'fixtures', 'kernel-data-mini', 'btf', 'debian-7.3.4-amd64.btf.xz');
  assert.equal(cli(['db', 'add', blob, '--version', '7.3.4', '--name', 'node-u'], { env: home }).status, 0);
  const filtered = cli(['check', '--no-compile', 'examples/task-flavors.bpf.c', '--target', 'user'], { env: home });
  assert.equal(filtered.status, 2);
  assert.match(filtered.stderr, /the imported kernels' architectures \(unknown\) are not among x86_64,arm64; pass --arch '\*'/);
  const all = cli(['check', '--no-compile', 'examples/task-flavors.bpf.c', '--target', 'user', '--arch', '*'], { env: home });
  assert.match(all.stdout, /checked against 1 kernel \(user\)/);
  // db's default filter keeps imported kernels whatever their architecture.
  assert.equal(JSON.parse(cli(['db', 'helper', 'bpf_loop', '--target', 'user', '--json'], { env: home }).stdout).kernels.length, 1);
  // A valid filter is no error.
  assert.equal(cli(['db', 'helper', 'bpf_loop', '--arch', 'x86_64', '--distro', 'debian']).status, 0);
});

test('db field on a member no kernel has exits 1 with "did you mean"; db and check default to the same architectures', () => {
  const typo = cli(['db', 'field', 'task_struct.pdi']);
  assert.equal(typo.status, 1);
  assert.match(typo.stdout, /no member pdi in struct task_struct on any of the \d+ kernels; did you mean task_struct\.pid\b/);
  const json = JSON.parse(cli(['db', 'field', 'task_struct.pdi', '--json']).stdout);
  assert.equal(json.didYouMean[0], 'task_struct.pid');
  const struct = cli(['db', 'field', 'task_strct.pid']);
  assert.equal(struct.status, 1);
  assert.match(struct.stdout, /no struct task_strct on any of the \d+ kernels; did you mean task_struct\.pid/);
  assert.equal(cli(['db', 'struct', 'task_strct']).status, 1);
  // The near miss: a member that exists answers with status 0 and no suggestion.
  const pid = cli(['db', 'field', 'task_struct.pid', '--json']);
  assert.equal(pid.status, 0);
  const doc = JSON.parse(pid.stdout);
  assert.equal(doc.didYouMean, undefined);
  const dbArches = new Set(doc.kernels.map((k: { arch: string }) => k.arch));
  const check = JSON.parse(cli(['check', '--no-compile', 'examples/task-flavors.bpf.c', '--format', 'json']).stdout);
  assert.deepEqual([...dbArches].sort(), ['arm64', 'x86_64']);
  const all = JSON.parse(cli(['db', 'list', '--json']).stdout).kernels as { name: string; arch: string; version: string }[];
  const checkArches = new Set(check.kernels.map((n: string) => all.find((k) => k.name === n)!.arch));
  assert.deepEqual([...checkArches].sort(), [...dbArches].sort());
  assert.deepEqual(editDistance('pdi', 'pid'), 1, 'a swap of neighbours is one edit');
  assert.deepEqual(nearest('ringbuf', ['ringbuf_output', 'perf', 'ringbuff']), ['ringbuff', 'ringbuf_output']);
});

test('version ranges follow versions, not the database order; consecutive versions merge', () => {
  const k = (name: string, version: string) => ({ name, version });
  // Imported kernels come after the built-in ones: 5.15 after 6.18.
  const all = [k('a', '6.1.0'), k('b', '6.18.0'), k('c', '7.0.0'), k('d', '5.15.0'), k('e', '7.1.0'), k('f', '7.3.0'), k('g', '7.0.5')];
  assert.equal(versionRanges([all[1], all[3], all[0]], all), '5.15–6.18');
  // 7.0 has two kernels, one in and one out: the versions 7.0–7.3 still read as one range.
  assert.equal(versionRanges([all[2], all[4], all[5]], all), '7.0–7.3');
  // A version with no kernel of the set ends a range.
  assert.equal(versionRanges([all[3], all[2]], all), '5.15, 7.0');
});

test('text output: file:line:col with the column in UTF-8 bytes, an excerpt and caret, colour only on request', () => {
  const line = '  /* é€ */ return t->pid;';
  const dir = tree({ 'p.bpf.c': KPROBE(line) });
  const r = cli(['check', '--no-compile', 'p.bpf.c'], { cwd: dir });
  assert.equal(r.status, 1);
  const utf16 = line.indexOf('t->pid');
  const bytes = Buffer.byteLength(line.slice(0, utf16)) + 1;
  assert.equal(bytes, utf16 + 1 + 3, 'é is 2 bytes, € is 3');
  assert.match(
    r.stdout,
    new RegExp(
      `^p\\.bpf\\.c:6:${bytes}: error: [^\\n]+ \\[unsafe-kernel-deref\\]\\n {4}6 \\| ${reEscape(line)}\\n {6}\\| {${utf16 + 1}}\\^~{5}\\n`,
      'm',
    ),
  );
  assert.ok(!r.stdout.includes(ESC), 'no escape codes when stdout is not a terminal');
  assert.match(r.stdout, /^1 file checked against \d+ kernels \(4\.14-7\.x\): 1 error, 0 warnings$/m);
  // JSON keeps LSP's UTF-16 columns.
  const json = JSON.parse(cli(['check', '--no-compile', '--format', 'json', 'p.bpf.c'], { cwd: dir }).stdout);
  assert.equal(json.files[0].diagnostics[0].range.start.character, utf16);
  const forced = cli(['check', '--no-compile', 'p.bpf.c'], { cwd: dir, env: { FORCE_COLOR: '1' } });
  assert.ok(forced.stdout.startsWith(`${ESC}[1mp.bpf.c:6:${bytes}:${ESC}[22m ${ESC}[31merror:${ESC}[39m`), forced.stdout);
  assert.equal(cli(['check', '--no-compile', 'p.bpf.c'], { cwd: dir, env: { FORCE_COLOR: '0' } }).stdout, r.stdout);
  assert.equal(colorWanted({}, true), true);
  assert.equal(colorWanted({ NO_COLOR: '1' }, true), false);
  assert.equal(colorWanted({ NO_COLOR: '' }, true), true, 'an empty NO_COLOR is not set');
  assert.equal(colorWanted({ TERM: 'dumb' }, true), false);
  assert.equal(colorWanted({}, false), false);
  assert.equal(colorWanted({ FORCE_COLOR: '1', NO_COLOR: '1' }, false), true);
  // The VS Code problem matcher reads every finding line.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const matcher = pkg.contributes.problemMatchers.find((m: { name: string }) => m.name === 'ebpf-portability');
  const re = new RegExp(matcher.pattern.regexp);
  const heads = r.stdout.split('\n').filter((l) => / \[[a-z0-9-]+\]$/.test(l));
  assert.equal(heads.length, 1);
  const m = re.exec(heads[0])!;
  assert.ok(m, heads[0]);
  const p = matcher.pattern;
  assert.deepEqual(
    [m[p.file], m[p.line], m[p.column], m[p.severity], m[p.code]],
    ['p.bpf.c', '6', String(bytes), 'error', 'unsafe-kernel-deref'],
  );
  assert.equal(re.exec('object pass: not run (--no-compile); checked from source'), null);
});

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

test('--max-warnings and --rules (the --rule spelling still works)', () => {
  const dir = tree({ 'p.bpf.c': KPROBE() });
  const run = (...extra: string[]) => cli(['check', '--no-compile', 'p.bpf.c', ...extra], { cwd: dir });
  const warned = run('--rules', 'unsafe-kernel-deref=warning');
  assert.equal(warned.status, 0, 'a warning alone passes');
  assert.match(warned.stdout, /: warning: .* \[unsafe-kernel-deref\]/);
  const strict = run('--rules', 'unsafe-kernel-deref=warning', '--max-warnings', '0');
  assert.equal(strict.status, 1);
  assert.match(strict.stdout, /0 errors, 1 warning\nmore warnings than --max-warnings 0/);
  assert.equal(run('--rules', 'unsafe-kernel-deref=warning', '--max-warnings', '1').status, 0);
  assert.equal(run('--rule', 'unsafe-kernel-deref=off').status, 0);
  assert.equal(run('--rules', 'unsafe-kernel-deref=off,legacy-probe-read=error').status, 0);
  assert.equal(run('--max-warnings', 'many').status, 2);
  assert.match(run('--rules', 'no-such-rule=off').stderr, /unknown rule "no-such-rule"/);
  assert.match(run('--format', 'xml').stderr, /--format must be text, json or sarif/);
});

test('--format sarif is a valid SARIF 2.1.0 log with rule metadata, help URIs, locations and fixes', () => {
  const dir = tree({ 'p.bpf.c': KPROBE(), 'clean.bpf.c': XDP });
  const r = cli(['check', '--no-compile', '--format', 'sarif', '.'], { cwd: dir });
  assert.equal(r.status, 1);
  const log = JSON.parse(r.stdout);
  const schema = JSON.parse(readFileSync(require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'), 'utf8'));
  // The schema's language-tag pattern is not valid with the u flag (a stray `]`): plain RegExps.
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats(ajv);
  const compiled = ajv.compile(schema);
  const validate = (x: object): boolean => compiled(x);
  const errors = () => compiled.errors;
  assert.ok(validate(log), JSON.stringify(errors()?.slice(0, 5), null, 2));
  // The schema is draft-04 (hence ajv-draft-04). The validator is not vacuous: a result without a message is refused.
  const broken = structuredClone(log);
  delete broken.runs[0].results[0].message;
  assert.equal(validate(broken), false);
  assert.equal(log.version, '2.1.0');
  const run = log.runs[0];
  const rules = run.tool.driver.rules as { id: string; helpUri: string; defaultConfiguration: { level: string } }[];
  const deref = rules.find((x) => x.id === 'unsafe-kernel-deref')!;
  assert.match(deref.helpUri, /^https:\/\/.*\/docs\/rules\/unsafe-kernel-deref\.md$/);
  assert.equal(deref.defaultConfiguration.level, 'error');
  assert.equal(run.results.length, 1);
  const res = run.results[0];
  assert.equal(res.ruleId, 'unsafe-kernel-deref');
  assert.equal(rules[res.ruleIndex].id, 'unsafe-kernel-deref');
  assert.equal(res.level, 'error');
  const loc = res.locations[0].physicalLocation;
  assert.deepEqual(loc.artifactLocation, { uri: 'p.bpf.c', uriBaseId: 'SRCROOT' });
  assert.deepEqual(loc.region, { startLine: 6, startColumn: 10, endLine: 6, endColumn: 16 });
  const fix = res.fixes[0];
  assert.match(fix.description.text, /BPF_CORE_READ\(t, pid\)/);
  assert.ok(
    fix.artifactChanges[0].replacements.some(
      (x: { insertedContent: { text: string } }) => x.insertedContent.text === 'BPF_CORE_READ(t, pid)',
    ),
  );
  assert.ok(res.properties.kernels.length > 40, 'the failing kernels are kept');
  // Clean input: no results, still a valid log, exit 0.
  const clean = cli(['check', '--no-compile', '--format', 'sarif', 'clean.bpf.c'], { cwd: dir });
  assert.equal(clean.status, 0);
  const cleanLog = JSON.parse(clean.stdout);
  assert.ok(validate(cleanLog));
  assert.deepEqual(cleanLog.runs[0].results, []);
});

test('.gitignore: patterns, negation, directory-only, anchored, ** and nested files', () => {
  const g = parseGitignore('# comment\n\nbuild/\n*.gen.bpf.c\n!keep.gen.bpf.c\n/top.bpf.c\nsub/**/deep.bpf.c\n\\#hash.bpf.c\n', '/r');
  const is = (p: string, dir = false) => ignoredBy([g], `/r/${p}`, dir);
  assert.equal(is('build', true), true);
  assert.equal(is('build'), false, 'build/ matches directories only');
  assert.equal(is('x/build', true), true, 'an unanchored pattern matches at any depth');
  assert.equal(is('a.gen.bpf.c'), true);
  assert.equal(is('d/a.gen.bpf.c'), true);
  assert.equal(is('keep.gen.bpf.c'), false, 'the later ! re-includes');
  assert.equal(is('top.bpf.c'), true);
  assert.equal(is('sub/top.bpf.c'), false, 'a leading / anchors');
  assert.equal(is('sub/deep.bpf.c'), true, '/**/ matches no directory');
  assert.equal(is('sub/a/b/deep.bpf.c'), true);
  assert.equal(is('other/deep.bpf.c'), false);
  assert.equal(is('#hash.bpf.c'), true);
  assert.equal(is('a.bpf.c'), false);
  const all = parseGitignore('**/gen/**\n[ab]?.bpf.c\n', '/r');
  assert.equal(ignoredBy([all], '/r/x/gen/y.bpf.c', false), true);
  assert.equal(ignoredBy([all], '/r/a1.bpf.c', false), true);
  assert.equal(ignoredBy([all], '/r/c1.bpf.c', false), false);
  assert.equal(ignoredBy([all], '/r/a/1.bpf.c', false), false, '? never matches /');

  const dir = tree({
    '.git/HEAD': 'ref: refs/heads/main\n',
    '.gitignore': 'build/\n*.gen.bpf.c\n!keep.gen.bpf.c\n/top.bpf.c\nsub/from-root.bpf.c\n',
    'a.bpf.c': XDP,
    'top.bpf.c': XDP,
    'x.gen.bpf.c': XDP,
    'keep.gen.bpf.c': XDP,
    'build/b.bpf.c': XDP,
    'sub/top.bpf.c': XDP,
    'sub/from-root.bpf.c': XDP,
    'sub/.gitignore': 'local.bpf.c\n',
    'sub/local.bpf.c': XDP,
    'local.bpf.c': XDP,
  });
  const files = (path: string) =>
    JSON.parse(cli(['check', '--no-compile', '--format', 'json', path], { cwd: dir }).stdout)
      .files.map((f: { path: string }) => f.path)
      .sort();
  assert.deepEqual(files('.'), ['a.bpf.c', 'keep.gen.bpf.c', 'local.bpf.c', 'sub/top.bpf.c']);
  // Checking a subdirectory applies the .gitignore files above it, up to the repository's root.
  assert.deepEqual(files('sub'), ['sub/top.bpf.c']);
  // A file named on the command line is checked whatever .gitignore says.
  assert.deepEqual(files('top.bpf.c'), ['top.bpf.c']);
});

test('explain prints a rule doc for the terminal; an unknown rule suggests the nearest', () => {
  const r = cli(['explain', 'helper-unavailable']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^helper-unavailable\n=+\n/);
  assert.match(r.stdout, /\nWhat it flags\n-+\n/);
  assert.doesNotMatch(r.stdout, /^#/m, 'headings rendered, not raw markdown');
  assert.ok(!r.stdout.includes(ESC));
  assert.match(r.stdout, /Online: https:\/\/.*\/docs\/rules\/helper-unavailable\.md\n$/);
  const typo = cli(['explain', 'helper-unavailble']);
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /unknown rule "helper-unavailble"; did you mean helper-unavailable\?/);
  assert.equal(cli(['explain']).status, 2);
});

test('requirements: the examples with the floors the facts give, computed by hand', () => {
  const r = cli(['requirements', '--no-compile', 'examples', '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  type Row = {
    file: string;
    function: string;
    sec: string;
    progType: string;
    floor: string;
    uses: { kind: string; name: string; since: string }[];
    configs: string[];
    minKernel: Record<string, { version: string | null; all: boolean }>;
    failsOn: string[];
  };
  const rows = new Map<string, Row>(doc.programs.map((p: Row) => [`${p.file}:${p.function}`, p]));
  // By hand, from `db helper`, `db map-type`, `db sec`: bpf_ringbuf_reserve/submit and
  // BPF_MAP_TYPE_RINGBUF 5.8; kprobe 4.1; tp_btf and fentry (BPF_PROG_TYPE_TRACING) 5.5;
  // bpf_get_current_task_btf 5.11; bpf_probe_read_kernel and bpf_probe_read_user_str 5.5;
  // bpf_perf_event_output 4.4, BPF_MAP_TYPE_PERF_EVENT_ARRAY 4.3.
  const expected: Record<string, { sec: string; progType: string; floor: string; setBy: string[]; configs: string[] }> = {
    'examples/process-tracer.bpf.c:trace_exit': {
      sec: 'kprobe/do_exit',
      progType: 'BPF_PROG_TYPE_KPROBE',
      floor: '5.8',
      setBy: ['BPF_MAP_TYPE_RINGBUF', 'bpf_ringbuf_reserve', 'bpf_ringbuf_submit'],
      configs: ['CONFIG_BPF_EVENTS', 'CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'],
    },
    // The ring buffer is the object's: it sets the fork program's floor too.
    'examples/process-tracer.bpf.c:on_fork': {
      sec: 'tp_btf/sched_process_fork',
      progType: 'BPF_PROG_TYPE_TRACING',
      floor: '5.8',
      setBy: ['BPF_MAP_TYPE_RINGBUF'],
      configs: ['CONFIG_BPF_EVENTS', 'CONFIG_BPF_JIT', 'CONFIG_DEBUG_INFO_BTF'],
    },
    'examples/task-flavors.bpf.c:exit_state': {
      sec: 'fentry/do_exit',
      progType: 'BPF_PROG_TYPE_TRACING',
      floor: '5.11',
      setBy: ['bpf_get_current_task_btf'],
      configs: ['CONFIG_BPF_EVENTS', 'CONFIG_BPF_JIT', 'CONFIG_DEBUG_INFO_BTF', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS'],
    },
    'examples/tcp-connect.bpf.c:trace_established': {
      sec: 'kprobe/tcp_rcv_established',
      progType: 'BPF_PROG_TYPE_KPROBE',
      floor: '5.5',
      setBy: ['bpf_probe_read_kernel'],
      configs: ['CONFIG_BPF_EVENTS', 'CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'],
    },
    'examples/bcc-opensnoop.c:kprobe__do_sys_openat2': {
      sec: 'kprobe/do_sys_openat2',
      progType: 'BPF_PROG_TYPE_KPROBE',
      floor: '5.5',
      setBy: ['bpf_probe_read_user_str'],
      configs: ['CONFIG_BPF_EVENTS', 'CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'],
    },
  };
  assert.deepEqual([...rows.keys()].sort(), Object.keys(expected).sort());
  for (const [key, e] of Object.entries(expected)) {
    const row = rows.get(key)!;
    assert.equal(row.sec, e.sec, key);
    assert.equal(row.progType, e.progType, key);
    assert.equal(row.floor, e.floor, key);
    assert.deepEqual(
      row.uses
        .filter((u) => u.since === e.floor || u.since.startsWith(`${e.floor}.`))
        .map((u) => u.name)
        .sort(),
      e.setBy,
      key,
    );
    assert.deepEqual(row.configs, e.configs, key);
    // The kernels it loads on from its minimum never include one below the floor.
    for (const [arch, m] of Object.entries(row.minKernel))
      if (m.version !== null && !m.all) assert.ok(cmp(m.version, e.floor) >= 0, `${key} ${arch}: ${m.version} below ${e.floor}`);
  }
  // Direct kernel reads in a kprobe fail everywhere: no minimum kernel.
  assert.deepEqual(rows.get('examples/process-tracer.bpf.c:trace_exit')!.minKernel.x86_64, { version: null, all: false });
  // The fork program fails exactly where the ring buffer is missing: below 5.8 on x86_64.
  const fork = rows.get('examples/process-tracer.bpf.c:on_fork')!;
  assert.equal(fork.minKernel.x86_64.version, '5.8');
  const kernels = JSON.parse(cli(['db', 'map-type', 'ringbuf', '--target', '4.14-7.x', '--json']).stdout).kernels as {
    name: string;
    present: boolean;
  }[];
  assert.deepEqual(
    [...fork.failsOn].sort(),
    kernels
      .filter((k) => k.present === false)
      .map((k) => k.name)
      .sort(),
  );

  const md = cli(['requirements', '--no-compile', 'examples/process-tracer.bpf.c']);
  assert.equal(md.status, 0);
  assert.match(
    md.stdout,
    /^\| File \| Function \| SEC \| Program type \| Min kernel \(arm64\) \| Min kernel \(x86_64\) \| Floor \(facts\) \| CONFIG \| Fails on \|$/m,
  );
  assert.match(
    md.stdout,
    /^\| examples\/process-tracer\.bpf\.c \| `on_fork` \| `tp_btf\/sched_process_fork` \| tracing \| [^|]+ \| ≥ 5\.8 \| 5\.8: BPF_MAP_TYPE_RINGBUF \|/m,
  );
  const csv = cli(['requirements', '--no-compile', 'examples/process-tracer.bpf.c', '--format', 'csv']);
  assert.equal(csv.status, 0);
  const lines = csv.stdout.trim().split('\n');
  assert.equal(
    lines[0],
    'file,function,sec,prog_type,min_kernel_arm64,min_kernel_x86_64,floor,floor_set_by,configs,fails_on_count,target_kernels,fails_on',
  );
  assert.match(
    lines[2],
    /^examples\/process-tracer\.bpf\.c,on_fork,tp_btf\/sched_process_fork,BPF_PROG_TYPE_TRACING,[\d.]+,5\.8,5\.8,BPF_MAP_TYPE_RINGBUF,/,
  );
  assert.match(cli(['requirements', 'examples', '--format', 'html']).stderr, /--format must be markdown, json or csv/);
});

const cmp = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  return x[0] - y[0] || x[1] - y[1];
};

test('requirements: a function in a data section (SEC("license")) is not a program; the programs beside it keep their rows', () => {
  // The input issue 14 reported for check: requirements failed on it with "Cannot read properties
  // of undefined (reading 'trim')" (the license section has no kernel version), for every file of the run.
  const dir = tree({
    'data.bpf.c':
      '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nSEC("license") int f(void) { return 0; }\nSEC(".maps")\nint g(void) { return 0; }\nSEC(".rodata") int r(void) { return 0; }\nSEC("xdp")\nint h(struct xdp_md *ctx) { return 2; }\nSEC("fentry/do_exit")\nint e(void *ctx) { return 0; }\n',
  });
  const r = cli(['requirements', '--no-compile', dir, '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Cannot read/);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(
    doc.programs.map((p: { function: string; sec: string; floor: string }) => [p.function, p.sec, p.floor]),
    [
      ['h', 'xdp', '4.8'],
      ['e', 'fentry/do_exit', '5.5'],
    ],
  );
  // check says nothing of the data sections ("undefined needs 5.2" for .rodata before); the
  // near miss, fentry, still fails where BPF_PROG_TYPE_TRACING is missing.
  const c = cli(['check', '--no-compile', join(dir, 'data.bpf.c')]);
  assert.doesNotMatch(c.stdout, /undefined|SEC\("(license|\.maps|\.rodata)"\)/);
  assert.match(
    c.stdout,
    /SEC\("fentry\/do_exit"\) cannot load on \d+ of \d+ target kernels; BPF_PROG_TYPE_TRACING is missing[^\n]*\[prog-type-unavailable\]/,
  );
});

test('doctor reads a fixture root: what is there, what is missing, the distro install command for headers', () => {
  const release = '6.1.0-42-amd64';
  const config = 'CONFIG_BPF=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_DEBUG_INFO_BTF=y\n# CONFIG_BPF_LSM is not set\n';
  const bare = tree({
    'proc/sys/kernel/osrelease': `${release}\n`,
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    'sys/kernel/security/lockdown': 'none integrity [confidentiality]\n',
    'sys/kernel/security/lsm': 'lockdown,capability,apparmor\n',
    'proc/sys/kernel/unprivileged_bpf_disabled': '2\n',
    'proc/sys/net/core/bpf_jit_enable': '1\n',
    [`boot/config-${release}`]: config,
  });
  const r = cli(['doctor', '--root', bare]);
  assert.equal(r.status, 1, 'something is missing');
  assert.match(r.stdout, /kernel release +ok +6\.1\.0-42-amd64/);
  assert.match(r.stdout, /BTF +missing +no \/sys\/kernel\/btf\/vmlinux/);
  assert.match(r.stdout, /missing: kernel headers: .*sudo apt-get update && sudo apt-get install -y linux-headers-6\.1\.0-42-amd64/);
  assert.match(r.stdout, /missing: lockdown: confidentiality lockdown denies BPF reads of kernel memory/);
  assert.match(r.stdout, /note: active LSMs: no "bpf"/);
  assert.match(r.stdout, new RegExp(`kernel config +ok +/boot/config-${reEscape(release)}`));
  assert.match(r.stdout, /^CONFIG_BPF_LSM +n +/m);
  assert.match(r.stdout, /^CONFIG_BPF_SYSCALL +y +/m);
  // Everything there, RHEL: nothing missing, exit 0; /proc/config.gz wins over /boot.
  const full = tree({
    'proc/sys/kernel/osrelease': '5.14.0-427.el9.x86_64\n',
    'etc/os-release': 'ID="rocky"\nID_LIKE="rhel centos fedora"\n',
    'sys/kernel/btf/vmlinux': 'BTF',
    'lib/modules/5.14.0-427.el9.x86_64/build/Makefile': '',
    'sys/kernel/security/lockdown': '[none] integrity confidentiality\n',
    'sys/kernel/security/lsm': 'lockdown,capability,selinux,bpf\n',
    'proc/sys/kernel/unprivileged_bpf_disabled': '1\n',
    'proc/sys/net/core/bpf_jit_enable': '1\n',
  });
  writeFileSync(join(full, 'proc', 'config.gz'), gzipSync(Buffer.from('CONFIG_BPF_SYSCALL=y\nCONFIG_BPF_LSM=y\n')));
  const ok = cli(['doctor', '--root', full, '--json']);
  assert.equal(ok.status, 0, ok.stdout);
  const doc = JSON.parse(ok.stdout);
  assert.equal(doc.release, '5.14.0-427.el9.x86_64');
  assert.equal(doc.configSource, '/proc/config.gz');
  assert.deepEqual(
    doc.items.filter((i: { status: string }) => i.status === 'missing'),
    [],
  );
  assert.equal(doc.configs.find((c: { name: string }) => c.name === 'CONFIG_BPF_LSM').value, 'y');
  assert.equal(doc.configs.find((c: { name: string }) => c.name === 'CONFIG_BPF_JIT').value, 'unset');
  // Without headers on the RHEL family, dnf's command.
  rmSync(join(full, 'lib'), { recursive: true });
  const noHeaders = cli(['doctor', '--root', full]);
  assert.equal(noHeaders.status, 1);
  assert.match(noHeaders.stdout, /sudo dnf install -y kernel-devel-5\.14\.0-427\.el9\.x86_64/);
  assert.equal(cli(['doctor', '--root', join(full, 'nope')]).status, 2);
});
