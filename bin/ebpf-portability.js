#!/usr/bin/env node
// Thin launcher: the CLI itself is bundled into dist/cli.js by `npm run build`.
'use strict';
const path = require('path');
const fs = require('fs');
const dist = path.join(__dirname, '..', 'dist');
const args = process.argv.slice(2);
// `lsp --stdio`, as an editor starts it: the language server is its own bundle (dist/server.js),
// so the CLI's is not loaded for it (~40 ms of every start). Anything else about `lsp` (help, a
// wrong flag) is the CLI's to answer.
if (args[0] === 'lsp' && args.includes('--stdio') && args.slice(1).every((a) => a === '--stdio' || a.startsWith('--clientProcessId='))) {
  const server = path.join(dist, 'server.js');
  if (fs.existsSync(server)) {
    require(server);
    return;
  }
}
const cli = path.join(dist, 'cli.js');
if (!fs.existsSync(cli)) {
  process.stderr.write('ebpf-portability: dist/cli.js is missing; run `npm run build` first.\n');
  process.exit(2);
}
require(cli).main();
