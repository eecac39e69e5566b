/**
 * Accumulates facts kernel by kernel and writes them as one compact database: each distinct fact
 * becomes one row with the set of kernels that have it. Output depends only on the facts and the
 * kernel order, never on insertion order of rows or hash iteration, so builds are reproducible.
 */
import type { KernelColumns, KernelFacts } from '../btf/extract';
import { ContainerWriter, type SectionType } from './container';
import { rankStrings } from './sortStrings';
import { TABLES, type KernelMeta, type TableName } from './schema';

type Cell = string | number;

type Row = { cells: Cell[]; kernels: number[] };

/**
 * One table's distinct rows, each with the kernels that have it.
 *
 * Rows of the first kernel are only appended, repeats and all: a one-kernel store (an import's
 * configuration options; its other facts come as columns) never needs a key per row, and {@link sortedOrder} drops the repeats. When a second kernel adds rows,
 * the set switches to rows keyed by their cells joined by NUL, which finds the row a fact of
 * another kernel belongs to. Both ways give the same rows in the same order.
 */
class RowSet {
  private list: Row[] = [];
  private byKey: Map<string, Row> | undefined;
  /** The kernel list the appended rows share (their one kernel); undefined before any row. */
  private only: number[] | undefined;

  /** `keyed`: key rows from the first on (tests compare the two ways). */
  constructor(keyed: boolean) {
    if (keyed) this.byKey = new Map();
  }

  add(kernel: number, cells: Cell[]): void {
    if (this.byKey === undefined) {
      this.only ??= [kernel];
      if (kernel === this.only[0]) {
        this.list.push({ cells, kernels: this.only });
        return;
      }
      this.keyRows();
    }
    const byKey = this.byKey!;
    const key = cells.join('\u0000');
    let r = byKey.get(key);
    if (!r) {
      r = { cells, kernels: [] };
      byKey.set(key, r);
      this.list.push(r);
    }
    if (r.kernels[r.kernels.length - 1] !== kernel) r.kernels.push(kernel);
  }

  /** Keys the appended rows, keeping the first of repeats; each row gets a kernel list of its own. */
  private keyRows(): void {
    const byKey = new Map<string, Row>();
    const list: Row[] = [];
    for (const { cells } of this.list) {
      const key = cells.join('\u0000');
      if (byKey.has(key)) continue;
      const r = { cells, kernels: [...this.only!] };
      byKey.set(key, r);
      list.push(r);
    }
    this.byKey = byKey;
    this.list = list;
  }

  /** Every row; before a second kernel came, repeats included. */
  all(): readonly Row[] {
    return this.list;
  }

  /**
   * The distinct rows in their key's order (cells joined by NUL), as indices into {@link all}:
   * rows of one aggregate or one name are contiguous, and the order is a pure function of the
   * rows. `first` holds each row's cell 0 as a string rank (its place in code-unit order),
   * `second` cell 1's where it is a string.
   */
  sortedOrder(first: Int32Array, second: Int32Array | undefined): Int32Array {
    const rows = this.list;
    const n = rows.length;
    if (this.byKey) {
      // The default sort compares UTF-16 code units, as `<` does, without a comparator call per pair.
      const keys = [...this.byKey.keys()];
      const at = new Map(keys.map((k, i) => [k, i]));
      return Int32Array.from(keys.sort(), (k) => at.get(k)!);
    }
    return distinctInOrder(n, first, second, (a, b) => compareCells(rows[a].cells, rows[b].cells));
  }
}

/**
 * The distinct rows of a table of `n` rows in their key's order, as row indices. `first` holds
 * each row's cell 0 as a string rank, `second` cell 1's where it is a string; `compare` compares
 * two rows cell by cell as their keys compare.
 *
 * Cell 0's rank, cell 1's where the bits suffice, and the row's index are packed in one number
 * and sorted natively: rows come together by those cells, in the order they were added. No cell
 * holds a NUL, so ordering each run by the cells after them gives the key's order. `bits` is a
 * double's 53 (tests lower it to reach the way taken when cell 1 does not fit).
 */
