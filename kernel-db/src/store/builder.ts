/**
 * Accumulates facts kernel by kernel and writes them as one compact database: each distinct fact
 * becomes one row with the set of kernels that have it. Output depends only on the facts and the
 * kernel order, never on insertion order of rows or hash iteration, so builds are reproducible.
 */
import type { KernelFacts } from '../btf/extract';
import { ContainerWriter, type SectionType } from './container';
import { TABLES, type KernelMeta, type TableName } from './schema';

type Cell = string | number;

type Row = { cells: Cell[]; kernels: number[] };

/**
 * One table's distinct rows, each with the kernels that have it.
 *
 * Rows of the first kernel are only appended, repeats and all: a one-kernel store (every import)
 * never needs a key per row, and {@link sorted} drops the repeats. When a second kernel adds rows,
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
   * Distinct rows sorted by their key (cells joined by NUL): rows of one aggregate or one name are
   * contiguous, and the order is a pure function of the rows. `strings` holds every string cell.
   */
  sorted(strings: Interner): Row[] {
    if (this.byKey) {
      // The default sort compares UTF-16 code units, as `<` does, without a comparator call per pair.
      const byKey = this.byKey;
      return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
    }
    // Appended rows: sorted by the ids of their first two cells (ids follow the strings' order,
    // and no cell holds a NUL, so this is the key's order), the rest compared as the key would.
    const rows = this.list;
    const n = rows.length;
    const wide = strings.size < 2 ** 26;
    const primary = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = rows[i].cells;
      const c0 = typeof c[0] === 'string' ? strings.id(c[0]) : 0;
      const c1 = typeof c[1] === 'string' ? strings.id(c[1]) : 0;
      primary[i] = wide ? c0 * 2 ** 26 + c1 : c0;
    }
    const order = Array.from({ length: n }, (_, i) => i);
    // Stable: of rows with equal cells, the first added stays first and is the one kept.
    order.sort((a, b) => primary[a] - primary[b] || compareCells(rows[a].cells, rows[b].cells));
    const out: Row[] = [];
    for (let i = 0; i < n; i++) {
      const r = rows[order[i]];
      if (out.length === 0 || compareCells(out[out.length - 1].cells, r.cells) !== 0) out.push(r);
    }
    return out;
  }
}

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
  readonly kernels: KernelMeta[] = [];
  private readonly t;

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

  /** `value`: a bigint a safe integer holds is stored as that number, as the BTF reader gives it. */
  addEnumValue(k: number, enumName: string, name: string, value: number | bigint): void {
    const v = typeof value === 'bigint' ? (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()) : value;
    this.t.enumv.add(k, [enumName, name, v]);
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

  /** Every string any table will store, '' included. */
  private allStrings(): Set<string> {
    const out = new Set<string>(['']);
    const stringCells: Record<string, number[]> = {
      agg: [0],
      // A field's aggregate (cell 0) is the name of an `agg` row added with it.
      field: [1, 2, 3, 7, 8],
      enumv: [0, 1, 2],
      func: [0],
      funcKfunc: [0],
      funcInlined: [0],
      proto: [0, 1],
      var: [0, 1],
      typedef: [0, 1],
      tp: [0, 1],
      config: [0, 1],
    };
    for (const [t, cols] of Object.entries(stringCells)) {
      for (const r of this.t[t as keyof typeof this.t].all()) {
        const cells = r.cells;
        for (const c of cols) {
          const v = cells[c];
          if (typeof v === 'string') out.add(v);
        }
      }
    }
    return out;
  }

  /**
   * Serialises the database; `meta` is stored in the header beside the kernel list. `level` is
   * the gzip level: 9 for the committed database, lower for quick user imports.
   */
  finish(meta: Record<string, unknown>, level = 9): Uint8Array {
    // Strings get ids in sorted order, so readers find a name by binary search without decoding
    // the whole table, and tables sorted by a name column are sorted by its ids as well.
    const strings = Interner.sorted(this.allStrings());
    const words = Math.max(1, Math.ceil(this.kernels.length / 32));
    const ksets = new KsetInterner(words);
    const w = new ContainerWriter();

    // Fills the table's columns in one pass: `cell(row, columns, i)` stores row `i`'s values.
    type Column = ReturnType<typeof makeColumn>;
    const emit = <R>(table: TableName, rows: readonly R[], cell: (r: R, c: Column[], i: number) => void) => {
      const cols = TABLES[table] as Record<string, SectionType>;
      const names = Object.keys(cols);
      const arrays = names.map((c) => makeColumn(cols[c], rows.length));
      for (let r = 0; r < rows.length; r++) cell(rows[r], arrays, r);
      names.forEach((c, i) => w.add(`${table}.${c}`, cols[c], arrays[i]));
    };
    // Sorted rows repeat their first cell (an aggregate's fields, an enum's constants): the last
    // string looked up is remembered.
    let lastStr = '';
    let lastId = 0;
    const s = (x: Cell) => {
      if (x !== lastStr) {
        lastStr = String(x);
        lastId = strings.id(lastStr);
      }
      return lastId;
    };
    const ks = (kernels: number[] | undefined) => ksets.id(kernels ?? []);

    emit('agg', this.t.agg.sorted(strings), ({ cells: x, kernels }: Row, c, i) => {
      c[0][i] = s(x[0]);
      c[1][i] = x[1] as number;
      c[2][i] = x[2] as number;
      c[3][i] = ks(kernels);
    });
    emit('field', this.t.field.sorted(strings), ({ cells: x, kernels }: Row, c, i) => {
      c[0][i] = s(x[0]);
      c[1][i] = s(x[1]);
      c[2][i] = s(x[2]);
      c[3][i] = s(x[3]);
      c[4][i] = x[4] as number;
      c[5][i] = x[5] as number;
      c[6][i] = x[6] as number;
      c[7][i] = s(x[7]);
      c[8][i] = s(x[8]);
      c[9][i] = ks(kernels);
    });
    emit('enumv', this.t.enumv.sorted(strings), ({ cells: [e, n, v], kernels }: Row, c, i) => {
      const big = typeof v === 'string';
      c[0][i] = s(e);
      c[1][i] = s(n);
      c[2][i] = big ? Number(v) : v;
      c[3][i] = big ? s(v) : 0;
      c[4][i] = ks(kernels);
    });
    const kf = new Map([...this.t.funcKfunc.all()].map((r) => [r.cells[0] as string, r.kernels]));
    const inl = new Map([...this.t.funcInlined.all()].map((r) => [r.cells[0] as string, r.kernels]));
    const present = new Map([...this.t.func.all()].map((r) => [r.cells[0] as string, r.kernels]));
    // The default sort compares UTF-16 code units, the order readers search by.
    const funcNames = [...new Set([...present.keys(), ...inl.keys()])].sort();
    emit('func', funcNames, (n: string, c, i) => {
      c[0][i] = s(n);
      c[1][i] = ks(present.get(n));
      c[2][i] = ks(kf.get(n));
      c[3][i] = ks(inl.get(n));
    });
    for (const t of ['proto', 'var', 'typedef', 'tp', 'config'] as const) {
      emit(t, this.t[t].sorted(strings), ({ cells: x, kernels }: Row, c, i) => {
        c[0][i] = s(x[0]);
        c[1][i] = s(x[1]);
        c[2][i] = ks(kernels);
      });
    }
    const encoded = strings.encode();
    w.add('str.offsets', 'u32', encoded.offsets);
    w.add('str.data', 'bytes', encoded.data);
    w.add('kset.words', 'u32', ksets.words());
    // Per-kernel helper truth exists where the kernel's own `enum bpf_func_id` was read.
    const helperEnum = new Set<number>();
    for (const r of this.t.enumv.all()) if (r.cells[0] === 'bpf_func_id') for (const k of r.kernels) helperEnum.add(k);
    const kernels = this.kernels.map((k, i) => ({ ...k, hasHelperEnum: helperEnum.has(i) }));
    return w.finish({ ...meta, kernels, ksetWords: words }, level);
  }
}

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

