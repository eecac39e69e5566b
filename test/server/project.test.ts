/**
 * The project model: compiler flags from compile_commands.json and compile_flags.txt, the
 * project's .ebpf-portability.json, include paths for `<…>` and `"…"` includes, `-D` macros and
 * `-include`, and how the project's settings meet the user's. Each test has the project files
 * in a fresh directory and a near miss without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine, type SettingKey } from '../../server/src/driver/engine';
import { commandFor, parseFlags, ProjectFiles, splitCommand } from '../../server/src/driver/project';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { builtinDb } from './expect';

/** A directory with the given files (path → text), removed after the test. */
function project(t: { after(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-project-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

/** The findings (rule and line) of one file of a project, analysed as the server does. */
async function findings(path: string, text: string, opts: ConstructorParameters<typeof Engine>[2] = {}, pinned?: Set<SettingKey>) {
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (t) => parser.parseText(t), opts);
  const tree = parser.parseText(text)!;
  try {
    const r = engine.analyzeDocument(pathToFileURL(path).toString(), text, tree, DEFAULT_SETTINGS, false, undefined, pinned);
    return { ...r, lines: r.findings.map((f) => `${f.rule}:${f.range.start.line + 1}`) };
  } finally {
    tree.delete();
    engine.dispose();
  }
}

const PROGRAM = `#include <vmlinux.h>
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
const ALIASES = '#pragma once\n#define sk_family __sk_common.skc_family\n';

test('project: splitCommand reads a shell command line as the shell does', () => {
  assert.deepEqual(splitCommand(`clang -g -O2 -I"inc dir" -D'NAME=a b' x\\ y.c -o out.o`), [
    'clang',
    '-g',
    '-O2',
    '-Iinc dir',
    '-DNAME=a b',
    'x y.c',
    '-o',
    'out.o',
  ]);
  assert.deepEqual(splitCommand('  a   "b\\"c"  '), ['a', 'b"c']);
});

test('project: parseFlags keeps include paths in search order, macros, forced includes and the architecture', () => {
  const f = parseFlags([
    '-g',
    '-I/a',
    '-isystem',
    '/s',
    '-I',
    '/b',
    '-iquote/q',
    '-idirafter/z',
    '-DX',
    '-DY=2',
    '-UX',
    '-include',
    '/f.h',
    '-D__TARGET_ARCH_arm64',
    '-target',
    'bpf',
  ]);
  assert.deepEqual(f.include, ['/a', '/b', '/s', '/z']);
  assert.deepEqual(f.quote, ['/q']);
  assert.deepEqual(
    [...f.defines],
    [
      ['Y', '2'],
      ['__TARGET_ARCH_arm64', '1'],
    ],
  );
  assert.deepEqual(f.undefines, ['X']);
  assert.deepEqual(f.forced, ['/f.h']);
  assert.equal(f.arch, 'arm64');
  assert.equal(parseFlags(['-D__TARGET_ARCH_x86']).arch, 'x86_64');
  assert.equal(parseFlags(['-O2']).arch, undefined);
});

test('project: compile_commands.json gives a file its own entry, else a neighbour of the same kind', () => {
  const db = [
    { directory: '/p/build', file: '../src/a.bpf.c', arguments: ['clang', '-I../inc', '-c', '../src/a.bpf.c'] },
    { directory: '/p', file: 'src/loader.c', command: 'cc -Iuser -c src/loader.c' },
  ];
  assert.deepEqual(commandFor(db, '/p/src/a.bpf.c'), { flags: ['-I../inc', '-c', '../src/a.bpf.c'], dir: '/p/build' });
  assert.deepEqual(commandFor(db, '/p/src/new.bpf.c')?.dir, '/p/build', 'a new BPF file is built like its BPF neighbour');
  assert.deepEqual(commandFor(db, '/p/src/other.c')?.flags, ['-Iuser', '-c', 'src/loader.c']);
  assert.equal(commandFor(db, '/elsewhere/x.bpf.c'), undefined);
  assert.equal(commandFor({ not: 'a list' }, '/p/src/a.bpf.c'), undefined);
});

test('project: <…> includes resolve through compile_commands.json include paths; without them the alias is a missing member', async (t) => {
  const dir = project(t, {
    'include/net/aliases.h': ALIASES,
    'src/prog.bpf.c': PROGRAM,
  });
  // `directory` is absolute in a compilation database; paths in the flags are relative to it.
  mkdirSync(join(dir, 'build'));
  writeFileSync(
    join(dir, 'build/compile_commands.json'),
    JSON.stringify([
      { directory: join(dir, 'build'), file: '../src/prog.bpf.c', arguments: ['clang', '-I../include', '-c', '../src/prog.bpf.c'] },
    ]),
  );
  const file = join(dir, 'src/prog.bpf.c');
  const withProject = await findings(file, PROGRAM);
  assert.deepEqual(withProject.lines, []);
  assert.deepEqual(withProject.projectFiles, [join(dir, 'build/compile_commands.json')]);
  // Near miss: the same file outside the project reads sk_family as a member of struct sock.
  const alone = project(t, { 'prog.bpf.c': PROGRAM });
  const without = await findings(join(alone, 'prog.bpf.c'), PROGRAM);
  assert.deepEqual(without.lines, ['field-missing-in-range:12']);
});

test('project: compile_flags.txt and -I given by the caller; quoted includes search the file directory first', async (t) => {
  const dir = project(t, {
    'inc/net/aliases.h': ALIASES,
    'compile_flags.txt': '-Iinc\n-D__TARGET_ARCH_x86\n',
    'prog.bpf.c': PROGRAM,
  });
  const r = await findings(join(dir, 'prog.bpf.c'), PROGRAM);
  assert.deepEqual(r.lines, []);
  assert.deepEqual(r.settings.architectures, ['x86_64'], 'the object is built for x86: only x86_64 kernels are targets');
  assert.ok(r.kernels.every((k) => k.arch === 'x86_64'));

  const other = project(t, { 'inc/net/aliases.h': ALIASES, 'prog.bpf.c': PROGRAM });
  assert.deepEqual((await findings(join(other, 'prog.bpf.c'), PROGRAM, { extraFlags: [`-I${join(other, 'inc')}`] })).lines, []);
  assert.deepEqual((await findings(join(other, 'prog.bpf.c'), PROGRAM)).lines, ['field-missing-in-range:12']);

  // A quoted include finds the file's own directory before the include path.
  const quoted = PROGRAM.replace('<net/aliases.h>', '"aliases.h"');
  const shadow = project(t, {
    'aliases.h': ALIASES,
    'inc/aliases.h': '/* nothing */\n',
    'compile_flags.txt': '-Iinc\n',
    'prog.bpf.c': quoted,
  });
  assert.deepEqual((await findings(join(shadow, 'prog.bpf.c'), quoted)).lines, []);
});

test('project: -D macros and -include reach the analysis like the file own definitions', async (t) => {
  const noInclude = PROGRAM.replace('#include <net/aliases.h>\n', '');
  const dir = project(t, { 'inc/aliases.h': ALIASES, 'prog.bpf.c': noInclude });
  const file = join(dir, 'prog.bpf.c');
  assert.deepEqual((await findings(file, noInclude, { extraFlags: ['-include', join(dir, 'inc/aliases.h')] })).lines, []);
  assert.deepEqual((await findings(file, noInclude, { extraFlags: ['-Dsk_family=__sk_common.skc_family'] })).lines, []);
  assert.deepEqual((await findings(file, noInclude)).lines, ['field-missing-in-range:11']);
});

test('project: .ebpf-portability.json settings win over the user settings, explicit CLI options win over it', async (t) => {
  const ringbuf = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
`;
  const dir = project(t, {
    '.ebpf-portability.json': JSON.stringify({ targetKernels: '5.8+', rules: { 'verifier-global-data': 'off' }, includePaths: ['inc'] }),
    'sub/prog.bpf.c': ringbuf,
  });
  const file = join(dir, 'sub/prog.bpf.c');
  const r = await findings(file, ringbuf);
  assert.equal(r.settings.targetKernels, '5.8+');
  assert.deepEqual(r.lines, [], 'ring buffers exist on every 5.8+ kernel');
  assert.deepEqual(r.projectFiles, [join(dir, '.ebpf-portability.json')]);
  const pinned = await findings(file, ringbuf, {}, new Set<SettingKey>(['targetKernels']));
  assert.deepEqual(pinned.lines, ['map-type-unavailable:4'], 'an explicit target wins over the file');
  // Near miss: --no-config.
  assert.deepEqual((await findings(file, ringbuf, { config: false })).lines, ['map-type-unavailable:4']);
});