export function distinctInOrder(
  n: number,
  first: Int32Array,
  second: Int32Array | undefined,
  compare: (a: number, b: number) => number,
  bits = 53,
): Int32Array {
  if (n >= ROW_LIMIT) throw new Error(`a table of ${n} rows is more than one store holds`);
  const bitsFor = (x: number) => Math.ceil(Math.log2(x + 1));
  let maxFirst = 0;
  let maxSecond = 0;
  for (let i = 0; i < n; i++) {
    if (first[i] > maxFirst) maxFirst = first[i];
    if (second && second[i] > maxSecond) maxSecond = second[i];
  }
  const rowBits = bitsFor(n);
  // Cell 1 joins the packed number when the three fit a double's 53 bits.
  const both = second !== undefined && bitsFor(maxFirst) + bitsFor(maxSecond) + rowBits <= bits;
  const rowScale = 2 ** rowBits;
  const secondScale = both ? 2 ** bitsFor(maxSecond) : 1;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = (both ? first[i] * secondScale + second![i] : first[i]) * rowScale + i;
  packed.sort();
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = packed[i] % rowScale;
  const same = both
    ? (a: number, b: number) => first[a] === first[b] && second![a] === second![b]
    : (a: number, b: number) => first[a] === first[b];
  for (let start = 0, i = 1; i <= n; i++) {
    if (i < n && same(order[i], order[start])) continue;
    if (i - start > 1) {
      // Stable: of rows with equal cells, the first added stays first and is the one kept.
      const run = Array.from(order.subarray(start, i));
      run.sort(second && !both ? (a, b) => second[a] - second[b] || compare(a, b) : compare);
      order.set(run, start);
    }
    start = i;
  }
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const r = order[i];
    if (kept > 0) {
      const prev = order[kept - 1];
      if (first[prev] === first[r] && (!second || second[prev] === second[r]) && compare(prev, r) === 0) continue;
    }
    order[kept++] = r;
  }
  return order.subarray(0, kept);
}

/** Rows a table may hold in one store: a row's index packs below its first cell's rank. */
const ROW_LIMIT = 2 ** 26;

/**
 * Compares two rows of one table (as many cells each) as their keys compare: cell by cell,
 * numbers by their decimal text.
 */
function compareCells(a: readonly Cell[], b: readonly Cell[]): number {
  for (let j = 0; j < a.length; j++) {
    const x = a[j];
    const y = b[j];
    if (x === y) continue;
    const sx = String(x);
    const sy = String(y);
    if (sx !== sy) return sx < sy ? -1 : 1;
  }
  return 0;
}

/** A field as the builder takes it (from BTF or from DepSurf). */
export interface FieldRow {
  name: string;
  type: string;
  tags: string;
  offsetBits: number;
  bitfieldBits: number;
  size: number;
  anon: string;
  ref: string;
}

/** Builds a database from per-kernel facts. Kernels must be added in their final order. */
export class DbBuilder {
  /**
   * The kernels, by index; once the store is finished ({@link finish}, {@link finishAsync}), as
   * stored: `hasHelperEnum` is worked out from the rows there.
   */
  readonly kernels: KernelMeta[] = [];
  private readonly t;
  /** The one kernel's facts, when they came as columns. */
  private columns: { k: number; c: KernelColumns } | undefined;

  /**
   * `opts.keyed` keys every row by its cells from the first kernel on, the way rows are found once
   * a second kernel comes; the output is the same either way (tests check), only slower for one kernel.
   */
  constructor(opts: { keyed?: boolean } = {}) {
    const set = () => new RowSet(opts.keyed === true);
    this.t = {
      agg: set(),
      field: set(),
      enumv: set(),
      func: set(),
      funcKfunc: set(),
      funcInlined: set(),
      proto: set(),
      var: set(),
      typedef: set(),
      tp: set(),
      config: set(),
    };
  }

  /** Replaces fields of kernel `k`'s metadata (known only after its data was read). */
  updateKernel(k: number, patch: Partial<KernelMeta>): void {
    this.kernels[k] = { ...this.kernels[k], ...patch };
  }

