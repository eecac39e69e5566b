/**
 * `enum-value-not-relocated`: a kernel-internal enum constant from vmlinux.h (or kernel headers)
 * used as a number fixed at compile time, where the target kernels number it differently —
 * `PIDTYPE_TGID` is 1 upstream but 3 in CentOS 8's 4.18, which appended it to `enum pid_type`;
 * `enum cgroup_subsys_id` values depend on which controllers the kernel was configured with.
 * `bpf_core_enum_value(enum E, CONST)` asks the loader for the running kernel's value instead.
 */
import type { Node } from 'web-tree-sitter';
import type { Kernel, ValueOnKernel } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import { type Fix, findingMessage, headlineWith } from '../analysis/model';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { parentOf } from '../analysis/parents';

/** Calls whose arguments are relocations or compile-time questions, not the constant's value. */
const NOT_A_VALUE =
  /^(bpf_core_enum_value|bpf_core_enum_value_exists|bpf_core_type_exists|bpf_core_type_matches|bpf_core_field_exists|__builtin_\w+|sizeof|typeof|__typeof__)$/;

export const enumValueNotRelocated: Rule = {
  meta: {
    id: 'enum-value-not-relocated',
    description: 'Kernel enum constant compiled in as a number that differs across the target kernels',
    defaultSeverity: 'warning',
    fixable: true,
  },
  checkFunction(ctx, f) {
    // BCC compiles on each host against its own headers, so its constants are that kernel's.
    if (ctx.model.bcc || ctx.loader.kind === 'bcc' || !f.fn.body) return;
    if (!ctx.model.vmlinux && !ctx.model.kernelHeaders) return;
    const declared = localNames(ctx, f);
    const seen = new Map<string, Verdict | null>();
    for (const id of f.fn.body.descendantsOfType('identifier')) {
      if (!id) continue;
      const name = ctx.text(id);
      if (declared.has(name) || isMacro(ctx, name) || isHeaderVariable(ctx, name) || !isValueUse(ctx, id)) continue;
      let v = seen.get(name);
      if (v === undefined) {
        v = verdictFor(ctx, name);
        seen.set(name, v);
      }
      if (!v) continue;
      report(ctx, f, id, name, v);
    }
  },
};

/** What the database says about one constant across the target kernels. */
interface Verdict {
  /** Named enums that declare it (empty when only anonymous enums do). */
  readonly enums: string[];
  /** Its value per target kernel (undefined where the kernel's data lacks it). */
  readonly values: (string | undefined)[];
}

/**
 * Names the function or the file declare themselves (parameters, locals, globals, the file's own
 * enums): a use of those is not the kernel's constant. Macros are {@link isMacro}.
 */
function localNames(ctx: RuleContext, f: FunctionFacts): Set<string> {
  const out = new Set<string>([...f.fn.params.map((p) => p.name), ...ctx.model.globals.keys()]);
  for (const d of f.fn.body!.descendantsOfType(['init_declarator', 'identifier'])) {
    if (!d) continue;
    if (d.type === 'init_declarator') {
      const n = d.childForFieldName('declarator');
      if (n?.type === 'identifier') out.add(ctx.text(n));
    } else if (
      parentOf(d)?.type === 'declaration' &&
      parentOf(d)
        ?.childrenForFieldName('declarator')
        .some((x) => x?.id === d.id) === true
    ) {
      out.add(ctx.text(d));
    }
  }
  const text = ctx.model.text;
  // Enumerators of enums the file defines (`enum { MY_KEY = 1 };`).
  for (const m of text.matchAll(/\benum\b[^;{()]*\{([^}]*)\}/g)) {
    for (const e of m[1].split(',')) {
      const n = /^\s*([A-Za-z_]\w*)/.exec(e.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, ''));
      if (n) out.add(n[1]);
    }
  }
  return out;
}

/**
 * Whether `name` is a macro of the file, its project headers or the build's `-D`s: the
 * preprocessor replaces it before any enum is looked at (`#define FULL 65536` in a header is not
 * `enum slab_state`'s `FULL`).
 */
function isMacro(ctx: RuleContext, name: string): boolean {
  return ctx.model.macros.has(name) || ctx.model.functionMacros.has(name);
}

/** Whether `name` is a variable a project header declares (not the kernel's constant). */
function isHeaderVariable(ctx: RuleContext, name: string): boolean {
  return ctx.model.headerGlobals.has(name);
}

/** Whether an identifier is read as a value (not a callee, a declared name, a label or a macro argument that names things). */
function isValueUse(ctx: RuleContext, id: Node): boolean {
  const p = parentOf(id);
  if (!p) return false;
  // A node's type is a call into the parser's WebAssembly: read once per node.
  const pt = p.type;
  if (pt === 'call_expression' && p.childForFieldName('function')?.id === id.id) return false;
  if (pt === 'init_declarator' && p.childForFieldName('declarator')?.id === id.id) return false;
  if (pt === 'declaration' || pt.endsWith('_declarator') || pt === 'parameter_declaration') return false;
  if (pt.startsWith('preproc_')) return false;
  for (let a: Node | null = p, depth = 0; a && depth < 40; a = parentOf(a), depth++) {
    const t = a === p ? pt : a.type;
    if (t === 'call_expression') {
      const fn = a.childForFieldName('function');
      if (fn && NOT_A_VALUE.test(ctx.text(fn))) return false;
    }
    if (t === 'sizeof_expression' || t === 'offsetof_expression' || t === 'alignof_expression') return false;
    if (t === 'function_definition') break;
  }
  return true;
}

