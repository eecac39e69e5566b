/**
 * The verifier-feature-unavailable group and its rules: each rule reports its own construct (a
 * caret-expectation snippet with a near miss that stays silent), the group id sets every member
 * in settings while a member's own setting overrides it, and suppression comments accept the
 * group id (silencing every member) and each member id (silencing only that rule).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from '../../server/src/analysis/model';
import { RULES, RULE_IDS } from '../../server/src/rules';
import { RULE_GROUPS, groupsOf } from '../../server/src/rules/groups';
import { expandGroups, validateSettings, type Settings } from '../../server/src/driver/settings';
import { analyzeSnippet, assertFindings } from './expect';

const GROUP = 'verifier-feature-unavailable';
const MEMBERS = RULE_GROUPS[GROUP];

async function check(code: string, rules: readonly string[], settings: Partial<Settings> = {}): Promise<Finding[]> {
  return analyzeSnippet(code, { rules, settings, uri: 'file:///snippets/verifier.bpf.c' });
}

/** The snippet without its caret lines. */
function bare(code: string): string {
  return code.replace(/\n *\/\/ \^+[^\n]*/g, '');
}

const HEAD = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;
const GPL = '\nchar LICENSE[] SEC("license") = "GPL";\n';

test('the group lists every verifier-* rule, each registered once, and its id is nameable but runs nothing itself', () => {
  const ids = RULES.map((r) => r.meta.id);
  assert.deepEqual([...MEMBERS].sort(), ids.filter((id) => id.startsWith('verifier-')).sort());
  assert.ok(!ids.includes(GROUP), 'the group is not a rule of its own');
  assert.ok(RULE_IDS.includes(GROUP) && MEMBERS.every((m) => RULE_IDS.includes(m)));
  for (const m of MEMBERS) assert.deepEqual(groupsOf(m), [GROUP]);
  assert.deepEqual(groupsOf('helper-unavailable'), []);
});

// ---- one snippet per rule, with a near miss -----------------------------------------------------

const SNIPPETS: { id: string; code: string; target?: string; nearMiss: string }[] = [
  {
    id: 'verifier-bounded-loops',
    code: `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int i, n = code;
    u64 s = 0;
    for (i = 0; i < n; i++)
 // ^^^ verifier-bounded-loops: verifiers before 5.3 reject any back-edge
        s += i;
    return s;
}
${GPL}`,
    nearMiss: '5.3-7.x',
  },
  {
    id: 'verifier-open-coded-iterators',
    code: `${HEAD}
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    int i;
    u64 s = 0;
    bpf_for(i, 0, 4) {
 // ^^^^^^^ verifier-open-coded-iterators: open-coded iterator loop (6.4 for the numeric iterator)
        s++;
    }
    return s;
}
${GPL}`,
    target: '5.10-7.x',
    nearMiss: '6.4-7.x',
  },
  {
    id: 'verifier-global-data',
    code: `${HEAD}
u64 hits;
 // ^^^^ verifier-global-data: lack kernel support for global data (5.2)

SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    hits++;
    return 0;
}
${GPL}`,
    target: '4.14-5.4',
    nearMiss: '5.2-7.x',
  },
  {
    id: 'verifier-atomics',
    code: `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    u64 v = 0;
    return __sync_val_compare_and_swap(&v, 0, code);
        // ^^^^^^^^^^^^^^^^^^^^^^^^^^^ verifier-atomics: needs the atomic instructions of 5.12
}
${GPL}`,
    target: '5.3-7.x',
    nearMiss: '5.12-7.x',
  },
  {
    id: 'verifier-spin-lock-timer',
    code: `${HEAD}
struct elem {
    struct bpf_timer t;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, u32);
    __type(value, struct elem);
               // ^^^^^^^^^^^ verifier-spin-lock-timer: holds a \`struct bpf_timer\` (\`t\`), which needs 5.15 (BPF timers)
} timers SEC(".maps");
${GPL}`,
    // Ubuntu's 5.15.0-25 BTF has no struct bpf_timer (the kernel's own answer, not the floor).
    nearMiss: '6.1-7.x',
  },
  {
    id: 'verifier-arena',
    code: `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#define __arena __attribute__((address_space(1)))

struct node { u64 v; };
struct node __arena *head;

SEC("syscall")
int walk(void *ctx)
{
    struct node __arena *n = head;
             // ^^^^^^^ verifier-arena: need BPF arenas (6.9, BPF_MAP_TYPE_ARENA)
    return n ? n->v : 0;
}
${GPL}`,
    target: '6.1-7.x',
    nearMiss: '6.9-7.x',
  },
];

for (const s of SNIPPETS) {
  test(`${s.id}: reports its construct under its own id; a target from the feature on stays silent`, async () => {
    const settings = s.target ? { targetKernels: s.target } : {};
    assertFindings(s.code, await check(s.code, MEMBERS, settings), s.id);
    assert.deepEqual(await check(bare(s.code), MEMBERS, { targetKernels: s.nearMiss }), [], `${s.id} near miss`);
  });
}

