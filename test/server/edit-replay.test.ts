/**
 * Work proportional to the edit must not change the answer: random edits replayed on a
 * 2,000-line program through the document store (incremental parse and masking) and the engine
 * with reuse (findings of unchanged functions kept), compared at checkpoints with a fresh
 * analysis of the same text (a new engine, a new parse, no reuse). The language server's own
 * storm test (lsp-storm.test.ts) does the same over LSP; this one reaches more edit shapes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KernelDb } from '../../kernel-db/src/query/db';
import type { Finding } from '../../server/src/analysis/model';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { DocumentStore, loadCParser } from '../../server/src/parse/documents';
import { heapAfterCollection as heap } from '../heap';

/** A program of `n` kprobe/fentry pairs reading fields whose availability differs across kernels. */
function program(n: number): string {
  let out =
    '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n#include <bpf/bpf_core_read.h>\n\n' +
    'char LICENSE[] SEC("license") = "GPL";\nstruct event { u32 pid; u32 ppid; u64 start; char comm[16]; };\n\n';
  for (let i = 0; i < n; i++)
    out += `SEC("kprobe/do_exit")
int BPF_KPROBE(exit_${i}, long code)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct event ev = {};
    ev.pid = BPF_CORE_READ(task, tgid);
    ev.ppid = task->real_parent->tgid;
    ev.start = BPF_CORE_READ(task, start_time) + ${i};
    long st = task->__state;
    return ev.pid + ev.ppid + st;
}

SEC("fentry/tcp_rcv_established")
int BPF_PROG(rcv_${i}, struct sock *sk)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    return tp->srtt_us + sk->__sk_common.skc_dport + ${i};
}

`;
  return out;
}

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Edit = { start: number; end: number; text: string };

/** Edits that change what rules see: names, guards, whole functions, comments, stray characters. */
const SHAPES: ((text: string, r: () => number) => Edit)[] = [
  // A field renamed to one some kernels lack (or back).
  (t, r) => replaceNth(t, r, '__state', 'state'),
  (t, r) => replaceNth(t, r, 'srtt_us', 'srtt'),
  // A helper call some kernels lack.
  (t, r) => replaceNth(t, r, 'bpf_get_current_task()', 'bpf_get_current_task_btf()'),
  // A guard around a read, and a region the build leaves out.
  (t, r) =>
    replaceNth(t, r, '    long st = task->__state;', '    long st = 0;\n    if (bpf_core_field_exists(task->__state)) st = task->__state;'),
  (t, r) => replaceNth(t, r, 'SEC("fentry/tcp_rcv_established")', '#if 0\nSEC("fentry/tcp_rcv_established")', '#endif\n'),
  // A section name changed (file-level rules), a function deleted or duplicated.
  (t, r) => replaceNth(t, r, 'SEC("kprobe/do_exit")', 'SEC("lsm/file_open")'),
  (t, r) => {
    const at = nth(t, r, 'SEC("kprobe');
    const end = t.indexOf('\n}\n', at) + 3;
    return { start: at, end, text: '' };
  },
  (t, r) => {
    const at = nth(t, r, 'SEC("fentry');
    const end = t.indexOf('\n}\n', at) + 3;
    return { start: end, end, text: t.slice(at, end).replace(/rcv_(\d+)/, 'rcv_$1_copy') };
  },
  // Typing: a character inserted or deleted anywhere, a comment opened and closed.
  (t, r) => {
    const at = Math.floor(r() * t.length);
    return { start: at, end: at, text: 'x;{)'[Math.floor(r() * 4)] };
  },
  (t, r) => {
    const at = Math.floor(r() * (t.length - 1));
    return { start: at, end: at + 1, text: '' };
  },
  (t, r) => {
    const at = t.lastIndexOf('\n', Math.floor(r() * t.length)) + 1;
    return { start: at, end: at, text: '/* ' };
  },
  (t) => {
    const at = t.indexOf('/* ');
    return at < 0 ? { start: 0, end: 0, text: '' } : { start: at, end: at + 3, text: '' };
  },
];

