/**
 * The document store: LSP change semantics, UTF-16 positions, incremental parsing that always
 * matches a fresh parse, limits, and no leaked trees.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TextDocument } from 'vscode-languageserver-textdocument';
import type { Edit, Parser, Tree } from 'web-tree-sitter';
import { maskBpfMacros } from '../../server/src/parse/bpfMacros';
import {
  DocumentStore,
  loadCParser,
  maskedEdit,
  type ContentChange,
  type CParser,
  type ParsedDocument,
} from '../../server/src/parse/documents';
import { computeLineStarts, offsetAt, positionAt, spliceLineStarts } from '../../server/src/parse/positions';
import { corpus, dumpTree, findNode, rng, syntaxErrors } from './helpers';

let cParser: CParser;
let fresh: Parser;
before(async () => {
  cParser = await loadCParser();
  fresh = cParser.createParser();
});
after(() => fresh.delete());

/** A fresh (non-incremental) parse of `text` through the mask, compared node by node. */
function assertMatchesFreshParse(doc: ParsedDocument, what: string): void {
  assert.ok(doc.tree, `${what}: no tree`);
  const tree = fresh.parse(maskBpfMacros(doc.text).masked)!;
  try {
    assert.equal(doc.tree.rootNode.toString(), tree.rootNode.toString(), what);
    assert.equal(dumpTree(doc.tree), dumpTree(tree), what);
  } finally {
    tree.delete();
  }
}

test('web-tree-sitter 0.25 positions are UTF-16 code units, the same as LSP positions', () => {
  const store = new DocumentStore(cParser);
  try {
    const text = '/* é and 😀 */ int before;\n// ü😀😀\nint target = 1;\n';
    const doc = store.open('file:///utf16.bpf.c', text, 1);
    const node = findNode(doc.tree!, 'identifier', 'target')!;
    const offset = text.indexOf('target');
    // Index and column count UTF-16 code units: bytes would be larger (é is 2 bytes, 😀 is 4).
    assert.equal(node.startIndex, offset);
    assert.notEqual(Buffer.byteLength(text.slice(0, offset)), offset);
    assert.deepEqual(node.startPosition, { row: 2, column: 4 });
    const sameLine = findNode(doc.tree!, 'identifier', 'before')!;
    assert.equal(sameLine.startIndex, text.indexOf('before'));
    assert.deepEqual(sameLine.startPosition, { row: 0, column: text.indexOf('before') });
    // The store's conversions agree with the reference LSP implementation.
    const reference = TextDocument.create('file:///utf16.bpf.c', 'c', 1, text);
    assert.deepEqual(doc.positionAt(node.startIndex), reference.positionAt(offset));
    assert.deepEqual(doc.positionAt(sameLine.endIndex), reference.positionAt(sameLine.endIndex));
  } finally {
    store.dispose();
  }
});

test('offsetAt and positionAt agree with vscode-languageserver-textdocument, clamping included', () => {
  const rand = rng(7);
  for (const text of ['', 'a', 'ab\ncd', 'a\r\nb\rc\n\n😀x\r\n', '\r\r\n\n', 'é😀\u2028z\n']) {
    const reference = TextDocument.create('file:///p.c', 'c', 1, text);
    const starts = computeLineStarts(text);
    for (let offset = -2; offset <= text.length + 2; offset++) {
      assert.deepEqual(positionAt(text, starts, offset), reference.positionAt(offset), `positionAt(${offset}) in ${JSON.stringify(text)}`);
    }
    for (let k = 0; k < 200; k++) {
      const position = { line: Math.floor(rand() * 8) - 1, character: Math.floor(rand() * 8) - 1 };
      assert.deepEqual(
        offsetAt(text, starts, position),
        reference.offsetAt(position),
        `offsetAt(${JSON.stringify(position)}) in ${JSON.stringify(text)}`,
      );
    }
  }
});

