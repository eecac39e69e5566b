/**
 * CO-RE rewrites: `a->b->c` → `BPF_CORE_READ(a, b, c)`, probe reads of member chains →
 * `BPF_CORE_READ_INTO` / `BPF_CORE_READ_STR_INTO`, plus the `#include <bpf/bpf_core_read.h>`
 * they need. A fix is offered only where the result means the same thing and compiles.
 */
import type { Node } from 'web-tree-sitter';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import type { Chain } from './chains';
import { essentialName } from './ctypes';
import { fieldAcross } from './layout';
import type { FileModel } from './file';
import type { LineIndex } from './lines';
import type { Fix, TextEdit } from './model';
import { isPacket } from './scope';

/** What fix builders need. */
export interface FixEnv {
  readonly model: FileModel;
  readonly lines: LineIndex;
  readonly db: KernelDb;
  readonly kernels: readonly Kernel[];
  /** Whether an expression (a probe read's destination) is an array. */
  readonly isArray: (n: Node) => boolean;
}

/**
 * The `BPF_CORE_READ` argument list of a chain (`task, real_parent, tgid` or `t, se.vruntime`),
 * or undefined when the macro cannot express it (subscripts, a first step that is not `->`).
 */
export function coreReadArgs(chain: Chain, text: string): string | undefined {
  // A probe read of packet memory is never the fix: the program reads it directly (and
  // networking programs cannot call the probe-read helpers on older kernels at all).
  if (isPacket(chain.baseTyped)) return undefined;
  if (chain.subscripted || chain.links.length === 0 || chain.links[0].op !== '->') return undefined;
  const base = text.slice(chain.base.startIndex, chain.base.endIndex);
  if (/[\n;{}]/.test(base)) return undefined;
  const parts = chain.segments.map((s) => s.fields.join('.'));
  return [base, ...parts].join(', ');
}

/** Whether the chain's last field is a bitfield on any target kernel (its address cannot be taken). */
function endsInBitfield(chain: Chain, env: FixEnv): boolean {
  const last = chain.links[chain.links.length - 1];
  const agg = last.agg;
  if (agg.kind !== 'struct' && agg.kind !== 'union') return false;
  const local = env.model.structs.get(agg.name);
  if (local) return local.fields.get(last.field)?.bitfield ?? false;
  const name = essentialName(agg.name);
  return fieldAcross(env.db, env.kernels, name, last.field).some((f) => (f.bitfieldBits ?? 0) > 0);
}

/** The include edit `BPF_CORE_READ*` needs, if the file lacks it. */
export function includeEdit(env: Pick<FixEnv, 'model' | 'lines'>): TextEdit[] {
  if (env.model.coreReadIncluded) return [];
  const incs = env.model.includes;
  const bpfIncs = incs.filter((i) => i.system && i.path.startsWith('bpf/'));
  const after = bpfIncs[bpfIncs.length - 1] ?? incs.find((i) => /vmlinux/.test(i.path)) ?? incs[incs.length - 1];
  if (!after) {
    return [{ range: env.lines.range(0, 0), newText: '#include <bpf/bpf_core_read.h>\n' }];
  }
  const end = env.model.text.indexOf('\n', after.node.startIndex);
  const at = end < 0 ? env.model.text.length : end + 1;
  return [{ range: env.lines.range(at, at), newText: `${end < 0 ? '\n' : ''}#include <bpf/bpf_core_read.h>\n` }];
}

/** `p->a->b` → `BPF_CORE_READ(p, a, b)` for a loaded chain. */
export function coreReadFix(chain: Chain, env: FixEnv): Fix | undefined {
  if (chain.mode !== 'load') return undefined;
  const args = coreReadArgs(chain, env.model.text);
  if (!args || endsInBitfield(chain, env)) return undefined;
  return {
    title: `Read with BPF_CORE_READ(${args})`,
    safe: true,
    needsCoreRead: true,
    edits: [{ range: env.lines.range(chain.top.startIndex, chain.top.endIndex), newText: `BPF_CORE_READ(${args})` }],
  };
}

/**
 * `bpf_probe_read_kernel(&v, sizeof(v), &p->a->b)` → `BPF_CORE_READ_INTO(&v, p, a, b)`, and the
 * `_str` form → `BPF_CORE_READ_STR_INTO`. The macros size the read by `sizeof(*dst)`, so the fix
 * is offered only when the destination is `&x` (or an array `x`) and the size is `sizeof(x)`.
 */