  /** Registers a kernel and returns its index. */
  addKernel(meta: KernelMeta): number {
    if (this.columns) throw new Error("a store made of one kernel's columns takes no other kernel");
    if (this.kernels.some((k) => k.name === meta.name)) throw new Error(`duplicate kernel name ${meta.name}`);
    this.kernels.push(meta);
    return this.kernels.length - 1;
  }

  /** Adds an aggregate and its fields. */
  addAggregate(k: number, name: string, kind: 'struct' | 'union', size: number, fields: readonly FieldRow[]): void {
    this.t.agg.add(k, [name, kind === 'union' ? 1 : 0, size]);
    for (const f of fields) {
      this.t.field.add(k, [name, f.name, f.type, f.tags, f.offsetBits, f.bitfieldBits, f.size, f.anon, f.ref]);
    }
  }

  addEnumValue(k: number, enumName: string, name: string, value: number | bigint): void {
    this.t.enumv.add(k, [enumName, name, enumCell(value)]);
  }

  /** Adds a function; `inlined` marks a function that exists only inlined (no symbol to attach to). */
  addFunc(k: number, name: string, opts: { kfunc?: boolean; inlined?: boolean } = {}): void {
    if (opts.inlined) this.t.funcInlined.add(k, [name]);
    else this.t.func.add(k, [name]);
    if (opts.kfunc) this.t.funcKfunc.add(k, [name]);
  }

  /** Records a function's prototype on kernel `k`. */
  addProto(k: number, name: string, proto: string): void {
    this.t.proto.add(k, [name, proto]);
  }

  addVar(k: number, name: string, type: string): void {
    this.t.var.add(k, [name, type]);
  }

  addTypedef(k: number, name: string, type: string): void {
    this.t.typedef.add(k, [name, type]);
  }

  addTracepoint(k: number, event: string, cls: string): void {
    this.t.tp.add(k, [event, cls]);
  }

  addConfig(k: number, name: string, value: string): void {
    this.t.config.add(k, [name, value]);
  }

  /**
   * Adds one kernel's facts as columns: the way of a store of that kernel alone (every import),
   * with no other facts but its configuration. The store is the one {@link addKernelFacts} makes.
   */
  addKernelColumns(k: number, columns: KernelColumns): void {
    if (this.kernels.length !== 1 || k !== 0 || this.columns) throw new Error('columns make a store of one kernel, kernel 0');
    this.columns = { k, c: columns };
  }

  /** Adds everything extracted from one kernel's BTF. */
  addKernelFacts(k: number, facts: KernelFacts): void {
    for (const a of facts.aggregates.values()) this.addAggregate(k, a.name, a.kind, a.size, a.fields);
    for (const e of facts.enumValues) this.addEnumValue(k, e.enumName, e.name, e.value);
    for (const f of facts.funcs.values()) {
      this.addFunc(k, f.name, { kfunc: f.kfunc });
      if (f.proto) this.addProto(k, f.name, f.proto);
    }
    for (const [n, t] of facts.vars) this.addVar(k, n, t);
    for (const [n, t] of facts.typedefs) {
      this.addTypedef(k, n, t);
      // Raw tracepoints are visible in BTF as `btf_trace_<event>` typedefs.
      if (n.startsWith('btf_trace_')) this.addTracepoint(k, n.slice('btf_trace_'.length), '');
    }
  }

  /**
   * Serialises the database; `meta` is stored in the header beside the kernel list. `level` is
   * the gzip level: 9 for the committed database, lower for quick user imports.
   */
  finish(meta: Record<string, unknown>, level = 9): Uint8Array {
    const { w, header } = this.container(meta);
    return w.finish(header, level);
  }

  /** {@link finish}, compressing on zlib's thread pool, in pieces at once (see {@link ContainerWriter.finishAsync}). */
  finishAsync(meta: Record<string, unknown>, level: number): Promise<Uint8Array> {
    const { w, header } = this.container(meta);
    return w.finishAsync(header, level);
  }

