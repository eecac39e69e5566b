/**
 * Deep nesting never overflows the stack: thousands of nested `#if` around the program (at file
 * level and inside a function body) are walked without recursion, and the findings inside them
 * are still reported; the same nesting under an `#if 0` stays silent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Node } from 'web-tree-sitter';
import { buildFileModel } from '../../server/src/analysis/file';
import { parentOf, releaseParents } from '../../server/src/analysis/parents';
import { loadCParser } from '../../server/src/parse/documents';
import { analyzeSnippet } from './expect';

const HEAD = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n';
const body = '  struct task_struct *t = (void *)bpf_get_current_task();\n  return t->pid;\n';
const fileLevel = (depth: number, cond: string) =>
  `${HEAD}${'#if 1\n'.repeat(depth - 1)}#if ${cond}\nSEC("kprobe/do_sys_open")\nint prog(struct pt_regs *ctx) {\n${body}}\n${'#else\nint other;\n#endif\n'.repeat(depth)}`;
const inBody = (depth: number, cond: string) =>
  `${HEAD}SEC("kprobe/do_sys_open")\nint prog(struct pt_regs *ctx) {\n${'#if 1\n'.repeat(depth - 1)}#if ${cond}\n${body}${'#endif\n'.repeat(depth)}  return 0;\n}\n`;

for (const depth of [3000, 10000]) {
  test(`${depth} nested #if at file level and in a function body: analysed, findings kept`, async () => {
    for (const [shape, make] of [
      ['file level', fileLevel],
      ['function body', inBody],
    ] as const) {
      const code = make(depth, '1');
      const parser = await loadCParser();
      const tree = parser.parseText(code);
      assert.ok(tree, 'parses');
      const model = buildFileModel('file:///nest.bpf.c', code, tree);
      assert.deepEqual(
        model.functions.map((f) => [f.name, f.sec]),
        [['prog', 'kprobe/do_sys_open']],
        `${shape}: the function inside the conditionals is found`,
      );
      tree.delete();
      const rules = (await analyzeSnippet(code)).map((f) => f.rule);
      assert.ok(rules.includes('unsafe-kernel-deref'), `${shape}: the direct read is reported (${rules.join()})`);
      // The near miss: the innermost condition is false, so the build compiles none of it.
      const off = await analyzeSnippet(make(depth, '0'));
      assert.deepEqual(
        off.filter((f) => f.rule === 'unsafe-kernel-deref'),
        [],
        `${shape}: nothing under #if 0`,
      );
    }
  });
}

test('the parent index answers what tree-sitter does, for every node of the examples and shape fixtures', async () => {
  const parser = await loadCParser();
  const dirs = [join(__dirname, '..', '..', 'examples'), join(__dirname, '..', 'fixtures', 'shapes')];
  let nodes = 0;
  for (const dir of dirs)
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.c'))) {
      const tree = parser.parseText(readFileSync(join(dir, f), 'utf8'));
      assert.ok(tree, f);
      try {
        // Asked in an order that makes the index walk items as it meets them: leaves first.
        const all = tree.rootNode.descendantsOfType([
          'identifier',
          'field_identifier',
          'number_literal',
          'compound_statement',
          'call_expression',
        ]);
        for (const n of all) {
          if (!n) continue;
          for (let x: Node | null = n; x; x = parentOf(x)) {
            assert.equal(parentOf(x)?.id ?? null, x.parent?.id ?? null, `${f}: parent of a ${x.type} at ${x.startIndex}`);
            nodes++;
          }
        }
      } finally {
        releaseParents(tree);
        tree.delete();
      }
    }
  assert.ok(nodes > 5000, `${nodes} nodes compared`);
});
