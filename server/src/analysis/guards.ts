/**
 * Guards: the conditions that make code safe on some kernels only. Inside
 * `if (bpf_core_field_exists(t->f))`, after `if (!bpf_core_type_exists(struct x)) return 0;`, in
 * the arms of `bpf_ksym_exists(f) ? … : …`, under `LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 8, 0)`
 * or `if (CONFIG_X)` with a `__kconfig` extern, code runs only on the kernels where the guard
 * holds, and is checked only against those.
 *
 * A condition evaluates to two sets: the kernels where it may be true and where it may be false.
 * What cannot be evaluated may be either, so it never narrows anything (silence over guessing).
 */
import type { Node } from 'web-tree-sitter';
import type { KernelDb } from '../../../kernel-db/src/query/db';
import { deref, essentialName } from './ctypes';
import { KSet } from './kset';
import { parentOf } from './parents';
import { isArrow, type FunctionScope, type TypeEnv } from './scope';
import { holds, versionComparison, versionCondition, type VersionComparison } from './versionCheck';

/** Where a condition may be true, and where it may be false. */
export interface Truth {
  readonly t: KSet;
  readonly f: KSet;
}

const EXITS = new Set(['return_statement', 'break_statement', 'continue_statement', 'goto_statement']);

/** Evaluates guards for one function and answers "on which kernels does this node run?". */
export class Guards {
  private readonly all: KSet;
  /** Parent node id → child node id → the constraint the parent puts on that child (null: none). */
  private readonly steps = new Map<number, Map<number, KSet | null>>();
  /** Node id → the kernels the node runs on after its guards (without what the object says). */
  private readonly at = new Map<number, KSet>();
  /** `&&`/`||` node id → its truth. */
  private readonly logicals = new Map<number, Truth>();

  constructor(
    readonly env: TypeEnv,
    readonly db: KernelDb,
    /** The kernels the function itself runs on (all targets, or its callers' guarded sets). */
    readonly base: KSet,
    readonly scope: FunctionScope,
    private readonly text: string,
    /**
     * The kernels on which compiled code of a node runs, when a compiled object says (the object
     * pass): guards clang or the verifier folded away, functions no program calls.
     */
    private readonly reach?: (node: Node) => KSet,
  ) {
    this.all = KSet.all(base.target);
  }

  private src(n: Node): string {
    return this.text.slice(n.startIndex, n.endIndex);
  }

  /**
   * The kernels on which `node` (inside the function) runs. `compiled: false` leaves out what the
   * object says (for a call of an inlined function: its code carries the callee's lines, not the call's).
   */
  kernelsAt(node: Node, compiled = true): KSet {
    const k = this.guarded(node);
    return this.reach && compiled ? k.and(this.reach(node)) : k;
  }

  /**
   * The kernels on which `node` runs after its guards: its parent's, narrowed by the constraint the
   * parent puts on it, memoised per node so that nodes of one nest share their ancestors' answers
   * (an else-if chain evaluates each condition once, not once per later branch).
   */
  private guarded(node: Node): KSet {
    const chain: Node[] = [];
    let k = this.base;
    let above: Node | null = null;
    for (let n: Node | null = node; n; ) {
      const known = this.at.get(n.id);
      if (known) {
        k = known;
        above = n;
        break;
      }
      chain.push(n);
      const p = parentOf(n);
      n = p && p.type !== 'function_definition' ? p : null;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const n = chain[i];
      if (above) {
        const narrowed = this.stepCache(above, n);
        if (narrowed) k = k.and(narrowed);
      }
      this.at.set(n.id, k);
      above = n;
    }
    return k;
  }

  /** The constraint `parent` puts on its child `child`, or undefined for none. */
  private stepCache(p: Node, c: Node): KSet | undefined {
    let byChild = this.steps.get(p.id);
    if (!byChild) this.steps.set(p.id, (byChild = p.type === 'compound_statement' ? this.blockSteps(p) : new Map()));
    let r = byChild.get(c.id);
    if (r === undefined) byChild.set(c.id, (r = this.step(p, c) ?? null));
    return r ?? undefined;
  }