  /** The sections of the database, and the header to store them with. */
  private container(meta: Record<string, unknown>): { w: ContainerWriter; header: Record<string, unknown> } {
    const t = this.t;
    const pool = new StringPool();
    const cols = this.columns;
    if (cols) pool.adopt(cols.c.strings);
    // Every string cell is looked up once, here; the rest of the work is on the ids.
    const views = {} as Record<keyof typeof t, TableView>;
    for (const name of Object.keys(STRING_CELLS) as (keyof typeof t)[]) {
      const rows = t[name].all();
      if (cols && name !== 'config') {
        if (rows.length > 0) throw new Error(`${name} rows were added beside a kernel's columns`);
        continue;
      }
      views[name] = {
        s: STRING_CELLS[name].map((c) => pool.column(rows, c)),
        cell: (r, c) => rows[r].cells[c],
        kernels: (r) => rows[r].kernels,
        sorted: (first, second) => t[name].sortedOrder(first, second),
        order: EMPTY,
      };
    }
    if (cols) Object.assign(views, columnViews(cols.k, cols.c, pool));
    // Strings get ids in sorted order, so readers find a name by binary search without decoding
    // the whole table, and tables sorted by a name column are sorted by its ids as well.
    const sorted = pool.sortedRanks();
    for (const name of Object.keys(views) as (keyof typeof t)[]) {
      const v = views[name];
      for (const col of v.s) sorted.rerank(col);
      // Function rows are read by their name's rank (below), in no order of their own.
      if (name === 'func' || name === 'funcKfunc' || name === 'funcInlined') continue;
      // Cell 1 is a string where STRING_CELLS lists it second.
      const second = (STRING_CELLS[name] as readonly number[])[1] === 1 ? v.s[1] : undefined;
      v.order = v.sorted(v.s[0], second);
    }
    const words = Math.max(1, Math.ceil(this.kernels.length / 32));
    const ksets = new KsetInterner(words);
    const ks = (kernels: number[] | undefined) => ksets.id(kernels ?? []);
    const w = new ContainerWriter();

    // Fills the table's columns in one pass: `fill(r, c, i)` stores the values of row `r` (an
    // index into the table's rows) as row `i`.
    type Column = ReturnType<typeof makeColumn>;
    const emit = (table: TableName, order: Int32Array, fill: (r: number, c: Column[], i: number) => void) => {
      const types = TABLES[table] as Record<string, SectionType>;
      const names = Object.keys(types);
      const arrays = names.map((c) => makeColumn(types[c], order.length));
      for (let i = 0; i < order.length; i++) fill(order[i], arrays, i);
      names.forEach((c, i) => w.add(`${table}.${c}`, types[c], arrays[i]));
    };

    {
      const { s, cell, kernels, order } = views.agg;
      emit('agg', order, (r, c, i) => {
        c[0][i] = s[0][r];
        c[1][i] = cell(r, 1) as number;
        c[2][i] = cell(r, 2) as number;
        c[3][i] = ks(kernels(r));
      });
    }
    {
      const { s, cell, kernels, order } = views.field;
      emit('field', order, (r, c, i) => {
        c[0][i] = s[0][r];
        c[1][i] = s[1][r];
        c[2][i] = s[2][r];
        c[3][i] = s[3][r];
        c[4][i] = cell(r, 4) as number;
        c[5][i] = cell(r, 5) as number;
        c[6][i] = cell(r, 6) as number;
        c[7][i] = s[4][r];
        c[8][i] = s[5][r];
        c[9][i] = ks(kernels(r));
      });
    }
    {
      const { s, cell, kernels, order } = views.enumv;
      emit('enumv', order, (r, c, i) => {
        // A value no double holds exactly is kept as its decimal text beside the rounded number.
        const v = cell(r, 2);
        const big = typeof v === 'string';
        c[0][i] = s[0][r];
        c[1][i] = s[1][r];
        c[2][i] = big ? Number(v) : v;
        c[3][i] = big ? s[2][r] : 0;
        c[4][i] = ks(kernels(r));
      });
    }
    {
      // One row per name present or inlined, with three kernel sets, in rank order.
      const byRank = (name: 'func' | 'funcKfunc' | 'funcInlined') => {
        const out: (number[] | undefined)[] = new Array(sorted.strings.length);
        const { s, kernels } = views[name];
        const col = s[0];
        for (let r = 0; r < col.length; r++) out[col[r]] = kernels(r);
        return out;
      };
      const present = byRank('func');
      const kf = byRank('funcKfunc');
      const inl = byRank('funcInlined');
      let n = 0;
      const names = new Int32Array(sorted.strings.length);
      for (let rank = 0; rank < names.length; rank++) if (present[rank] !== undefined || inl[rank] !== undefined) names[n++] = rank;
      emit('func', names.subarray(0, n), (rank, c, i) => {
        c[0][i] = rank;
        c[1][i] = ks(present[rank]);
        c[2][i] = ks(kf[rank]);
        c[3][i] = ks(inl[rank]);
      });
    }
    for (const name of ['proto', 'var', 'typedef', 'tp', 'config'] as const) {
      const { s, kernels, order } = views[name];
      emit(name, order, (r, c, i) => {
        c[0][i] = s[0][r];
        c[1][i] = s[1][r];
        c[2][i] = ks(kernels(r));
      });
    }
    const encoded = encodeStrings(sorted.strings);
    w.add('str.offsets', 'u32', encoded.offsets);
    w.add('str.data', 'bytes', encoded.data);
    w.add('kset.words', 'u32', ksets.words());
    // Per-kernel helper truth exists where the kernel's own `enum bpf_func_id` was read.
    const helperEnum = new Set<number>();
    const funcId = rankOf(sorted.strings, 'bpf_func_id');
    {
      const { s, kernels } = views.enumv;
      if (funcId > 0) for (let r = 0; r < s[0].length; r++) if (s[0][r] === funcId) for (const k of kernels(r) ?? []) helperEnum.add(k);
    }
    // The kernels as stored: what a caller reads in `kernels` once the store is finished.
    for (let i = 0; i < this.kernels.length; i++) this.updateKernel(i, { hasHelperEnum: helperEnum.has(i) });
    return { w, header: { ...meta, kernels: this.kernels, ksetWords: words } };
  }
}

