/**
 * Long shapes keep their meaning: a guard at the head of a 4,000-branch else-if chain, of a
 * 4,000-level nest of ifs, or of a `&&` chain still narrows the code at its far end (the guard
 * walk is memoised per node and no longer gives up after a fixed depth). `npm run bench` times
 * these shapes; the tests only check the answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeSnippet } from './expect';

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