/** Interns strings; id 0 is ''. */
class Interner {
  private readonly ids = new Map<string, number>();
  private constructor(private readonly list: string[]) {}

  /** An interner whose ids follow the code-unit order of `strings` ('' first). */
  static sorted(strings: Set<string>): Interner {
    strings.add('');
    // The default sort compares UTF-16 code units, the order readers search by (and is faster
    // than a comparator callback); '' sorts first, so it gets id 0.
    const list = [...strings].sort();
    const it = new Interner(list);
    for (let i = 0; i < list.length; i++) it.ids.set(list[i], i);
    return it;
  }

  /** Number of strings. */
  get size(): number {
    return this.list.length;
  }

  id(s: string): number {
    if (s === '') return 0;
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.list.length;
      this.ids.set(s, id);
      this.list.push(s);
    }
    return id;
  }

  /** The strings' UTF-8 bytes end to end, and where each starts (one more entry: the end). */
  encode(): { offsets: Uint32Array; data: Uint8Array } {
    const n = this.list.length;
    const offsets = new Uint32Array(n + 1);
    const joined = this.list.join('');
    const whole = Buffer.from(joined, 'utf8');
    if (whole.length === joined.length) {
      // One byte per code unit: all ASCII, so each string's bytes are its code units.
      let o = 0;
      for (let i = 0; i < n; i++) {
        offsets[i] = o;
        o += this.list[i].length;
      }
      offsets[n] = o;
      return { offsets, data: new Uint8Array(whole) };
    }
    // Encoded one by one: a lone surrogate at the end of one string must not pair with the next.
    const parts = this.list.map((x) => Buffer.from(x, 'utf8'));
    let o = 0;
    for (let i = 0; i < n; i++) {
      offsets[i] = o;
      o += parts[i].length;
    }
    offsets[n] = o;
    return { offsets, data: new Uint8Array(Buffer.concat(parts)) };
  }
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
