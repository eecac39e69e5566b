/**
 * The cap on a publish: at most 1,000 diagnostics a document (VS Code's own limit per file),
 * errors first, then warnings, then the rest, and one line that says how many were left out. The
 * function on made-up findings (the choice, the order, the boundary), then over real LSP on a
 * program with more findings than that, and the same program cut to exactly 1,000 (all shown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding, Severity } from '../../server/src/analysis/model';
import { MAX_PUBLISHED, publishedDiagnostics } from '../../server/src/lsp/convert';
import { TestClient } from './lsp-client';

const URI = 'file:///p/many.bpf.c';

/** A finding of `severity` on `line`. */
function finding(line: number, severity: Severity): Finding {
  return {
    rule: severity === 'error' ? 'unsafe-kernel-deref' : severity === 'warning' ? 'invalid-lint-comment' : 'legacy-probe-read',
    severity,
    message: `on line ${line}`,
    range: { start: { line, character: 0 }, end: { line, character: 4 } },
    kernels: [],
    fixes: [],
  };
}

const SEVERITY = { error: 1, warning: 2, info: 3 } as const;

test('a publish holds every finding up to the cap, and no line about it', () => {
  const findings = Array.from({ length: 10 }, (_, i) => finding(i, i % 2 ? 'info' : 'error'));
  const { diagnostics, omitted } = publishedDiagnostics(findings, URI, 10);
  assert.equal(omitted, 0);
  assert.deepEqual(
    diagnostics.map((d) => d.message),
    findings.map((f) => f.message),
  );
});

test('past the cap: errors first, then warnings, then the rest, in the document order, and one line at the first left out', () => {
  // Lines 0..11: info, warning, error repeating (4 of each).
  const order: Severity[] = ['info', 'warning', 'error'];
  const findings = Array.from({ length: 12 }, (_, i) => finding(i, order[i % 3]));
  const { diagnostics, omitted } = publishedDiagnostics(findings, URI, 7);
  assert.equal(diagnostics.length, 7, 'the summary counts toward the cap');
  assert.equal(omitted, 6);
  const shown = diagnostics.slice(0, -1);
  // All 4 errors (lines 2, 5, 8, 11) and the first 2 warnings (lines 1, 4), in line order.
  assert.deepEqual(
    shown.map((d) => d.range.start.line),
    [1, 2, 4, 5, 8, 11],
  );
  assert.deepEqual(
    shown.map((d) => d.severity),
    [2, 1, 2, 1, 1, 1],
  );
  const summary = diagnostics.at(-1)!;
  assert.equal(summary.severity, SEVERITY.info);
  assert.equal(summary.code, undefined, 'no rule: nothing to suppress or document');
  assert.equal(summary.range.start.line, 0, 'at the first finding left out (the info on line 0)');
  assert.deepEqual(summary.range.end, summary.range.start, 'where it starts, not over its whole range');
  assert.match(summary.message, /^6 more findings are not shown here/);
  assert.match(summary.message, /at most 7 a file, errors first/);
  assert.match(summary.message, /`ebpf-portability check` on this file lists them all/);
});

test('past the cap with more errors than room: the first errors only; one over the cap leaves two out (the line takes a place)', () => {
  const findings = [finding(0, 'info'), ...Array.from({ length: 5 }, (_, i) => finding(i + 1, 'error'))];
  const { diagnostics, omitted } = publishedDiagnostics(findings, URI, 4);
  assert.equal(omitted, 3);
  assert.deepEqual(
    diagnostics.slice(0, -1).map((d) => d.range.start.line),
    [1, 2, 3],
  );
  assert.equal(diagnostics.at(-1)!.range.start.line, 0);
  const over = publishedDiagnostics(findings.slice(1), URI, 4);
  assert.equal(over.omitted, 2);
  assert.equal(over.diagnostics.length, 4);
  assert.equal(over.diagnostics.at(-1)!.range.start.line, 4, 'the first error left out');
  assert.match(over.diagnostics.at(-1)!.message, /^2 more findings are not shown here/);
});

/** A program of `n` kprobes, each with one error (a direct read) and one info (`bpf_probe_read`). */
function program(n: number): string {
  let out = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n\n';
  for (let i = 0; i < n; i++)
    out += `SEC("kprobe/do_exit")\nint prog_${i}(struct pt_regs *ctx)\n{\n\tstruct task_struct *task = (struct task_struct *)bpf_get_current_task();\n\tint pid = 0;\n\tbpf_probe_read(&pid, sizeof(pid), &task->pid);\n\treturn task->real_parent->tgid + pid;\n}\n\n`;
  return `${out}char LICENSE[] SEC("license") = "GPL";\n`;
}

test('over LSP: a program with 1,200 findings is sent 999 of them, every error first, and a line for the rest; at 1,000 all of them', async () => {
  const c = await TestClient.start();
  try {
    c.settings = { compile: 'off' };
    c.open(URI, program(600));
    const capped = await c.diagnostics(URI, (d) => d.length > 0, 1, 120_000);
    assert.equal(capped.length, MAX_PUBLISHED);
    const shown = capped.slice(0, -1);
    assert.equal(shown.filter((d) => d.code === 'unsafe-kernel-deref').length, 600, 'every error is shown');
    assert.equal(shown.filter((d) => d.code === 'legacy-probe-read').length, 399);
    const lines = shown.map((d) => d.range.start.line);
    assert.deepEqual(
      lines,
      [...lines].sort((a, b) => a - b),
      'in the document order',
    );
    const summary = capped.at(-1)!;
    assert.match(summary.message, /^201 more findings are not shown here/);
    // The first info left out: the 400th function's bpf_probe_read (functions are 9 lines from line 3).
    assert.equal(summary.range.start.line, 3 + 399 * 9 + 5);
    const log = c.logs.map((l) => l.message).join('\n');
    assert.match(log, /many\.bpf\.c: 1,200 findings; the editor is sent 999 of them \(errors first\)/);

    // The near miss: 500 functions, exactly 1,000 findings, all sent and no line about it.
    c.change(URI, 2, [{ text: program(500) }]);
    const all = await c.diagnostics(URI, () => true, 2, 120_000);
    assert.equal(all.length, 1000);
    assert.ok(all.every((d) => d.code === 'unsafe-kernel-deref' || d.code === 'legacy-probe-read'));
  } finally {
    await c.stop();
  }
});
