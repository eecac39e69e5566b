/**
 * `ebpf-portability`: the command-line entry point. Subcommands live in their own files; this one
 * only dispatches and maps errors to exit codes (0 fine, 1 findings, 2 bad usage or input).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BtfError } from '../../kernel-db/src/btf/reader';
import { TargetError } from '../../kernel-db/src/query/target';
import { UsageError } from './args';
import { checkCommand } from './check';
import { convertBccCommand } from './convertBcc';
import { dbCommand, type Io } from './db';
import { doctorCommand } from './doctor';
import { explainCommand } from './explain';
import { packageJson } from './pkg';
import { requirementsCommand } from './requirements';
import { colorWanted } from './style';
import { verifyCommand } from './verify';

const USAGE = `usage: ebpf-portability <command> [options]

commands:
  check …         check BPF C files against the target kernels (ebpf-portability check --help)
  requirements …  the portability report: each program's minimum kernel, CONFIG options, floors
  explain RULE    a rule's documentation
  convert-bcc F   write a libbpf CO-RE .bpf.c from a BCC program (C, or a Python tool)
  doctor          what this machine offers BPF programs (BTF, headers, CONFIG, lockdown, LSMs)
  lsp --stdio     the language server, for any LSP client (Neovim, Emacs, Helix)
  db …            inspect the kernel database, import your own kernels (ebpf-portability db --help)
  verify …        load a BPF object in real kernels under QEMU (ebpf-portability verify --help)

options:
  --version       print the version
  --help          this text

exit status: 0 fine, 1 findings (check) or a negative answer, 2 bad usage or input
`;

const LSP_USAGE = `usage: ebpf-portability lsp --stdio

Starts the language server on standard input and output, for any LSP client (Neovim, Emacs,
Helix, Zed). The VS Code extension starts it itself.
`;

/** Commands whose own --help the usage hint names. */
const WITH_HELP = new Set(['db', 'check', 'verify', 'requirements', 'explain', 'doctor', 'lsp', 'convert-bcc']);

/** Runs the CLI with `argv` (without node and script); returns the exit status. */
export async function run(argv: string[], io: Io): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'db':
        return await dbCommand(rest, io);
      case 'check':
        return await checkCommand(rest, io);
      case 'verify':
        return await verifyCommand(rest, io);
      case 'requirements':
        return await requirementsCommand(rest, io);
      case 'explain':
        return explainCommand(rest, io);
      case 'doctor':
        return doctorCommand(rest, io);
      case 'convert-bcc':
        return await convertBccCommand(rest, io);
      case '--version':
      case '-V':
      case 'version':
        if (rest.length) throw new UsageError(`${cmd} takes no arguments`);
        io.out(`ebpf-portability ${packageJson().version}\n`);
        return 0;
      case 'lsp': {
        if (rest.includes('--help') || rest.includes('-h')) {
          io.out(LSP_USAGE);
          return 0;
        }
        if (!rest.includes('--stdio') || rest.some((a) => a !== '--stdio' && !a.startsWith('--clientProcessId=')))
          throw new UsageError('lsp takes --stdio');
        // The language server is its own bundle beside this one (dist/server.js), loaded only when
        // it runs; it reads `--stdio` from the command line like any LSP server. The launcher
        // (bin/ebpf-portability.js) starts `lsp --stdio` itself, without loading this bundle;
        // what reaches here is the rest (help, wrong flags, a server bundle that is missing).
        const bundle = join(__dirname, 'server.js');
        if (!existsSync(bundle)) throw new Error(`the language server is missing at ${bundle}; run \`npm run build\``);
        require(bundle);
        return await new Promise<number>(() => undefined);
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof TargetError) {
      io.err(`ebpf-portability: ${e.message}\n(see ebpf-portability ${cmd && WITH_HELP.has(cmd) ? `${cmd} ` : ''}--help)\n`);
      return 2;
    }
    if (e instanceof BtfError) {
      io.err(`ebpf-portability: ${e.message}\n`);
      return 2;
    }
    io.err(`ebpf-portability: ${(e as Error).message ?? String(e)}\n`);
    return 2;
  }
}

/** Runs the CLI on this process's arguments and sets its exit code. */
export function main(): void {
  // A reader that went away (`| head`) is not an error of ours.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  run(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    color: colorWanted(process.env, process.stdout.isTTY),
  }).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) main();
