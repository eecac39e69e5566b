/** The language server's entry point (dist/server-bundle.js, run by dist/server.js): LSP over stdio, or `--node-ipc` from VS Code. */
// First: starts reading the database and compiling the grammar while the rest loads.
import { openDatabase } from './lsp/preload';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startServer } from './lsp/server';

startServer(createConnection(ProposedFeatures.all), { openDatabase });