  /**
   * The constraints of a block on each of its statements, in one pass: earlier
   * `if (!guard) return …;` statements leave only the kernels where the guard holds.
   */
  private blockSteps(block: Node): Map<number, KSet | null> {
    const out = new Map<number, KSet | null>();
    let k: KSet | undefined;
    for (const s of block.namedChildren) {
      if (!s) continue;
      out.set(s.id, k ?? null);
      if (s.type !== 'if_statement') continue;
      const cond = s.childForFieldName('condition');
      const cons = s.childForFieldName('consequence');
      const alt = s.childForFieldName('alternative');
      if (!cond || !cons) continue;
      let narrowed: KSet | undefined;
      if (alwaysExits(cons) && (!alt || !alwaysExits(alt))) narrowed = this.cond(cond).f;
      else if (alt && alwaysExits(alt) && !alwaysExits(cons)) narrowed = this.cond(cond).t;
      if (narrowed) k = k ? k.and(narrowed) : narrowed;
    }
    return out;
  }

  private step(p: Node, c: Node): KSet | undefined {
    switch (p.type) {
      case 'if_statement':
      case 'conditional_expression': {
        const cond = p.childForFieldName('condition');
        if (!cond || cond.id === c.id) return undefined;
        const t = this.cond(cond);
        if (p.childForFieldName('consequence')?.id === c.id) return t.t;
        if (p.childForFieldName('alternative')?.id === c.id) return t.f;
        return undefined;
      }
      case 'binary_expression': {
        const op = p.child(1)?.type;
        const left = p.childForFieldName('left');
        if (!left || p.childForFieldName('right')?.id !== c.id) return undefined;
        if (op === '&&') return this.cond(left).t;
        if (op === '||') return this.cond(left).f;
        return undefined;
      }
      case 'preproc_if':
      case 'preproc_elif': {
        const cond = p.childForFieldName('condition');
        if (!cond || cond.id === c.id) return undefined;
        const t = this.preprocCond(cond);
        if (!t) return undefined;
        return p.childForFieldName('alternative')?.id === c.id ? t.f : t.t;
      }
      default:
        return undefined;
    }
  }

  private unknown(): Truth {
    return { t: this.all, f: this.all };
  }

  /** Evaluates a condition expression. */
  cond(e: Node | null, depth = 0): Truth {
    if (!e || depth > 32) return this.unknown();
    switch (e.type) {
      case 'parenthesized_expression':
        return this.cond(e.namedChild(0), depth + 1);
      case 'number_literal': {
        // A constant (what a BCC tool's Python put in place of `USE_PIDNS`): `0 && x` never runs x.
        const v = /^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$/.exec(this.src(e));
        if (!v) return this.unknown();
        const none = this.all.and(KSet.where(this.base.target, () => false));
        return Number(v[1]) === 0 ? { t: none, f: this.all } : { t: this.all, f: none };
      }
      case 'unary_expression': {
        if (e.child(0)?.type !== '!') return this.unknown();
        const t = this.cond(e.childForFieldName('argument'), depth + 1);
        return { t: t.f, f: t.t };
      }
      case 'binary_expression': {
        const op = e.child(1)?.type;
        const l = e.childForFieldName('left');
        const r = e.childForFieldName('right');
        if (op === '&&' || op === '||') return this.logical(e, depth);
        const version = this.versionCompare(l, op, r);
        if (version) return version;
        // `guard == 0` / `guard != 0` / `guard == false`
        const zero = (n: Node | null) => !!n && /^(0|false|NULL)$/.test(this.src(n).trim());
        if ((op === '==' || op === '!=') && (zero(r) || zero(l))) {
          const t = this.cond(zero(r) ? l : r, depth + 1);
          return op === '==' ? { t: t.f, f: t.t } : t;
        }
        return this.unknown();
      }
      case 'call_expression':
        return this.callCond(e);
      case 'identifier': {
        const name = this.src(e);
        if (/^CONFIG_[A-Z0-9_]+$/.test(name) && this.isKconfig(name)) return this.configCond(name);
        return this.unknown();
      }
      default:
        return this.unknown();
    }
  }

