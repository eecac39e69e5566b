/**
 * `verifier-bounded-loops`: a `for`/`while`/`do` loop without `#pragma unroll` on kernels before
 * the facts' `bounded_loops` floor, whose verifiers reject any back-edge, so a loop must be fully
 * unrolled by the compiler. A loop with a constant bound is a warning (clang -O2 usually unrolls
 * it); `bpf_for()` and friends are `verifier-open-coded-iterators`'.
 * Part of the `verifier-feature-unavailable` group.
 */
import type { Node } from 'web-tree-sitter';
import type { Fix } from '../analysis/model';
import { runsOn } from './common';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { findingMessage, headlineWith } from '../analysis/model';
import { guardedNote, where } from './verifier-feature-unavailable';

export const verifierBoundedLoops: Rule = {
  meta: {
    id: 'verifier-bounded-loops',
    description: 'Loop without #pragma unroll that verifiers before bounded loops reject',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    const body = f.fn.body;
    if (!body) return;
    loops(ctx, f, body);
  },
};

const LOOPS = ['for_statement', 'while_statement', 'do_statement'];

function loops(ctx: RuleContext, f: FunctionFacts, body: Node) {
  const since = ctx.db.facts.featureSince('bounded_loops');
  if (!since) return;
  // `bpf_for(…)` and friends are masked into `while` loops: they are iterator loops, checked below.
  const macroLoops = new Set(
    ctx.model
      .sites()
      .filter((s) => s.kind === 'loop')
      .map((s) => s.start),
  );
  for (const loop of body.descendantsOfType(LOOPS)) {
    if (!loop || macroLoops.has(loop.startIndex) || unrolled(ctx.model.text, loop.startIndex)) continue;
    const at = runsOn(ctx, f, loop).kernels();
    const old = ctx.db.olderThan(at, since);
    if (old.length === 0) continue;
    const bound = boundOf(ctx, f, loop);
    const constant = bound === 'constant';
    const kw = loop.type === 'for_statement' ? 'for' : loop.type === 'while_statement' ? 'while' : 'do';
    const message = bound?.startsWith('parameter ')
      ? findingMessage(
          ...headlineWith(
            `This \`${kw}\` loop is bounded by parameter \`${bound.slice('parameter '.length)}\``,
            `if clang keeps the loop, ${old.length} of ${at.length} kernels reject it`,
          ),
          `Where clang inlines this static function into callers that pass a constant, -O2 may unroll the loop, but nothing guarantees it, and a loop left as a loop is rejected (back-edge) by verifiers before ${since} (bounded loops), on ${where(old, at)}.`,
          guardedNote(ctx, f, loop),
        )
      : constant
        ? findingMessage(
            ...headlineWith(
              `This \`${kw}\` loop has a constant bound but no \`#pragma unroll\``,
              `if clang keeps the loop, ${old.length} of ${at.length} kernels reject it`,
            ),
            `Clang -O2 usually unrolls such loops, but nothing guarantees it, and a loop left as a loop is rejected (back-edge) by verifiers before ${since} (bounded loops), on ${where(old, at)}.`,
            guardedNote(ctx, f, loop),
          )
        : findingMessage(
            ...headlineWith(
              `This \`${kw}\` loop's trip count is not a compile-time constant`,
              `the verifier rejects it on ${old.length} of ${at.length} kernels`,
            ),
            `Clang cannot unroll it, and verifiers before ${since} reject any back-edge (bounded loops came in ${since}), on ${where(old, at)}.`,
            guardedNote(ctx, f, loop),
          );
    ctx.report({
      node: loop.child(0) ?? loop,
      message,
      kernels: old.map((k) => k.name),
      ...(bound ? { severity: 'warning' as const } : {}),
      fixes: [pragmaFix(ctx, loop, constant)],
    });
  }
}

