/**
 * A BCC tool written in Python over real LSP: the server analyses the C its Python hands to
 * `BPF(text=…)` and publishes the diagnostics at the Python file's lines and columns; a Python
 * file that does not import bcc gets none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { position, TestClient } from './lsp-client';

const TOOL = `#!/usr/bin/env python3
from bcc import BPF

prog = """
#include <linux/sched.h>
BPF_HASH(seen, u32, u64);

int kprobe__do_exit(struct pt_regs *ctx)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u32 pid = t->tgid;
    u64 start = t->real_start_time;
    seen.update(&pid, &start);
    return 0;
}
"""
b = BPF(text=prog)
`;

test('lsp: a Python BCC tool gets diagnostics at its own lines and columns; other Python files none', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///work/tools/starttime.py';
    void c.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: TOOL } });
    const diags = await c.diagnostics(uri, (d) => d.some((x) => x.code === 'field-missing-in-range'));
    const missing = diags.find((x) => x.code === 'field-missing-in-range')!;
    const at = position(TOOL, 't->real_start_time');
    assert.deepEqual(missing.range.start, at, 'the member read, where the Python string holds it');
    assert.deepEqual(missing.range.end, { line: at.line, character: at.character + 't->real_start_time'.length });
    assert.equal(missing.severity, 1);
    assert.match(missing.message, /BCC fails to compile the program there/);
    // The note on the first BCC construct, as information.
    const note = diags.find((x) => x.code === 'bcc-needs-kernel-headers');
    assert.ok(note, `a kernel-headers note; got ${JSON.stringify(diags.map((x) => x.code))}`);
    assert.deepEqual(note.range.start, position(TOOL, 'BPF_HASH'));
    assert.equal(note.severity, 3);
    // Nothing on the Python code itself, nothing on t->tgid (BCC reads it at the host's offset).
    const pyLines = new Set([0, 1, 2, 3, position(TOOL, 'b = BPF').line]);
    assert.ok(!diags.some((x) => pyLines.has(x.range.start.line)), JSON.stringify(diags.map((x) => x.range.start)));
    assert.ok(!diags.some((x) => x.range.start.line === position(TOOL, 't->tgid').line));

    // Near miss: the same text in a file that does not import bcc is not a BPF document.
    const other = 'file:///work/tools/not-bcc.py';
    const plain = TOOL.replace('from bcc import BPF', 'from mylib import BPF');
    void c.conn.sendNotification('textDocument/didOpen', { textDocument: { uri: other, languageId: 'python', version: 1, text: plain } });
    // Edit the tool so the server answers again, and check the other file got no findings meanwhile.
    const fixed = TOOL.replace('real_start_time', 'start_time');
    c.change(uri, 2, [{ text: fixed }]);
    const after = await c.diagnostics(uri, () => true, 2);
    assert.ok(!after.some((x) => x.code === 'field-missing-in-range'), 'start_time is on every kernel');
    const otherDiags = await c.diagnostics(other, () => true, undefined, 5000).catch(() => []);
    assert.deepEqual(otherDiags, []);
  } finally {
    await c.stop();
  }
});

test('lsp: Convert to libbpf CO-RE (ebpfPortability/convertBcc) writes the open BCC tool as a .bpf.c; an unopened one is said so', async () => {
  const c = await TestClient.start();
  try {
    const uri = 'file:///work/tools/starttime.py';
    void c.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: TOOL } });
    const r = (await c.conn.sendRequest('ebpfPortability/convertBcc', { uri })) as { text: string; notes: string[] };
    assert.match(r.text, /SEC\("kprobe\/do_exit"\)/);
    assert.match(r.text, /BPF_MAP_TYPE_HASH/);
    assert.match(r.text, /#include "vmlinux\.h"/);
    assert.ok(Array.isArray(r.notes));
    const none = (await c.conn.sendRequest('ebpfPortability/convertBcc', { uri: 'file:///work/tools/closed.py' })) as {
      text: string;
      notes: string[];
    };
    assert.equal(none.text, '');
    assert.match(none.notes[0], /not open/);
  } finally {
    await c.stop();
  }
});
