/**
 * Read side of one database file: typed-array columns over the decompressed container, strings
 * decoded on demand, and indexes built lazily on first use so that loading stays cheap.
 */
import { readFile } from 'node:fs/promises';
import { closeSync, readFileSync } from 'node:fs';
import { ContainerReader, readTwin, readTwinAsync, type ColumnOf, type Twin } from './container';
import type { KernelMeta } from './schema';
import { detached } from '../strings';

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

/**
 * Columns a store read from its twin reads in pages, as they are used, by table: the field table's
 * columns but the one it is sorted by (13 MB of the built-in store's 28), the rows of the structs
 * asked for ({@link KernelStore.fields} hands out every field row, and makes them readable first);
 * the functions' and enum constants' kernel sets and values (3.4 MB), the rows
 * {@link KernelStore.rowsBy} and {@link KernelStore.enumRows} hand out; and the strings' bytes
 * (7 MB), the string asked for ({@link KernelStore.str} decodes every string). Twenty open
 * documents read ~1.6 MB of the strings and well under 1 MB of the rest.
 */
const PAGED: Readonly<Record<string, readonly string[]>> = {
  field: ['name', 'type', 'tags', 'off', 'bf', 'size', 'anon', 'ref', 'kset'].map((c) => `field.${c}`),
  func: ['func.kset', 'func.kfunc', 'func.inlined'],
  enumv: ['enumv.value', 'enumv.big', 'enumv.kset'],
  str: ['str.data'],
};
const LAZY_SECTIONS: ReadonlySet<string> = new Set(Object.values(PAGED).flat());
/** {@link KernelStore.rowsBy} answers kept at most; past it they start over. */
const ROWS_BY_MEMO_LIMIT = 20_000;

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
  /** {@link rowsBy}'s answers, by table, column and name. */
  private readonly rowsByMemo = new Map<string, readonly number[]>();
  /** Rows of one field of one aggregate ({@link fieldRows}), by aggregate then field name. */
  private readonly fieldRowIndex = new Map<string, Map<string, readonly number[]>>();
  /** Per column not sorted by its ids, its rows in the order of their ids ({@link rowsBy}). */
  private readonly idIndexes = new Map<string, IdIndex>();
  private readonly scans = new Map<string, number>();

  constructor(
    bytes: Uint8Array,
    readonly file: string,
    /** `bytes` are already decompressed ({@link KernelStore.openAsync}). */
    decompressed = false,
    /** `bytes` are a twin read without {@link LAZY_SECTIONS} (container.ts `readTwin`). */
    twin?: Twin,
  ) {
    this.c = new ContainerReader(bytes, file, decompressed, twin);
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
    return KernelStore.fromTwin(path) ?? new KernelStore(readFileSync(path), path);
  }

  /** Loads a database file, reading and decompressing it off the main thread. */
  static async openAsync(path: string): Promise<KernelStore> {
    const twin = KernelStore.fromTwinBytes(await readTwinAsync(path, LAZY_SECTIONS), path);
    if (twin) return twin;
    const raw = await ContainerReader.decompress(new Uint8Array(await readFile(path)), path);
    return new KernelStore(raw, path, true);
  }

  /** The store from the file's decompressed twin (container.ts), when it has a valid one. */
  private static fromTwin(path: string): KernelStore | undefined {
    return KernelStore.fromTwinBytes(readTwin(path, LAZY_SECTIONS), path);
  }

  private static fromTwinBytes(twin: Twin | undefined, path: string): KernelStore | undefined {
    if (!twin) return undefined;
    try {
      return new KernelStore(twin.bytes, path, true, twin);
    } catch {
      // A damaged twin: the file itself decides.
      if (twin.fd !== undefined) closeSync(twin.fd);
      return undefined;
    }
  }

  /** The string with id `id`. */
  str(id: number): string {
    if (id === 0) return '';
    let s = this.strCache.get(id);
    if (s === undefined) {
      const from = this.strOff[id];
      const to = this.strOff[id + 1];
      this.c.ensureRows('str.data', from, to);
      s = this.decoder.decode(this.strData.subarray(from, to));
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
  /**
   * Column `name` (e.g. `func.kset`) as a typed array, cached, every row readable: a paged column
   * is read whole on first use here (a scan of the whole column).
   */
  col<T extends 'u8' | 'i8' | 'u32' | 'i32' | 'f64'>(name: string, type: T): ColumnOf<T> {
    let c = this.cols.get(name) as ColumnOf<T> | undefined;
    if (!c) {
      c = this.view(name, type);
      if (LAZY_SECTIONS.has(name)) this.c.ensureRows(name, 0, c.length);
      this.cols.set(name, c);
    }
    return c;
  }

  private readonly views = new Map<string, unknown>();
  /**
   * Column `name` as it is, cached: of a paged column ({@link PAGED}), only the rows that
   * {@link fields}, {@link rowsBy} and {@link enumRows} handed out are readable, which is all a
   * look-up by those rows needs.
   */
  view<T extends 'u8' | 'i8' | 'u32' | 'i32' | 'f64'>(name: string, type: T): ColumnOf<T> {
    let c = this.views.get(name);
    if (!c) {
      c = this.c.get(name, type);
      this.views.set(name, c);
    }
    return c as ColumnOf<T>;
  }

  /** Makes rows `[from, to)` of `table`'s paged columns readable. */
  private readable(table: string, from: number, to: number): void {
    const paged = PAGED[table];
    if (paged) for (const name of paged) this.c.ensureRows(name, from, to);
  }

  /** Makes `rows` of `table`'s paged columns readable, and returns them. */
  private readableRows<R extends readonly number[]>(table: string, rows: R): R {
    if (PAGED[table]) for (const r of rows) this.readable(table, r, r + 1);
    return rows;
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
  private range(col: Uint32Array, id: number, from = 0, to = col.length): [number, number] {
    return [lowerBound(col, id, from, to), lowerBound(col, id + 1, from, to)];
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
      const e = this.aggRanges(agg);
      // Every field row handed out comes from here: make them readable.
      if (e) this.readable('field', e.fieldStart, e.fieldEnd);
      m = e ? this.rowsByName(this.view('field.name', 'u32'), e.fieldStart, e.fieldEnd) : new Map<string, number[]>();
      this.fieldIndex.set(detached(agg), m);
    }
    return m;
  }

  /**
   * The rows of field `field` of `agg`, as {@link fields} has them, without indexing every field:
   * the table is sorted by aggregate, then field name, so the rows are found by a binary search
   * over the aggregate's names (no name decoded). A look-up of one member (every `a->b` a program
   * reads, on every kernel) reads only those rows: `task_struct`'s index alone is ~7,000 rows of
   * nine columns, ~9 ms to read and decode cold.
   */
  fieldRows(agg: string, field: string): readonly number[] {
    const all = this.fieldIndex.get(agg);
    if (all) return all.get(field) ?? [];
    let byName = this.fieldRowIndex.get(agg);
    let rows = byName?.get(field);
    if (rows) return rows;
    rows = [];
    const e = this.aggRanges(agg);
    const id = e ? this.findString(field) : -1;
    if (e && id >= 0) {
      this.c.ensureRows('field.name', e.fieldStart, e.fieldEnd);
      const [lo, hi] = this.range(this.view('field.name', 'u32'), id, e.fieldStart, e.fieldEnd);
      this.readable('field', lo, hi);
      rows = Array.from({ length: hi - lo }, (_, k) => lo + k);
    }
    if (!byName) this.fieldRowIndex.set(detached(agg), (byName = new Map()));
    byName.set(detached(field), rows);
    return rows;
  }

  /**
   * Rows `[from, to)` of string column `names`, by the string each holds (a struct's fields, a
   * small enum's constants). The loop is a method of its own for the reason {@link rowsWithId} gives.
   */
  private rowsByName(names: Uint32Array, from: number, to: number): Map<string, number[]> {
    const m = new Map<string, number[]>();
    for (let r = from; r < to; r++) {
      const n = this.str(names[r]);
      const list = m.get(n);
      if (list) list.push(r);
      else m.set(n, [r]);
    }
    return m;
  }

  /** The field table's columns a field row is decoded from, looked up once. */
  private fieldColumns?: {
    readonly type: Uint32Array;
    readonly tags: Uint32Array;
    readonly off: Int32Array;
    readonly bf: Int8Array;
    readonly size: Int32Array;
    readonly anon: Uint32Array;
    readonly ref: Uint32Array;
    readonly kset: Uint32Array;
  };

  /** Decodes field row `i`, one that {@link fields} handed out. */
  fieldRecord(i: number): FieldRecord {
    const f = (this.fieldColumns ??= {
      type: this.view('field.type', 'u32'),
      tags: this.view('field.tags', 'u32'),
      off: this.view('field.off', 'i32'),
      bf: this.view('field.bf', 'i8'),
      size: this.view('field.size', 'i32'),
      anon: this.view('field.anon', 'u32'),
      ref: this.view('field.ref', 'u32'),
      kset: this.view('field.kset', 'u32'),
    });
    return {
      type: this.str(f.type[i]),
      tags: this.str(f.tags[i]),
      offsetBits: f.off[i],
      bitfieldBits: f.bf[i],
      size: f.size[i],
      anon: this.str(f.anon[i]),
      ref: this.str(f.ref[i]),
      kset: f.kset[i],
    };
  }

  private readonly enumIndexes = new Map<string, Map<string, number[]>>();
  /**
   * The rows of constant `name` of enum `enumName` (`''`: anonymous enums). The table is sorted
   * by (enum, name): a small enum's rows are indexed by name once (a kernel's helpers are ~200
   * constants of `bpf_func_id` asked for on every kernel); the anonymous enums' tens of thousands
   * of rows are binary-searched, never decoded. The paged columns are readable in those rows
   * ({@link view}).
   */
  enumRows(enumName: string, name: string): readonly number[] {
    let m = this.enumIndexes.get(enumName);
    if (!m) {
      const id = this.findString(enumName);
      const [a, b] = id >= 0 ? this.range(this.col('enumv.enum', 'u32'), id) : [0, 0];
      if (b - a > 1024) {
        const nameId = this.findString(name);
        if (nameId < 0) return [];
        const [lo, hi] = this.range(this.col('enumv.name', 'u32'), nameId, a, b);
        this.readable('enumv', lo, hi);
        return Array.from({ length: hi - lo }, (_, k) => lo + k);
      }
      m = this.rowsByName(this.col('enumv.name', 'u32'), a, b);
      this.enumIndexes.set(detached(enumName), m);
    }
    return this.readableRows('enumv', m.get(name) ?? []);
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
   * table is sorted by that column, else an index of ids built once (no strings decoded). The
   * table's paged columns are readable in those rows ({@link view}).
   */
  rowsBy(table: string, col: string, name: string): readonly number[] {
    // Asked again for every kernel of the store (a function, a typedef, a tracepoint on each of
    // 84): the answer is the store's, kept.
    const memo = `${table}.${col}\u0000${name}`;
    let rows = this.rowsByMemo.get(memo);
    if (!rows) {
      rows = this.rowsByUncached(table, col, name);
      if (this.rowsByMemo.size >= ROWS_BY_MEMO_LIMIT) this.rowsByMemo.clear();
      this.rowsByMemo.set(detached(memo), rows);
    }
    return rows;
  }

  private rowsByUncached(table: string, col: string, name: string): number[] {
    const key = `${table}.${col}`;
    const id = this.findString(name);
    if (id < 0) return [];
    const column = this.col(key, 'u32');
    if (KernelStore.SORTED.has(key)) {
      const [a, b] = this.range(column, id);
      this.readable(table, a, b);
      return Array.from({ length: b - a }, (_, i) => a + i);
    }
    let idx = this.idIndexes.get(key);
    // A few look-ups scan the ids; more pay for an index once (as much as ~8 scans).
    const scans = (this.scans.get(key) ?? 0) + 1;
    this.scans.set(key, scans);
    if (!idx && scans <= 8) return this.readableRows(table, rowsWithId(column, id));
    if (!idx) {
      idx = indexById(column);
      this.idIndexes.set(key, idx);
    }
    const from = lowerBound(idx.ids, id, 0, idx.ids.length);
    const to = lowerBound(idx.ids, id + 1, from, idx.ids.length);
    return this.readableRows(table, Array.from(idx.rows.subarray(from, to)));
  }

  /** Every distinct value of string column `table.col`. */
  distinct(table: string, col: string): string[] {
    return [...new Set(this.col(`${table}.${col}`, 'u32'))].map((id) => this.str(id));
  }
}

/**
 * The rows of `column` holding `id`, by a scan. A function of its own: V8 compiles the loop
 * while it first runs (on-stack replacement); in {@link KernelStore.rowsBy} each later scan
 * entered that code and fell back out of it at the code after the loop.
 */
function rowsWithId(column: Uint32Array, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < column.length; i++) if (column[i] === id) out.push(i);
  return out;
}

/** A column's rows ordered by their ids (ascending rows for one id), and the ids in that order. */
interface IdIndex {
  readonly rows: Uint32Array;
  readonly ids: Uint32Array;
}

/**
 * The {@link IdIndex} of `column`, by counting: 8 bytes a row, where a map from each id to its
 * rows cost ~5 MB of heap for the enum constants' names.
 */
function indexById(column: Uint32Array): IdIndex {
  let max = 0;
  for (let r = 0; r < column.length; r++) if (column[r] > max) max = column[r];
  const next = new Uint32Array(max + 2);
  for (let r = 0; r < column.length; r++) next[column[r] + 1]++;
  for (let v = 1; v < next.length; v++) next[v] += next[v - 1];
  const rows = new Uint32Array(column.length);
  const ids = new Uint32Array(column.length);
  for (let r = 0; r < column.length; r++) {
    const at = next[column[r]]++;
    rows[at] = r;
    ids[at] = column[r];
  }
  return { rows, ids };
}

/** The first index in `[from, to)` of sorted `col` whose value is not below `v`. */
function lowerBound(col: Uint32Array, v: number, from: number, to: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (col[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
