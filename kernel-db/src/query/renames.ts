/**
 * Which members of a struct are a queried member under another name, from layout evidence only.
 *
 * A member that disappears between two kernels was renamed only if, in those two kernels, the
 * new member took its place: where the old name disappears (the newest kernel that has it and the
 * oldest that lacks it, on one architecture and preferably one distro family), the new member sits
 * at the old one's offset or between the same neighbours, with a compatible type, and no kernel
 * ever has both names. Only kernels with layouts (BTF: offsets) are evidence; a similar name
 * ranks candidates of one such pair but never makes one.
 */
import { compareVersions } from '../version';

/** What the evidence needs of a kernel. */
export interface LayoutKernel {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly distro: string;
  readonly flavour: string;
  readonly fidelity: string;
}

/** A member of the struct on one kernel with a known layout. */
export interface LaidOutMember {
  readonly name: string;
  readonly type: string;
  readonly offsetBits: number;
  readonly bitfieldBits: number;
  readonly size: number;
}

/** The database as the evidence reads it, for one struct. */
export interface RenameSource<K extends LayoutKernel> {
  /** Kernels with the struct and its layout (offsets known). */
  readonly layoutKernels: readonly K[];
  /** Every kernel whose member list is known (with or without offsets). */
  readonly allKernels: readonly K[];
  /** The struct's members on a layout kernel. */
  members(k: K): readonly LaidOutMember[];
  /** Whether the struct has member `name` on `k`. */
  has(name: string, k: K): boolean;
  /** What typedef `name` stands for on `k`, if it is one. */
  typedef(name: string, k: K): string | undefined;
}

/** Two adjacent kernels where the queried member is on one and the candidate on the other. */
export interface RenamePair {
  /** The kernel with the queried member. */
  readonly withField: string;
  /** The kernel with the candidate instead. */
  readonly withName: string;
  readonly sameOffset: boolean;
  readonly sameNeighbours: boolean;
  readonly sameType: boolean;
}

/** A member that the layouts show to be the queried one renamed, with the pairs that show it. */
export interface RenameEvidence {
  readonly name: string;
  readonly pairs: RenamePair[];
}

/**
 * Names alike enough to be one member renamed: `state`/`__state`, `i_ctime`/`__i_ctime`/`i_ctime_sec`.
 * One-letter differences are not enough (`i_atime` is not `i_ctime`). Ranks candidates only.
 */
export function similar(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/^_+/, '');
  const x = norm(a);
  const y = norm(b);
  if (x === y) return true;
  // A unit suffix added or dropped: `i_ctime` → `i_ctime_sec`.
  return x.length >= 4 && y.length >= 4 && (x.startsWith(`${y}_`) || y.startsWith(`${x}_`));
}

/** The members the layouts show to be `field` renamed, the best supported first. */
export function renameEvidence<K extends LayoutKernel>(field: string, src: RenameSource<K>): RenameEvidence[] {
  const found = new Map<string, RenamePair[]>();
  for (const { h, l, strict } of boundaries(field, src)) {
    const pair = pairCandidate(field, h, src.members(h), l, src.members(l), src, strict);
    if (!pair || gap(field, pair.name, h, l, src)) continue;
    const list = found.get(pair.name) ?? [];
    list.push(pair.pair);
    found.set(pair.name, list);
  }
  const out: RenameEvidence[] = [];
  for (const [name, pairs] of found) {
    // A member some kernel has together with the queried one is another member, not its new name.
    if (src.allKernels.some((k) => src.has(field, k) && src.has(name, k))) continue;
    out.push({ name, pairs });
  }
  return out.sort(
    (a, b) =>
      b.pairs.length - a.pairs.length || Number(similar(b.name, field)) - Number(similar(a.name, field)) || (a.name < b.name ? -1 : 1),
  );
}

/** Adjacent kernels, `h` with the queried member and `l` without. */
interface Boundary<K> {
  readonly h: K;
  readonly l: K;
  /** Kernels of two distros: the candidate needs the same type between the same neighbours. */
  readonly strict: boolean;
}