test('line starts spliced after an edit equal those of the whole new text, line breaks split and joined', () => {
  // Texts of line breaks and letters only, so edits often split `\r\n`, join `\r` + `\n`, or
  // remove the break before or after the edit.
  const rand = rng(23);
  const pick = (n: number) => Array.from({ length: n }, () => 'a\r\n\r\n'[Math.floor(rand() * 5)]).join('');
  let joined = 0;
  let sameLength = 0;
  for (let k = 0; k < 20000; k++) {
    const before = pick(Math.floor(rand() * 12));
    const start = Math.floor(rand() * (before.length + 1));
    const end = start + Math.floor(rand() * (before.length - start + 1));
    const inserted = pick(Math.floor(rand() * 4));
    const after = before.slice(0, start) + inserted + before.slice(end);
    if (before[start - 1] === '\r' && after[start] === '\n' && before[start] !== '\n') joined++;
    if (inserted.length === end - start) sameLength++;
    assert.deepEqual(
      spliceLineStarts(computeLineStarts(before), after, start, end, inserted.length),
      computeLineStarts(after),
      `${JSON.stringify(before)}: ${start}..${end} -> ${JSON.stringify(inserted)}`,
    );
  }
  // The random edits did join a `\r` before the edit with an inserted or following `\n`, and
  // replaced characters by as many (the case that keeps the starts as they were).
  assert.ok(joined > 100, `${joined} joins`);
  assert.ok(sameLength > 1000, `${sameLength} same-length replacements`);
});

test('changes apply in order with LSP semantics, like vscode-languageserver-textdocument', () => {
  const store = new DocumentStore(cParser);
  try {
    const rand = rng(11);
    let text = corpus()[0]!.text;
    store.open('file:///c.bpf.c', text, 0);
    for (let version = 1; version <= 80; version++) {
      const changes: ContentChange[] = [];
      const count = 1 + Math.floor(rand() * 3);
      for (let k = 0; k < count; k++) {
        // Ranges may run past the end of a line or of the document, and may be reversed.
        const line = Math.floor(rand() * (text.split('\n').length + 2));
        const range = {
          start: { line, character: Math.floor(rand() * 30) },
          end: { line: line + Math.floor(rand() * 3) - 1, character: Math.floor(rand() * 30) },
        };
        const change =
          rand() < 0.05
            ? { text: `int v${version};\n` }
            : { range, text: ['', 'x', '\n', 'é😀', ');\r\n{', '\r'][Math.floor(rand() * 6)]! };
        changes.push(change);
        // The reference applies one change to a document freshly created from the current text,
        // which keeps its own line-offset bookkeeping out of the comparison.
        const reference = TextDocument.create('file:///c.bpf.c', 'c', version, text);
        TextDocument.update(reference, [change], version);
        text = reference.getText();
      }
      const doc = store.change('file:///c.bpf.c', version, changes);
      assert.equal(doc.text, text, `version ${version}`);
      assert.equal(doc.version, version);
      assert.deepEqual(doc.lineStarts, computeLineStarts(doc.text));
    }
  } finally {
    store.dispose();
  }
});

/** The smallest edit from one text to another (common prefix and suffix), computed independently of maskedEdit. */
function naiveEdit(oldText: string, newText: string): Edit {
  let start = 0;
  while (start < oldText.length && start < newText.length && oldText[start] === newText[start]) start++;
  let suffix = 0;
  while (
    suffix < oldText.length - start &&
    suffix < newText.length - start &&
    oldText[oldText.length - 1 - suffix] === newText[newText.length - 1 - suffix]
  )
    suffix++;
  return editOf(oldText, newText, start, suffix);
}

/** The edit from `oldText` to `newText` that keeps their first `start` and last `suffix` characters; points by counting `\n`. */
function editOf(oldText: string, newText: string, start: number, suffix: number): Edit {
  const point = (t: string, i: number) => {
    const lines = t.slice(0, i).split('\n');
    return { row: lines.length - 1, column: lines[lines.length - 1]!.length };
  };
  return {
    startIndex: start,
    oldEndIndex: oldText.length - suffix,
    newEndIndex: newText.length - suffix,
    startPosition: point(oldText, start),
    oldEndPosition: point(oldText, oldText.length - suffix),
    newEndPosition: point(newText, newText.length - suffix),
  };
}