test('project: a broken configuration file is reported with its path and the rest of it still applies', async (t) => {
  const dir = project(t, {
    '.ebpf-portability.json': JSON.stringify({ targetKernels: '5.8+', loader: 'bpftool', bogus: 1, includePaths: 'inc' }),
    'prog.bpf.c': PROGRAM,
  });
  const r = await findings(join(dir, 'prog.bpf.c'), PROGRAM);
  assert.equal(r.settings.targetKernels, '5.8+');
  assert.equal(r.settings.loader.kind, 'libbpf');
  const cfg = join(dir, '.ebpf-portability.json');
  assert.ok(
    r.problems.some((p) => p.startsWith(`${cfg}: loader must be`)),
    r.problems.join('\n'),
  );
  assert.ok(r.problems.some((p) => p.includes('unknown key "bogus"')));
  assert.ok(r.problems.some((p) => p.includes('"includePaths" must be a list of strings')));

  const bad = project(t, { '.ebpf-portability.json': '{ not json', 'prog.bpf.c': PROGRAM });
  const b = await findings(join(bad, 'prog.bpf.c'), PROGRAM);
  assert.ok(b.problems.some((p) => p.startsWith(join(bad, '.ebpf-portability.json'))));
  assert.equal(b.settings.targetKernels, DEFAULT_SETTINGS.targetKernels);
});

