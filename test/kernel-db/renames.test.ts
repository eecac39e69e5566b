/**
 * Rename candidates come from layout evidence only (kernel-db/src/query/renames.ts): the real
 * database's renames and its wrong look-alikes, then the rules of evidence on small made-up layouts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelDb } from '../../kernel-db/src/query/db';
import { renameEvidence, type LaidOutMember, type LayoutKernel, type RenameSource } from '../../kernel-db/src/query/renames';

const db = KernelDb.open({ noUser: true });
const all = db.kernels;

/** The candidates of `struct.field` over every kernel: name → how many of the kernels lacking it have it. */
function candidates(struct: string, field: string): Map<string, number> {
  return new Map(db.field(struct, field, all).renameCandidates.map((c) => [c.name, c.kernels.length]));
}
const missingOn = (struct: string, field: string) =>
  db.field(struct, field, all).kernels.filter((k) => k.present === false && k.structPresent).length;

test('task_struct.real_start_time was renamed start_boottime (5.5), not mce_vaddr or preempt_disable_ip', () => {
  const c = candidates('task_struct', 'real_start_time');
  assert.deepEqual([...c.keys()], ['start_boottime']);
  assert.equal(c.get('start_boottime'), missingOn('task_struct', 'real_start_time'));
  const [r] = db.field('task_struct', 'real_start_time', all).renameCandidates;
  // The evidence: the 5.4 and 5.11 developer builds, the u64 between start_time and min_flt.
  const pair = r.evidence.find((p) => p.withField === 'cilium-testdata-5.4-x86_64');
  assert.ok(pair, JSON.stringify(r.evidence));
  assert.equal(pair.withName, 'cilium-testdata-5.11-x86_64');
  assert.ok(pair.sameNeighbours && pair.sameType);
  assert.ok(
    r.evidence.every((p) => !/ubuntu/.test(p.withField) && !/ubuntu/.test(p.withName)),
    'DepSurf kernels have no layout',
  );
});

test('task_struct.start_boottime was real_start_time before 5.5, not cputime_expires', () => {
  const c = candidates('task_struct', 'start_boottime');
  assert.deepEqual([...c.keys()], ['real_start_time']);
  assert.equal(c.get('real_start_time'), missingOn('task_struct', 'start_boottime'));
  assert.ok(!c.has('cputime_expires'));
});

test('inode.i_ctime: `__i_ctime` on the 6.6–6.10 kernels only; `i_ctime_sec` is no rename of it', () => {
  const c = candidates('inode', 'i_ctime');
  assert.deepEqual([...c.keys()], ['__i_ctime']);
  assert.equal(c.get('__i_ctime'), 4);
  assert.ok(missingOn('inode', 'i_ctime') > 40);
  // i_ctime_sec (time64_t) and i_ctime_nsec replaced the struct timespec64: no candidate either way.
  assert.deepEqual([...candidates('inode', 'i_ctime_sec').keys()], []);
  assert.ok(!candidates('inode', '__i_ctime').has('i_ctime_sec'));
});

test('true renames stay hinted: task_struct.state ↔ __state (5.14, same offset), bio.bi_disk ↔ bi_bdev', () => {
  const [s] = db.field('task_struct', 'state', all).renameCandidates;
  assert.equal(s.name, '__state');
  assert.ok(s.sameOffset && s.sameNeighbours && !s.sameType, 'long became unsigned int in the same place');
  assert.ok(s.evidence.some((p) => p.withField === 'cilium-testdata-5.13.2-x86_64' && p.withName === 'cilium-testdata-5.16-x86_64'));
  assert.deepEqual([...candidates('task_struct', '__state').keys()], ['state']);
  assert.deepEqual([...candidates('bio', 'bi_disk').keys()], ['bi_bdev']);
  assert.deepEqual([...candidates('bio', 'bi_bdev').keys()], ['bi_disk']);
  // Only on the query's kernels that lack the member: a target that has it everywhere has none.
  assert.deepEqual(db.field('task_struct', '__state', db.target('6.1-7.x')).renameCandidates, []);
});

test('members that come and go in one slot without being renamed are not candidates', () => {
  // A kernel between the two has neither (gone first, the other came later), or they are
  // different vendors' reserved kABI slots that line up by chance.
  assert.deepEqual([...candidates('task_struct', 'mm_cid').keys()], []);
  assert.deepEqual([...candidates('sk_buff', 'scm_io_uring').keys()], []);
  assert.deepEqual([...candidates('sock', 'sk_bind2_node').keys()], []);
  assert.deepEqual([...candidates('net_device', 'rh_reserved5').keys()], []);
  assert.deepEqual([...candidates('net_device', 'padded').keys()], []);
});

// Made-up layouts: members as [name, type, byte offset, size].
type M = [string, string, number, number];
interface TK extends LayoutKernel {
  readonly members: readonly LaidOutMember[] | undefined;
}
function kernel(name: string, version: string, members: M[] | undefined, more: Partial<LayoutKernel> = {}): TK {
  return {
    name,
    version,
    arch: 'x86_64',
    distro: 'debian',
    flavour: 'amd64',
    fidelity: members ? 'btf' : 'depsurf',
    ...more,
    members: members?.map(([n, type, off, size]) => ({ name: n, type, offsetBits: off * 8, bitfieldBits: 0, size })),
  };
}
/** Kernels with `members: undefined` have no layout but a known member list (`names`). */
function source(kernels: TK[], names: Record<string, string[]> = {}, typedefs: Record<string, string> = {}): RenameSource<TK> {
  return {
    layoutKernels: kernels.filter((k) => k.members),
    allKernels: kernels,
    members: (k) => k.members ?? [],
    has: (n, k) => (k.members ? k.members.some((m) => m.name === n) : (names[k.name] ?? []).includes(n)),
    typedef: (n) => typedefs[n],
  };
}
const names = (field: string, src: RenameSource<TK>) => renameEvidence(field, src).map((e) => e.name);

