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
import { dbCommand, type Io } from './db';
import { verifyCommand } from './verify';

const USAGE = `usage: ebpf-portability <command> [options]

commands:
  check …     check BPF C files against the target kernels (ebpf-portability check --help)
  lsp --stdio the language server, for any LSP client (Neovim, Emacs, Helix)
  db …        inspect the kernel database, import your own kernels (ebpf-portability db --help)
  verify …    load a BPF object in real kernels under QEMU (ebpf-portability verify --help)
`;

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
      case 'lsp': {
        if (rest.some((a) => a !== '--stdio' && !a.startsWith('--clientProcessId'))) throw new UsageError('lsp takes --stdio');
        // The language server is its own bundle beside this one (dist/server.js), loaded only when
        // it runs; it reads `--stdio` from the command line like any LSP server.
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
      io.err(
        `ebpf-portability: ${e.message}\n(see ebpf-portability ${cmd === 'db' || cmd === 'check' || cmd === 'verify' ? `${cmd} ` : ''}--help)\n`,
      );
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
  }).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) main();