function nth(text: string, r: () => number, needle: string): number {
  const all: number[] = [];
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) all.push(i);
  return all.length ? all[Math.floor(r() * all.length)] : 0;
}

function replaceNth(text: string, r: () => number, from: string, to: string, after = ''): Edit {
  const at = text.indexOf(from) < 0 ? -1 : nth(text, r, from);
  if (at < 0) return { start: 0, end: 0, text: '' };
  if (after) {
    // The region ends after the function the section names.
    const end = text.indexOf('\n}\n', at) + 3;
    return { start: at, end, text: to + text.slice(at + from.length, end) + after };
  }
  return { start: at, end: at + from.length, text: to };
}

/** What a user sees of a finding (its fixes' edits included). */
const view = (fs: readonly Finding[]) =>
  fs
    .map((f) =>
      JSON.stringify({ r: f.rule, s: f.severity, m: f.message, g: f.range, k: f.kernels, x: f.fixes.map((x) => x.edits), a: f.alone }),
    )
    .sort();

function position(text: string, offset: number) {
  const before = text.slice(0, offset);
  const line = before.split('\n').length - 1;
  return { line, character: offset - (before.lastIndexOf('\n') + 1) };
}

test('random edits on a 2,000-line program: the incremental analysis equals a fresh one at every checkpoint', async () => {
  const parser = await loadCParser();
  const db = KernelDb.open({ noUser: true });
  const engine = new Engine(db, (t) => parser.parseText(t));
  const docs = new DocumentStore(parser);
  const uri = 'file:///replay/big.bpf.c';
  const fresh = (text: string): Finding[] => {
    const other = new Engine(db, (t) => parser.parseText(t));
    const tree = parser.parseText(text);
    assert.ok(tree);
    try {
      return other.analyzeDocument(uri, text, tree, DEFAULT_SETTINGS).findings;
    } finally {
      tree.delete();
      other.dispose();
    }
  };
  let text = program(105);
  assert.ok(text.split('\n').length >= 2000);
  let doc = docs.open(uri, text, 1);
  let findings = engine.analyzeDocument(uri, doc.text, doc.tree!, DEFAULT_SETTINGS, true, doc.sites).findings;
  assert.deepEqual(view(findings), view(fresh(text)));
  assert.ok(findings.length > 0, 'the program has findings to keep right');
  const r = rng(14);
  let version = 1;
  let compared = 0;
  // The edits must change the answer, or the comparison proves nothing.
  const answers = new Set([view(findings).join('\n')]);
  for (let n = 1; n <= 36; n++) {
    const e = SHAPES[Math.floor(r() * SHAPES.length)](text, r);
    const range = { start: position(text, e.start), end: position(text, e.end) };
    text = text.slice(0, e.start) + e.text + text.slice(e.end);
    doc = docs.change(uri, ++version, [{ range, text: e.text }]);
    assert.equal(doc.text, text);
    findings = engine.analyzeDocument(uri, doc.text, doc.tree!, DEFAULT_SETTINGS, true, doc.sites).findings;
    answers.add(view(findings).join('\n'));
    if (n % 6 === 0) {
      assert.deepEqual(view(findings), view(fresh(text)), `after edit ${n}`);
      compared++;
    }
  }
  assert.equal(compared, 6);
  assert.ok(answers.size > 10, `the edits changed the findings ${answers.size - 1} times`);
  docs.close(uri);
  engine.dispose();
});

