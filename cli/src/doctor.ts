/**
 * `ebpf-portability doctor`: what this machine offers BPF programs (server/src/driver/doctor.ts,
 * which the language server shares for the editor's Check This Machine), as a table or JSON.
 * `--root DIR` reads every path under DIR instead of `/` (a copy of another machine's files, or a
 * test's fixture).
 */
import { statSync } from 'node:fs';
import { KernelDb } from '../../kernel-db/src/query/db';
import { type DoctorReport, doctorReport } from '../../server/src/driver/doctor';
import { parseArgs, UsageError } from './args';
import type { Io } from './db';
import { type Style, style } from './style';
import { table } from './table';

const USAGE = `usage: ebpf-portability doctor [--root DIR] [--json]

Reports what this machine offers BPF programs, from files only: kernel release
(/proc/sys/kernel/osrelease), BTF (/sys/kernel/btf/vmlinux), kernel headers
(/lib/modules/RELEASE/build or /sys/kernel/kheaders.tar.xz), the CONFIG options that matter
(/proc/config.gz or /boot/config-RELEASE), lockdown, kernel.unprivileged_bpf_disabled,
net.core.bpf_jit_enable and the active LSMs; what is missing, and how to get it.

options:
  --root DIR   read the files under DIR instead of / (another machine's files, a fixture)
  --json       machine-readable output
  --data DIR   the kernel database whose facts name the CONFIG options (default: built in)

exit status: 0 nothing missing, 1 something missing (listed), 2 bad usage
`;

/** Runs `doctor`; returns the exit status. */
export function doctorCommand(argv: string[], io: Io): number {
  const args = parseArgs(argv, { valued: ['root', 'data'], flags: ['json', 'help'] });
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length) throw new UsageError('doctor takes no arguments');
  const root = args.options.get('root') ?? '/';
  try {
    if (!statSync(root).isDirectory()) throw new Error();
  } catch {
    throw new UsageError(`--root: ${root} is not a directory`);
  }
  const db = KernelDb.open({ dataDir: args.options.get('data') });
  const report = doctorReport(root, db.facts.configs);
  const missing = report.items.filter((i) => i.status === 'missing');
  if (args.flags.has('json')) io.out(`${JSON.stringify(report, null, 2)}\n`);
  else io.out(renderReport(report, style(io.color === true)));
  return missing.length ? 1 : 0;
}

function renderReport(r: DoctorReport, st: Style): string {
  let s = `${st.bold(`This machine${r.root !== '/' ? ` (files under ${r.root})` : ''}`)}\n\n`;
  s += table(
    ['CHECK', 'STATUS', 'VALUE'],
    r.items.map((i) => [i.what, i.status, i.value]),
  );
  const advice = r.items.filter((i) => i.advice && i.status !== 'ok');
  if (advice.length) {
    s += '\n';
    for (const i of advice) s += `${i.status === 'missing' ? st.red('missing') : st.yellow('note')}: ${i.what}: ${i.advice}\n`;
  }
  const btf = r.items.find((i) => i.what === 'BTF' && i.status === 'ok');
  if (btf?.advice) s += `\nTo check programs against this kernel: ${btf.advice.replace(/^add it as a target: /, '')}\n`;
  if (r.configSource) {
    s += `\nCONFIG options the facts name (${r.configSource}):\n`;
    s += table(
      ['OPTION', 'VALUE', 'PURPOSE'],
      r.configs.map((c) => [c.name, c.value.length > 24 ? `${c.value.slice(0, 23)}…` : c.value, (c.purpose ?? '').split(/(?<=\.)\s/)[0]]),
    );
  }
  const missing = r.items.filter((i) => i.status === 'missing').length;
  s += `\n${missing ? st.red(`${missing} missing`) : st.green('nothing missing')}\n`;
  return s;
}
