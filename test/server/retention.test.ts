/**
 * What the parsing keeps of a text keeps no more of it: tokens, directives and macro uses outlive
 * the version they were read from (an edit keeps those it does not touch), and V8 keeps a slice of
 * a string as a view of the whole. The heap is measured with texts of 8 MB, so that keeping one
 * shows; V8 itself may keep the last large text a while, so four are read and none may stay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskBpfMacros } from '../../server/src/parse/bpfMacros';
import { lexC } from '../../server/src/parse/lexer';
import { heapAfterCollection as heap } from '../heap';

test('tokens, directives and macro uses keep copies of their long texts, not the text they came from', () => {
  const tail = (i: number) =>
    `\n#define A_LONG_MACRO_NAME_${i} some_long_replacement_text\n` +
    `SEC("kprobe/a_long_kernel_function_name_${i}")\n` +
    `int BPF_KPROBE(handler_with_a_long_name_${i}, struct task_struct *task_with_long_name)\n` +
    `{ return BPF_CORE_READ(task_with_long_name, real_parent, tgid) + "a long string literal ${i}"[0]; }\n`;
  const kept: unknown[] = [];
  const read = (i: number) => {
    const text = `/*${' '.repeat(8 << 20)}*/${tail(i)}`;
    const lexed = lexC(text);
    const masked = maskBpfMacros(text);
    // What a document keeps of a version: its tokens, directives and macro uses.
    kept.push(lexed.tokens, lexed.directives, masked.sites);
  };
  read(-1);
  const before = heap();
  for (let i = 0; i < 4; i++) read(i);
  const grown = heap() - before;
  assert.ok(kept.length === 15, 'everything read is still held');
  assert.ok(grown < 12 << 20, `the heap grew by ${(grown / 1048576).toFixed(1)} MB (the 8 MB texts are kept)`);
});
