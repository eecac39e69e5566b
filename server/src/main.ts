/** The language server's entry point (dist/server.js): LSP over stdio, or `--node-ipc` from VS Code. */
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startServer } from './lsp/server';

startServer(createConnection(ProposedFeatures.all));
