/**
 * Read side of one database file: typed-array columns over the decompressed container, strings
 * decoded on demand, and indexes built lazily on first use so that loading stays cheap.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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

  private readonly fieldIndex = new Map<string, Map<string, number[]>>();
  private readonly idIndexes = new Map<string, Map<number, number[]>>();
  private readonly scans = new Map<string, number>();

  constructor(
    bytes: Uint8Array,
    readonly file: string,
    /** `bytes` are already decompressed ({@link KernelStore.openAsync}). */
    decompressed = false,
  ) {
    this.c = new ContainerReader(bytes, file, decompressed);
    this.meta = this.c.meta;
    this.kernels = this.c.meta.kernels as KernelMeta[];
    this.width = this.c.meta.ksetWords as number;
    if (!Array.isArray(this.kernels) || typeof this.width !== 'number')
      throw new Error(`${file}: kernel database header lacks the kernel list`);
    this.strOff = this.c.get('str.offsets', 'u32');
    this.strData = this.c.get('str.data', 'bytes');
    this.kwords = this.c.get('kset.words', 'u32');
  }

  /** Loads a database file. */
  static open(path: string): KernelStore {
    return new KernelStore(readFileSync(path), path);
  }

  /** Loads a database file, reading and decompressing it off the main thread. */
  static async openAsync(path: string): Promise<KernelStore> {
    const raw = await ContainerReader.decompress(new Uint8Array(await readFile(path)), path);
    return new KernelStore(raw, path, true);
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

  /**
   * The id of string `name`, or -1. Ids follow the strings' code-unit order (format 2), so this is
   * a binary search that decodes about twenty strings.
   */
  findString(name: string): number {
    let lo = 0;
    let hi = this.strOff.length - 2;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.str(mid);
      if (v === name) return mid;
      if (v < name) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Rows `[start, end)` of a column sorted by string id whose value is `id`. */
  private range(col: Uint32Array, id: number): [number, number] {
    let lo = 0;
    let hi = col.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (col[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < col.length && col[end] === id) end++;
    return [lo, end];
  }

  private aggRanges(name: string): { aggStart: number; aggEnd: number; fieldStart: number; fieldEnd: number } | undefined {
    const id = this.findString(name);
    if (id < 0) return undefined;
    const [aggStart, aggEnd] = this.range(this.col('agg.name', 'u32'), id);
    if (aggStart === aggEnd) return undefined;
    const [fieldStart, fieldEnd] = this.range(this.col('field.agg', 'u32'), id);
    return { aggStart, aggEnd, fieldStart, fieldEnd };
  }

  /** Names of all aggregates (structs, unions, anonymous ones filed by typedef). */
  aggregateNames(): string[] {
    const col = this.col('agg.name', 'u32');
    const out: string[] = [];
    for (let i = 0; i < col.length; i++) if (i === 0 || col[i] !== col[i - 1]) out.push(this.str(col[i]));
    return out;
  }

  /** Definitions of aggregate `name`: kind, size and the kernels that have that exact variant. */
  aggregate(name: string): { kind: 'struct' | 'union'; size: number; kset: number }[] {
    const e = this.aggRanges(name);
    if (!e) return [];
    const kind = this.col('agg.kind', 'u8');
    const size = this.col('agg.size', 'i32');
    const kset = this.col('agg.kset', 'u32');
    const out = [];
    for (let i = e.aggStart; i < e.aggEnd; i++)
      out.push({ kind: kind[i] === 1 ? ('union' as const) : ('struct' as const), size: size[i], kset: kset[i] });
    return out;
  }

  /** Field rows of `agg` grouped by field name, in first-seen order. */
  fields(agg: string): Map<string, number[]> {
    let m = this.fieldIndex.get(agg);
    if (!m) {
      m = new Map();
      const e = this.aggRanges(agg);
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
   * Rows where `col1` is `v1` and `col2` is `v2`, in a table sorted by (col1, col2) — enum values
   * by (enum, name): two binary searches.
   */
  rowsByPair(table: string, col1: string, v1: string, col2: string, v2: string): number[] {
    const id1 = this.findString(v1);
    const id2 = this.findString(v2);
    if (id1 < 0 || id2 < 0) return [];
    const [a, b] = this.range(this.col(`${table}.${col1}`, 'u32'), id1);
    const c2 = this.col(`${table}.${col2}`, 'u32');
    let lo = a;
    let hi = b;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c2[mid] < id2) lo = mid + 1;
      else hi = mid;
    }
    const out: number[] = [];
    for (let i = lo; i < b && c2[i] === id2; i++) out.push(i);
    return out;
  }

  /** Tables whose rows are sorted by this column (so by its string ids). */
  private static readonly SORTED = new Set([
    'func.name',
    'proto.func',
    'typedef.name',
    'tp.event',
    'config.name',
    'var.name',
    'agg.name',
    'field.agg',
    'enumv.enum',
  ]);

  /**
   * Rows of a table whose column `col` (a string id) equals `name`: a binary search where the
   * table is sorted by that column, else an index of ids built once (no strings decoded).
   */
  rowsBy(table: string, col: string, name: string): number[] {
    const key = `${table}.${col}`;
    const id = this.findString(name);
    if (id < 0) return [];
    const column = this.col(key, 'u32');
    if (KernelStore.SORTED.has(key)) {
      const [a, b] = this.range(column, id);
      return Array.from({ length: b - a }, (_, i) => a + i);
    }
    let idx = this.idIndexes.get(key);
    // A few look-ups scan the ids; many pay for an index once (building one costs tens of ms).
    const scans = (this.scans.get(key) ?? 0) + 1;
    this.scans.set(key, scans);
    if (!idx && scans <= 64) {
      const out: number[] = [];
      for (let i = 0; i < column.length; i++) if (column[i] === id) out.push(i);
      return out;
    }
    if (!idx) {
      idx = new Map();
      for (let i = 0; i < column.length; i++) {
        const list = idx.get(column[i]);
        if (list) list.push(i);
        else idx.set(column[i], [i]);
      }
      this.idIndexes.set(key, idx);
    }
    return idx.get(id) ?? [];
  }

  /** Every distinct value of string column `table.col`. */
  distinct(table: string, col: string): string[] {
    return [...new Set(this.col(`${table}.${col}`, 'u32'))].map((id) => this.str(id));
  }
}
