// `npm run demo`: a short tour of the kernel database through the CLI, on the built-in kernels.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'ebpf-portability.js');
const clang = (process.env.PATH ?? '').split(delimiter).some((d) => existsSync(join(d, 'clang')));
const steps = [
  // The examples include a vmlinux.h a project generates with bpftool; the demo checks their source.
  [
    'Check the bundled examples against every built-in kernel from 4.14 to 7.x (exit 1: errors found)',
    ['check', 'examples', '--no-compile'],
    1,
  ],
  ...(clang
    ? [
        [
          'The object pass: a self-contained program compiled with clang, its CO-RE relocations resolved per kernel with their guards (exit 1)',
          ['check', join('test', 'fixtures', 'objects', 'relocations.bpf.c'), '--arch', 'x86_64', '--rule', 'unsafe-kernel-deref=off'],
          1,
        ],
      ]
    : []),
  ['Which kernels are built in', ['db', 'list']],
  [
    'task_struct.__state (renamed from `state` in 5.14) on x86_64 Debian and Ubuntu kernels',
    ['db', 'field', 'task_struct.__state', '--target', '4.14-7.x', '--arch', 'x86_64', '--distro', 'debian,ubuntu'],
  ],
  [
    'bio.bi_bdev: gone in 4.14, back in 5.12',
    ['db', 'field', 'bio.bi_bdev', '--target', '4.4-6.1', '--arch', 'x86_64', '--distro', 'ubuntu,debian'],
  ],
  [
    'sock.sk_protocol: an 8-bit bitfield before 5.6',
    ['db', 'field', 'sock.sk_protocol', '--target', '4.14-5.10', '--distro', 'rhel,openeuler,unknown,debian'],
  ],
  ['What SEC("lsm/file_open") needs', ['db', 'sec', 'lsm/file_open', '--target', '5.4-6.1', '--arch', 'x86_64']],
  [
    'bpf_ringbuf_output: version numbers lie (a backported 4.19 has it)',
    ['db', 'helper', 'bpf_ringbuf_output', '--target', '4.14-5.10', '--distro', 'openeuler,rhel,debian'],
  ],
];
let failed = 0;
for (const [title, args, expected = 0] of steps) {
  console.log(`\n\x1b[1m== ${title}\x1b[0m\n$ ebpf-portability ${args.map((a) => (/[\s*]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== expected) failed++;
}
process.exit(failed ? 1 : 0);