/**
 * The kernel pairs where `field` appears or disappears: per architecture, adjacent kernels (by
 * version) of one build family (distro and flavour) with and without it; where no family of an
 * architecture has such a pair, adjacent kernels of one distro, then of the architecture (two
 * vendors' trees, which count only for a member of the same type between the same neighbours:
 * RHEL's and openEuler's reserved kABI slots line up at the same offsets by chance).
 */
function boundaries<K extends LayoutKernel>(field: string, src: RenameSource<K>): Boundary<K>[] {
  const byArch = new Map<string, K[]>();
  for (const k of src.layoutKernels) byArch.set(k.arch, [...(byArch.get(k.arch) ?? []), k]);
  const out: Boundary<K>[] = [];
  const levels: ((k: K) => string)[] = [(k) => `${k.distro}/${k.flavour}`, (k) => k.distro, () => ''];
  for (const kernels of byArch.values()) {
    for (const [n, level] of levels.entries()) {
      const groups = new Map<string, K[]>();
      for (const k of kernels) groups.set(level(k), [...(groups.get(level(k)) ?? []), k]);
      const pairs: Boundary<K>[] = [];
      for (const g of groups.values()) {
        g.sort((a, b) => compareVersions(a.version, b.version) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (let i = 0; i + 1 < g.length; i++) {
          const a = src.has(field, g[i]);
          const b = src.has(field, g[i + 1]);
          if (a && !b) pairs.push({ h: g[i], l: g[i + 1], strict: n === levels.length - 1 });
          else if (!a && b) pairs.push({ h: g[i + 1], l: g[i], strict: n === levels.length - 1 });
        }
      }
      if (pairs.length) {
        out.push(...pairs);
        break;
      }
    }
  }
  return out;
}

/**
 * The one member of `l` that takes `field`'s place from `h`: new on `l`, with a compatible type,
 * at `field`'s offset or between its neighbours (the members just before and after it on `h`, or
 * the nearest ones that `l` has too, in that order on `l`). Where the best placed are several, a similar name decides;
 * otherwise the pair shows nothing.
 */
function pairCandidate<K extends LayoutKernel>(
  field: string,
  h: K,
  hm: readonly LaidOutMember[],
  l: K,
  lm: readonly LaidOutMember[],
  src: RenameSource<K>,
  strict: boolean,
): { name: string; pair: RenamePair } | undefined {
  const f = hm.find((m) => m.name === field);
  if (!f) return undefined;
  const onH = new Set(hm.map((m) => m.name));
  const onL = new Map(lm.map((m) => [m.name, m.offsetBits]));
  // The neighbours where they are on `l`: the members at the nearest offsets before and after the
  // field on `h` (`next`: both still on `l`), and the nearest such members that `l` has too
  // (`common`: others may have come or gone around the field).
  const window = (only: (name: string) => boolean) => {
    let before = -1;
    let after = Number.POSITIVE_INFINITY;
    for (const m of hm) {
      if (!only(m.name)) continue;
      if (m.offsetBits < f.offsetBits && m.offsetBits > before) before = m.offsetBits;
      if (m.offsetBits > f.offsetBits && m.offsetBits < after) after = m.offsetBits;
    }
    // Of the members at that offset (a union's), any that `l` still has.
    const on = (off: number) => hm.find((m) => m.offsetBits === off && onL.has(m.name))?.name;
    const lo = before < 0 ? -1 : onL.get(on(before) ?? '');
    const hi = after === Number.POSITIVE_INFINITY ? after : onL.get(on(after) ?? '');
    return lo !== undefined && hi !== undefined && lo < hi ? { lo, hi } : undefined;
  };
  const next = window(() => true);
  const common = window((n) => onL.has(n));
  const between = (w: { lo: number; hi: number } | undefined, m: LaidOutMember) => !!w && m.offsetBits > w.lo && m.offsetBits < w.hi;
  const scored: { m: LaidOutMember; pair: RenamePair; score: number }[] = [];
  for (const m of lm) {
    if (onH.has(m.name) || !compatible(f, h, m, l, src)) continue;
    const sameOffset = m.offsetBits === f.offsetBits;
    // Where others came or went around it, only a member of the same type; two vendors' trees
    // (`strict`) count only with the same type between the very same neighbours.
    const sameType = m.type === f.type;
    const sameNeighbours = between(next, m) || (!strict && sameType && between(common, m));
    if (strict ? !(sameNeighbours && sameType) : !sameOffset && !sameNeighbours) continue;
    // An integer of another width is the same member only in the same place, the offset and the
    // neighbours (`state`, `long`, became `__state`, `unsigned int`); otherwise it is a replacement.
    if (m.size !== f.size && !(sameOffset && sameNeighbours)) continue;
    scored.push({
      m,
      pair: { withField: h.name, withName: l.name, sameOffset, sameNeighbours, sameType },
      score: Number(sameOffset) + Number(sameNeighbours),
    });
  }
  const top = Math.max(0, ...scored.map((s) => s.score));
  let best = scored.filter((s) => s.score === top);
  if (best.length > 1) best = best.filter((s) => similar(s.m.name, field));
  return best.length === 1 ? { name: best[0].m.name, pair: best[0].pair } : undefined;
}

/**
 * Whether a kernel between the pair's versions (any architecture, a full configuration) has the
 * struct with neither name: then one member went and the other came later, no rename
 * (`sk_buff.scm_io_uring` was removed before `unreadable` took its bit).
 */
function gap<K extends LayoutKernel>(field: string, name: string, h: K, l: K, src: RenameSource<K>): boolean {
  const [lo, hi] = compareVersions(h.version, l.version) < 0 ? [h.version, l.version] : [l.version, h.version];
  return src.allKernels.some(
    (k) =>
      k.fidelity !== 'btf-minimal-config' &&
      compareVersions(k.version, lo) > 0 &&
      compareVersions(k.version, hi) < 0 &&
      !src.has(field, k) &&
      !src.has(name, k),
  );
}

/**
 * Types one member can have under two names: the same type, two integers (a `long` that became an
 * `unsigned int`, as `task_struct.state` did, where the offset agrees), two pointers, or otherwise
 * the same kind and size; a bitfield only for a bitfield.
 */
function compatible<K extends LayoutKernel>(a: LaidOutMember, ka: K, b: LaidOutMember, kb: K, src: RenameSource<K>): boolean {
  if (a.bitfieldBits > 0 !== b.bitfieldBits > 0) return false;
  if (a.type === b.type) return true;
  const x = kindOf(a.type, ka, src);
  const y = kindOf(b.type, kb, src);
  if (x !== y || x === 'unknown') return false;
  return x === 'integer' || x === 'pointer' || a.size === b.size;
}

type Kind = 'integer' | 'pointer' | 'array' | 'struct' | 'union' | 'float' | 'unknown';

const INTEGER_WORDS = new Set(['char', 'short', 'int', 'long', 'signed', 'unsigned', '_Bool', 'bool']);

/** The kind of a canonical type string on kernel `k`, typedefs followed. */
function kindOf<K extends LayoutKernel>(type: string, k: K, src: RenameSource<K>, depth = 0): Kind {
  const t = type
    .replace(/\b(const|volatile|restrict)\b/g, ' ')
    .trim()
    .replace(/\s+/g, ' ');
  if (/\*\s*$/.test(t) || /^[^[]*\(\*/.test(t)) return 'pointer';
  if (/\]$/.test(t)) return 'array';
  if (t.startsWith('enum ')) return 'integer';
  if (t.startsWith('struct ')) return 'struct';
  if (t.startsWith('union ')) return 'union';
  if (t === 'float' || t === 'double' || t === 'long double') return 'float';
  if (t.split(' ').every((w) => INTEGER_WORDS.has(w))) return 'integer';
  if (depth >= 8) return 'unknown';
  const target = src.typedef(t, k);
  return target === undefined ? 'unknown' : kindOf(target, k, src, depth + 1);
}