const EMPTY = new Int32Array(0);

/**
 * An enumerator's value as a row holds it: a bigint a safe integer holds as that number (as the
 * BTF reader gives it), a value no double holds exactly as its decimal text.
 */
function enumCell(value: number | bigint): Cell {
  return typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()) : value;
}

/** A cell after the first in a row's key: a string cell's column in {@link TableView.s}, or a number cell. */
type KeyCell = { readonly str: number } | { readonly num: number };

/** The place of `s` in the sorted `strings`, -1 when it is not there. */
function rankOf(strings: readonly string[], s: string): number {
  let lo = 0;
  let hi = strings.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (strings[mid] === s) return mid;
    if (strings[mid] < s) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** A table's rows as {@link DbBuilder.container} reads them. */
interface TableView {
  /** The ids of the string cells ({@link STRING_CELLS}' order), by row; string ranks once reranked. */
  readonly s: Int32Array[];
  /** Cell `c` of row `r` (string cells are read from {@link s}). */
  cell(r: number, c: number): Cell;
  /** The kernels that have row `r`. */
  kernels(r: number): number[] | undefined;
  /**
   * The distinct rows in their key's order, given cell 0's ranks and cell 1's where it is a
   * string (once {@link s} holds ranks).
   */
  sorted(first: Int32Array, second: Int32Array | undefined): Int32Array;
  /** The distinct rows in their key's order. */
  order: Int32Array;
}

/**
 * Views of one kernel's columns as the tables the store holds: every row has kernel `k`. The
 * columns' string ids are the pool's (it adopted their strings); texts made here are added.
 */
function columnViews(
  k: number,
  c: KernelColumns,
  pool: StringPool,
): Record<Exclude<TableName, 'config'> | 'funcKfunc' | 'funcInlined', TableView> {
  const one = [k];
  const kernels = () => one;
  // Copies: ranking rewrites the id columns in place, and the caller's columns stay as they were.
  const ids = (xs: Int32Array) => xs.slice();
  // Numbers compare as their decimal text, as in a row's key.
  const text = (x: Cell, y: Cell) => (x === y ? 0 : String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0);
  // `after` lists the cells after the first in key order.
  const view = (s: Int32Array[], nums: Record<number, ArrayLike<Cell>>, after: readonly KeyCell[]): TableView => ({
    s,
    cell: (r, cell) => nums[cell][r],
    kernels,
    sorted: (first, second) =>
      distinctInOrder(first.length, first, second, (a, b) => {
        for (const k of after) {
          const d = 'str' in k ? s[k.str][a] - s[k.str][b] : text(nums[k.num][a], nums[k.num][b]);
          if (d !== 0) return d;
        }
        return 0;
      }),
    order: EMPTY,
  });
  const str = (i: number): KeyCell => ({ str: i });
  const num = (cell: number): KeyCell => ({ num: cell });
  const { agg, field, enumv, func, vars, typedefs } = c;
  const values = enumv.value.map(enumCell);
  const bigIds = new Int32Array(values.length);
  for (let r = 0; r < values.length; r++) if (typeof values[r] === 'string') bigIds[r] = pool.text(values[r] as string);
  const kfuncs = func.name.filter((_, r) => func.kfunc[r] === 1);
  const withProto: number[] = [];
  func.proto.forEach((p, r) => p !== 0 && withProto.push(r));
  const events: number[] = [];
  for (const n of typedefs.name) {
    const name = c.strings[n];
    if (name.startsWith('btf_trace_')) events.push(pool.text(name.slice('btf_trace_'.length)));
  }
  return {
    agg: view([ids(agg.name)], { 1: agg.union, 2: agg.size }, [num(1), num(2)]),
    field: view(
      [ids(field.agg), ids(field.name), ids(field.type), ids(field.tags), ids(field.anon), ids(field.ref)],
      { 4: field.offsetBits, 5: field.bitfieldBits, 6: field.size },
      [str(1), str(2), str(3), num(4), num(5), num(6), str(4), str(5)],
    ),
    enumv: view([ids(enumv.enumName), ids(enumv.name), bigIds], { 2: values }, [str(1), num(2)]),
    func: view([ids(func.name)], {}, []),
    funcKfunc: view([kfuncs], {}, []),
    funcInlined: view([EMPTY.slice()], {}, []),
    proto: view([Int32Array.from(withProto, (r) => func.name[r]), Int32Array.from(withProto, (r) => func.proto[r])], {}, [str(1)]),
    var: view([ids(vars.name), ids(vars.type)], {}, [str(1)]),
    typedef: view([ids(typedefs.name), ids(typedefs.type)], {}, [str(1)]),
    tp: view([Int32Array.from(events), new Int32Array(events.length)], {}, [str(1)]),
  };
}

/**
 * The cells of each table that may hold strings, in the order {@link DbBuilder.finish} reads their
 * ids. Cell 0 of every table is a string: rows are ordered by it first.
 */
const STRING_CELLS = {
  agg: [0],
  field: [0, 1, 2, 3, 7, 8],
  enumv: [0, 1, 2],
  func: [0],
  funcKfunc: [0],
  funcInlined: [0],
  proto: [0, 1],
  var: [0, 1],
  typedef: [0, 1],
  tp: [0, 1],
  config: [0, 1],
} as const;

function makeColumn(type: SectionType, n: number) {
  switch (type) {
    case 'u8':
    case 'bytes':
      return new Uint8Array(n);
    case 'i8':
      return new Int8Array(n);
    case 'u16':
      return new Uint16Array(n);
    case 'u32':
      return new Uint32Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'f64':
      return new Float64Array(n);
  }
}

/** Interns strings in the order they come; id 0 is ''. */
class StringPool {
  private readonly ids = new Map<string, number>([['', 0]]);
  private list: string[] = [''];
  /** Strings came as a list whose ids may repeat a text: ranking merges them. */
  private adopted = false;

  /** Takes `strings` as ids 0… (`strings[0]` is ''); texts interned later may repeat one of them. */
  adopt(strings: readonly string[]): void {
    if (this.list.length > 1 || strings[0] !== '') throw new Error('a pool adopts a list first, with id 0 for the empty string');
    this.list = strings.slice();
    this.adopted = true;
  }

  /** The id of `s`. */
  text(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.list.length;
      this.ids.set(s, id);
      this.list.push(s);
    }
    return id;
  }

  /**
   * The ids of cell `c` of each row (0 where it holds a number). Sorted rows repeat their first
   * cell (an aggregate's fields): the last string looked up is remembered.
   */
  column(rows: readonly Row[], c: number): Int32Array {
    const out = new Int32Array(rows.length);
    let last = '';
    let lastId = 0;
    for (let r = 0; r < rows.length; r++) {
      const v = rows[r].cells[c];
      if (typeof v !== 'string') continue;
      if (v !== last) {
        last = v;
        lastId = this.text(v);
      }
      out[r] = lastId;
    }
    return out;
  }

  /**
   * The strings in code-unit order ('' first), and `rerank`, which turns a column of ids into
   * their places in that order.
   */
  sortedRanks(): { strings: string[]; rerank(col: Int32Array): void } {
    // The default sort compares UTF-16 code units, the order readers search by (and is faster
    // than a comparator callback).
    let strings: string[];
    let rank: Int32Array;
    if (this.adopted) {
      // Ids may repeat a text: each text once, and every id of it the same rank.
      ({ strings, rank } = rankStrings(this.list));
    } else {
      strings = [...this.list].sort();
      rank = new Int32Array(strings.length);
      for (let i = 0; i < strings.length; i++) rank[this.ids.get(strings[i])!] = i;
    }
    return {
      strings,
      rerank(col) {
        for (let r = 0; r < col.length; r++) col[r] = rank[col[r]];
      },
    };
  }
}

