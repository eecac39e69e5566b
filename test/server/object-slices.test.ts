/**
 * The object pass checks an object in time slices: the event loop runs between two (a keystroke
 * is answered while an object of hundreds of programs is checked), and a stop (the document
 * changed) ends the check at the next slice with `ObjectPassCancelled`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSlices, ObjectPassCancelled } from '../../server/src/driver/objectPass';

/** `n` steps of ~`ms` each of busy work; `log` records what ran. */
function* busy(n: number, ms: number, log: string[], onStep?: (i: number) => void): Generator<void, string, void> {
  try {
    for (let i = 0; i < n; i++) {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // Busy: the thread is held as a check holds it.
      }
      onStep?.(i);
      yield;
    }
    log.push('finished');
    return 'verdicts';
  } finally {
    log.push('closed');
  }
}

test('other work runs between the slices of a check, and the check still ends with its result', async () => {
  const log: string[] = [];
  setImmediate(() => log.push('other work'));
  // ~100 ms of checking in steps of 2 ms: five or more slices of 20 ms.
  const result = await inSlices(busy(50, 2, log));
  assert.equal(result, 'verdicts');
  assert.deepEqual(log, ['other work', 'finished', 'closed'], 'the other work ran before the check finished');
});

test('a stop ends the check at the next slice, closing its steps', async () => {
  const log: string[] = [];
  const stop = new AbortController();
  let stepsRun = 0;
  await assert.rejects(
    inSlices(
      busy(500, 1, log, (i) => {
        stepsRun = i + 1;
        if (i === 3) stop.abort();
      }),
      stop.signal,
    ),
    ObjectPassCancelled,
  );
  assert.ok(stepsRun < 60, `stopped within a slice of the stop (${stepsRun} of 500 steps ran)`);
  assert.deepEqual(log, ['closed'], 'the steps were closed, not finished');
});