/** The constant's values across the target kernels, when they differ; null otherwise. */
function verdictFor(ctx: RuleContext, name: string): Verdict | null {
  const enums = ctx.db.enumOf(name, ctx.kernels);
  if (enums.length === 0) return null;
  const values: (string | undefined)[] = ctx.kernels.map(() => undefined);
  for (const e of enums) {
    ctx.db.enumValue(e, name, ctx.kernels).forEach((v: ValueOnKernel, i) => {
      if (v.present && values[i] === undefined && v.value !== undefined) values[i] = normalize(v.value);
    });
  }
  if (new Set(values.filter((v) => v !== undefined)).size < 2) return null;
  return { enums: enums.filter((e) => e !== ''), values };
}

/**
 * One spelling per value: BTF stores a 32-bit enum's -1 as -1 or as 4294967295 depending on
 * the encoder's signedness, and 64-bit values as decimal strings.
 */
function normalize(v: string): string {
  try {
    const n = BigInt(v);
    if (n < 0n && n >= -(1n << 31n)) return String(n + (1n << 32n));
    return String(BigInt.asUintN(64, n));
  } catch {
    return v;
  }
}

function report(ctx: RuleContext, f: FunctionFacts, id: Node, name: string, v: Verdict) {
  const at = f.guards.kernelsAt(id);
  if (at.empty) return;
  const kernels = at.kernels();
  const vals = kernels.map((k) => v.values[ctx.kernels.indexOf(k)]);
  const counts = new Map<string, number>();
  for (const x of vals) if (x !== undefined) counts.set(x, (counts.get(x) ?? 0) + 1);
  if (counts.size < 2) return;
  // The compiled number comes from the vmlinux.h the program was built with, which the linter
  // cannot see: take the value most of these kernels share (the newest kernel's on a tie).
  let ref = '';
  let best = -1;
  for (let i = kernels.length - 1; i >= 0; i--) {
    const x = vals[i];
    if (x !== undefined && counts.get(x)! > best) {
      best = counts.get(x)!;
      ref = x;
    }
  }
  const groups = new Map<string, Kernel[]>();
  kernels.forEach((k, i) => {
    const x = vals[i];
    if (x === undefined || x === ref) return;
    if (!groups.has(x)) groups.set(x, []);
    groups.get(x)!.push(k);
  });
  const failing = [...groups.values()].flat();
  const known = vals.filter((x) => x !== undefined).length;
  const enumName = v.enums.length === 1 ? v.enums[0] : undefined;
  const where = caseOrConstant(id);
  const fixes: Fix[] =
    enumName && !where
      ? [
          {
            title: `Use bpf_core_enum_value(enum ${enumName}, ${name})`,
            // Where the constant is absent, the relocated value fails to load instead of being wrong.
            safe: !kernels.some((k, i) => vals[i] === undefined && k.fidelity !== 'depsurf'),
            needsCoreRead: true,
            edits: [{ range: ctx.range(id), newText: `bpf_core_enum_value(enum ${enumName}, ${name})` }],
          },
        ]
      : [];
  const how = enumName
    ? where
      ? `A ${where} needs a constant, so compare against bpf_core_enum_value(enum ${enumName}, ${name}) in an if instead.`
      : `Use bpf_core_enum_value(enum ${enumName}, ${name}) to get the running kernel's value at load time.`
    : 'It belongs to an anonymous enum, which bpf_core_enum_value() cannot name; guard the code by kernel version instead.';
  ctx.report({
    node: id,
    message: findingMessage(
      ...headlineWith(
        `\`${name}\` is compiled in as ${ref}, but its value differs on ${failing.length} of ${kernels.length} kernels this code runs on`,
        'the number means another constant there',
      ),
      `${enumName ? `It belongs to enum ${enumName}, and ${ref}` : ref} is its value on ${best} of the ${known} kernels this code runs on whose data has it, but it is ` +
        [...groups].map(([x, ks]) => `${x} on ${ks.length} (${describeKernels(ks, kernels)})`).join(', ') +
        ': there the number means another constant.',
      how,
    ),
    kernels: failing.map((k) => k.name),
    fixes,
  });
}

/** `case` label or another place that needs an integer constant expression, if the use is in one. */
function caseOrConstant(id: Node): string | undefined {
  for (let a: Node | null = parentOf(id), depth = 0; a && depth < 40; a = parentOf(a), depth++) {
    if (a.type === 'case_statement')
      return a.childForFieldName('value') && isWithin(id, a.childForFieldName('value')!) ? 'case label' : undefined;
    if (a.type === 'array_declarator' || a.type === 'bitfield_clause' || a.type === 'enumerator') return 'constant expression';
    if (a.type === 'declaration' && a.children.some((c) => c?.type === 'storage_class_specifier' && c.text === 'static'))
      return 'static initializer';
    if (a.type === 'compound_statement' || a.type === 'function_definition') return undefined;
  }
  return undefined;
}

function isWithin(n: Node, outer: Node): boolean {
  return n.startIndex >= outer.startIndex && n.endIndex <= outer.endIndex;
}
