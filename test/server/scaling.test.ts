/**
 * Long shapes keep their meaning: a guard at the head of a 4,000-branch else-if chain, of a
 * 4,000-level nest of ifs, or of a `&&` chain still narrows the code at its far end (the guard
 * walk is memoised per node and no longer gives up after a fixed depth). `npm run bench` times
 * these shapes; the tests only check the answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CODE_QUOTE_MAX, codeQuote } from '../../server/src/analysis/model';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { RULES } from '../../server/src/rules';
import { analyzeSnippet, builtinDb } from './expect';

const N = 4000;
const wrap = (body: string) =>
  '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_core_read.h>\nchar LICENSE[] SEC("license") = "GPL";\n' +
  'SEC("kprobe/do_exit")\nint prog(struct pt_regs *ctx)\n{\n  struct task_struct *t = (void *)bpf_get_current_task();\n  int x = PT_REGS_PARM1(ctx);\n' +
  `${body}  return x;\n}\n`;

/** `task_struct.__state` is missing on the older targets: the read at the end is flagged unless guarded. */
const READ = 'x = BPF_CORE_READ(t, __state);';

function elseIfChain(head: string): string {
  let s = `  if (${head}) x = 0;\n`;
  for (let i = 1; i < N - 1; i++) s += `  else if (x == ${i}) x = ${i};\n`;
  return `${s}  else ${READ}\n`;
}

async function fieldFindings(code: string): Promise<string[]> {
  return (await analyzeSnippet(code, { rules: ['field-missing-in-range'] })).map(
    (f) => `${f.range.start.line}: ${f.message.split('\n')[0]}`,
  );
}

test(`a ${N}-branch else-if chain: the head's guard narrows the last branch`, async () => {
  // The last branch runs only where every earlier condition was false, the first included.
  assert.deepEqual(await fieldFindings(wrap(elseIfChain('!bpf_core_field_exists(t->__state)'))), []);
  // Near miss: a head condition that says nothing about the member.
  const open = await fieldFindings(wrap(elseIfChain('x == 0')));
  assert.equal(open.length, 1, open.join('\n'));
  assert.match(open[0], /__state/);
});

test(`${N} nested ifs: the outermost guard narrows the innermost read`, async () => {
  const nest = (outer: string) => `  if (${outer}) {\n${'  if (x) {\n'.repeat(N - 1)}  ${READ}\n${'  }\n'.repeat(N)}`;
  assert.deepEqual(await fieldFindings(wrap(nest('bpf_core_field_exists(t->__state)'))), []);
  assert.equal((await fieldFindings(wrap(nest('x > 1')))).length, 1);
});

test(`a ${N}-element && chain: a guard on the left narrows the read on the right`, async () => {
  const chain = (first: string) =>
    `  if (${first} && ${Array.from({ length: N - 2 }, (_, i) => `x != ${i}`).join(' && ')} && BPF_CORE_READ(t, __state)) x = 1;\n`;
  assert.deepEqual(await fieldFindings(wrap(chain('bpf_core_field_exists(t->__state)'))), []);
  assert.equal((await fieldFindings(wrap(chain('x > 1')))).length, 1);
});

test(`${N} nested subscripts: each nested read's finding quotes its code within a bound, so messages grow with the nesting, not its square`, async () => {
  // `t->comm[t->comm[…[0]…]]`: every level is a direct read through `t` in a kprobe program. Each
  // finding used to quote all of its level's code: ~8,000 levels held hundreds of megabytes of
  // messages, and 30,000 ran the process out of memory.
  // Twenty-five levels a line: lines stay under the input limit's length.
  const open = Array.from({ length: N }, (_, i) => `${i % 25 === 24 ? '\n' : ''}t->comm[`).join('');
  const nested = `  x = ${open}0${']'.repeat(N)};\n`.replace(/(\]{200})/g, '$1\n');
  const found = await analyzeSnippet(wrap(nested), { rules: ['unsafe-kernel-deref'] });
  assert.equal(found.length, N, 'one finding per level');
  const longest = Math.max(...found.map((f) => f.message.length));
  assert.ok(longest < 600, `the longest message has ${longest} characters`);
  const outer = found.find((f) => f.range.start.line === found.reduce((a, g) => Math.min(a, g.range.start.line), Infinity))!;
  assert.match(outer.message, /^`t->comm\[t->comm\[[^`\n]*…\]+` reads struct task_struct memory/, 'its start and end');
  // Near miss: the innermost level's code is short and quoted whole.
  assert.ok(found.some((f) => f.message.startsWith('`t->comm[0]` reads struct task_struct memory directly')));
});

test('codeQuote: short code whole on one line, long code by its start and end', () => {
  assert.equal(codeQuote('t->pid'), '`t->pid`');
  assert.equal(codeQuote('t->\n    real_parent->pid'), '`t-> real_parent->pid`', 'one line');
  const exact = `t->${'a'.repeat(CODE_QUOTE_MAX - 3)}`;
  assert.equal(codeQuote(exact), `\`${exact}\``, 'at the bound: whole');
  assert.equal(codeQuote(`t->a\n${' '.repeat(60)}->b\n${' '.repeat(60)}->c`), '`t->a ->b ->c`', 'indentation does not count');
  const emoji = codeQuote(`x${'😀'.repeat(100)}`);
  assert.ok(!/[\ud800-\udbff]…|…[\udc00-\udfff]/.test(emoji), `no half of a surrogate pair at a cut: ${emoji}`);
  const long = `t->${'b'.repeat(500)}->pid`;
  const q = codeQuote(long);
  assert.ok(q.length <= CODE_QUOTE_MAX + 2, q);
  assert.match(q, /^`t->b+…b+->pid`$/);
});

test(`a function of ${N} branches is analysed in steps: other documents are answered between its facts and each rule`, async () => {
  const parser = await loadCParser();
  const engine = new Engine(builtinDb, (t) => parser.parseText(t, { timeoutMs: 60_000 }));
  const code = wrap(elseIfChain('x == 0'));
  const withRules = RULES.filter((r) => r.checkFunction && DEFAULT_SETTINGS.rules?.[r.meta.id] !== 'off').length;
  const count = (reuse: boolean) => {
    const tree = parser.parseText(code, { timeoutMs: 60_000 })!;
    try {
      const steps = engine.analyzeDocumentSteps('file:///snippets/steps.bpf.c', code, tree, DEFAULT_SETTINGS, reuse);
      let yields = 0;
      for (let r = steps.next(); !r.done; r = steps.next()) yields++;
      return yields;
    } finally {
      tree.delete();
    }
  };
  const first = count(true);
  // Near miss: the same text again reuses the function's findings, one step for it.
  const again = count(true);
  // The first time, the function is steps of its own: its facts, its chains, each rule that
  // checks functions, and its end (reused, it is none).
  assert.equal(first - again, withRules + 3, `${first} steps the first time, ${again} when nothing changed, ${withRules} function rules`);
});