export function probeReadFix(chain: Chain, env: FixEnv): Fix | undefined {
  const pr = chain.probeRead;
  if (!pr) return undefined;
  const text = env.model.text;
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex).trim();
  const args = coreReadArgs(chain, text);
  if (!args) return undefined;
  const str = pr.fn.endsWith('_str');
  const size = src(pr.size).replace(/\s+/g, '');
  let dst = src(pr.dst);
  const dstName =
    /^&\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|->[A-Za-z_]\w*)*)$/.exec(dst)?.[1] ??
    (/^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|->[A-Za-z_]\w*)*$/.test(dst) ? dst : undefined);
  if (!dstName) return undefined;
  const sizeOk =
    size === `sizeof(${dstName.replace(/\s+/g, '')})` || size === `sizeof(*${dst.replace(/\s+/g, '')})` || size === `sizeof${dstName}`;
  if (!sizeOk) return undefined;
  if (!dst.startsWith('&')) {
    // `bpf_probe_read_kernel_str(buf, sizeof(buf), …)` with an array `buf`: the macro needs `&buf`.
    // A pointer `buf` would make `sizeof(*dst)` wrong, so no fix then.
    if (!env.isArray(pr.dst)) return undefined;
    dst = `&${dstName}`;
  }
  if (!str && endsInBitfield(chain, env)) return undefined;
  const macro = str ? 'BPF_CORE_READ_STR_INTO' : 'BPF_CORE_READ_INTO';
  return {
    title: `Read with ${macro}(${dst}, ${args})`,
    safe: true,
    needsCoreRead: true,
    edits: [{ range: env.lines.range(pr.call.startIndex, pr.call.endIndex), newText: `${macro}(${dst}, ${args})` }],
  };
}

/** The fix for a chain, whichever applies. */
export function chainFix(chain: Chain, env: FixEnv): Fix[] {
  const f = chain.probeRead ? probeReadFix(chain, env) : coreReadFix(chain, env);
  return f ? [f] : [];
}

/**
 * An edit that puts the call statement `call;` under `if (cond) { … }`, so that kernels failing
 * `cond` skip it. Only a call that is the whole statement is wrapped: when its value is used
 * (`e = bpf_ringbuf_reserve(…);`, a declaration, a condition, a return) skipping it would leave
 * that value undefined for the code after it, so no wrap is offered. Nor is one under an `if`
 * that already tests `cond` (the guard would only repeat itself).
 */
export function guardWrap(env: Pick<FixEnv, 'model' | 'lines'>, call: Node, cond: string): TextEdit | undefined {
  let stmt: Node | null = call.parent;
  while (stmt && stmt.type === 'parenthesized_expression') stmt = stmt.parent;
  if (stmt?.type !== 'expression_statement') return undefined;
  const text = env.model.text;
  const squash = (s: string) => s.replace(/\s+/g, '');
  for (let up: Node | null = stmt.parent; up; up = up.parent) {
    const c = up.type === 'if_statement' ? up.childForFieldName('condition') : null;
    if (c && squash(text.slice(c.startIndex, c.endIndex)).includes(squash(cond))) return undefined;
  }
  const lineStart = text.lastIndexOf('\n', stmt.startIndex - 1) + 1;
  const indent = /^[ \t]*/.exec(text.slice(lineStart, stmt.startIndex))![0];
  const unit = indent.includes('\t') ? '\t' : '    ';
  const body = text.slice(stmt.startIndex, stmt.endIndex).replace(/\n/g, `\n${unit}`);
  // Under an unbraced `if`/loop, braces keep a following `else` with its own `if`.
  if (stmt.parent && stmt.parent.type !== 'compound_statement' && stmt.parent.type !== 'case_statement') {
    const outer = indent.endsWith(unit) ? indent.slice(0, -unit.length) : indent;
    return {
      range: env.lines.range(stmt.startIndex, stmt.endIndex),
      newText: `{\n${indent}if (${cond}) {\n${indent}${unit}${body}\n${indent}}\n${outer}}`,
    };
  }
  return { range: env.lines.range(stmt.startIndex, stmt.endIndex), newText: `if (${cond}) {\n${indent}${unit}${body}\n${indent}}` };
}

/**
 * Whether a fix can be applied as an editor applies it: every edit's range inside the text (a
 * position past a line's end or the last line, or between `\r` and `\n`, is not), start before
 * end, and no two edits overlapping (insertions at one point and edits that only touch are
 * fine). Half-typed text can mislead a rule's idea of where a declaration ends; such a fix is
 * dropped rather than offered.
 */
export function fixFits(fix: Fix, lines: LineIndex): boolean {
  const spans: Array<[number, number]> = [];
  for (const e of fix.edits) {
    const start = lines.offsetAt(e.range.start);
    const end = lines.offsetAt(e.range.end);
    const back = lines.range(start, end);
    const same = (a: { line: number; character: number }, b: { line: number; character: number }) =>
      a.line === b.line && a.character === b.character;
    if (!same(back.start, e.range.start) || !same(back.end, e.range.end) || end < start) return false;
    spans.push([start, end]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) if (spans[i - 1][1] > spans[i][0]) return false;
  return true;
}
