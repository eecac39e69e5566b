/**
 * The database's answer cache: kernel lists with the same kernels share answers whatever array
 * holds them, other lists never see them, and starting over (at 20,000 answers) never hands one
 * list's answer to another, even when it happens inside a query's own computation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerCache } from '../../kernel-db/src/query/answers';
import { KernelDb } from '../../kernel-db/src/query/db';
import { heapAfterCollection as heap } from '../heap';

const list = (...ids: number[]) => ids.map((id) => ({ id }));

test('lists of the same kernels share an answer; another list, query or argument does not', () => {
  const c = new AnswerCache();
  let calls = 0;
  const ask = (q: string, arg: string, ks: { id: number }[]) => c.get(q, [arg], ks, () => `${q}:${arg}:${ks.map((k) => k.id)}#${++calls}`);
  const first = ask('field', 'task_struct.pid', list(1, 2, 3));
  assert.equal(ask('field', 'task_struct.pid', list(1, 2, 3)), first, 'another array of the same kernels');
  assert.equal(calls, 1);
  assert.notEqual(ask('field', 'task_struct.pid', list(1, 2)), first, 'fewer kernels');
  assert.notEqual(ask('field', 'task_struct.tgid', list(1, 2, 3)), first, 'another argument');
  assert.notEqual(ask('helper', 'task_struct.pid', list(1, 2, 3)), first, 'another query');
  assert.equal(calls, 4);
});

test("starting over renumbers the lists without handing one list another list's answer", () => {
  const c = new AnswerCache();
  const a = list(1);
  const b = list(2);
  // `outer` on list a computes 20,000 other answers on a third list: the cache starts over inside it.
  const outer = c.get('outer', [], a, () => {
    for (let i = 0; i < 20_001; i++) c.get('inner', [String(i)], list(3), () => i);
    return 'a';
  });
  assert.equal(outer, 'a');
  // The third list is numbered first after the restart, with the number list a had when `outer`
  // began: it must get its own answer, not list a's.
  assert.equal(
    c.get('outer', [], list(3), () => 'c'),
    'c',
  );
  assert.equal(
    c.get('outer', [], b, () => 'b'),
    'b',
  );
  assert.equal(
    c.get('outer', [], a, () => 'a again'),
    'a again',
    'an answer computed across the restart was not kept',
  );
});

test('what the database keeps for a name keeps no larger text alive (a name sliced from a document is copied)', () => {
  const db = KernelDb.open({ noUser: true });
  const kernels = db.target('5.4-6.x', { arch: ['x86_64'] });
  // Every query that keeps an answer, a name or an index by the name asked for.
  const ask = (name: string) => {
    db.field('task_struct', name, kernels);
    db.aggregate(name, kernels);
    db.func(name, kernels);
    db.kfunc(name, kernels);
    db.helper(name, kernels);
    db.typedef(name, kernels);
    db.config(name, kernels);
    db.section(`kprobe/${name}`, kernels);
    db.tracepoint(`sched/${name}`, kernels);
    db.lsmHook(name, kernels);
    db.enumValue('bpf_func_id', name, kernels);
    db.trustedReturn(name);
    db.hasAggregate(name);
    db.facts.cloneOnly(name);
    db.facts.section(`kprobe/${name}`);
  };
  // Names as an editor's document gives them: slices of large texts (8 MB each here, so that
  // keeping them shows), a name from each of four.
  ask('warm_up_the_caches_first');
  const before = heap();
  for (let t = 0; t < 4; t++) {
    const text = `${'/'.repeat(8 << 20)}\n member_typed_in_the_editor_${t}`;
    ask(text.slice((8 << 20) + 2));
  }
  // V8 itself may keep the last large text a while; kept names would keep all four (32 MB).
  const grown = heap() - before;
  assert.ok(grown < 12 << 20, `the heap grew by ${(grown / 1048576).toFixed(1)} MB (the 8 MB texts are kept)`);
});