test('every snippet together: one finding per rule, each under its own id', () => {
  assert.deepEqual(SNIPPETS.map((s) => s.id).sort(), [...MEMBERS].sort());
});

// ---- settings -----------------------------------------------------------------------------------

const LOOPS_AND_ATOMICS = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int i, n = code;
    u64 s = 0, v = 0;
    for (i = 0; i < n; i++)
        s += i;
    return s + __sync_val_compare_and_swap(&v, 0, code);
}
${GPL}`;

test('settings: the group id sets every member; a member set on its own overrides the group in either order', async () => {
  const rules = (raw: Record<string, string>) => validateSettings({ rules: raw }).settings.rules;
  const offAll = rules({ [GROUP]: 'off' });
  assert.deepEqual(Object.keys(offAll).sort(), [...MEMBERS].sort());
  assert.ok(MEMBERS.every((m) => offAll[m] === 'off'));
  assert.deepEqual(await check(LOOPS_AND_ATOMICS, MEMBERS, { rules: offAll, targetKernels: '4.14-5.4' }), []);

  const override = rules({ [GROUP]: 'off', 'verifier-atomics': 'warning' });
  const f = await check(LOOPS_AND_ATOMICS, MEMBERS, { rules: override, targetKernels: '4.14-5.4' });
  assert.deepEqual(
    f.map((x) => [x.rule, x.severity]),
    [['verifier-atomics', 'warning']],
  );
  // Key order does not matter.
  assert.deepEqual(rules({ 'verifier-atomics': 'warning', [GROUP]: 'off' }), override);

  // A severity for the group applies to each member; no problem is reported for the group id.
  const { settings, problems } = validateSettings({ rules: { [GROUP]: 'info' } });
  assert.deepEqual(problems, []);
  const g = await check(LOOPS_AND_ATOMICS, MEMBERS, { rules: settings.rules, targetKernels: '4.14-5.4' });
  assert.deepEqual(g.map((x) => [x.rule, x.severity]).sort(), [
    ['verifier-atomics', 'info'],
    ['verifier-bounded-loops', 'info'],
  ]);
  // Without settings both report as errors.
  const d = await check(LOOPS_AND_ATOMICS, MEMBERS, { targetKernels: '4.14-5.4' });
  assert.deepEqual(d.map((x) => [x.rule, x.severity]).sort(), [
    ['verifier-atomics', 'error'],
    ['verifier-bounded-loops', 'error'],
  ]);
  // Typos are still problems.
  assert.equal(validateSettings({ rules: { 'verifier-feature-unavailabl': 'off' } }).problems.length, 1);
});

test('expandGroups leaves rule ids that belong to no group alone', () => {
  const r: Record<string, 'off' | 'error'> = { 'helper-unavailable': 'off', [GROUP]: 'error' };
  expandGroups(r);
  assert.equal(r['helper-unavailable'], 'off');
  assert.ok(!(GROUP in r));
  assert.equal(Object.keys(r).length, 1 + MEMBERS.length);
});

// ---- suppression comments -----------------------------------------------------------------------

test('suppression: the group id silences every member, a member id only that rule', async () => {
  const code = `${HEAD}
SEC("kprobe/do_exit")
int BPF_KPROBE(on_exit, long code)
{
    int i, n = code;
    u64 s = 0, v = 0;
    // ebpf-portability-disable-next-line verifier-feature-unavailable
    for (i = 0; i < n; i++) s += __sync_val_compare_and_swap(&v, 0, i);
    // ebpf-portability-disable-next-line verifier-bounded-loops
    for (i = 0; i < n; i++) s += __sync_val_compare_and_swap(&v, 0, i);
                              // ^^^^^^^^^^^^^^^^^^^^^^^^^^^ verifier-atomics
    /* ebpf-portability-disable verifier-feature-unavailable */
    for (i = 0; i < n; i++) s += __sync_val_compare_and_swap(&v, 0, i);
    /* ebpf-portability-enable verifier-atomics */
    for (i = 0; i < n; i++) s += __sync_val_compare_and_swap(&v, 0, i);
                              // ^^^^^^^^^^^^^^^^^^^^^^^^^^^ verifier-atomics
    /* ebpf-portability-enable verifier-feature-unavailable */
    while (n--)
 // ^^^^^ verifier-bounded-loops
        s++;
    return s;
}
${GPL}`;
  assertFindings(code, await check(code, [...MEMBERS, 'invalid-lint-comment'], { targetKernels: '4.14-5.4' }));
});

test('invalid-lint-comment accepts the group id and every member id, and still flags a typo', async () => {
  const code = `${HEAD}
// ebpf-portability-disable-next-line verifier-feature-unavailable, verifier-bounded-loops, verifier-open-coded-iterators
// ebpf-portability-disable-next-line verifier-global-data, verifier-atomics, verifier-spin-lock-timer, verifier-arena
// ebpf-portability-disable-next-line verifier-feature
                                   // ^^^^^^^^^^^^^^^^ invalid-lint-comment: unknown rule "verifier-feature"
${GPL}`;
  assertFindings(code, await check(code, ['invalid-lint-comment']));
});