/** The strings' UTF-8 bytes end to end, and where each starts (one more entry: the end). */
function encodeStrings(list: readonly string[]): { offsets: Uint32Array; data: Uint8Array } {
  const n = list.length;
  const offsets = new Uint32Array(n + 1);
  const joined = list.join('');
  const whole = Buffer.from(joined, 'utf8');
  if (whole.length === joined.length) {
    // One byte per code unit: all ASCII, so each string's bytes are its code units.
    let o = 0;
    for (let i = 0; i < n; i++) {
      offsets[i] = o;
      o += list[i].length;
    }
    offsets[n] = o;
    return { offsets, data: new Uint8Array(whole) };
  }
  // Encoded one by one: a lone surrogate at the end of one string must not pair with the next.
  const parts = list.map((x) => Buffer.from(x, 'utf8'));
  let o = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = o;
    o += parts[i].length;
  }
  offsets[n] = o;
  return { offsets, data: new Uint8Array(Buffer.concat(parts)) };
}

/** Interns kernel sets (ascending kernel lists) as fixed-width bitsets; set 0 is empty. */
class KsetInterner {
  private readonly ids = new Map<string, number>();
  private readonly all: number[] = [];
  /** Ids of the one-kernel sets, by kernel: most rows of an import, and many of a build. */
  private readonly single: number[] = [];

  constructor(private readonly width: number) {
    this.id([]);
  }

  id(list: number[]): number {
    if (list.length === 1) return (this.single[list[0]] ??= this.intern(list));
    return this.intern(list);
  }

  private intern(list: number[]): number {
    // Rows gather kernels in the order facts were added (BTF kernels, then DepSurf ones).
    const kernels = isAscending(list) ? list : [...list].sort((a, b) => a - b);
    const key = kernels.join(',');
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(key, id);
      const bits = new Array<number>(this.width).fill(0);
      for (const k of kernels) bits[k >>> 5] |= 1 << (k & 31);
      for (const b of bits) this.all.push(b >>> 0);
    }
    return id;
  }

  words(): Uint32Array {
    return Uint32Array.from(this.all);
  }
}

function isAscending(xs: readonly number[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1] >= xs[i]) return false;
  return true;
}
