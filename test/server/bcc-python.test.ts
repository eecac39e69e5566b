/** The BPF C of BCC tools in Python: found, substituted under the probes that choose it, mapped back exactly. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractBccPython, importsBcc, toPython, touchesSynthetic } from '../../server/src/parse/python';
import { isBpfDocument } from '../../server/src/analysis/bpfDocument';

const TOOL = `#!/usr/bin/env python
from bcc import BPF
prog = """
#include <linux/sched.h>
int kprobe__finish_task_switch(struct pt_regs *ctx, struct task_struct *prev)
{
    if (FILTER)
        return 0;
    u32 s = prev->STATE_FIELD;
    return s;
}
"""
if BPF.kernel_struct_has_field(b'task_struct', b'__state') == 1:
    prog = prog.replace('STATE_FIELD', '__state')
else:
    prog = prog.replace('STATE_FIELD', 'state')
if args.pid:
    prog = prog.replace('FILTER', 'pid != %s' % args.pid)
b = BPF(text=prog)
`;

test('bcc python: a tool that imports bcc is a BPF document; one that does not is not', () => {
  assert.ok(importsBcc(TOOL));
  assert.ok(isBpfDocument('/x/tool.py', TOOL));
  assert.ok(!isBpfDocument('/x/other.py', 'import os\nprog = """int x;"""\n'));
});

test('bcc python: one program per probe answer, each with its replacement, mapped to the Python text', () => {
  const r = extractBccPython(TOOL);
  assert.equal(r.programs.length, 2);
  const [yes, no] = r.programs;
  assert.deepEqual(
    yes.when.map((w) => w.map((a) => [a.probe, a.value])),
    [[[{ kind: 'field', struct: 'task_struct', field: '__state' }, true]]],
  );
  assert.match(yes.text, /prev->__state;/);
  assert.match(no.text, /prev->state;/);
  assert.deepEqual(
    no.when[0].map((a) => a.value),
    [false],
  );
  // `__state` in the C maps onto the replacement literal in the Python text, exactly.
  const at = yes.text.indexOf('__state');
  const py = toPython(yes, at);
  assert.equal(py.synthetic, false);
  assert.equal(TOOL.slice(py.py, py.py + 7), '__state');
  assert.ok(TOOL.slice(0, py.py).endsWith("'STATE_FIELD', '"));
  // Copied text maps to itself.
  const k = yes.text.indexOf('kprobe__finish_task_switch');
  assert.equal(TOOL.slice(toPython(yes, k).py, toPython(yes, k).py + 6), 'kprobe');
  // FILTER is replaced only under an option (not followed): kept as written, marked.
  const f = yes.text.indexOf('FILTER');
  assert.ok(f > 0);
  assert.ok(touchesSynthetic(yes, f, f + 6));
  assert.ok(!touchesSynthetic(yes, k, k + 6));
});

test('bcc python: % pieces are neutral, `probe or option` is the probe, an asserting try takes its handler', () => {
  const text = `from bcc import BPF
t = """int x = %d; int y = USE;"""
t = t % 5
if BPF.tracepoint_exists("sched", "sched_switch") or args.force:
    t += "int tp;"
try:
    assert(ver >= "0507")
    t = t.replace('USE', '1')
except:
    t = t.replace('USE', '0')
BPF(text=t)
`;
  const r = extractBccPython(text);
  assert.equal(r.programs.length, 2);
  for (const p of r.programs) {
    assert.match(p.text, /int x = 0; int y = 0;/);
    const zero = p.text.indexOf('= 0;');
    assert.ok(touchesSynthetic(p, zero + 2, zero + 3), 'the %d stands for a value the file does not spell');
  }
  assert.ok(r.programs.some((p) => p.text.endsWith('int tp;') && p.when[0][0].value === true));
  assert.ok(r.programs.some((p) => !p.text.includes('int tp;') && p.when[0][0].value === false));
});

test('bcc python: a program built from what cannot be followed is not made up', () => {
  const r = extractBccPython('from bcc import BPF\nb = BPF(text=make_program())\n');
  assert.equal(r.programs.length, 0);
  assert.deepEqual(extractBccPython('from bcc import BPF\nb = BPF(src_file="tool.c")\n').srcFiles, ['tool.c']);
});

test('bcc python: a probe branch that exits ends its path; an option that exits, or a function that does, does not', () => {
  const text = `from bcc import BPF
def usage():
    exit(1)
if args.list:
    exit()
if not BPF.kernel_enum_has_val("bpf_attach_type", "BPF_TRACE_FENTRY"):
    raise SystemExit("needs fentry")
t = "int x;"
BPF(text=t)
`;
  const r = extractBccPython(text);
  assert.equal(r.programs.length, 1);
  assert.deepEqual(
    r.programs[0].when.map((w) => w.map((a) => [a.probe, a.value])),
    [[[{ kind: 'enum', enum: 'bpf_attach_type', value: 'BPF_TRACE_FENTRY' }, true]]],
  );
  // Near miss: the same probe without the exit leaves both paths compiling the program.
  const both = extractBccPython(text.replace('    raise SystemExit("needs fentry")\n', '    pass\n'));
  assert.equal(both.programs.length, 1);
  assert.deepEqual(both.programs[0].when.map((w) => w.map((a) => a.value)).sort(), [[false], [true]]);
});