/**
 * Checks the store's tree after an edit against a fresh parse of the same text. They must be equal
 * node for node (types, fields, offsets, points). tree-sitter itself does not promise this inside
 * error recovery: rarely, a token reused from the old tree is recovered differently from a freshly
 * lexed one. So when the trees differ, the fresh tree must have errors, and plain web-tree-sitter
 * (its own parser, the old masked text parsed afresh, an edit computed by naiveEdit) must produce
 * exactly the store's tree: the store then did what tree-sitter does. Returns whether that happened.
 */
function checkIncremental(doc: ParsedDocument, previousMasked: string, what: string): boolean {
  assert.ok(doc.tree, `${what}: no tree`);
  const tree = fresh.parse(maskBpfMacros(doc.text).masked)!;
  try {
    if (dumpTree(doc.tree) === dumpTree(tree)) return false;
    assert.ok(tree.rootNode.hasError, `${what}: the incremental tree differs from a fresh parse of error-free text`);
    const old = fresh.parse(previousMasked)!;
    old.edit(naiveEdit(previousMasked, doc.masked));
    const control = fresh.parse(doc.masked, old)!;
    try {
      assert.equal(dumpTree(doc.tree), dumpTree(control), `${what}: differs from a fresh parse and from plain incremental tree-sitter`);
    } finally {
      old.delete();
      control.delete();
    }
    return true;
  } finally {
    tree.delete();
  }
}

test('incremental parsing after random edits matches a fresh parse, node for node', (t) => {
  const store = new DocumentStore(cParser);
  const rand = rng(2024);
  // Single characters, pieces that open or close macros (and so change masking around the edit),
  // non-ASCII text and multi-line snippets.
  const pieces = [
    'x',
    ';',
    '{',
    '}',
    '(',
    ')',
    ',',
    '"',
    '\n',
    '\r\n',
    ' ',
    'é',
    '😀',
    '/*',
    '*/',
    '//',
    'SEC("xdp")',
    'SEC(',
    '__uint(type, 1);',
    '__attribute__((unused))',
    'bpf_for(i, 0, 3) ',
    '\nint BPF_KPROBE(p, int a)\n{\n\treturn a;\n}\n',
    'struct {\n\t__type(key, u32);\n} m SEC(".maps");\n',
  ];
  let edits = 0;
  let recoveryDifferences = 0;
  try {
    for (const { name, text } of corpus()) {
      let doc = store.open(name, text, 0);
      const undo: ContentChange[] = [];
      let version = 0;
      for (let k = 0; k < 60; k++) {
        const len = doc.text.length;
        const a = Math.floor(rand() * (len + 1));
        const b = Math.min(len, a + (rand() < 0.7 ? Math.floor(rand() * 3) : Math.floor(rand() * 400)));
        const insert = rand() < 0.25 ? '' : pieces[Math.floor(rand() * pieces.length)]!;
        const removed = doc.text.slice(a, b);
        const previous = doc.masked;
        const startPos = doc.positionAt(a);
        doc = store.change(name, ++version, [{ range: { start: startPos, end: doc.positionAt(b) }, text: insert }]);
        undo.push({ range: { start: startPos, end: doc.positionAt(a + insert.length) }, text: removed });
        if (checkIncremental(doc, previous, `${name} v${version}: replaced [${a}, ${b}) with ${JSON.stringify(insert)}`))
          recoveryDifferences++;
        edits++;
      }
      // Undoing every edit, newest first, leads back to the original, error-free file.
      while (undo.length) {
        const previous = doc.masked;
        doc = store.change(name, ++version, [undo.pop()!]);
        if (checkIncremental(doc, previous, `${name} v${version} (undo)`)) recoveryDifferences++;
        edits++;
      }
      assert.equal(doc.text, text);
      assert.deepEqual(syntaxErrors(doc.tree!), []);
      checkIncremental(doc, doc.masked, `${name} after undo`);
    }
  } finally {
    store.dispose();
  }
  assert.equal(edits, corpus().length * 120);
  t.diagnostic(`${edits} edits; ${recoveryDifferences} where tree-sitter's own error recovery differs from a fresh parse`);
  assert.ok(recoveryDifferences <= edits / 100, 'differences are rare, or something else is wrong');
});

