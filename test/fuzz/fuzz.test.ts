/**
 * Fuzzing in CI: 20,000 seeded mutants of the project's programs (examples, shape fixtures, the
 * rule tests' snippets, one in ten of them a BCC tool in Python; not ../shared/corpus, whose
 * larger files triple the time — `npm run fuzz` takes it) through parsing, the whole analysis,
 * fixes and hovers (test/fuzz/harness.ts); then
 * every regression fixture under test/fixtures/fuzz/. Nothing may throw, no rule may fail, every
 * range must lie inside its text and every fix must fit. About 3 minutes on a 2-core machine.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prng } from '../kernel-db/helpers';
import { Checker, FIXTURES, fuzz, mutate, seedTexts } from './harness';

test('the mutator is seeded: the same seed gives the same inputs, another seed others', () => {
  const [a, b] = seedTexts(false);
  const run = (seed: number) => {
    const r = prng(seed);
    return Array.from({ length: 20 }, () => mutate(r, a.text, b.text));
  };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
  assert.ok(
    run(7).some((t) => t !== a.text),
    'mutants differ from their seed',
  );
});

test('the checker reports a broken input (a fix that overlaps would be one; here a rule that throws)', async () => {
  const checker = await Checker.create();
  const text = readFileSync(join(__dirname, '..', '..', 'examples', 'process-tracer.bpf.c'), 'utf8');
  assert.equal(checker.check(text, prng(1)), undefined, 'the example is sound');
  // A BCC tool, checked as one: its C is found in its strings and analysed.
  const tool = seedTexts(false).find((s) => s.python);
  assert.ok(tool, 'the bcc tests hold a Python tool');
  assert.equal(checker.check(tool.text, prng(1), true), undefined, 'the tool is sound');
  process.env.EBPF_PORTABILITY_TEST_THROW = 'unsafe-kernel-deref';
  try {
    assert.match(checker.check(text, prng(1)) ?? '', /rule failure: unsafe-kernel-deref/);
    assert.match(checker.check(tool.text, prng(1), true) ?? '', /rule failure: unsafe-kernel-deref/);
  } finally {
    delete process.env.EBPF_PORTABILITY_TEST_THROW;
  }
});

test('regression fixtures: inputs the fuzzer once broke the analysis with', async () => {
  const checker = await Checker.create();
  const files = existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((f) => /\.(c|py)$/.test(f)) : [];
  // At least the inputs issue 14 reported (SEC("license") on a function, a half-typed kfunc extern).
  assert.ok(files.filter((f) => f.endsWith('.c')).length >= 2, FIXTURES);
  // A BCC tool is replayed as one (its C is in its strings).
  for (const f of files) assert.equal(checker.check(readFileSync(join(FIXTURES, f), 'utf8'), prng(1), f.endsWith('.py')), undefined, f);
});

test('20,000 seeded mutants: nothing throws, ranges stay inside the text, fixes fit', async () => {
  const r = await fuzz({ count: 20_000, seed: 1, withCorpus: false });
  assert.deepEqual(
    r.crashes.map((c) => c.what),
    [],
  );
});
