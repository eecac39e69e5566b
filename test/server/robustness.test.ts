/**
 * Bad input never crashes or hangs the parsing layer: half-typed code, binary data, empty and huge
 * files, unbalanced brackets, files of nothing but directives.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { maskBpfMacros } from '../../server/src/parse/bpfMacros';
import { DocumentStore, loadCParser, type CParser, type ParsedDocument } from '../../server/src/parse/documents';
import { corpus, dumpTree, rng, syntaxErrors } from './helpers';

let cParser: CParser;
let store: DocumentStore;
before(async () => {
  cParser = await loadCParser();
  store = new DocumentStore(cParser);
});
after(() => store.dispose());

/** What must hold for any input: same length and line breaks, a tree unless a limit says why. */
function assertSane(doc: ParsedDocument, what: string): void {
  assert.equal(doc.masked.length, doc.text.length, what);
  for (let i = doc.text.indexOf('\n'); i >= 0; i = doc.text.indexOf('\n', i + 1)) assert.equal(doc.masked[i], '\n', what);
  if (doc.tooLarge || doc.timedOut) assert.equal(doc.tree, null, what);
  else assert.ok(doc.tree, what);
  for (const s of doc.sites) {
    assert.ok(s.start >= 0 && s.start <= s.end && s.end <= doc.text.length, `${what}: site ${s.name} at ${s.start}-${s.end}`);
    for (const a of s.args) assert.equal(doc.text.slice(a.start, a.end), a.text, what);
  }
}

/** Opens `text` under a throwaway URI and checks it. */
function openSane(text: string, what: string): ParsedDocument {
  const doc = store.open('file:///robust.bpf.c', text, 1);
  assertSane(doc, what);
  return doc;
}

test('half-typed code: every corpus file cut at many points', () => {
  let cuts = 0;
  for (const { name, text } of corpus()) {
    for (let at = 0; at <= text.length; at += 11) {
      openSane(text.slice(0, at), `${name} cut at ${at}`);
      cuts++;
    }
  }
  assert.ok(cuts > 1000);
});

test('half-typed code: typing a file in chunks keeps a tree at every step and ends error-free', () => {
  const rand = rng(5);
  for (const { name, text } of corpus()) {
    let doc = store.open(`file:///${name}`, '', 0);
    let at = 0;
    for (let version = 1; at < text.length; version++) {
      const next = Math.min(text.length, at + 1 + Math.floor(rand() * 40));
      doc = store.change(`file:///${name}`, version, [
        { range: { start: doc.positionAt(at), end: doc.positionAt(at) }, text: text.slice(at, next) },
      ]);
      assertSane(doc, `${name} typed to ${next}`);
      at = next;
    }
    assert.equal(doc.text, text);
    assert.deepEqual(syntaxErrors(doc.tree!), []);
    const freshTree = cParser.parseText(text)!;
    try {
      assert.equal(dumpTree(doc.tree!), dumpTree(freshTree));
    } finally {
      freshTree.delete();
    }
    store.close(`file:///${name}`);
  }
});

test('binary garbage, with NULs, lone surrogates and random code units', () => {
  const rand = rng(99);
  for (const size of [1, 7, 100, 4096, 60_000]) {
    const bytes = Buffer.from(Array.from({ length: size }, () => Math.floor(rand() * 256))).toString('latin1');
    openSane(bytes, `${size} random bytes`);
    const units = String.fromCharCode(...Array.from({ length: Math.min(size, 30_000) }, () => Math.floor(rand() * 0x10000)));
    openSane(units, `${size} random UTF-16 code units`);
  }
  // Binary content is refused before parsing, with the reason the output channel gives.
  const noise = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 7919 + 13) & 0xff)).toString('latin1');
  const doc = openSane(noise, '1.5 MB of noise');
  assert.equal(doc.tooLarge, true);
  assert.match(doc.skipped ?? '', /binary/);
});