test('a batch of changes edits the tree once per change and matches a fresh parse', () => {
  const store = new DocumentStore(cParser);
  try {
    const { name, text } = corpus().find((c) => c.name === 'maps.bpf.c')!;
    store.open(name, text, 0);
    const doc = store.change(name, 1, [
      { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: 'int first;\n' },
      { range: { start: { line: 10, character: 1 }, end: { line: 12, character: 4 } }, text: '__uint(max_entries, 7);\n\t' },
      { range: { start: { line: 3, character: 0 }, end: { line: 3, character: 0 } }, text: 'SEC("xdp") int p(void *c) { return 2; }\n' },
    ]);
    assertMatchesFreshParse(doc, 'batch');
    assert.match(doc.text, /^int first;\n/);
  } finally {
    store.dispose();
  }
});

test('an edit that changes masking before itself (closing a SEC) still matches a fresh parse', () => {
  const store = new DocumentStore(cParser);
  try {
    const text = 'SEC("xdp"\nint f(void *ctx)\n{\n\treturn 2;\n}\n';
    let doc = store.open('file:///s.bpf.c', text, 1);
    assert.equal(doc.masked, text, 'an unclosed SEC is not masked');
    assert.notDeepEqual(syntaxErrors(doc.tree!), []);
    doc = store.change('file:///s.bpf.c', 2, [{ range: { start: { line: 0, character: 9 }, end: { line: 0, character: 9 } }, text: ')' }]);
    assert.equal(doc.masked.slice(0, 10), ' '.repeat(10), 'the SEC before the edit is now masked');
    assert.deepEqual(syntaxErrors(doc.tree!), []);
    assertMatchesFreshParse(doc, 'after closing the SEC');
  } finally {
    store.dispose();
  }
});

test('maskedEdit gives UTF-16 indexes and points, widened to the masking that changed', () => {
  const oldText = 'é😀\nSEC("x"\nint y;';
  const newText = 'é😀\nSEC("x")\nint y;';
  const edit = maskedEdit(maskBpfMacros(oldText).masked, maskBpfMacros(newText).masked, 11, 11);
  // The change inserts `)` at offset 11, but masking now blanks `SEC("x"` from offset 4.
  assert.deepEqual(edit, {
    startIndex: 4,
    oldEndIndex: 11,
    newEndIndex: 12,
    startPosition: { row: 1, column: 0 },
    oldEndPosition: { row: 1, column: 7 },
    newEndPosition: { row: 1, column: 8 },
  });
  // An edit inside a surrogate pair is widened to the whole character.
  const split = maskedEdit('a😀b', 'a😁b', 2, 3);
  assert.deepEqual([split.startIndex, split.oldEndIndex, split.newEndIndex], [1, 3, 3]);
});