  /**
   * `a && b && … && z` (or `||`, or both mixed) nests to the left as deep as it is long: walked
   * down its left spine without recursion, each level's truth kept so that a guard at the head
   * still narrows the last operand, at any length.
   */
  private logical(e: Node, depth: number): Truth {
    const spine: Node[] = [];
    let n: Node | null = e;
    while (n?.type === 'binary_expression' && (n.child(1)?.type === '&&' || n.child(1)?.type === '||') && !this.logicals.has(n.id)) {
      spine.push(n);
      n = n.childForFieldName('left');
    }
    let acc = n && this.logicals.has(n.id) ? (this.logicals.get(n.id) as Truth) : this.cond(n, depth + 1);
    for (let i = spine.length - 1; i >= 0; i--) {
      const b = this.cond(spine[i].childForFieldName('right'), depth + 1);
      acc = spine[i].child(1)?.type === '&&' ? { t: acc.t.and(b.t), f: acc.f.or(b.f) } : { t: acc.t.or(b.t), f: acc.f.and(b.f) };
      this.logicals.set(spine[i].id, acc);
    }
    return acc;
  }

  private isKconfig(name: string): boolean {
    return new RegExp(`\\b${name}\\b[^;]*__kconfig`).test(this.text);
  }

  private configCond(name: string): Truth {
    const vals = this.db.config(name, this.base.target);
    return {
      t: KSet.where(this.base.target, (_, i) => vals[i].present !== false),
      f: KSet.where(this.base.target, (_, i) => vals[i].present !== true),
    };
  }

