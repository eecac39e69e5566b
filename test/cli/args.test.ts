/**
 * The argument parser (cli/src/args.ts, on node:util's parseArgs): values inline or separate,
 * repeated list options, positional words after `--`, and one clear UsageError for anything else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../../cli/src/args';

const SPEC = { valued: ['target', 'format'], lists: ['rule', 'arch'], flags: ['fix', 'help'], short: { h: 'help' } };

test('values, flags, positional words and lists', () => {
  const a = parseArgs(
    ['a.bpf.c', '--target', '5.4-6.1', '--format=json', '--fix', 'dir', '--rule', 'x=off,y=warning', '--rule=z=info', '-h'],
    SPEC,
  );
  assert.deepEqual(a.positional, ['a.bpf.c', 'dir']);
  assert.equal(a.options.get('target'), '5.4-6.1');
  assert.equal(a.options.get('format'), 'json');
  assert.deepEqual([...a.flags].sort(), ['fix', 'help']);
  assert.deepEqual(a.list('rule'), ['x=off', 'y=warning', 'z=info']);
  assert.equal(a.list('arch'), undefined, 'not given');
  assert.deepEqual(parseArgs(['--arch='], SPEC).list('arch'), [], 'given empty');
});

test('the last of a repeated single-valued option counts; a value may start with "-"', () => {
  const a = parseArgs(['--target', '4.14', '--target', '-5'], SPEC);
  assert.equal(a.options.get('target'), '-5');
});

test('"--" ends the options; "-" and negative numbers are positional', () => {
  assert.deepEqual(parseArgs(['-', '-12', '--', '--fix', '-x'], SPEC).positional, ['-', '-12', '--fix', '-x']);
});

test('unknown options, missing values and values given to flags are usage errors', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^unknown option --bogus$/],
    [['--bogus=1'], /^unknown option --bogus$/],
    [['-x'], /^unknown option -x$/],
    [['-hx'], /^unknown option -hx$/],
    [['a', '--target'], /^--target needs a value$/],
    [['--rule'], /^--rule needs a value$/],
    [['--fix=yes'], /^--fix takes no value$/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(
      () => parseArgs(argv, SPEC),
      (e: Error) => e instanceof UsageError && re.test(e.message),
      argv.join(' '),
    );
  }
});