test('maskedEdit equals a character-by-character scan on random masked texts and changes', () => {
  // The reference: the common prefix up to the change and the common suffix after it, one
  // character at a time, widened off split surrogate pairs; points by counting `\n`.
  const reference = (a: string, b: string, changeStart: number, changeOldEnd: number): Edit => {
    let start = 0;
    while (start < changeStart && a.charCodeAt(start) === b.charCodeAt(start)) start++;
    let suffix = 0;
    const max = Math.min(a.length - changeOldEnd, b.length - start, a.length - start);
    while (suffix < max && a.charCodeAt(a.length - 1 - suffix) === b.charCodeAt(b.length - 1 - suffix)) suffix++;
    if (start > 0 && a.charCodeAt(start - 1) >= 0xd800 && a.charCodeAt(start - 1) <= 0xdbff) start--;
    if (suffix > 0 && a.charCodeAt(a.length - suffix - 1) >= 0xd800 && a.charCodeAt(a.length - suffix - 1) <= 0xdbff) suffix--;
    return editOf(a, b, start, suffix);
  };
  const rand = rng(31);
  const pick = (n: number) => Array.from({ length: n }, () => ['a', 'b', ' ', '\n', '😀', 'x\n'][Math.floor(rand() * 6)]).join('');
  for (let k = 0; k < 5000; k++) {
    const a = pick(Math.floor(rand() * 30));
    const start = Math.floor(rand() * (a.length + 1));
    const end = start + Math.floor(rand() * (a.length - start + 1));
    let b = a.slice(0, start) + pick(Math.floor(rand() * 4)) + a.slice(end);
    // Masking may change text before the change too (a `)` closing a `SEC(`).
    if (rand() < 0.3 && start > 0) {
      const at = Math.floor(rand() * start);
      b = `${b.slice(0, at)} ${b.slice(at + 1)}`;
    }
    assert.deepEqual(
      maskedEdit(a, b, start, end),
      reference(a, b, start, end),
      `${JSON.stringify(a)} -> ${JSON.stringify(b)} at ${start}..${end}`,
    );
  }
});

test('a full replacement re-parses from scratch', () => {
  const store = new DocumentStore(cParser);
  try {
    store.open('file:///r.c', 'int a;', 1);
    const doc = store.change('file:///r.c', 2, [{ text: 'SEC("xdp") int f(void *c) { return 2; }' }]);
    assert.equal(doc.text, 'SEC("xdp") int f(void *c) { return 2; }');
    assert.deepEqual(
      doc.sites.map((s) => s.kind),
      ['section'],
    );
    assertMatchesFreshParse(doc, 'replacement');
  } finally {
    store.dispose();
  }
});

test('open, get, close; reopening replaces; changing an unknown document throws', () => {
  const store = new DocumentStore(cParser);
  try {
    const a = store.open('file:///a.c', 'int a;', 1);
    assert.equal(store.get('file:///a.c'), a);
    const b = store.open('file:///a.c', 'int b;', 5);
    assert.equal(store.get('file:///a.c'), b);
    assert.equal(b.version, 5);
    store.close('file:///a.c');
    assert.equal(store.get('file:///a.c'), undefined);
    store.close('file:///a.c');
    assert.throws(() => store.change('file:///a.c', 6, [{ text: '' }]), /not open: file:\/\/\/a\.c/);
  } finally {
    store.dispose();
  }
});

/** Trees made by any parser and trees deleted while a body runs. */
interface TreeCounts {
  readonly created: Set<Tree>;
  readonly deleted: Set<Tree>;
  doubleDeletes: number;
}

/** Runs `body` with Parser.parse and Tree.delete instrumented to count trees. */
function countTrees(body: (counts: TreeCounts) => void): TreeCounts {
  const probe = cParser.createParser();
  const sample = probe.parse('int x;')!;
  const parserProto = Object.getPrototypeOf(probe) as { parse: Parser['parse'] };
  const treeProto = Object.getPrototypeOf(sample) as { delete: Tree['delete'] };
  sample.delete();
  probe.delete();
  const counts: TreeCounts = { created: new Set(), deleted: new Set(), doubleDeletes: 0 };
  const { parse } = parserProto;
  const del = treeProto.delete;
  parserProto.parse = function (this: Parser, ...args: Parameters<Parser['parse']>) {
    const tree = parse.apply(this, args);
    if (tree) counts.created.add(tree);
    return tree;
  };
  treeProto.delete = function (this: Tree) {
    if (counts.deleted.has(this)) counts.doubleDeletes++;
    counts.deleted.add(this);
    del.call(this);
  };
  try {
    body(counts);
  } finally {
    parserProto.parse = parse;
    treeProto.delete = del;
  }
  return counts;
}