  /** A type or enum existence check given as text (the body of a guard function). */
  private textCond(negated: boolean, call: string): Truth {
    const name = /^([A-Za-z_]\w*)\s*\(/.exec(call)?.[1];
    const target = this.base.target;
    let t: Truth | undefined;
    if (name === 'bpf_core_type_exists' || name === 'bpf_core_type_matches') {
      const m = /\(\s*(?:struct|union)\s+([A-Za-z_]\w*)\s*\)/.exec(call);
      if (m) t = this.presence(this.db.aggregate(this.env.kernelName(m[1]) ?? m[1], target).map((a) => a.present));
    } else if (name === 'bpf_core_enum_value_exists') {
      const m = /\(\s*enum\s+([A-Za-z_]\w*)\s*,\s*([A-Za-z_]\w*)\s*\)/.exec(call);
      if (m) {
        t = this.enumValueTruth(m[1], m[2]);
      }
    }
    if (!t) return this.unknown();
    return negated ? { t: t.f, f: t.t } : t;
  }

  /**
   * `bpf_core_enum_value_exists(enum E, V)`: the enum and the value are matched by their essential
   * names (`bpf_func_id___x`, `BPF_FUNC_x___y`); `enum bpf_func_id` asks whether a helper exists.
   */
  private enumValueTruth(enumName: string, value: string): Truth {
    const target = this.base.target;
    const ename = essentialName(enumName);
    const v = essentialName(value);
    if (ename === 'bpf_func_id') return this.presence(this.db.helper(v.replace(/^BPF_FUNC_/, ''), target).kernels.map((a) => a.present));
    return this.presence(this.db.enumValue(ename, v, target).map((a) => a.present));
  }

  /** Presence as a truth: unknown kernels may be either. */
  private presence(present: (boolean | null)[]): Truth {
    const target = this.base.target;
    return { t: KSet.where(target, (_, i) => present[i] !== false), f: KSet.where(target, (_, i) => present[i] !== true) };
  }

  private callCond(e: Node): Truth {
    const fn = e.childForFieldName('function');
    const name = fn ? this.src(fn) : '';
    const call = this.src(e);
    const target = this.base.target;
    const args = (e.childForFieldName('arguments')?.namedChildren ?? []).filter((x): x is Node => !!x);
    // `has_x()` whose whole body is `return bpf_core_type_exists(struct x);` (a helper of the file
    // or of a local header): the guard it returns.
    const wrapped = args.length === 0 ? this.env.model.guardFunctions.get(name) : undefined;
    if (wrapped) return this.textCond(wrapped.negated, wrapped.call);
    switch (name) {
      case 'bpf_core_field_exists': {
        const f = this.fieldArg(call, args);
        if (!f) return this.unknown();
        return this.presence(target.map((k) => this.db.fieldOn(f.struct, f.field, k).present));
      }
      case 'bpf_core_type_exists':
      case 'bpf_core_type_matches': {
        const m = /\(\s*(?:struct|union)\s+([A-Za-z_]\w*)\s*\)/.exec(call);
        if (!m) return this.unknown();
        const kname = this.env.kernelName(m[1]) ?? m[1];
        return this.presence(this.db.aggregate(kname, target).map((a) => a.present));
      }
      case 'bpf_core_enum_value_exists': {
        const m = /\(\s*enum\s+([A-Za-z_]\w*)\s*,\s*([A-Za-z_]\w*)\s*\)/.exec(call);
        if (!m) return this.unknown();
        return this.enumValueTruth(m[1], m[2]);
      }
      case 'bpf_ksym_exists': {
        const sym = args[0] ? this.src(args[0]).trim() : '';
        if (!/^[A-Za-z_]\w*$/.test(sym)) return this.unknown();
        const kf = this.db.kfunc(sym, target);
        if (kf.some((x) => x.present)) return this.presence(kf.map((x) => x.present));
        return this.presence(this.db.func(sym, target).map((x) => x.present));
      }
      default:
        return this.unknown();
    }
  }

  /** The `struct.field` a `bpf_core_field_exists()` argument names (expression or type form). */
  private fieldArg(call: string, args: Node[]): { struct: string; field: string } | undefined {
    const typeForm = /\(\s*(?:struct|union)\s+([A-Za-z_]\w*)\s*,\s*([A-Za-z_]\w*)\s*\)\s*$/.exec(call);
    if (typeForm) return { struct: this.env.kernelName(typeForm[1]) ?? typeForm[1], field: typeForm[2] };
    const a = args[0];
    if (!a || a.type !== 'field_expression') return undefined;
    const base = this.scope.typeOf(a.childForFieldName('argument'));
    const agg = isArrow(a) ? deref(base.type) : base.type;
    const field = a.childForFieldName('field');
    if ((agg.kind !== 'struct' && agg.kind !== 'union') || !field) return undefined;
    return { struct: this.env.kernelName(agg.name) ?? agg.name, field: this.src(field) };
  }

  /** `LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 8, 0)` and the like. */
  private versionCompare(l: Node | null, op: string | undefined, r: Node | null): Truth | undefined {
    const c = l && r ? versionComparison(this.src(l), op, this.src(r)) : undefined;
    return c ? this.versionTruth(c) : undefined;
  }

  /** `#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 8, 0)`. */
  private preprocCond(cond: Node): Truth | undefined {
    const c = versionCondition(this.src(cond));
    return c ? this.versionTruth(c) : undefined;
  }

  private versionTruth(c: VersionComparison): Truth {
    const t = KSet.where(this.base.target, (k) => holds(c, k.version));
    return { t, f: t.not() };
  }
}

/** Whether a statement always leaves the enclosing block (return, break, continue, goto). */
export function alwaysExits(s: Node): boolean {
  if (EXITS.has(s.type)) return true;
  if (s.type === 'compound_statement') {
    const last = s.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment').pop();
    return !!last && alwaysExits(last);
  }
  if (s.type === 'if_statement') {
    const cons = s.childForFieldName('consequence');
    const alt = s.childForFieldName('alternative');
    const altStmt = alt?.type === 'else_clause' ? alt.namedChild(0) : alt;
    return !!cons && !!altStmt && alwaysExits(cons) && alwaysExits(altStmt);
  }
  if (s.type === 'else_clause') {
    const inner = s.namedChild(0);
    return !!inner && alwaysExits(inner);
  }
  return false;
}
