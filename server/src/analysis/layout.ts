/**
 * How a field path's offset varies across the target kernels: the offset a fixed-layout read
 * bakes in is right only where every kernel agrees with it.
 */
import type { FieldOnKernel, Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { majorMinor } from '../../../kernel-db/src/version';

/** A field path's offset across kernels. */
export interface OffsetSpread {
  /** The most common byte offset among kernels with known offsets. */
  readonly common?: number;
  /** A kernel that has the common offset (the newest), for messages. */
  readonly commonOn?: Kernel;
  /** Kernels where the offset differs from the common one. */
  readonly differ: Kernel[];
  /** Kernels where some field of the path is missing (or the struct is). */
  readonly missing: Kernel[];
  /** Kernels whose data has no offsets (DepSurf). */
  readonly unknown: Kernel[];
  /** Kernels with a known offset. */
  readonly known: Kernel[];
}

/** Per-target caches; keyed by the target's kernel ids so a settings change starts afresh. */
const caches = new Map<string, Map<string, OffsetSpread>>();
const fieldCaches = new Map<string, Map<string, FieldOnKernel[]>>();

/**
 * `struct.field` on every target kernel, in target order, cached per target: rules ask about the
 * same few members again and again.
 */
export function fieldAcross(db: KernelDb, kernels: readonly Kernel[], struct: string, field: string): FieldOnKernel[] {
  const tkey = kernels.map((k) => k.id).join(',');
  let cache = fieldCaches.get(tkey);
  if (!cache) {
    if (fieldCaches.size > 8) fieldCaches.clear();
    cache = new Map();
    fieldCaches.set(tkey, cache);
  }
  const key = `${struct}.${field}`;
  let r = cache.get(key);
  if (!r) {
    r = kernels.map((k) => db.fieldOn(struct, field, k));
    cache.set(key, r);
  }
  return r;
}

/** The offset of `struct.f1.f2…` (following each field's aggregate) on every kernel. */
export function offsetSpread(db: KernelDb, kernels: readonly Kernel[], struct: string, fields: readonly string[]): OffsetSpread {
  const tkey = kernels.map((k) => k.id).join(',');
  let cache = caches.get(tkey);
  if (!cache) {
    if (caches.size > 8) caches.clear();
    cache = new Map();
    caches.set(tkey, cache);
  }
  const key = `${struct}.${fields.join('.')}`;
  const hit = cache.get(key);
  if (hit) return hit;

  const offsets = new Map<Kernel, number>();
  const missing: Kernel[] = [];
  const unknown: Kernel[] = [];
  for (const k of kernels) {
    let agg = struct;
    let total = 0;
    let state: 'ok' | 'missing' | 'unknown' = 'ok';
    for (const f of fields) {
      const r = fieldAcross(db, kernels, agg, f)[kernels.indexOf(k)];
      if (!r.present) {
        state = 'missing';
        break;
      }
      if (r.offsetBits === undefined) state = 'unknown';
      else total += r.offsetBits;
      agg = r.ref ?? '';
    }
    if (state === 'missing') missing.push(k);
    else if (state === 'unknown') unknown.push(k);
    else offsets.set(k, total / 8);
  }
  const counts = new Map<number, number>();
  for (const o of offsets.values()) counts.set(o, (counts.get(o) ?? 0) + 1);
  let common: number | undefined;
  for (const [o, c] of counts) if (common === undefined || c > counts.get(common)! || (c === counts.get(common)! && o < common)) common = o;
  const known = [...offsets.keys()];
  const withCommon = known.filter((k) => offsets.get(k) === common);
  const r: OffsetSpread = {
    ...(common !== undefined ? { common, commonOn: withCommon[withCommon.length - 1] } : {}),
    differ: known.filter((k) => offsets.get(k) !== common),
    missing, unknown, known,
  };
  cache.set(key, r);
  return r;
}

/** `6.1 x86_64`, `6.12 arm64 cloud`: a short kernel label for messages. */
export function shortLabel(k: Kernel): string {
  const flav = k.flavour === 'generic' || k.flavour === 'local' || k.flavour === 'user' ? '' : ` ${k.flavour}`;
  // Builds without a distro (developer, imported, this machine's) are best known by name.
  if (k.distro === 'user' || k.distro === 'unknown' || k.distro === 'local') return k.name;
  return `${k.distro} ${majorMinor(k.version)} ${k.arch}${flav}`;
}

/** `2,576`: numbers as the messages print them. */
export function num(n: number): string {
  return n.toLocaleString('en-US');
}