const OLD: M[] = [
  ['a', 'int', 0, 4],
  ['count', 'long', 8, 8],
  ['b', 'void *', 16, 8],
];

test('evidence: the same offset with a compatible type, and between the same neighbours', () => {
  const same = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['nr', 'unsigned int', 8, 4],
    ['b', 'void *', 16, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), same])), ['nr']);
  // Moved by a member added before it, still between a and b.
  const moved = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['x', 'struct list_head', 8, 16],
    ['total', 'long', 24, 8],
    ['b', 'void *', 32, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), moved])), ['total']);
  // …both ways: the new name's candidate is the old one.
  assert.deepEqual(names('total', source([kernel('k1', '5.1', OLD), moved])), ['count']);
});

test('evidence: a typedef is followed to decide the kind', () => {
  const k2 = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['x', 'struct list_head', 8, 16],
    ['total', 'u64', 24, 8],
    ['b', 'void *', 32, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), k2], {}, { u64: 'long long unsigned int' })), ['total']);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), k2])), [], 'an unknown typedef is no integer');
});

test('no evidence: another kind, a narrower integer elsewhere, a member both kernels have, no layout', () => {
  const struct = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['lock', 'struct spinlock', 8, 8],
    ['b', 'void *', 16, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), struct])), []);
  const narrow = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['pad', 'int', 4, 4],
    ['nr', 'short', 8, 2],
    ['b', 'void *', 16, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), narrow])), ['nr'], 'the same offset: a narrower integer');
  const shifted = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['nr', 'short', 4, 2],
    ['b', 'void *', 16, 8],
  ]);
  assert.deepEqual(
    names('count', source([kernel('k1', '5.1', OLD), shifted])),
    [],
    'a narrower integer at another offset is a replacement',
  );
  // `b` moved into the slot: b is on both kernels, not a new name.
  const gone = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['b', 'void *', 8, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), gone])), []);
  // A member that some other kernel has together with `count` is not its new name.
  const nr = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['nr', 'long', 8, 8],
    ['b', 'void *', 16, 8],
  ]);
  const both = kernel('k0', '4.9', [...OLD, ['nr', 'long', 24, 8]]);
  assert.deepEqual(names('count', source([both, kernel('k1', '5.1', OLD), nr])), []);
  // DepSurf kernels (member names, no offsets) are no evidence, however alike the names.
  const d1 = kernel('d1', '5.1', undefined, { distro: 'ubuntu' });
  const d2 = kernel('d2', '5.2', undefined, { distro: 'ubuntu' });
  assert.deepEqual(names('count', source([d1, d2], { d1: ['a', 'count', 'b'], d2: ['a', '__count', 'b'] })), []);
});

test('a similar name ranks candidates of one pair but never makes one', () => {
  const two = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['x', 'struct list_head', 8, 16],
    ['other', 'long', 24, 8],
    ['count_total', 'long', 32, 8],
    ['b', 'void *', 40, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), two])), ['count_total']);
  // A kindred name away from the slot is nothing; two unrelated names in it are ambiguous.
  const away = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['b', 'void *', 8, 8],
    ['__count', 'long', 16, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), away])), []);
  const ambiguous = kernel('k2', '5.2', [
    ['a', 'int', 0, 4],
    ['x', 'struct list_head', 8, 16],
    ['p', 'long', 24, 8],
    ['q', 'long', 32, 8],
    ['b', 'void *', 40, 8],
  ]);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), ambiguous])), []);
});

test('only adjacent kernels count, of one family first; a kernel between with neither name breaks the pair', () => {
  const renamed: M[] = [
    ['a', 'int', 0, 4],
    ['nr', 'long', 8, 8],
    ['b', 'void *', 16, 8],
  ];
  // 5.1 → 5.2 is the boundary; 5.3 has the same layout again (no second pair from 5.1 to 5.3).
  const ev = renameEvidence('count', source([kernel('k1', '5.1', OLD), kernel('k2', '5.2', renamed), kernel('k3', '5.3', renamed)]));
  assert.deepEqual(
    ev.map((e) => e.pairs.map((p) => `${p.withField}→${p.withName}`)),
    [['k1→k2']],
  );
  // A full-config kernel in between (DepSurf is enough) with neither: removed, then added.
  const between = kernel('u', '5.1.5', undefined, { distro: 'ubuntu' });
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), between, kernel('k2', '5.2', renamed)], { u: ['a', 'b'] })), []);
  assert.deepEqual(names('count', source([kernel('k1', '5.1', OLD), between, kernel('k2', '5.2', renamed)], { u: ['a', 'nr', 'b'] })), [
    'nr',
  ]);
  // Two distros' kernels: the same offset and type is not enough, the neighbours must agree too.
  const rhel = kernel('r', '5.1', OLD, { distro: 'rhel', flavour: 'el' });
  const deb = kernel('d', '5.2', [
    ['a', 'int', 0, 4],
    ['nr', 'long', 8, 8],
    ['c', 'void *', 16, 8],
  ]);
  assert.deepEqual(names('count', source([rhel, deb])), []);
  assert.deepEqual(names('count', source([rhel, kernel('d', '5.2', renamed)])), ['nr']);
});
