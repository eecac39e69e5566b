/**
 * The database's answer cache: kernel lists with the same kernels share answers whatever array
 * holds them, other lists never see them, and starting over (at 20,000 answers) never hands one
 * list's answer to another, even when it happens inside a query's own computation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerCache } from '../../kernel-db/src/query/answers';

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