test('project: project files are read again when they change', async (t) => {
  const dir = project(t, { 'inc/net/aliases.h': ALIASES, 'prog.bpf.c': PROGRAM });
  const files = new ProjectFiles();
  const file = join(dir, 'prog.bpf.c');
  assert.equal(files.forFile(file).flagsFile, undefined);
  writeFileSync(join(dir, 'compile_flags.txt'), '-Iinc\n');
  const p1 = files.forFile(file);
  assert.deepEqual(p1.flags.include, [join(dir, 'inc')]);
  writeFileSync(join(dir, 'compile_flags.txt'), '-Iinc\n-Iother\n');
  const p2 = files.forFile(file);
  assert.deepEqual(p2.flags.include, [join(dir, 'inc'), join(dir, 'other')]);
  assert.notEqual(p1.key, p2.key);
});

test('project: a long include chain is read once, and a header edited deep in it is seen', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 30; i++)
    files[`include/chain/h${i}.h`] = `#pragma once\n${i ? `#include <chain/h${i - 1}.h>\n` : ''}#define CHAIN_${i} ${i}\n`;
  const text = `${PROGRAM.replace('#include <net/aliases.h>', Array.from({ length: 30 }, (_, i) => `#include <chain/h${i}.h>`).join('\n'))}`;
  const dir = project(t, { ...files, 'compile_flags.txt': '-Iinclude\n', 'prog.bpf.c': text });
  const parser = await loadCParser();
  let parses = 0;
  const engine = new Engine(builtinDb, (x) => {
    parses++;
    return parser.parseText(x);
  });
  const uri = pathToFileURL(join(dir, 'prog.bpf.c')).href;
  const tree = parser.parseText(text)!;
  try {
    const run = () => engine.analyzeDocument(uri, text, tree, DEFAULT_SETTINGS, true).findings.map((f) => f.rule);
    assert.deepEqual(run(), ['field-missing-in-range']);
    assert.equal(parses, 30, 'each header parsed once');
    run();
    run();
    assert.equal(parses, 30, 'and not again while nothing changed');
    // The alias defined at the bottom of the chain reaches the program.
    writeFileSync(join(dir, 'include/chain/h0.h'), '#pragma once\n#define CHAIN_0 0\n#define sk_family __sk_common.skc_family\n');
    assert.deepEqual(run(), []);
  } finally {
    tree.delete();
    engine.dispose();
  }
});

test('project: a vmlinux.h on the include path is scanned, not parsed: BPF_NO_PRESERVE_ACCESS_INDEX or no pragma means fixed layouts', async (t) => {
  const program = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    return prev->pid;
}
`;
  const pragma =
    '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\nstruct task_struct;\n';
  const rules = async (files: Record<string, string>, flags: string[] = []) => {
    const dir = project(t, { ...files, 'prog.bpf.c': program });
    return (await findings(join(dir, 'prog.bpf.c'), program, { extraFlags: flags.map((f) => f.replace('DIR', dir)) })).lines.filter((l) =>
      l.startsWith('non-core-field-read'),
    );
  };
  // bpftool's (the pragma) and a wrapper that includes a per-version one: CO-RE, silent.
  assert.deepEqual(await rules({ 'vmlinux.h': pragma }), []);
  assert.deepEqual(await rules({ 'inc/vmlinux.h': '#include "x86/vmlinux_601.h"\n', 'inc/x86/vmlinux_601.h': pragma }, ['-IDIR/inc']), []);
  // Not found anywhere: taken to be bpftool's.
  assert.deepEqual(await rules({}), []);
  // A project vmlinux.h that turns the pragma off, one without it, and -D: fixed offsets.
  assert.deepEqual(await rules({ 'vmlinux.h': `#define BPF_NO_PRESERVE_ACCESS_INDEX\n${pragma}` }), ['non-core-field-read:8']);
  assert.deepEqual(await rules({ 'vmlinux.h': 'struct task_struct;\n' }), ['non-core-field-read:8']);
  assert.deepEqual(await rules({ 'vmlinux.h': pragma }, ['-DBPF_NO_PRESERVE_ACCESS_INDEX']), ['non-core-field-read:8']);
});

test('project: hostile includes — a /proc file, a FIFO, a directory — are read boundedly or not at all', async (t) => {
  const dir = project(t, { 'prog.bpf.c': '' });
  const fifo = join(dir, 'pipe.h');
  const made = spawnSync('mkfifo', [fifo]).status === 0;
  const includes = ['/proc/self/pagemap', '/proc/self/mem', ...(made ? [fifo] : []), dir].map((p) => `#include "${p}"`).join('\n');
  const code = `${includes}\n${PROGRAM}`;
  writeFileSync(join(dir, 'prog.bpf.c'), code);
  const r = await findings(join(dir, 'prog.bpf.c'), code);
  // The program is still analysed (the alias header is not there, so the member is missing).
  assert.deepEqual(r.lines, [`field-missing-in-range:${PROGRAM.split('\n').findIndex((l) => l.includes('sk_family')) + 5}`]);
});