test('typing in one function body analyses that function again and reuses every other; unchanged findings stay the same objects', async () => {
  const parser = await loadCParser();
  const db = KernelDb.open({ noUser: true });
  const engine = new Engine(db, (t) => parser.parseText(t));
  const docs = new DocumentStore(parser);
  const uri = 'file:///replay/reuse.bpf.c';
  try {
    let text = program(20);
    let doc = docs.open(uri, text, 1);
    let version = 1;
    const edit = (at: number, end: number, insert: string) => {
      const range = { start: position(text, at), end: position(text, end) };
      text = text.slice(0, at) + insert + text.slice(end);
      doc = docs.change(uri, ++version, [{ range, text: insert }]);
      return engine.analyzeDocument(uri, doc.text, doc.tree!, DEFAULT_SETTINGS, true, doc.sites).findings;
    };
    const first = engine.analyzeDocument(uri, doc.text, doc.tree!, DEFAULT_SETTINGS, true, doc.sites).findings;
    assert.deepEqual(engine.cacheStats(uri), { hits: 0, misses: 40, kept: 0 });
    // File rules (prog-type-unavailable per SEC(), config-required) and completed fixes are built
    // anew by every analysis: the objects kept below are not the functions' cache alone.
    const rules = new Set(first.map((f) => f.rule));
    assert.ok(rules.has('prog-type-unavailable') && rules.has('unsafe-kernel-deref'), [...rules].join());
    // A digit typed over in the seventh function (the fourth kprobe's `+ 3;`).
    const at = text.indexOf('start_time) + 3;') + 'start_time) + '.length;
    const second = edit(at, at + 1, '7');
    assert.deepEqual(engine.cacheStats(uri), { hits: 39, misses: 1, kept: first.length });
    assert.equal(second.length, first.length);
    assert.ok(
      second.every((f, i) => f === first[i]),
      'every finding is the object the previous analysis returned',
    );
    // A change that changes one finding: `tgid` read directly becomes `pid` in the fifth function.
    const direct = text.indexOf('task->real_parent->tgid;', text.indexOf('exit_2,'));
    const third = edit(direct + 'task->real_parent->'.length, direct + 'task->real_parent->tgid'.length, 'pid');
    const changed = third.filter((f) => !second.includes(f));
    assert.ok(changed.length >= 1, 'the changed read has a new finding');
    assert.ok(
      changed.every((f) => f.message.includes('pid') && !f.message.includes('tgid')),
      changed.map((f) => f.message).join('\n'),
    );
    assert.equal(engine.cacheStats(uri)?.kept, third.length - changed.length);
    // Outside the bodies (a new include), every function is analysed again; every finding moved
    // down a line, so none is kept.
    const moved = edit(0, 0, '#include <linux/types.h>\n');
    assert.deepEqual(engine.cacheStats(uri), { hits: 0, misses: 40, kept: 0 });
    assert.equal(moved.length, third.length);
  } finally {
    docs.close(uri);
    engine.dispose();
  }
});

test('typing keeps no earlier version of the document alive (a text-keyed cache kept one per keystroke)', async () => {
  const parser = await loadCParser();
  const db = KernelDb.open({ noUser: true });
  const engine = new Engine(db, (t) => parser.parseText(t));
  const docs = new DocumentStore(parser);
  const uri = 'file:///replay/typing.bpf.c';
  try {
    let text = program(105);
    let doc = docs.open(uri, text, 1);
    engine.analyzeDocument(uri, doc.text, doc.tree!, DEFAULT_SETTINGS, true, doc.sites);
    // Digits typed before the `;` of each `+ N;` in turn: every keystroke makes a new text of
    // one function, and a new version of the whole document (~55 KB).
    const type = (from: number, to: number) => {
      for (let k = from; k < to; k++) {
        const at = text.indexOf(';', text.indexOf(`start_time) + ${k % 105}`));
        const range = { start: position(text, at), end: position(text, at) };
        text = `${text.slice(0, at)}1${text.slice(at)}`;
        doc = docs.change(uri, k + 2, [{ range, text: '1' }]);
        engine.analyzeDocument(uri, doc.text, doc.tree!, DEFAULT_SETTINGS, true, doc.sites);
      }
    };
    type(0, 40);
    const before = heap();
    type(40, 340);
    const grown = heap() - before;
    // Kept versions would be 300 × ~55 KB (~16 MB); the caches' own growth is far below that.
    assert.ok(grown < 6 * 1024 * 1024, `the heap grew by ${(grown / 1048576).toFixed(1)} MB over 300 keystrokes`);
  } finally {
    docs.close(uri);
    engine.dispose();
  }
});
