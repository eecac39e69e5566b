/** The language server's entry point (dist/server-bundle.js, run by dist/server.js): LSP over stdio, or `--node-ipc`. */
// First: starts reading the database and compiling the grammar while the rest loads.
import { openDatabase } from './lsp/preload';
import { Console } from 'node:console';
import { Connection, ipcTransport, streamTransport } from './lsp/connection';
import { startServer } from './lsp/server';

// The last line of defence: a fault no handler caught is logged (stderr is the client's log) and
// the server goes on serving. Node's default ends the process, and with it every open document's
// diagnostics, for what is most likely one message's fault.
process.on('unhandledRejection', (e) => console.error(`eBPF portability: unhandled rejection: ${(e as Error)?.stack ?? e}`));
process.on('uncaughtException', (e) => console.error(`eBPF portability: uncaught exception: ${e?.stack ?? e}`));

if (process.argv.includes('--stdio')) startServer(stdioConnection(), { openDatabase });
else if (process.argv.includes('--node-ipc') && process.send) startServer(new Connection(ipcTransport()), { openDatabase });
else {
  process.stderr.write('eBPF portability: the language server speaks LSP over --stdio or --node-ipc; start it with one of them\n');
  process.exit(2);
}

/**
 * LSP over stdin and stdout, as `--stdio` gives it. stdout carries only the protocol: whatever
 * writes to the console goes to stderr (the client's log).
 */
function stdioConnection(): Connection {
  const toStderr = new Console({ stdout: process.stderr, stderr: process.stderr });
  for (const k of Object.keys(toStderr) as (keyof Console)[])
    if (typeof toStderr[k] === 'function') (console as unknown as Record<string, unknown>)[k] = (toStderr[k] as () => void).bind(toStderr);
  return new Connection(streamTransport(process.stdin, process.stdout));
}
