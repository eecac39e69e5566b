/**
 * Guard fixes that cannot help. A guard (`if (bpf_core_enum_value_exists(…)) call;`) makes a
 * program skip a call on the kernels that lack it, so it is right only where nothing else fails
 * the whole object there: where a map type or a program type of the file fails on the same kernels
 * (map-type-unavailable and prog-type-unavailable errors, after the loader's run-time alternatives
 * turned what it switches into warnings), the object still fails with the guard. Such a guard is
 * dropped, and narrowing the file's target (a target comment) is offered instead; a guard that
 * helps on only some of its kernels stays, but is no longer applied by "fix all".
 */
import { compareVersions, majorMinor } from '../../../kernel-db/src/version';
import type { Kernel } from '../../../kernel-db/src/query/db';
import { TargetSpec } from '../../../kernel-db/src/query/target';
import { directives } from '../analysis/comments';
import type { LineIndex } from '../analysis/lines';
import type { Finding, Fix } from '../analysis/model';

/** Rules whose errors mean the whole object fails to load on their kernels. */
const WHOLE_OBJECT = new Set(['map-type-unavailable', 'prog-type-unavailable']);

/** Rules whose findings a guard would fix where the call alone fails (whether or not one could be offered). */
const GUARDABLE = new Set(['helper-unavailable', 'kfunc-unavailable']);

/** Findings with the guard fixes that cannot make the object load replaced (see the module comment). */
export function checkGuardFixes(findings: readonly Finding[], kernels: readonly Kernel[], text: string, lines: LineIndex): Finding[] {
  const fails = new Set<string>();
  for (const f of findings) if (f.severity === 'error' && WHOLE_OBJECT.has(f.rule)) for (const k of f.kernels) fails.add(k);
  const hasTargetComment = directives(text).some((d) => d.kind === 'target');
  return findings.map((f) => {
    if (!f.fixes.some((x) => x.guard) && !GUARDABLE.has(f.rule)) return f;
    const blocked = f.kernels.filter((k) => fails.has(k));
    if (blocked.length === 0 || f.kernels.length === 0) return { ...f, fixes: f.fixes.map(plain) };
    if (blocked.length < f.kernels.length) return { ...f, fixes: f.fixes.map((x) => (x.guard ? { ...plain(x), safe: false } : x)) };
    const kept = f.fixes.filter((x) => !x.guard);
    const narrow = hasTargetComment ? undefined : narrowFix(f, kernels, text, lines);
    return { ...f, fixes: narrow ? [...kept, narrow] : kept };
  });
}

function plain({ guard, ...x }: Fix): Fix {
  return x;
}

/**
 * `// ebpf-portability: target=M.m+` at the top of the file (after an SPDX line): the lowest
 * `M.m+` that leaves out every kernel the finding fails on while keeping some target kernel.
 */
function narrowFix(f: Finding, kernels: readonly Kernel[], text: string, lines: LineIndex): Fix | undefined {
  const failing = new Set(f.kernels);
  const versions = [...new Set(kernels.map((k) => majorMinor(k.version)))].sort(compareVersions);
  for (const v of versions) {
    const spec = `${v}+`;
    const kept = TargetSpec.parse(spec).select(kernels);
    if (kept.length === 0) return undefined;
    if (kept.some((k) => failing.has(k.name))) continue;
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    const first = text.indexOf('\n');
    const at = /^\s*(\/\/|\/\*)\s*SPDX/.test(text) && first >= 0 ? first + 1 : 0;
    return {
      title: `Narrow this file's target to ${spec} (a guard cannot help: a map or program type fails the whole object where the call is missing)`,
      safe: false,
      edits: [{ range: lines.range(at, at), newText: `// ebpf-portability: target=${spec}${eol}` }],
    };
  }
  return undefined;
}