/** Whether the line before `offset` (skipping blank and comment lines) asks clang to unroll the loop. */
function unrolled(text: string, offset: number): boolean {
  let end = text.lastIndexOf('\n', offset - 1);
  // The loop may follow other code on its line (`if (x) for (…)`): that line has no pragma.
  if (text.slice(end + 1, offset).trim() !== '') return false;
  while (end > 0) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    const line = text.slice(start, end).trim();
    end = start - 1;
    if (line === '' || line.startsWith('//') || /^\/\*.*\*\/$/.test(line)) continue;
    return /^#\s*pragma\s+(?:unroll\b(?!\s*\(\s*1\s*\))|GCC\s+unroll\b|clang\s+loop\s+unroll(?:_count)?\s*\(\s*(?:full|enable|[2-9]|\d\d+)\s*\))/.test(
      line,
    );
  }
  return false;
}

/**
 * What bounds a loop's counter: `'constant'` for `i < N` with `N` a literal, a macro constant or
 * `sizeof` (`for (i = 0; i < N; i++)`, `while (len++ < N)`), possibly in a conjunction
 * (`i < MAX && i < n` is bounded by `MAX`); `'parameter NAME'` for a counter compared with a
 * parameter of a static helper function (its callers decide, and this function-level check does
 * not see them); undefined otherwise.
 */
function boundOf(ctx: RuleContext, f: FunctionFacts, loop: Node): 'constant' | `parameter ${string}` | undefined {
  const isConst = (n: Node) =>
    /^(?:\s*(?:\d+[uUlL]*|0x[0-9a-fA-F]+[uUlL]*|[A-Z][A-Z0-9_]*|sizeof\s*\([^()]*\)|[-+*/()<> ]))+\s*$/.test(ctx.text(n));
  // A helper's parameter (not a program's: its arguments are the context, never constants).
  const header = ctx.text(f.fn.node).slice(0, Math.max(0, (f.fn.body?.startIndex ?? f.fn.node.endIndex) - f.fn.node.startIndex));
  const helper = !f.fn.sec && /^\s*(?:static\b|__always_inline\b|inline\b)/.test(header);
  const isParam = (n: Node) => helper && n.type === 'identifier' && f.fn.params.some((p) => p.name === ctx.text(n));
  // The counter: `i`, or `len++` / `++len` / `len--` in the condition itself.
  const isCounter = (n: Node) =>
    n.type === 'identifier' || (n.type === 'update_expression' && n.namedChildren.length === 1 && n.namedChild(0)?.type === 'identifier');
  let param: string | undefined;
  const bounded = (c: Node | null, depth = 0): boolean => {
    if (!c || depth > 8) return false;
    if (c.type === 'parenthesized_expression') return bounded(c.namedChild(0), depth + 1);
    if (c.type !== 'binary_expression') return false;
    const op = c.child(1)?.type ?? '';
    const l = c.childForFieldName('left');
    const r = c.childForFieldName('right');
    if (!l || !r) return false;
    if (op === '&&') return bounded(l, depth + 1) || bounded(r, depth + 1);
    if (!/^(<|<=|>|>=|!=)$/.test(op)) return false;
    if ((isCounter(l) && isConst(r)) || (isCounter(r) && isConst(l))) return true;
    if (isCounter(l) && isParam(r)) param ??= ctx.text(r);
    else if (isCounter(r) && isParam(l)) param ??= ctx.text(l);
    return false;
  };
  if (bounded(loop.childForFieldName('condition'))) return 'constant';
  return param ? `parameter ${param}` : undefined;
}

function pragmaFix(ctx: RuleContext, loop: Node, constant: boolean): Fix {
  const text = ctx.model.text;
  const lineStart = text.lastIndexOf('\n', loop.startIndex - 1) + 1;
  const indent = /^[ \t]*/.exec(text.slice(lineStart, loop.startIndex))![0];
  return {
    title: 'Insert #pragma unroll before the loop',
    // A loop whose trip count is not a compile-time constant stays a loop whatever the pragma says.
    safe: constant && text.slice(lineStart, loop.startIndex).trim() === '',
    edits: [{ range: ctx.lines.range(loop.startIndex, loop.startIndex), newText: `#pragma unroll\n${indent}` }],
  };
}
