/**
 * Fixes are offered only when an editor can apply them: edits inside the text, none overlapping.
 * `fixFits` is the check the analysis applies to every fix it returns; half-typed code (the
 * kfunc extern of a user still typing, after an unterminated string) yields only fitting fixes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixFits } from '../../server/src/analysis/fixes';
import { LineIndex } from '../../server/src/analysis/lines';
import type { Fix, Range } from '../../server/src/analysis/model';
import { analyzeSnippet } from './expect';
import { REPO_ROOT } from './helpers';

const r = (l1: number, c1: number, l2: number, c2: number): Range => ({
  start: { line: l1, character: c1 },
  end: { line: l2, character: c2 },
});
const fix = (...ranges: Range[]): Fix => ({ title: 't', safe: true, edits: ranges.map((range) => ({ range, newText: 'x' })) });

test('fixFits: overlapping or outside edits are refused, touching and same-point insertions fit', () => {
  const lines = new LineIndex('int a;\r\nint bb;\n');
  assert.equal(fixFits(fix(r(0, 0, 0, 3), r(0, 3, 0, 5)), lines), true, 'edits that touch');
  assert.equal(fixFits(fix(r(0, 2, 0, 2), r(0, 2, 0, 2)), lines), true, 'two insertions at one point');
  assert.equal(fixFits(fix(r(1, 0, 1, 7), r(0, 0, 0, 1)), lines), true, 'out of order but apart');
  assert.equal(fixFits(fix(r(0, 0, 0, 4), r(0, 3, 0, 5)), lines), false, 'overlapping');
  assert.equal(fixFits(fix(r(0, 0, 1, 3), r(0, 5, 0, 5)), lines), false, 'an insertion inside a replacement');
  assert.equal(fixFits(fix(r(0, 0, 0, 9)), lines), false, 'past the end of a line');
  assert.equal(fixFits(fix(r(0, 7, 0, 7)), lines), false, 'between \\r and \\n');
  assert.equal(fixFits(fix(r(5, 0, 5, 0)), lines), false, 'past the last line');
  assert.equal(fixFits(fix(r(1, 3, 1, 1)), lines), false, 'end before start');
});

const KFUNC = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
extern int bpf_iter_num_next(struct bpf_iter_num *it) __ksym;

SEC("tp/syscalls/sys_enter_openat")
int prog(void *ctx)
{
	bpf_iter_num_next(0);
	return 0;
}
`;

test('half-typed kfunc externs after an unterminated string: every fix offered fits', async () => {
  // The near miss: the complete program gets its kfunc fix.
  const whole = await analyzeSnippet(KFUNC, { rules: ['kfunc-unavailable'] });
  assert.ok(
    whole.some((f) => f.fixes.length > 0),
    'the kfunc call has a fix',
  );
  const lines = (t: string) => new LineIndex(t);
  let fixes = 0;
  for (const base of [KFUNC, readFileSync(join(REPO_ROOT, 'examples', 'process-tracer.bpf.c'), 'utf8')]) {
    for (const piece of [
      '"abc\nextern*bpf_iter_num_next(s __ksym;\n',
      'extern*bpf_iter_num_next(s __ksym;',
      '"x\nextern int bpf_iter_num_next(s __ksym;',
    ]) {
      for (let at = 0; at <= base.length; at += 23) {
        const code = base.slice(0, at) + piece + base.slice(at);
        const index = lines(code);
        for (const f of await analyzeSnippet(code))
          for (const x of f.fixes) {
            fixes++;
            assert.ok(fixFits(x, index), `${f.rule}: ${x.title} at ${at}: ${JSON.stringify(x.edits)}`);
          }
      }
    }
  }
  assert.ok(fixes > 0);
});