test('an empty file has an empty translation unit and no sites', () => {
  const doc = openSane('', 'empty');
  assert.equal(doc.tree!.rootNode.toString(), '(translation_unit)');
  assert.deepEqual(doc.sites, []);
  assert.deepEqual(doc.lineStarts, [0]);
  assert.deepEqual(doc.positionAt(10), { line: 0, character: 0 });
});

test('a 10 MB file returns at once, flagged too large, in the store and in parseText', () => {
  const unit = 'SEC("kprobe/x") int BPF_KPROBE(p, int a) { return a; }\n';
  const huge = unit.repeat(Math.ceil((10 * 1024 * 1024) / unit.length));
  // Refused by its size alone: nothing masked into sites, no tree, the reason given.
  const doc = openSane(huge, '10 MB');
  assert.equal(doc.tooLarge, true);
  assert.deepEqual(doc.sites, []);
  assert.match(doc.skipped ?? '', /MB/);
  assert.equal(cParser.parseText(huge), undefined);
  // Growing an open document past the limit drops its tree, and shrinking it back parses it.
  store.open('file:///grow.bpf.c', unit, 1);
  const grown = store.change('file:///grow.bpf.c', 2, [
    { range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }, text: huge },
  ]);
  assert.equal(grown.tooLarge, true);
  const shrunk = store.change('file:///grow.bpf.c', 3, [{ text: unit }]);
  assert.equal(shrunk.tooLarge, false);
  assert.deepEqual(syntaxErrors(shrunk.tree!), []);
  store.close('file:///grow.bpf.c');
});

test('unbalanced and deeply nested brackets', { timeout: 120_000 }, () => {
  for (const [what, text] of [
    ['open braces', '{'.repeat(50_000)],
    ['close braces', '}'.repeat(50_000)],
    ['open parentheses after a SEC', `SEC(${'('.repeat(50_000)}`],
    ['nested parentheses', `int x = ${'('.repeat(20_000)}1${')'.repeat(20_000)};`],
    ['nested blocks', `int f(void) ${'{'.repeat(5000)}${'}'.repeat(5000)}`],
    ['mismatched', 'int f(void) { g(]; } ) } struct { __uint(type, 1]; } m SEC(".maps"));'],
    ['unterminated comment and string', 'SEC("xdp) int f(void) { /* return 0; }'],
  ] as const) {
    // A tree, or none because the parse limit stopped it (assertSane); a hang fails the test's timeout.
    openSane(text, what);
  }
});

test('a file of nothing but #define lines', () => {
  const lines = Array.from({ length: 5000 }, (_, i) =>
    i % 3 === 0
      ? `#define CONST_${i} ${i}`
      : i % 3 === 1
        ? `#define MACRO_${i}(a, b) ((a) + (b) * ${i})`
        : `#define SEC_${i} SEC("kprobe/f${i}") __ksym`,
  );
  const text = `${lines.join('\n')}\n#define BPF_NO_PRESERVE_ACCESS_INDEX\n`;
  const doc = openSane(text, 'defines');
  assert.deepEqual(syntaxErrors(doc.tree!), []);
  // SEC and __ksym inside a #define body are not uses; the one define that matters is reported.
  assert.deepEqual(
    doc.sites.map((s) => s.name),
    ['define BPF_NO_PRESERVE_ACCESS_INDEX'],
  );
  assert.equal(doc.masked, text);
  assert.equal(doc.tree!.rootNode.namedChildCount, 5001);
});

test('maskBpfMacros alone survives every prefix of a macro-dense line', () => {
  const line =
    'struct { __uint(type, X); __array(values, struct { __type(key, u32); }); } m SEC(".maps") __attribute__((a)) __attribute__((b)); BPF_HASH(h, struct k); TRACEPOINT_PROBE(a, b) { bpf_for(i, 0, n) { h.update(&i, &i); } }';
  for (let at = 0; at <= line.length; at++) {
    const text = line.slice(0, at);
    const { masked } = maskBpfMacros(text);
    assert.equal(masked.length, text.length);
  }
});
