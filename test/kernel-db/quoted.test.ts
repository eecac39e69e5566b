/**
 * `quoted`: a user's value in a message. Control characters escaped (one visible line),
 * backslashes as written, and a long value cut to its start and end, never inside a surrogate pair.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoted } from '../../kernel-db/src/strings';

test('quoted: short values as written, control characters escaped, backslashes kept', () => {
  assert.equal(quoted('6.x-4.14'), '"6.x-4.14"');
  assert.equal(quoted('C:\\proj\\cc.json'), '"C:\\proj\\cc.json"');
  assert.equal(quoted('a\u0000b\nc\u007f'), '"a\\u0000b\\u000ac\\u007f"');
  assert.equal(quoted('x'.repeat(60)), `"${'x'.repeat(60)}"`, 'exactly the limit: whole');
});

test('quoted: past the limit, the first 40 and last 19 characters around …, never half a surrogate pair', () => {
  assert.equal(quoted('x'.repeat(61)), `"${'x'.repeat(40)}…${'x'.repeat(19)}"`);
  assert.equal(quoted(`${'a'.repeat(40)}${'b'.repeat(100_000)}${'c'.repeat(19)}`), `"${'a'.repeat(40)}…${'c'.repeat(19)}"`);
  // An emoji across the head's end, then across the tail's start: left out whole.
  const head = quoted(`${'x'.repeat(39)}😀${'y'.repeat(100)}`);
  assert.equal(head, `"${'x'.repeat(39)}…${'y'.repeat(19)}"`);
  const tail = quoted(`${'z'.repeat(100)}😀${'y'.repeat(18)}`);
  assert.equal(tail, `"${'z'.repeat(40)}…${'y'.repeat(18)}"`);
  for (const s of [head, tail]) assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s), s);
});