test('every tree is deleted exactly once: when replaced, when closed, on dispose', () => {
  const counts = countTrees((c) => {
    const live = () => [...c.created].filter((t) => !c.deleted.has(t)).length;
    const store = new DocumentStore(cParser, { maxChars: 200 });
    store.open('file:///a.c', 'int a;', 1);
    assert.equal(live(), 1);
    store.change('file:///a.c', 2, [{ range: { start: { line: 0, character: 5 }, end: { line: 0, character: 5 } }, text: ', b' }]);
    assert.equal(live(), 1, 'the edited old tree is deleted once the new one exists');
    store.change('file:///a.c', 3, [{ text: 'int c;' }]);
    assert.equal(live(), 1, 'a full replacement deletes the old tree');
    store.change('file:///a.c', 4, [{ text: 'x'.repeat(500) }]);
    assert.equal(live(), 0, 'a document over the limit keeps no tree');
    store.change('file:///a.c', 5, [{ text: 'int d;' }]);
    store.open('file:///a.c', 'int e;', 6);
    assert.equal(live(), 1, 'reopening deletes the previous tree');
    store.open('file:///b.c', 'int f;', 1);
    assert.equal(live(), 2);
    store.close('file:///b.c');
    assert.equal(live(), 1);
    store.dispose();
    assert.equal(live(), 0);
  });
  assert.equal(counts.doubleDeletes, 0);
  assert.equal(counts.created.size, 6);
});

test('a document over the size limit has no tree and says so; shrinking it parses it again', () => {
  const store = new DocumentStore(cParser, { maxChars: 1000 });
  try {
    const big = `int a;\n${'// padding\n'.repeat(100)}SEC("xdp") int f(void *c) { return 2; }\n`;
    let doc = store.open('file:///big.c', big, 1);
    assert.equal(doc.tooLarge, true);
    assert.equal(doc.tree, null);
    assert.deepEqual(doc.sites, []);
    assert.deepEqual(doc.positionAt(big.length), { line: 102, character: 0 });
    doc = store.change('file:///big.c', 2, [{ range: { start: { line: 1, character: 0 }, end: { line: 101, character: 0 } }, text: '' }]);
    assert.equal(doc.tooLarge, false);
    assert.deepEqual(
      doc.sites.map((s) => s.kind),
      ['section'],
    );
    assertMatchesFreshParse(doc, 'shrunk');
    doc = store.change('file:///big.c', 3, [
      { range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }, text: 'x'.repeat(2000) },
    ]);
    assert.equal(doc.tooLarge, true);
    assert.equal(doc.tree, null);
  } finally {
    store.dispose();
  }
});

test('a parse over the time limit is abandoned, and the next parse starts afresh', () => {
  const store = new DocumentStore(cParser, { timeoutMs: 1 });
  try {
    // Printable garbage in short lines (binary content is refused before parsing: inputLimits.ts).
    const garbage = Array.from({ length: 400_000 }, (_, i) =>
      i % 80 === 79 ? '\n' : String.fromCharCode(33 + ((i * 7919 + 13) % 94)),
    ).join('');
    let doc = store.open('file:///g.c', garbage, 1);
    assert.equal(doc.timedOut, true);
    assert.equal(doc.tree, null);
    doc = store.change('file:///g.c', 2, [{ text: 'int ok;' }]);
    assert.equal(doc.timedOut, false);
    assert.equal(doc.tree!.rootNode.toString(), '(translation_unit (declaration type: (primitive_type) declarator: (identifier)))');
  } finally {
    store.dispose();
  }
});

test('parseText masks and parses once; the caller owns the tree; limits give undefined', () => {
  const tree = cParser.parseText('char LICENSE[] SEC("license") = "GPL";')!;
  try {
    assert.deepEqual(syntaxErrors(tree), []);
  } finally {
    tree.delete();
  }
  assert.equal(cParser.parseText('int a;', { maxChars: 3 }), undefined);
});
