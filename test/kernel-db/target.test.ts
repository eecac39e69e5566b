/** Target specs: ranges, versions, names, filters, and clear errors for malformed ones. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TargetError, TargetSpec, type TargetKernel } from '../../kernel-db/src/query/target';

const K = (name: string, version: string, arch = 'x86_64', distro = 'debian', user = false): TargetKernel => ({
  name,
  version,
  arch,
  distro,
  user,
});
const all = [
  K('u44', '4.4.0', 'x86_64', 'ubuntu'),
  K('u415', '4.15.0', 'x86_64', 'ubuntu'),
  K('c418', '4.18.0', 'arm64', 'rhel'),
  K('d510', '5.10.262'),
  K('d510a', '5.10.223', 'arm64'),
  K('u58', '5.8.0', 'x86_64', 'ubuntu'),
  K('d61', '6.1.192'),
  K('v66', '6.6.5', 'x86_64', 'vanilla'),
  K('d73', '7.3.4'),
  K('node1', '6.8.0', 'x86_64', 'user', true),
];
const sel = (spec: string, f?: { arch?: string[]; distro?: string[] }) =>
  TargetSpec.parse(spec, f)
    .select(all)
    .map((k) => k.name);

test('ranges include both ends by major.minor', () => {
  assert.deepEqual(sel('4.14-6.x'), ['u415', 'c418', 'd510', 'd510a', 'u58', 'd61', 'v66']);
  assert.deepEqual(sel('5.8-7.x'), ['d510', 'd510a', 'u58', 'd61', 'v66', 'd73']);
  assert.deepEqual(sel('5.10-6.1'), ['d510', 'd510a', 'd61']);
  assert.deepEqual(sel('4.4-4.15'), ['u44', 'u415']);
});

test('single versions, majors, open ranges and *', () => {
  assert.deepEqual(sel('5.10'), ['d510', 'd510a']);
  assert.deepEqual(sel('5.10.223'), ['d510a']);
  assert.deepEqual(sel('6.x'), ['d61', 'v66']);
  assert.deepEqual(sel('6.6+'), ['v66', 'd73']);
  assert.equal(sel('*').length, 9, '* is every built-in kernel, not imported ones');
});

test('names, imported kernels and lists', () => {
  assert.deepEqual(sel('node1'), ['node1']);
  assert.deepEqual(sel('user'), ['node1']);
  assert.deepEqual(sel('5.10, node1'), ['d510', 'd510a', 'node1']);
  assert.deepEqual(sel('4.4 7.x'), ['u44', 'd73']);
  assert.deepEqual(sel('6.x', {}), ['d61', 'v66'], 'a version range never pulls in imported kernels');
});

test('arch and distro filters, as options or inside the spec', () => {
  assert.deepEqual(sel('*', { arch: ['arm64'] }), ['c418', 'd510a']);
  assert.deepEqual(sel('* arch=aarch64'), ['c418', 'd510a'], 'aarch64 is arm64');
  assert.deepEqual(sel('4.14-7.x', { arch: ['amd64'], distro: ['ubuntu'] }), ['u415', 'u58']);
  assert.deepEqual(sel('4.14-7.x distro=debian,vanilla arch=x86_64'), ['d510', 'd61', 'v66', 'd73']);
});

test('malformed specs get a clear TargetError', () => {
  const cases: [string, RegExp][] = [
    ['', /empty target/],
    ['4.14-', /malformed target "4.14-"/],
    ['6.x-4.14', /is empty/],
    ['5.x.3', /without a patch level/],
    ['4..14', /malformed target/],
    ['+', /malformed target/],
    ['arch=', /names no arch/],
    ['5.8-7.x;rm', /not a version, range or kernel name/],
  ];
  for (const [spec, re] of cases) {
    assert.throws(
      () => TargetSpec.parse(spec),
      (e: unknown) => e instanceof TargetError && re.test((e as Error).message),
      spec,
    );
  }
  assert.throws(() => TargetSpec.parse('no-such-kernel').select(all), /unknown kernel "no-such-kernel"/);
});
