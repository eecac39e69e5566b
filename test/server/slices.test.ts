/**
 * The order in which analyses take their slices (server/src/lsp/slices.ts): the newest waiting
 * run first; while an edit or an open is handled, no older run; every slice after a turn of the
 * event loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SliceQueue } from '../../server/src/lsp/slices';

const turnOfLoop = () => new Promise<void>((r) => setImmediate(r));

test('the newest waiting run takes the next slice; older ones go on after it', async () => {
  const q = new SliceQueue();
  const order: number[] = [];
  await Promise.all([1, 3, 2].map((rank) => q.turn(rank).then(() => order.push(rank))));
  assert.deepEqual(order, [3, 2, 1]);
});

test('while newer work is on its way, older runs wait for it, until it has ended', async () => {
  const q = new SliceQueue();
  const order: string[] = [];
  q.hold(1, 10_000);
  const old = q.turn(1).then(() => order.push('old'));
  await turnOfLoop();
  await turnOfLoop();
  assert.equal(order.join(), '', 'the run older than the hold waits');
  await q.turn(2).then(() => order.push('new'));
  assert.equal(order.join(), 'new', 'the newer run goes meanwhile');
  // Near miss: a run as old as the hold ending releases nothing.
  q.ended(1);
  await turnOfLoop();
  await turnOfLoop();
  assert.equal(order.join(), 'new');
  q.ended(2);
  await old;
  assert.equal(order.join(), 'new,old', 'the newer run has ended: the older goes on');
});

test('a hold ends by itself when nothing newer comes', async () => {
  const q = new SliceQueue();
  q.hold(5, 30);
  const t = performance.now();
  await q.turn(5);
  assert.ok(performance.now() - t >= 25, 'it waited for the hold');
});

test('every slice follows a turn of the event loop: what was waiting for the thread runs first', async () => {
  const q = new SliceQueue();
  const order: string[] = [];
  // A message the connection has read and queued for its next turn.
  setImmediate(() => order.push('message'));
  const slice = q.turn(1).then(() => order.push('slice'));
  order.push('asked');
  await slice;
  assert.deepEqual(order, ['asked', 'message', 'slice']);
});
