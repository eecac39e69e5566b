/**
 * Read side of one database file: typed-array columns over the decompressed container, strings
 * decoded on demand, and indexes built lazily on first use so that loading stays cheap.
 */
import { readFileSync } from 'node:fs';
import { ContainerReader, type ColumnOf } from './container';
import type { KernelMeta } from './schema';

/** A field row as the query layer sees it. */
export interface FieldRecord {
  readonly type: string;
  readonly tags: string;
  readonly offsetBits: number;
  readonly bitfieldBits: number;
  readonly size: number;
  readonly anon: string;
  readonly ref: string;
  /** Kernel-set id; test membership with {@link KernelStore.has}. */
  readonly kset: number;
}

/** One database file: the built-in one or a user-imported kernel. */
export class KernelStore {
  readonly kernels: readonly KernelMeta[];
  readonly meta: Record<string, unknown>;
  private readonly strOff: Uint32Array;
  private readonly strData: Uint8Array;
  private readonly strCache = new Map<number, string>();
  private readonly decoder = new TextDecoder();
  private readonly kwords: Uint32Array;
  private readonly width: number;
  private readonly c: ContainerReader;

  private aggIndex?: Map<string, { aggStart: number; aggEnd: number; fieldStart: number; fieldEnd: number }>;
  private readonly fieldIndex = new Map<string, Map<string, number[]>>();
  private nameIndexes = new Map<string, Map<string, number[]>>();

  constructor(bytes: Uint8Array, readonly file: string) {
    this.c = new ContainerReader(bytes, file);
    this.meta = this.c.meta;
    this.kernels = this.c.meta.kernels as KernelMeta[];
    this.width = this.c.meta.ksetWords as number;
    if (!Array.isArray(this.kernels) || typeof this.width !== 'number') throw new Error(`${file}: kernel database header lacks the kernel list`);
    this.strOff = this.c.get('str.offsets', 'u32');
    this.strData = this.c.get('str.data', 'bytes');
    this.kwords = this.c.get('kset.words', 'u32');
  }

  /** Loads a database file. */
  static open(path: string): KernelStore {
    return new KernelStore(readFileSync(path), path);
  }

  /** The string with id `id`. */
  str(id: number): string {
    if (id === 0) return '';
    let s = this.strCache.get(id);
    if (s === undefined) {
      s = this.decoder.decode(this.strData.subarray(this.strOff[id], this.strOff[id + 1]));
      this.strCache.set(id, s);
    }
    return s;
  }

  /** Whether kernel set `kset` contains local kernel index `k`. */
  has(kset: number, k: number): boolean {
    return (this.kwords[kset * this.width + (k >>> 5)] & (1 << (k & 31))) !== 0;
  }

  /** Local kernel indexes in kernel set `kset`. */
  members(kset: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < this.kernels.length; k++) if (this.has(kset, k)) out.push(k);
    return out;
  }

  private readonly cols = new Map<string, unknown>();
  /** Column `name` (e.g. `func.kset`) as a typed array, cached. */
  col<T extends 'u8' | 'i8' | 'u32' | 'i32' | 'f64'>(name: string, type: T): ColumnOf<T> {
    let c = this.cols.get(name);
    if (!c) {
      c = this.c.get(name, type);
      this.cols.set(name, c);
    }
    return c as ColumnOf<T>;
  }

  private aggs() {
    if (!this.aggIndex) {
      const idx = new Map<string, { aggStart: number; aggEnd: number; fieldStart: number; fieldEnd: number }>();
      const an = this.c.get('agg.name', 'u32');
      for (let i = 0; i < an.length; i++) {
        const name = this.str(an[i]);
        const e = idx.get(name);
        if (e) e.aggEnd = i + 1;
        else idx.set(name, { aggStart: i, aggEnd: i + 1, fieldStart: 0, fieldEnd: 0 });
      }
      const fa = this.c.get('field.agg', 'u32');
      let i = 0;
      while (i < fa.length) {
        const id = fa[i];
        let j = i + 1;
        while (j < fa.length && fa[j] === id) j++;
        const e = idx.get(this.str(id));
        if (e) {
          e.fieldStart = i;
          e.fieldEnd = j;
        }
        i = j;
      }
      this.aggIndex = idx;
    }
    return this.aggIndex;
  }

  /** Names of all aggregates (structs, unions, anonymous ones filed by typedef). */
  aggregateNames(): IterableIterator<string> {
    return this.aggs().keys();
  }

  /** Definitions of aggregate `name`: kind, size and the kernels that have that exact variant. */
  aggregate(name: string): { kind: 'struct' | 'union'; size: number; kset: number }[] {
    const e = this.aggs().get(name);
    if (!e) return [];
    const kind = this.col('agg.kind', 'u8');
    const size = this.col('agg.size', 'i32');
    const kset = this.col('agg.kset', 'u32');
    const out = [];
    for (let i = e.aggStart; i < e.aggEnd; i++) out.push({ kind: kind[i] === 1 ? 'union' as const : 'struct' as const, size: size[i], kset: kset[i] });
    return out;
  }

  /** Field rows of `agg` grouped by field name, in first-seen order. */
  fields(agg: string): Map<string, number[]> {
    let m = this.fieldIndex.get(agg);
    if (!m) {
      m = new Map();
      const e = this.aggs().get(agg);
      if (e) {
        const fn = this.col('field.name', 'u32');
        for (let i = e.fieldStart; i < e.fieldEnd; i++) {
          const n = this.str(fn[i]);
          const list = m.get(n);
          if (list) list.push(i);
          else m.set(n, [i]);
        }
      }
      this.fieldIndex.set(agg, m);
    }
    return m;
  }

  /** Decodes field row `i`. */
  fieldRecord(i: number): FieldRecord {
    const g = (n: string) => this.col(`field.${n}`, 'u32')[i];
    return {
      type: this.str(g('type')),
      tags: this.str(g('tags')),
      offsetBits: this.col('field.off', 'i32')[i],
      bitfieldBits: this.col('field.bf', 'i8')[i],
      size: this.col('field.size', 'i32')[i],
      anon: this.str(g('anon')),
      ref: this.str(g('ref')),
      kset: g('kset'),
    };
  }

  /**
   * Rows of a table whose column `col` (a string id) equals `name`; the index over that column
   * is built on first use.
   */
  rowsBy(table: string, col: string, name: string): number[] {
    const key = `${table}.${col}`;
    let idx = this.nameIndexes.get(key);
    if (!idx) {
      idx = new Map();
      const c = this.col(key, 'u32');
      for (let i = 0; i < c.length; i++) {
        const s = this.str(c[i]);
        const list = idx.get(s);
        if (list) list.push(i);
        else idx.set(s, [i]);
      }
      this.nameIndexes.set(key, idx);
    }
    return idx.get(name) ?? [];
  }

  /** Every distinct value of string column `table.col`. */
  distinct(table: string, col: string): string[] {
    this.rowsBy(table, col, '');
    return [...this.nameIndexes.get(`${table}.${col}`)!.keys()];
  }
}
