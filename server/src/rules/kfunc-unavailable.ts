/**
 * `kfunc-unavailable`: a call to a kfunc (declared `extern … __ksym`, or a kfunc the facts know,
 * as `vmlinux.h` declares them) that some of the kernels where the call runs do not have. Kernels
 * whose BTF tags kfuncs answer exactly; older ones answer from the function's presence and the
 * facts' version floor. Calls under `if (bpf_ksym_exists(fn))` are checked only against the kernels
 * that have it, so guarded calls are silent.
 *
 * An absence at or above the facts' version is believed only where the kernel is a full distro
 * build and some kernel of the database has the kfunc in its vmlinux BTF: kfuncs that live in
 * modules (`dctcp_*`, conntrack) are never in vmlinux BTF, and minimal test configs leave out
 * what distros build.
 */
import { OwnedCache } from '../analysis/memo';
import { LIBBPF } from '../analysis/loader';
import type { Node } from 'web-tree-sitter';
import type { FuncOnKernel, Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { compareVersions } from '../../../kernel-db/src/version';
import { kfuncDeclMismatch } from '../../../kernel-db/src/query/coreRelo';
import type { Extern, FileModel } from '../analysis/file';
import type { Fix } from '../analysis/model';
import { calleeName, callsIn, localNames } from '../analysis/calls';
import { guardWrap } from '../analysis/fixes';
import { programKernels, runsOn } from './common';
import { findingMessage, headlineWith } from '../analysis/model';
import type { FunctionFacts, Rule, RuleContext } from './rule';

/** The file's `extern … name(…) … __ksym;` kfunc declaration of `name`, if any. */
export function kfuncDecl(model: FileModel, name: string): Extern | undefined {
  const e = model.externs.get(name);
  return e?.kind === 'ksym' && e.isFunction ? e : undefined;
}

const everCache = new OwnedCache<KernelDb, boolean>({
  name: 'kfunc-unavailable.inAnyVmlinux',
  owner: 'kernel database',
  key: 'kfunc name',
});

/** Whether any built-in kernel has `name` as a kfunc in its vmlinux BTF. */
function inAnyVmlinux(db: KernelDb, name: string): boolean {
  return everCache.get(db, name, () =>
    db
      .kfunc(
        name,
        db.kernels.filter((k) => !k.user),
      )
      .some((a) => a.present === true && a.basis !== 'facts'),
  );
}

/**
 * Kernels of `answers` that do not have the kfunc: absent below the facts' floor, or absent at or
 * above it on a full build when some vmlinux BTF has it (see the file comment).
 */
export function kfuncMissing(db: KernelDb, name: string, answers: readonly FuncOnKernel[]): Kernel[] {
  const since = db.facts.kfunc(name)?.since;
  const somewhere = inAnyVmlinux(db, name);
  return answers
    .filter((a) => {
      if (a.present !== false) return false;
      if (since && compareVersions(a.kernel.version, since) < 0) return true;
      return somewhere && a.kernel.fidelity === 'btf';
    })
    .map((a) => a.kernel);
}

export const kfuncUnavailable: Rule = {
  meta: {
    id: 'kfunc-unavailable',
    description: 'kfunc (extern __ksym) missing on some target kernels where it is called',
    defaultSeverity: 'error',
    fixable: true,
  },
  checkFunction(ctx, f) {
    if (!f.fn.body || ctx.model.bcc) return;
    const local = localNames(ctx.model);
    for (const call of callsIn(f.fn.body)) {
      const name = calleeName(call, ctx.model.text);
      if (!name) continue;
      const decl = kfuncDecl(ctx.model, name);
      // Without a declaration here, only names the facts know as kfuncs (declared by vmlinux.h).
      if (!decl && (local.has(name) || !ctx.db.facts.kfunc(name) || ctx.db.facts.helper(name))) continue;
      check(ctx, f, call, name, decl);
    }
  },
};

function check(ctx: RuleContext, f: FunctionFacts, call: Node, name: string, decl: Extern | undefined) {
  if (decl) checkPrototype(ctx, f, call, name, decl);
  const at = runsOn(ctx, f, call);
  if (at.empty) return;
  const kernels = at.kernels();
  const answers = ctx.db.kfunc(name, kernels);
  const missing = kfuncMissing(ctx.db, name, answers);
  if (missing.length === 0) return;
  const since = ctx.db.facts.kfunc(name)?.since;
  const floor = missing.filter((k) => answers[kernels.indexOf(k)].basis === 'facts');
  const strong = decl && !decl.weak;
  let details = `It is missing on ${describeKernels(missing, kernels)}`;
  if (floor.length) details += ` (on ${floor.length} of them by the facts' version floor ${since}, for want of kfunc tags in their BTF)`;
  details += strong
    ? `; libbpf cannot resolve the \`__ksym\` there and refuses to load the program${since ? ` (it came in ${since})` : ''}.`
    : `; libbpf leaves the kfunc unresolved there and the verifier rejects the call${since ? ` (it came in ${since})` : ''}.`;
  if (f.guards.kernelsAt(call).size < ctx.kernels.length) details += ' (Checked against the kernels its guards leave.)';
  ctx.report({
    node: call.childForFieldName('function') ?? call,
    message: findingMessage(
      ...headlineWith(
        `kfunc \`${name}\` is missing on ${missing.length} of ${kernels.length} kernels this code runs on`,
        strong ? 'the program fails to load there' : 'the verifier rejects the call there',
      ),
      details,
    ),
    kernels: missing.map((k) => k.name),
    fixes: fixes(ctx, call, name, decl),
  });
}

/**
 * A declaration whose prototype libbpf refuses for a kernel's (`bpf_core_types_are_compat()`: as
 * many parameters, the same kinds): for a strong extern libbpf fails the whole object there,
 * whether or not the call runs; for a `__weak` one it leaves the kfunc unresolved and the verifier
 * rejects the call where it runs. One finding per declaration, at its first call.
 */
function checkPrototype(ctx: RuleContext, f: FunctionFacts, call: Node, name: string, decl: Extern) {
  const first = callsOf(ctx, name)[0];
  if (first && first.id !== call.id) return;
  const where = decl.weak ? runsOn(ctx, f, call) : programKernels(ctx, f);
  if (where.empty) return;
  const kernels = where.kernels();
  const text = ctx.text(decl.node);
  const refused: Kernel[] = [];
  const why = new Set<string>();
  ctx.db.kfunc(name, kernels).forEach((a, i) => {
    if (a.present !== true || !a.proto) return;
    const w = kfuncDeclMismatch(text, name, a.proto);
    if (!w) return;
    refused.push(kernels[i]);
    why.add(w);
  });
  if (refused.length === 0) return;
  ctx.report({
    node: call.childForFieldName('function') ?? call,
    message: findingMessage(
      ...headlineWith(
        `kfunc \`${name}\`'s prototype does not match the kernel's on ${refused.length} of ${kernels.length} kernels`,
        decl.weak ? 'the verifier rejects the call there' : 'the object fails to load there',
      ),
      `libbpf compares the declaration with the kernel's prototype and refuses it: ${[...why].join('; ')}. Refused on ${describeKernels(refused, kernels)}.`,
      decl.weak
        ? 'It is declared __weak, so libbpf leaves it unresolved there and the verifier rejects the call where it runs.'
        : 'libbpf resolves every `__ksym` of the object before loading any program, so the whole object fails there, guarded or not.',
      'Declare it with the prototype of the kernels you target, or guard it with bpf_ksym_exists() and declare it __weak.',
    ),
    kernels: refused.map((k) => k.name),
    fixes: [],
  });
}

/** The calls of `name` in the file, in order. */
function callsOf(ctx: RuleContext, name: string): Node[] {
  const out: Node[] = [];
  for (const fn of ctx.model.functions) {
    if (!fn.body) continue;
    for (const c of callsIn(fn.body)) if (calleeName(c, ctx.model.text) === name) out.push(c);
  }
  return out;
}

function fixes(ctx: RuleContext, call: Node, name: string, decl: Extern | undefined): Fix[] {
  const wrap = guardWrap(ctx, call, `bpf_ksym_exists(${name})`);
  if (!wrap) return [];
  const edits = [wrap];
  // bpf_ksym_exists() refuses (at compile time) a kfunc that is not declared __weak.
  if (decl && !decl.weak) edits.push({ range: ctx.lines.range(decl.attrEnd, decl.attrEnd), newText: ' __weak' });
  // bpf_ksym_exists() is in libbpf's bpf_helpers.h from 1.2 on.
  const libbpf12 =
    ctx.loader.kind === 'libbpf' && compareVersions(ctx.loader.minVersion ?? LIBBPF.defaultMinVersion, LIBBPF.ksymExistsSince) >= 0;
  return [
    {
      title: `Call ${name} only on kernels that have it (bpf_ksym_exists${decl && !decl.weak ? ', and declare it __weak' : ''}; libbpf 1.2+)`,
      // Only a declaration in this file is known to be (made) __weak.
      safe: libbpf12 && decl !== undefined,
      edits,
      guard: true,
    },
  ];
}
