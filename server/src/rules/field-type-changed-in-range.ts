/**
 * `field-type-changed-in-range`: a member that exists on every kernel where the code runs but
 * whose type differs between them — an integer that became wider or narrower or changed sign,
 * a plain member that is a bitfield on some kernels (`sock.sk_protocol` before 5.6), a pointer
 * that became an array or an integer, a pointer to a renamed struct, or a member that moved into
 * an anonymous union. CO-RE relocates the offset, not the type: the compiled read keeps the size
 * and meaning of the type in the vmlinux.h it was built with.
 */
import { readsPacket, runsOn } from './common';
import { readTypeText, typeLevels } from '../analysis/ctypes';
import { OwnedCache } from '../analysis/memo';
import { coreMacro, readsNothing } from '../analysis/coreMacros';
import type { Node } from 'web-tree-sitter';
import type { FieldOnKernel, Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { Chain, Link } from '../analysis/chains';
import { fieldAcross } from '../analysis/layout';
import { type Fix, findingMessage, fitting, type Severity } from '../analysis/model';
import type { FunctionFacts, Rule, RuleContext } from './rule';
import { parentOf } from '../analysis/parents';

export const fieldTypeChangedInRange: Rule = {
  meta: {
    id: 'field-type-changed-in-range',
    description: 'Struct member whose type, width, signedness or bitfield-ness differs across the target kernels where the code runs',
    defaultSeverity: 'warning',
    fixable: true,
    // A member chain one of these reported is not reported again.
    after: ['unsafe-kernel-deref', 'non-core-field-read'],
  },
  checkFunction(ctx, f) {
    if (ctx.model.bcc || ctx.loader.kind === 'bcc') return; // BCC compiles against each host's own headers.
    for (const chain of [...f.chains, ...f.macroChains]) {
      if (ctx.claimed.has(chain)) continue;
      if (readsNothing(chain.within) || chain.aliased || readsPacket(chain)) continue;
      check(ctx, f, chain);
    }
  },
};

/** A member type reduced to what decides how a compiled read behaves. */
type Shape =
  | { readonly k: 'int'; readonly bytes: number; readonly signed: boolean | null }
  | { readonly k: 'enum'; readonly name: string }
  | { readonly k: 'ptr'; readonly to: string }
  | { readonly k: 'array'; readonly elem: string; readonly n: string }
  | { readonly k: 'agg'; readonly name: string }
  | { readonly k: 'func' }
  | { readonly k: 'float'; readonly bytes: number }
  | { readonly k: 'unknown' };

/** How the code reaches the member's value. */
type Access = 'load' | 'probe' | 'string' | 'bitfield-macro' | 'address' | 'none';

/** Ways a member differs between the reference kernel and another. */
type Change = 'bitfield' | 'kind' | 'width' | 'sign' | 'pointee' | 'union';

function check(ctx: RuleContext, f: FunctionFacts, chain: Chain) {
  const at = runsOn(ctx, f, chain.top);
  if (at.empty) return;
  if (sizeGuarded(ctx, chain.top)) return;
  const kernels = at.kernels();
  const idx = kernels.map((k) => ctx.kernels.indexOf(k));
  chain.links.forEach((link, i) => {
    // A member the chain subscripts (`bits[0]`) is passed through: only its kind matters.
    const last = i === chain.links.length - 1 && link.index === 0;
    const access: Access = last ? finalAccess(chain) : 'load';
    if (access === 'none') return;
    const agg = link.agg;
    if (agg.kind !== 'struct' && agg.kind !== 'union') return;
    // The program's own structs, context structs and hand-written ___flavor copies say their own
    // type: authors write those for one kernel generation on purpose.
    if (ctx.model.structs.has(agg.name)) return;
    const lay = ctx.env.layoutOf(agg.name);
    if (!lay.kernelName || lay.layout === 'context' || lay.layout === 'user') return;
    const all = fieldAcross(ctx.db, ctx.kernels, lay.kernelName, link.field);
    const per = idx.map((j) => all[j]);
    if (per.some((p) => p.present !== true)) return; // Absence is field-missing-in-range's finding.
    const shapes = shapesOf(ctx.db, all);
    const perShapes = idx.map((j) => shapes[j]);
    const next = chain.links[i + 1]?.op;
    const resizes = ctx.loader.kind === 'libbpf';
    // The same member read the same way on the same kernels compares the same: decided once per
    // member and target (a 2,000-line file reads a few members hundreds of times).
    const decided = decisions.get(all, `${at.key()}|${link.index}|${next}|${last}|${access}|${resizes}`, () =>
      decide(per, perShapes, link.index, next, last, access, resizes),
    );
    if (decided) reportLink(ctx, chain, link, last, access, lay.kernelName, kernels, per, perShapes, decided);
  });
}

/**
 * Whether a kernel's declaration of a member fits how the chain goes on after it: `index`
 * subscripts, then a `.` (an aggregate value) or a `->` (one pointer or array level to one).
 */
function fitsSyntax(p: FieldOnKernel, index: number, next: '->' | '.' | undefined): boolean {
  const levels = typeLevels(p.type ?? '');
  if (next === undefined) return levels >= index;
  return !!p.ref && levels === index + (next === '->' ? 1 : 0);
}

/** How the chain's last member is read. */
function finalAccess(chain: Chain): Access {
  if (chain.within) {
    const macro = coreMacro(chain.within);
    if (macro?.bitfield) return 'bitfield-macro';
    if (macro?.string) return 'string';
    if (macro?.reads) return 'probe';
    return 'none';
  }
  if (chain.mode === 'load' || chain.mode === 'write') return 'load';
  if (chain.mode === 'address' && chain.probeRead) return chain.probeRead.fn.endsWith('_str') ? 'string' : 'probe';
  // `&p->f`, or an array member used as its address: only a change of kind matters.
  if (chain.mode === 'address') return 'address';
  return 'none';
}

/**
 * Whether the chain sits in a branch that asks the loader about the member's size or sign
 * (`if (bpf_core_field_size(sk->sk_protocol) == 2)`): the author handles both layouts there.
 */
function sizeGuarded(ctx: RuleContext, node: Node): boolean {
  for (let p = parentOf(node), c: Node = node, depth = 0; p && depth < 100; c = p, p = parentOf(p), depth++) {
    if (p.type === 'function_definition') break;
    if (p.type !== 'if_statement' && p.type !== 'conditional_expression') continue;
    const cond = p.childForFieldName('condition');
    if (!cond || cond.id === c.id) continue;
    if (/\bbpf_core_field_(size|signed)\s*\(/.test(ctx.text(cond))) return true;
  }
  return false;
}

/**
 * Shapes of a member on every target kernel, cached with the member's per-target answers (which
 * `fieldAcross` keeps), since typedef resolution asks the database once per kernel.
 */
const shapeCache = new OwnedCache<FieldOnKernel[], Shape[]>({
  name: 'field-type-changed-in-range.shapes',
  owner: "a member's per-target answers (layout.fieldAcross)",
  key: '—',
});
function shapesOf(db: KernelDb, all: FieldOnKernel[]): Shape[] {
  return shapeCache.get(all, '', () =>
    all.map((p) => (p.present === true ? shapeOf(db, p.type ?? '', p.kernel, p.size) : { k: 'unknown' as const })),
  );
}

/** The reference declaration (an index into the kernels) and how each other kernel differs from it. */
interface Decision {
  readonly ref: number;
  readonly changes: ReadonlyMap<number, Change[]>;
}

/** Decisions per member answer (`layout.fieldAcross`), by the kernels the code runs on and how it reads. */
const decisions = new OwnedCache<FieldOnKernel[], Decision | undefined>({
  name: 'field-type-changed-in-range.decisions',
  owner: "a member's per-target answers (layout.fieldAcross)",
  key: 'kernels the code runs on, subscripts, next operator, last link, access, loader',
});

/**
 * The compiled type is that of the vmlinux.h the program was built with, which the linter cannot
 * see: take the declaration most of these kernels share (the newest on a tie), and find the
 * kernels that differ from it. Only kernels whose layout is known can be it, and only a
 * declaration the chain's syntax fits (`rss_stat.count` was compiled against a struct).
 * Undefined when no kernel differs.
 */
function decide(
  per: readonly FieldOnKernel[],
  shapes: readonly Shape[],
  index: number,
  next: '->' | '.' | undefined,
  last: boolean,
  access: Access,
  resizes: boolean,
): Decision | undefined {
  const candidates = new Map<string, number>();
  per.forEach((p, i) => {
    if (p.bitfieldBits !== undefined && shapes[i].k !== 'unknown' && fitsSyntax(p, index, next))
      candidates.set(`${shapeKey(shapes[i])}|${p.bitfieldBits > 0}|${/union/.test(p.anon ?? '')}`, i);
  });
  let ref = -1;
  let best = -1;
  let changes = new Map<number, Change[]>();
  for (const c of candidates.values()) {
    const diff = new Map<number, Change[]>();
    per.forEach((p, i) => {
      if (i === c) return;
      const d = differences(per[c], shapes[c], p, shapes[i], last, access, resizes);
      if (d.length) diff.set(i, d);
    });
    const agree = per.length - diff.size;
    if (agree > best || (agree === best && c > ref)) {
      best = agree;
      ref = c;
      changes = diff;
    }
  }
  return ref < 0 || changes.size === 0 ? undefined : { ref, changes };
}

function reportLink(
  ctx: RuleContext,
  chain: Chain,
  link: Link,
  last: boolean,
  access: Access,
  struct: string,
  kernels: Kernel[],
  per: FieldOnKernel[],
  shapes: Shape[],
  { ref, changes }: Decision,
) {
  const r = per[ref];
  const rs = shapes[ref];
  const failing = [...changes.keys()].map((i) => kernels[i]);
  const kinds = new Set([...changes.values()].flat());
  const severity: Severity =
    kinds.has('bitfield') || kinds.has('kind') || (kinds.has('width') && access === 'load')
      ? 'error'
      : kinds.has('width') || kinds.has('sign') || kinds.has('pointee')
        ? 'warning'
        : 'info';
  const name = `${struct}.${link.field}`;
  // Group the differing kernels by how they declare the member, for a message that names them.
  const groups = new Map<string, Kernel[]>();
  for (const i of changes.keys()) {
    const key = spelling(per[i]);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(kernels[i]);
  }
  const variants = [...groups].map(([s, ks]) => `${s} on ${ks.length} (${describeKernels(ks, kernels)})`).join('; ');
  const why: string[] = [];
  if (kinds.has('bitfield')) {
    why.push(
      access === 'load'
        ? 'a plain load cannot read a bitfield: libbpf cannot relocate it to the bits, so the instruction is poisoned and the verifier rejects the program there'
        : "a probe read of the member copies whole bytes there, not the bitfield's bits",
    );
  }
  if (kinds.has('kind'))
    why.push('CO-RE does not match members of incompatible kinds, so the relocation fails and the program does not load there');
  if (kinds.has('width')) {
    why.push(
      access === 'load'
        ? ctx.loader.kind === 'libbpf'
          ? 'libbpf resizes only unsigned loads, so the signed load is poisoned and the program is rejected there'
          : 'the loader relocates the offset but not the load size, so the read takes the wrong number of bytes there'
        : `the read copies sizeof the compiled type (${sizeText(rs)}), not the member's size there; size it with bpf_core_field_size()`,
    );
  }
  if (kinds.has('sign')) why.push('the value is sign- or zero-extended differently there');
  if (kinds.has('pointee'))
    why.push(
      'it points to another type there, so CO-RE accesses through it against the compiled type fail to relocate unless a ___flavor struct covers it',
    );
  if (kinds.has('union'))
    why.push('it shares storage with other members of an anonymous union there, so it holds their value while they are the live member');
  const fixes = (kinds.has('bitfield') || kinds.has('width')) && !kinds.has('kind') ? bitfieldFix(ctx, chain, last, shapes) : [];
  ctx.report({
    node: last || chain.within ? chain.top : link.node,
    message: findingMessage(
      headline(name, spelling(r), groups, kernels.length, failing.length, consequenceOf(kinds, access, ctx.loader.kind === 'libbpf')),
      `It is ${variants}: ${why.join('; ')}.`,
      fixes.length ? 'Read it with BPF_CORE_READ_BITFIELD_PROBED(), which sizes, shifts and sign-extends at load time.' : undefined,
    ),
    kernels: failing.map((k) => k.name),
    fixes,
    severity,
  });
}

/**
 * The most telling headline that fits: both declarations, or the usual one (with the consequence,
 * then without it), or the count alone.
 */
function headline(
  name: string,
  ref: string,
  groups: ReadonlyMap<string, unknown>,
  total: number,
  failing: number,
  consequence: string,
): string {
  const by = `\`${name}\` is ${ref} on ${total - failing} of ${total} kernels this code runs on, but`;
  const named = [...(groups.size === 1 ? [`${by} ${[...groups.keys()][0]} on ${failing}`] : []), `${by} declared otherwise on ${failing}`];
  const count = `\`${name}\` is declared otherwise on ${failing} of ${total} kernels this code runs on`;
  return fitting(...named.map((h) => `${h}; ${consequence}`), ...named, `${count}; ${consequence}`, count);
}

/** The gravest of the changes' consequences, in a few words for a headline. */
function consequenceOf(kinds: ReadonlySet<Change>, access: Access, libbpf: boolean): string {
  if (kinds.has('bitfield')) return access === 'load' ? 'the verifier rejects the load there' : 'the read copies whole bytes there';
  if (kinds.has('kind')) return 'the CO-RE relocation fails there';
  if (kinds.has('width'))
    return access === 'load'
      ? libbpf
        ? 'the signed load is rejected there'
        : 'the load takes the wrong size there'
      : 'the read copies the wrong size there';
  if (kinds.has('sign')) return 'the value is extended differently there';
  if (kinds.has('pointee')) return 'accesses through it may not relocate there';
  return "it may hold another member's value there";
}

/**
 * What differs between the reference kernel's member `r` (shape `rs`) and kernel `p`'s (shape
 * `s`) for this access. `resizes`: the loader fixes the size of a direct unsigned load itself.
 */
function differences(r: FieldOnKernel, rs: Shape, p: FieldOnKernel, s: Shape, last: boolean, access: Access, resizes: boolean): Change[] {
  const out: Change[] = [];
  if (s.k === 'unknown') return out;
  // A composite member stays compatible with any composite; everything else must keep its kind.
  if (rs.k !== s.k) return ['kind'];
  // Only the kind of a member the chain passes through (or takes the address of) matters.
  if (!last || access === 'bitfield-macro' || access === 'address') return out;
  // Bitfield widths are known only from BTF; DepSurf kernels leave them unknown, never changed.
  const bitfield = r.bitfieldBits !== undefined && p.bitfieldBits !== undefined && r.bitfieldBits > 0 !== p.bitfieldBits > 0;
  if (bitfield && access !== 'string') out.push('bitfield');
  if (rs.k === 'int' && s.k === 'int') {
    if (!bitfield && access !== 'string' && rs.bytes !== s.bytes) {
      const unsignedBoth = rs.signed === false && s.signed === false;
      if (!(access === 'load' && unsignedBoth && resizes)) out.push('width');
    }
    if (rs.bytes === s.bytes && rs.signed !== null && s.signed !== null && rs.signed !== s.signed) out.push('sign');
  } else if (rs.k === 'ptr' && s.k === 'ptr') {
    if (rs.to !== '?' && s.to !== '?' && rs.to !== s.to) out.push('pointee');
  } else if (rs.k === 'array' && s.k === 'array') {
    if (rs.elem !== '?' && s.elem !== '?' && rs.elem !== s.elem) out.push('kind');
    else if (rs.n !== s.n && access !== 'string') out.push('width');
  }
  // Anonymous union membership is known only from BTF (DepSurf's tables do not say).
  if (r.basis === 'btf' && p.basis === 'btf' && /union/.test(r.anon ?? '') !== /union/.test(p.anon ?? '')) out.push('union');
  return out;
}

/** How a kernel declares the member, for messages. */
function spelling(p: FieldOnKernel): string {
  const t = `\`${p.type}\``;
  const base = p.bitfieldBits ? `${/^(8|11|18|8\d)$/.test(String(p.bitfieldBits)) ? 'an' : 'a'} ${p.bitfieldBits}-bit bitfield of ${t}` : t;
  return /union/.test(p.anon ?? '') ? `${base} in an anonymous union` : base;
}

function sizeText(s: Shape): string {
  return s.k === 'int' ? `${s.bytes} byte${s.bytes === 1 ? '' : 's'}` : 'its compiled size';
}

/** Integer spellings of C, in the BPF target's LP64 model (which is what the program is compiled in). */
function intShape(t: string): Shape | undefined {
  const words = t.split(/\s+/).filter(Boolean);
  if (words.length === 0 || !words.every((w) => /^(unsigned|signed|char|short|int|long|_Bool|bool)$/.test(w))) return undefined;
  const has = (w: string) => words.includes(w);
  const longs = words.filter((w) => w === 'long').length;
  const unsigned = has('unsigned');
  if (has('_Bool') || has('bool')) return { k: 'int', bytes: 1, signed: false };
  if (has('char')) return { k: 'int', bytes: 1, signed: unsigned ? false : has('signed') ? true : null };
  if (has('short')) return { k: 'int', bytes: 2, signed: !unsigned };
  if (longs > 0) return { k: 'int', bytes: 8, signed: !unsigned };
  return { k: 'int', bytes: 4, signed: !unsigned };
}

/**
 * The shape of a canonical type string on kernel `k`, resolving typedefs through that kernel's
 * BTF (or, where its data has no typedefs, through the built-in BTF kernels when they all agree).
 * `size` is the BTF size of the member when known.
 */
function shapeOf(db: KernelDb, type: string, k: Kernel, size: number | undefined, depth = 0): Shape {
  const tt = readTypeText(type);
  const t = tt.bare;
  if (!t || depth > 8) return { k: 'unknown' };
  if (tt.func) return { k: 'func' };
  if (tt.array) return { k: 'array', elem: shapeKey(shapeOf(db, tt.array.elem, k, undefined, depth + 1)), n: tt.array.dims };
  if (tt.pointee !== undefined) {
    const to = tt.pointee;
    return { k: 'ptr', to: to === 'void' ? 'void' : shapeKey(shapeOf(db, to, k, undefined, depth + 1)) };
  }
  if (tt.aggregate) return { k: 'agg', name: t };
  if (tt.isEnum) return { k: 'enum', name: t };
  if (t === 'float' || t === 'double' || t === 'long double') return { k: 'float', bytes: t === 'float' ? 4 : 8 };
  const int = intShape(t);
  if (int && int.k === 'int') return size !== undefined && size > 0 && size <= 8 && size !== int.bytes ? { ...int, bytes: size } : int;
  if (!/^[A-Za-z_]\w*$/.test(t)) return { k: 'unknown' };
  const target = typedefOn(db, t, k);
  if (target === undefined) return { k: 'unknown' };
  // An anonymous aggregate behind a typedef (`atomic_t`) is known by the typedef's name.
  if (/^(struct|union) \(anon\)$/.test(target)) return { k: 'agg', name: t };
  return shapeOf(db, target, k, size, depth + 1);
}

/** A string that is equal for two types exactly when a pointer to them means the same. */
function shapeKey(s: Shape): string {
  switch (s.k) {
    case 'int':
      return `int${s.bytes}${s.signed === null ? 'c' : s.signed ? 's' : 'u'}`;
    case 'float':
      return `float${s.bytes}`;
    case 'agg':
      return s.name;
    case 'enum':
      return s.name;
    case 'ptr':
      return s.to === '?' ? '?' : `${s.to}*`;
    case 'array':
      return s.elem === '?' ? '?' : `${s.elem}${s.n}`;
    case 'func':
      return 'func';
    default:
      return '?';
  }
}

const typedefCache = new OwnedCache<KernelDb, string | null>({
  name: 'field-type-changed-in-range.typedefs',
  owner: 'kernel database',
  key: 'typedef name',
});

/** Where typedef `name` leads on kernel `k`: its own BTF, else what every built-in BTF kernel says. */
function typedefOn(db: KernelDb, name: string, k: Kernel): string | undefined {
  const own = db.typedef(name, [k])[0];
  if (own.present === true) return own.value;
  const v = typedefCache.get(db, name, () => {
    const btf = db.kernels.filter((x) => !x.user && x.fidelity !== 'depsurf');
    const values = new Set(
      db
        .typedef(name, btf)
        .filter((a) => a.present)
        .map((a) => a.value ?? ''),
    );
    return values.size === 1 ? [...values][0] : null;
  });
  return v ?? undefined;
}

/**
 * `BPF_CORE_READ_BITFIELD_PROBED(p, f)` for a read of an integer member: the macro reads the
 * member's real bytes at its real offset and shifts out its bits, whatever its size, sign or
 * bitfield-ness on the kernel. Its value is an `unsigned long long`, so the fix is offered as
 * safe only where the member is unsigned on every kernel (the same value then).
 */
function bitfieldFix(ctx: RuleContext, chain: Chain, last: boolean, shapes: Shape[]): Fix[] {
  if (!last || !shapes.every((s) => s.k === 'int')) return [];
  const safe = shapes.every((s) => s.k === 'int' && s.signed === false);
  const text = ctx.model.text;
  let ptr: string;
  let fields: string;
  // The macro's field list cannot spell a subscript the chain has in the middle.
  if (chain.subscripted) return [];
  if (!chain.within) {
    if (chain.mode !== 'load') return [];
    let j = chain.links.length - 1;
    while (j >= 0 && chain.links[j].op !== '->') j--;
    if (j < 0) return [];
    const arg = chain.links[j].node.childForFieldName('argument');
    if (!arg) return [];
    ptr = text.slice(arg.startIndex, arg.endIndex);
    fields = chain.links
      .slice(j)
      .map((l) => l.field)
      .join('.');
  } else if (chain.within === 'BPF_CORE_READ') {
    // `BPF_CORE_READ(skb, sk, sk_protocol)` has no single-macro form: clang rejects a
    // BPF_CORE_READ() nested in the bitfield macro (nested preserve_access_index).
    if (chain.segments.length !== 1) return [];
    ptr = text.slice(chain.base.startIndex, chain.base.endIndex);
    fields = chain.segments[0].fields.join('.');
  } else {
    return [];
  }
  // The macro pastes its pointer argument into casts and member accesses: keep it a plain operand.
  if (!/^[A-Za-z_]\w*(\s*(->|\.)\s*[A-Za-z_]\w*)*$/.test(ptr.trim())) return [];
  const call = `BPF_CORE_READ_BITFIELD_PROBED(${ptr.trim()}, ${fields})`;
  return [
    {
      title: `Read with ${call}`,
      safe,
      needsCoreRead: true,
      edits: [{ range: ctx.lines.range(chain.top.startIndex, chain.top.endIndex), newText: call }],
    },
  ];
}
