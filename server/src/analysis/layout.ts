/**
 * How a field path's offset varies across the target kernels: the offset a fixed-layout read
 * bakes in is right only where every kernel agrees with it.
 */
import { OwnedCache } from './memo';
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

/** Per database, by target kernel ids and member (bounded: a settings change fills new entries). */
const spreads = new OwnedCache<KernelDb, OffsetSpread>(
  { name: 'layout.offsetSpread', owner: 'kernel database', key: 'target kernel ids, struct and member path' },
  50_000,
);
const fieldsAcross = new OwnedCache<KernelDb, FieldOnKernel[]>(
  { name: 'layout.fieldAcross', owner: 'kernel database', key: 'target kernel ids, struct and member' },
  50_000,
);

/**
 * `struct.field` on every target kernel, in target order, cached per target: rules ask about the
 * same few members again and again.
 */
export function fieldAcross(db: KernelDb, kernels: readonly Kernel[], struct: string, field: string): FieldOnKernel[] {
  return fieldsAcross.get(db, `${targetKey(kernels)}\u0000${struct}.${field}`, () => kernels.map((k) => db.fieldOn(struct, field, k)));
}

/** The offset of `struct.f1.f2…` (following each field's aggregate) on every kernel. */
export function offsetSpread(db: KernelDb, kernels: readonly Kernel[], struct: string, fields: readonly string[]): OffsetSpread {
  return spreads.get(db, `${targetKey(kernels)}\u0000${struct}.${fields.join('.')}`, () => computeSpread(db, kernels, struct, fields));
}

const targetKeys = new OwnedCache<readonly Kernel[], string>({ name: 'layout.targetKey', owner: 'one target kernel list', key: '—' });

/** A target's key: its kernels' ids (joined once per list: every member lookup asks for it). */
function targetKey(kernels: readonly Kernel[]): string {
  return targetKeys.get(kernels, '', () => kernels.map((k) => k.id).join(','));
}

function computeSpread(db: KernelDb, kernels: readonly Kernel[], struct: string, fields: readonly string[]): OffsetSpread {
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
    missing,
    unknown,
    known,
  };
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
  // Not toLocaleString: its first call loads ICU's number formats (~35 ms of a cold start).
  if (!Number.isInteger(n)) return String(n);
  const digits = String(Math.abs(n));
  const grouped = digits.replace(/\B(?=(\d{3})+$)/g, ',');
  return n < 0 ? `-${grouped}` : grouped;
}
