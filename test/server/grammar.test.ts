/**
 * The committed grammar is the one in node_modules, PROVENANCE.md records it truthfully, and the
 * bundle carries both WASM files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCParser } from '../../server/src/parse/documents';
import { REPO_ROOT } from './helpers';

const STALE = 'stale grammar: run node scripts/copy-grammar.mjs';
const read = (...p: string[]) => readFileSync(join(REPO_ROOT, ...p));
const provenance = read('grammars', 'PROVENANCE.md').toString('utf8');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('grammars/tree-sitter-c.wasm is the file tree-sitter-c ships', () => {
  const committed = read('grammars', 'tree-sitter-c.wasm');
  const shipped = read('node_modules', 'tree-sitter-c', 'tree-sitter-c.wasm');
  assert.ok(committed.equals(shipped), STALE);
});

test("PROVENANCE.md records the committed grammar's sha256", () => {
  const recorded = /sha256: `([0-9a-f]{64})`/.exec(provenance)?.[1];
  assert.equal(recorded, sha256(read('grammars', 'tree-sitter-c.wasm')), STALE);
});

test('PROVENANCE.md records the package versions in use', () => {
  const pkg = (name: string) => JSON.parse(read('node_modules', name, 'package.json').toString('utf8')) as { version: string };
  assert.match(provenance, new RegExp(`tree-sitter-c@${pkg('tree-sitter-c').version.replace(/\./g, '\\.')}\\b`), STALE);
  assert.match(provenance, new RegExp(`web-tree-sitter@${pkg('web-tree-sitter').version.replace(/\./g, '\\.')}\\b`), STALE);
  // An exact pin: a caret range would let npm move web-tree-sitter across an API change.
  const declared = (JSON.parse(read('package.json').toString('utf8')) as { devDependencies: Record<string, string> }).devDependencies;
  assert.equal(declared['web-tree-sitter'], pkg('web-tree-sitter').version);
});

test('PROVENANCE.md records the ABI version the grammar reports', async () => {
  const parser = await loadCParser();
  const recorded = Number(/ABI version reported when loaded[^:]*: (\d+)/.exec(provenance)?.[1]);
  assert.equal(recorded, parser.abiVersion, STALE);
});
