/**
 * Hostile includes and configuration, through the CLI: `#include` of a device, `/proc/self/mem`, a
 * FIFO, a directory, a symbolic link loop, a 1 GB sparse file and an include cycle end in bounded
 * time with a message naming the header and why it was not read; a compile_commands.json that
 * points outside the workspace and names its own compiler and plugins runs none of them; a
 * malformed or impossible `.ebpf-portability.json` is named with the key, and only the bad key
 * falls back to its default. No timing is asserted: a read that blocked would never end (the
 * spawn's own limit then fails the test).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  ftruncateSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { findClang, withoutOtherPrograms } from '../../server/src/driver/compile';

const root = join(__dirname, '..', '..');
const cli = join(root, 'bin', 'ebpf-portability.js');
const dir = mkdtempSync(join(tmpdir(), 'ebpf-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const example = readFileSync(join(root, 'examples', 'process-tracer.bpf.c'), 'utf8');

function check(args: string[], cwd = root): { out: string; status: number | null } {
  // The limit only ends a run that hangs; no run here comes near it.
  const r = spawnSync(process.execPath, [cli, 'check', ...args], { encoding: 'utf8', cwd, timeout: 300_000 });
  return { out: r.stdout + r.stderr, status: r.status };
}

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  assert.equal(r.status, 0, `mkfifo: ${r.stderr}`);
}

test('hostile includes: a device, /proc/self/mem, a FIFO, a directory, a link loop, a 1 GB file, a cycle — each bounded and named', () => {
  const d = join(dir, 'includes');
  mkdirSync(d);
  mkfifo(join(d, 'fifo.h'));
  mkdirSync(join(d, 'dir.h'));
  symlinkSync('loop2.h', join(d, 'loop1.h'));
  symlinkSync('loop1.h', join(d, 'loop2.h'));
  const fd = openSync(join(d, 'sparse.h'), 'w');
  ftruncateSync(fd, 1024 * 1024 * 1024);
  closeSync(fd);
  writeFileSync(join(d, 'a.h'), '#include "b.h"\n#define FROM_A 1\n');
  writeFileSync(join(d, 'b.h'), '#include "a.h"\n#define FROM_B 1\n');
  const includes = ['"/dev/zero"', '"/proc/self/mem"', '"fifo.h"', '"dir.h"', '"loop1.h"', '"sparse.h"', '"a.h"'];
  const program = example.replace(
    '#include <bpf/bpf_helpers.h>\n',
    `#include <bpf/bpf_helpers.h>\n${includes.map((i) => `#include ${i}\n`).join('')}`,
  );
  writeFileSync(join(d, 'prog.bpf.c'), program);
  const r = check(['--no-compile', join(d, 'prog.bpf.c')]);
  assert.equal(r.status, 1, `the findings are still reported (exit 1): ${r.out}`);
  assert.match(r.out, /unsafe-kernel-deref/);
  assert.match(r.out, /header \/dev\/zero not read: not a regular file \(a character device\)/);
  assert.match(r.out, /header \/proc\/self\/mem not read: cannot read: E\w+/);
  assert.match(r.out, /header \S+\/fifo\.h not read: not a regular file \(a FIFO\)/);
  assert.match(r.out, /header \S+\/dir\.h not read: not a regular file \(a directory\)/);
  assert.match(r.out, /header \S+\/loop1\.h not read: a loop of symbolic links/);
  assert.match(r.out, /header \S+\/sparse\.h not read: larger than 2 MiB \(1 GiB\)/);
  // The cycle is read once each way and said nowhere: include guards make it ordinary C.
  assert.doesNotMatch(r.out, /a\.h|b\.h/);
  // Near miss: the same program with readable headers only says nothing about headers.
  writeFileSync(
    join(d, 'clean.bpf.c'),
    example.replace('#include <bpf/bpf_helpers.h>\n', '#include <bpf/bpf_helpers.h>\n#include "a.h"\n'),
  );
  assert.doesNotMatch(check(['--no-compile', join(d, 'clean.bpf.c')]).out, /not read/);
});

test('compile_commands.json pointing outside the workspace, naming its own compiler, plugins and assembler: none runs, forced includes are bounded', (t) => {
  const clang = findClang();
  if (!clang) {
    assert.ok(!process.env.CI, 'clang is part of the CI machine (the object pass)');
    t.skip('no clang on PATH');
    return;
  }
  const d = join(dir, 'compdb');
  const evil = join(dir, 'evil');
  mkdirSync(d);
  mkdirSync(evil);
  const marker = join(dir, 'ran');
  // Programs a hostile build would have clang run: each leaves a mark. (Plugins that do not load
  // stop clang before anything runs, so they are the unit test's below.)
  for (const name of ['cc', 'as', 'ld', 'clang', 'bpf-as', 'llc']) {
    writeFileSync(join(evil, name), `#!/bin/sh\necho ${name} >> ${marker}\nexit 1\n`);
    chmodSync(join(evil, name), 0o755);
  }
  writeFileSync(join(evil, 'opts.rsp'), `-B${evil} -fno-integrated-as\n`);
  // A program clang compiles without any header, so that the build gets as far as assembling.
  const file = join(d, 'prog.bpf.c');
  writeFileSync(
    file,
    '#define SEC(n) __attribute__((section(n), used))\nSEC("kprobe/do_exit") int prog(void *ctx) { return 0; }\nchar LICENSE[] SEC("license") = "GPL";\n',
  );
  writeFileSync(
    join(d, 'compile_commands.json'),
    JSON.stringify([
      {
        directory: '/',
        file,
        arguments: [
          join(evil, 'cc'),
          '-B',
          evil,
          '-fno-integrated-as',
          `--gcc-toolchain=${evil}`,
          `@${join(evil, 'opts.rsp')}`,
          `-Wa,-mexec=${join(evil, 'as')}`,
          '-I/proc/self',
          '-include',
          '/dev/zero',
          '-c',
          file,
        ],
      },
    ]),
  );
  const r = check([file], d);
  assert.ok(r.status === 0 || r.status === 1, r.out);
  assert.ok(!existsSync(marker), `a program of the workspace ran: ${existsSync(marker) ? readFileSync(marker, 'utf8') : ''}\n${r.out}`);
  assert.match(r.out, /header \/dev\/zero not read: not a regular file \(a character device\)/);
});

test('the object pass drops the options that make clang run or load other programs, and keeps the build options', () => {
  assert.deepEqual(
    withoutOtherPrograms([
      '-B',
      '/w/bin',
      '-B/w/bin',
      '--prefix=/w',
      '-fno-integrated-as',
      '-no-integrated-as',
      '-fplugin=/w/p.so',
      '-fpass-plugin=/w/p.so',
      '-Xclang',
      '-load',
      '-Xassembler',
      '-x',
      '-Wa,-x',
      '-Wl,-x',
      '--config',
      '/w/c.cfg',
      '--config=/w/c.cfg',
      '--gcc-toolchain=/w',
      '-fuse-ld=/w/ld',
      '@/w/args',
      '-save-temps=obj',
    ]),
    [],
  );
  const kept = [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-D__TARGET_ARCH_x86',
    '-I/w/include',
    '-Wall',
    '-Werror',
    '-mllvm',
    '-bpf-stack-size=1024',
    '-mcpu=v3',
  ];
  assert.deepEqual(withoutOtherPrograms(kept), kept);
});

test('clang is never taken from a relative PATH entry (the workspace)', () => {
  const d = join(dir, 'path');
  mkdirSync(join(d, 'bin'), { recursive: true });
  for (const p of [join(d, 'clang'), join(d, 'bin', 'clang')]) {
    writeFileSync(p, '#!/bin/sh\nexit 0\n');
    chmodSync(p, 0o755);
  }
  const cwd = process.cwd();
  const path = process.env.PATH;
  try {
    process.chdir(d);
    process.env.PATH = ['.', 'bin'].join(':');
    assert.equal(findClang(), undefined);
    // Near miss: the same directory named absolutely is the user's own PATH.
    process.env.PATH = join(d, 'bin');
    assert.equal(findClang(), join(d, 'bin', 'clang'));
  } finally {
    process.chdir(cwd);
    process.env.PATH = path;
  }
});

test('a malformed, impossible or unknown .ebpf-portability.json: the file and key named, defaults for the bad key only', () => {
  const d = join(dir, 'config');
  mkdirSync(d);
  const file = join(d, 'prog.bpf.c');
  writeFileSync(file, example);
  const config = join(d, '.ebpf-portability.json');
  const cases: Array<[string, RegExp[], (out: string) => void]> = [
    ['{"targetKernels": "6.1-"', [/\.ebpf-portability\.json: .*JSON.*; ignoring it/], () => undefined],
    [
      '{"targetKernels": "6.x-4.14"}',
      [/\.ebpf-portability\.json: targetKernels: malformed target "6\.x-4\.14": .*empty.*; using "4\.14-7\.x"/],
      (out) => assert.match(out, /against \d+ kernels \(4\.14-7\.x\)/),
    ],
    [
      '{"targetKernels": "4.99"}',
      [/\.ebpf-portability\.json: targetKernels: no kernels match "4\.99".*; using "4\.14-7\.x"/],
      () => undefined,
    ],
    [
      '{"colour": "red", "rules": {"unsafe-kernel-deref": "loud", "map-type-unavailable": "off"}}',
      [
        /\.ebpf-portability\.json: unknown key "colour"/,
        /\.ebpf-portability\.json: rules\.unsafe-kernel-deref must be "error", "warning", "info" or "off"/,
      ],
      // The bad rule keeps its default (error), the good one applies (off).
      (out) => {
        assert.match(out, /error: .*\[unsafe-kernel-deref\]/);
        assert.doesNotMatch(out, /\[map-type-unavailable\]/);
      },
    ],
    ['[1, 2]', [/\.ebpf-portability\.json: must hold a JSON object/], () => undefined],
    // A define's value that is not text: named and left out (one whose toString is not a
    // function made the whole check of the file fail); the others apply.
    [
      '{"defines": {"A": {"toString": 1}, "B": null, "C": [1], "D": 2, "E": true, "F": "x"}}',
      [
        /\.ebpf-portability\.json: "defines": the value of "A" must be a string, a number or true; ignoring it/,
        /\.ebpf-portability\.json: "defines": the value of "B" must be a string, a number or true/,
        /\.ebpf-portability\.json: "defines": the value of "C" must be a string, a number or true/,
      ],
      (out) => {
        assert.doesNotMatch(out, /value of "[DEF]"/);
        assert.doesNotMatch(out, /Cannot convert/);
        assert.match(out, /error: .*\[unsafe-kernel-deref\]/);
      },
    ],
    // A value of 100,000 characters is quoted by its start and end, and a refused target is not
    // the file's own target.
    [
      `{"targetKernels": "${'x'.repeat(100_000)}", "${'k'.repeat(100_000)}": 1}`,
      [/targetKernels: malformed target "x{40}…x{19}"/, /unknown key "k{40}…k{19}"/],
      (out) => {
        assert.ok(out.length < 20_000, `${out.length} characters of output`);
        assert.doesNotMatch(out, /project's target/);
      },
    ],
  ];
  for (const [text, messages, more] of cases) {
    writeFileSync(config, text);
    const r = check(['--no-compile', file], d);
    assert.ok(r.status === 0 || r.status === 1, `${text}: ${r.out}`);
    for (const m of messages) assert.match(r.out, m, `${text}: ${r.out}`);
    more(r.out);
  }
  // Near miss: a valid file says nothing about itself.
  writeFileSync(config, '{"rules": {"map-type-unavailable": "off"}}');
  assert.doesNotMatch(check(['--no-compile', file], d).out, /ebpf-portability\.json:/);
});
