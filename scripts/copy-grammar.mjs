// Copies tree-sitter-c's WASM grammar from node_modules into grammars/ and prints its sha256, to be
// recorded in grammars/PROVENANCE.md. Run after upgrading tree-sitter-c; test/server/grammar.test.ts
// fails until the committed copy and its recorded hash match node_modules again.
import { copyFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const from = join(root, 'node_modules', 'tree-sitter-c', 'tree-sitter-c.wasm');
const to = join(root, 'grammars', 'tree-sitter-c.wasm');
const { version } = JSON.parse(readFileSync(join(root, 'node_modules', 'tree-sitter-c', 'package.json'), 'utf8'));
copyFileSync(from, to);
const sha256 = createHash('sha256').update(readFileSync(to)).digest('hex');
console.log(`copy-grammar: tree-sitter-c@${version} -> grammars/tree-sitter-c.wasm`);
console.log(`sha256: ${sha256}`);
