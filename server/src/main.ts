/** The language server's entry point (dist/server-bundle.js, run by dist/server.js): LSP over stdio, or `--node-ipc`. */
// First: starts reading the database and compiling the grammar while the rest loads.
import { openDatabase } from './lsp/preload';
import { Console } from 'node:console';
import { createConnection, type MessageReader, ProposedFeatures, StreamMessageWriter } from 'vscode-languageserver/node';
import { startServer } from './lsp/server';
import { wireEncoder } from './lsp/wire';

startServer(process.argv.includes('--stdio') ? stdioConnection() : createConnection(ProposedFeatures.all), { openDatabase });

// The last line of defence: a fault no handler caught is logged (stderr is the client's log) and
// the server goes on serving. Node's default ends the process, and with it every open document's
// diagnostics, for what is most likely one message's fault.
process.on('unhandledRejection', (e) => console.error(`eBPF portability: unhandled rejection: ${(e as Error)?.stack ?? e}`));
process.on('uncaughtException', (e) => console.error(`eBPF portability: uncaught exception: ${e?.stack ?? e}`));

/**
 * LSP over stdin and stdout, as `--stdio` gives it, with outgoing messages encoded by
 * {@link wireEncoder}. stdout carries only the protocol: whatever writes to the console goes to
 * stderr (the client's log).
 */
function stdioConnection() {
  const toStderr = new Console({ stdout: process.stderr, stderr: process.stderr });
  for (const k of Object.keys(toStderr) as (keyof Console)[])
    if (typeof toStderr[k] === 'function') (console as unknown as Record<string, unknown>)[k] = (toStderr[k] as () => void).bind(toStderr);
  const writer = new StreamMessageWriter(process.stdout, { charset: 'utf-8', contentTypeEncoder: wireEncoder });
  // stdin as the stream itself (the library takes a stream or a reader on either side): the
  // connection ends the process when it closes, as with `--stdio`.
  return createConnection(ProposedFeatures.all, process.stdin as unknown as MessageReader, writer);
}
