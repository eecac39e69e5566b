/**
 * A reader for the BPF Type Format (BTF), as the kernel exposes it at
 * `/sys/kernel/btf/vmlinux` and as compilers emit it in an ELF `.BTF` section.
 *
 * The layout follows Documentation/bpf/btf.rst of the Linux kernel. The reader validates the
 * whole blob up front (header, section bounds, every record's size, every string offset and
 * every referenced type id), so that code walking the types afterwards can never read out of
 * bounds. Every problem is reported as a {@link BtfError} that names the file and the defect.
 */

/** BTF kinds, numbered as in `include/uapi/linux/btf.h`. */
export enum Kind {
  Unknown = 0,
  Int = 1,
  Ptr = 2,
  Array = 3,
  Struct = 4,
  Union = 5,
  Enum = 6,
  Fwd = 7,
  Typedef = 8,
  Volatile = 9,
  Const = 10,
  Restrict = 11,
  Func = 12,
  FuncProto = 13,
  Var = 14,
  Datasec = 15,
  Float = 16,
  DeclTag = 17,
  TypeTag = 18,
  Enum64 = 19,
}

/** Kind names as bpftool prints them, indexed by kind number. */
export const KIND_NAMES = [
  'UNKN',
  'INT',
  'PTR',
  'ARRAY',
  'STRUCT',
  'UNION',
  'ENUM',
  'FWD',
  'TYPEDEF',
  'VOLATILE',
  'CONST',
  'RESTRICT',
  'FUNC',
  'FUNC_PROTO',
  'VAR',
  'DATASEC',
  'FLOAT',
  'DECL_TAG',
  'TYPE_TAG',
  'ENUM64',
] as const;

const BTF_MAGIC = 0xeb9f;
const MIN_HEADER = 24;
/** The largest type id the kernel accepts (BTF_MAX_TYPE). */
const MAX_TYPES = 0x000fffff;

/** A defect in a BTF blob, or in the container around it. */
export class BtfError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'BtfError';
  }
}

/** One member of a STRUCT or UNION. */
export interface BtfMember {
  readonly name: string;
  readonly type: number;
  /** Offset from the start of the containing aggregate, in bits. */
  readonly offsetBits: number;
  /** Bitfield width in bits, 0 when the member is not a bitfield. */
  readonly bitfieldBits: number;
}

/** One value of an ENUM or ENUM64. */
export interface BtfEnumValue {
  readonly name: string;
  /** The value; a bigint only when it does not fit a double exactly. */
  readonly value: number | bigint;
}

/** One parameter of a FUNC_PROTO. */
export interface BtfParam {
  readonly name: string;
  readonly type: number;
}

/** One variable of a DATASEC. */
export interface BtfDatasecVar {
  /** The VAR (or FUNC, for `.ksyms`) the entry describes. */
  readonly type: number;
  /** Offset of the variable within the section, in bytes. */
  readonly offset: number;
  /** Size of the variable in bytes. */
  readonly size: number;
}

/** Extra data of kinds other than the ones above, decoded on request. */
export interface BtfIntInfo {
  readonly encoding: number;
  readonly offset: number;
  readonly bits: number;
}

/**
 * One type record, fully decoded: what {@link Btf.type} returns and what the BTF writer
 * (`writer.ts`) encodes. `kindFlag` is the raw `kind_flag` bit; its meaning depends on the kind
 * (bitfield encoding for STRUCT/UNION, signedness for ENUM/ENUM64, `union` for FWD, attribute
 * tags for DECL_TAG/TYPE_TAG), so it is kept on every record to make a decode/encode round trip
 * lossless.
 */
export type BtfType =
  | {
      readonly kind: Kind.Int;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly size: number;
      readonly encoding: number;
      readonly bitOffset: number;
      readonly bits: number;
    }
  | {
      readonly kind: Kind.Ptr | Kind.Typedef | Kind.Volatile | Kind.Const | Kind.Restrict | Kind.TypeTag;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly type: number;
    }
  | {
      readonly kind: Kind.Array;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly type: number;
      readonly indexType: number;
      readonly nelems: number;
    }
  | {
      readonly kind: Kind.Struct | Kind.Union;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly size: number;
      readonly members: readonly BtfMember[];
    }
  | {
      readonly kind: Kind.Enum | Kind.Enum64;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly size: number;
      readonly values: readonly BtfEnumValue[];
    }
  | { readonly kind: Kind.Fwd; readonly name: string; readonly kindFlag: boolean }
  | { readonly kind: Kind.Func; readonly name: string; readonly kindFlag: boolean; readonly type: number; readonly linkage: number }
  | {
      readonly kind: Kind.FuncProto;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly returnType: number;
      readonly params: readonly BtfParam[];
    }
  | { readonly kind: Kind.Var; readonly name: string; readonly kindFlag: boolean; readonly type: number; readonly linkage: number }
  | {
      readonly kind: Kind.Datasec;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly size: number;
      readonly vars: readonly BtfDatasecVar[];
    }
  | { readonly kind: Kind.Float; readonly name: string; readonly kindFlag: boolean; readonly size: number }
  | {
      readonly kind: Kind.DeclTag;
      readonly name: string;
      readonly kindFlag: boolean;
      readonly type: number;
      readonly componentIdx: number;
    };

/** Per-kind record sizes from the optional kind-layout section (newer BTF headers). */
interface KindLayout {
  readonly infoSize: number;
  readonly elemSize: number;
}

/**
 * Numbers by string offset (0 for none): an array indexed by offset, filled without hashing,
 * for sections up to {@link OffsetTable.ARRAY_LIMIT} bytes (a kernel's are ~3 MB: ~12 MB of
 * array); a map above that, so that a blob claiming a huge string section reserves no memory
 * for offsets it never uses.
 */
export class OffsetTable {
  static readonly ARRAY_LIMIT = 1 << 24;
  private readonly array: Int32Array | undefined;
  private readonly map: Map<number, number> | undefined;
  constructor(size: number) {
    if (size <= OffsetTable.ARRAY_LIMIT) this.array = new Int32Array(size);
    else this.map = new Map();
  }
  /** The number at `off` (an offset inside the section), 0 before one was set. */
  get(off: number): number {
    return this.array ? this.array[off] : (this.map!.get(off) ?? 0);
  }
  set(off: number, v: number): void {
    if (this.array) this.array[off] = v;
    else this.map!.set(off, v);
  }
}

/**
 * A parsed, validated BTF blob. Type ids run from 1 to {@link count}; id 0 is `void`.
 * Accessors take a type id and never throw for ids in range.
 */
export class Btf {
  /** Number of types, not counting `void`. */
  readonly count: number;
  private readonly view: DataView;
  private readonly little: boolean;
  /** Byte offset of each type record (index = type id). */
  private readonly offsets: Uint32Array;
  private readonly kinds: Uint8Array;
  private readonly strStart: number;
  private readonly strEnd: number;
  private readonly bytes: Uint8Array;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  /**
   * Strings read so far: the table holds 1 + the index in {@link strList} of the string at an
   * offset (its {@link strNumber}), 0 before it is read. Indexed by offset, as a map of ~150,000
   * kernel names costs ~25–45 ms to fill; one such table per BTF, as the first write to each
   * page of a new ~11 MB array costs ~7 ms in all.
   */
  private strAt: OffsetTable | undefined;
  private readonly strList: string[] = [];
  /** The same bytes, for Buffer's latin1 decoding of ASCII strings. */
  private readonly latin1: Buffer;

  /**
   * Parses and validates `bytes` (raw BTF, starting with the header).
   * @param file the name used in error messages.
   * @throws BtfError when the blob is malformed in any way.
   */
  constructor(
    bytes: Uint8Array,
    readonly file = '<btf>',
  ) {
    this.bytes = bytes;
    this.latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const fail: (detail: string) => never = (detail) => {
      throw new BtfError(file, detail);
    };
    if (bytes.byteLength < MIN_HEADER) fail(`too short for a BTF header (${bytes.byteLength} bytes, need ${MIN_HEADER})`);
    const magicLE = this.view.getUint16(0, true);
    if (magicLE !== BTF_MAGIC && this.view.getUint16(0, false) !== BTF_MAGIC) {
      fail(`not BTF: magic is 0x${magicLE.toString(16).padStart(4, '0')}, expected 0xeb9f`);
    }
    this.little = magicLE === BTF_MAGIC;
    const version = this.view.getUint8(2);
    if (version !== 1) fail(`unsupported BTF version ${version} (only version 1 exists)`);
    const hdrLen = this.u32(4);
    if (hdrLen < MIN_HEADER || hdrLen > bytes.byteLength) fail(`header length ${hdrLen} is invalid for a ${bytes.byteLength}-byte blob`);
    const typeOff = this.u32(8);
    const typeLen = this.u32(12);
    const strOff = this.u32(16);
    const strLen = this.u32(20);
    const typeStart = hdrLen + typeOff;
    const typeEnd = typeStart + typeLen;
    this.strStart = hdrLen + strOff;
    this.strEnd = this.strStart + strLen;
    if (typeEnd > bytes.byteLength)
      fail(`type section (${typeStart}..${typeEnd}) runs past the end of the blob (${bytes.byteLength} bytes); the file is truncated`);
    if (this.strEnd > bytes.byteLength)
      fail(
        `string section (${this.strStart}..${this.strEnd}) runs past the end of the blob (${bytes.byteLength} bytes); the file is truncated`,
      );
    if (typeLen % 4 !== 0) fail(`type section length ${typeLen} is not a multiple of 4`);
    // The kernel and libbpf both reject overlapping sections; a blob with them is damaged, and
    // parsing it would read type records as strings or the reverse.
    if (typeLen > 0 && strLen > 0 && typeStart < this.strEnd && this.strStart < typeEnd) {
      fail(`type section (${typeStart}..${typeEnd}) overlaps the string section (${this.strStart}..${this.strEnd})`);
    }
    if (strLen === 0 || bytes[this.strStart] !== 0) fail('string section does not start with the empty string');
    if (bytes[this.strEnd - 1] !== 0) fail('string section is not NUL-terminated');

    let layouts: KindLayout[] | undefined;
    if (hdrLen >= 32) {
      const layoutOff = this.u32(24);
      const layoutLen = this.u32(28);
      if (layoutLen > 0) {
        const ls = hdrLen + layoutOff;
        if (ls + layoutLen > bytes.byteLength || layoutLen % 4 !== 0)
          fail(`kind-layout section (${ls}..${ls + layoutLen}) is out of bounds`);
        layouts = [];
        for (let p = ls; p < ls + layoutLen; p += 4) {
          layouts.push({ infoSize: bytes[p], elemSize: bytes[p + 1] });
        }
      }
    }

    // First pass: find each record and check that it fits.
    // A record takes at least 12 bytes, which bounds the count (and the arrays) by the section.
    const most = Math.min(MAX_TYPES, Math.floor((typeEnd - typeStart) / 12)) + 1;
    const offs = new Uint32Array(most + 1);
    const kinds = new Uint8Array(most + 1);
    let n = 1;
    let p = typeStart;
    while (p < typeEnd) {
      if (n > MAX_TYPES) fail(`more than ${MAX_TYPES} types`);
      if (p + 12 > typeEnd) fail(`type [${n}] at byte ${p} is truncated`);
      const info = this.u32(p + 4);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const size = this.recordSize(kind, vlen, layouts);
      if (size < 0) fail(`type [${n}] at byte ${p} has unknown kind ${kind}`);
      if (p + size > typeEnd) fail(`type [${n}] (${KIND_NAMES[kind] ?? kind}) at byte ${p} runs past the end of the type section`);
      offs[n] = p;
      kinds[n] = kind;
      n++;
      p += size;
    }
    this.count = n - 1;
    this.offsets = offs.slice(0, n);
    this.kinds = kinds.slice(0, n);
    this.validate(fail);
  }

  private u32(at: number): number {
    return this.view.getUint32(at, this.little);
  }

  private i32(at: number): number {
    return this.view.getInt32(at, this.little);
  }

  /** Size in bytes of a type record of `kind` with `vlen` members, or -1 for an unknown kind. */
  private recordSize(kind: number, vlen: number, layouts: KindLayout[] | undefined): number {
    switch (kind) {
      case Kind.Int:
      case Kind.Var:
      case Kind.DeclTag:
        return 16;
      case Kind.Array:
        return 24;
      case Kind.Struct:
      case Kind.Union:
      case Kind.Datasec:
      case Kind.Enum64:
        return 12 + 12 * vlen;
      case Kind.Enum:
      case Kind.FuncProto:
        return 12 + 8 * vlen;
      case Kind.Ptr:
      case Kind.Fwd:
      case Kind.Typedef:
      case Kind.Volatile:
      case Kind.Const:
      case Kind.Restrict:
      case Kind.Func:
      case Kind.Float:
      case Kind.TypeTag:
        return 12;
      default: {
        const l = layouts?.[kind];
        return l ? 12 + l.infoSize + l.elemSize * vlen : -1;
      }
    }
  }

  /** Checks every string offset and type reference once, so accessors need no checks. */
  private validate(fail: (d: string) => never): void {
    const strLen = this.strEnd - this.strStart;
    const checkStr = (id: number, off: number, what: string) => {
      if (off >= strLen) fail(`type [${id}] ${what} name offset ${off} is past the end of the string section (${strLen} bytes)`);
    };
    const checkType = (id: number, ref: number, what: string) => {
      if (ref > this.count) fail(`type [${id}] ${what} refers to type id ${ref}, but only ${this.count} types exist`);
    };
    for (let id = 1; id <= this.count; id++) {
      const p = this.offsets[id];
      const kind = this.kinds[id];
      const vlen = this.u32(p + 4) & 0xffff;
      checkStr(id, this.u32(p), 'its');
      switch (kind) {
        case Kind.Ptr:
        case Kind.Typedef:
        case Kind.Volatile:
        case Kind.Const:
        case Kind.Restrict:
        case Kind.Func:
        case Kind.Var:
        case Kind.DeclTag:
        case Kind.TypeTag:
        case Kind.FuncProto:
          checkType(id, this.u32(p + 8), KIND_NAMES[kind]);
          break;
        case Kind.Array:
          checkType(id, this.u32(p + 12), 'element type');
          checkType(id, this.u32(p + 16), 'index type');
          break;
        default:
          break;
      }
      if (kind === Kind.Struct || kind === Kind.Union) {
        for (let i = 0; i < vlen; i++) {
          const m = p + 12 + 12 * i;
          checkStr(id, this.u32(m), `member ${i}`);
          checkType(id, this.u32(m + 4), `member ${i}`);
        }
      } else if (kind === Kind.Enum) {
        for (let i = 0; i < vlen; i++) checkStr(id, this.u32(p + 12 + 8 * i), `value ${i}`);
      } else if (kind === Kind.Enum64) {
        for (let i = 0; i < vlen; i++) checkStr(id, this.u32(p + 12 + 12 * i), `value ${i}`);
      } else if (kind === Kind.FuncProto) {
        for (let i = 0; i < vlen; i++) {
          checkStr(id, this.u32(p + 12 + 8 * i), `parameter ${i}`);
          checkType(id, this.u32(p + 16 + 8 * i), `parameter ${i}`);
        }
      } else if (kind === Kind.Datasec) {
        for (let i = 0; i < vlen; i++) checkType(id, this.u32(p + 12 + 12 * i), `variable ${i}`);
      }
    }
  }

  /**
   * The string at `off` in the string section. Offsets stored in type records were validated at
   * load; an offset passed in by a caller is checked here.
   * @throws BtfError when `off` is outside the string section.
   */
  str(off: number): string {
    return off === 0 ? '' : this.strList[this.strNumber(off) - 1];
  }

  /**
   * The string at `off` as a number of its own (1, 2, …, in the order strings are first read;
   * {@link strByNumber} gives it back): a caller that keeps facts per string can index an array
   * by it instead of a table as large as the string section. `off` is checked as in {@link str};
   * offset 0 is the empty string's, which has no number.
   * @throws BtfError when `off` is 0 or outside the string section.
   */
  strNumber(off: number): number {
    this.checkStrOff(off);
    const at = (this.strAt ??= new OffsetTable(this.stringsSize));
    const slot = at.get(off);
    if (slot !== 0) return slot;
    this.strList.push(this.decodeStr(off));
    at.set(off, this.strList.length);
    return this.strList.length;
  }

  /** The string numbered `n` by {@link strNumber}. */
  strByNumber(n: number): string {
    return this.strList[n - 1];
  }

  /** @throws BtfError unless `off` is a string offset inside the section (other than 0). */
  checkStrOff(off: number): void {
    const size = this.strEnd - this.strStart;
    if (!(off > 0 && off < size && Number.isInteger(off))) {
      throw new BtfError(this.file, `string offset ${off} is outside the string section (${size} bytes)`);
    }
  }

  private decodeStr(off: number): string {
    const start = this.strStart + off;
    const bytes = this.bytes;
    let end = start;
    let high = 0;
    // The section ends with a NUL (checked at load), so this stops inside it.
    for (let c = bytes[end]; end < this.strEnd && c !== 0; c = bytes[++end]) high |= c;
    // Kernel names are ASCII, which latin1 decodes byte for byte, without the UTF-8 decoder.
    return high < 0x80 ? this.latin1.toString('latin1', start, end) : this.decoder.decode(bytes.subarray(start, end));
  }

  /**
   * Byte offset of type `id`'s record. Ids come from callers as well as from validated records,
   * so a bad one is reported instead of silently reading the header as a type.
   */
  private rec(id: number): number {
    const p = id === 0 ? undefined : this.offsets[id];
    if (p === undefined) throw new BtfError(this.file, `type id ${id} is out of range (1..${this.count})`);
    return p;
  }

  /** Byte offset of type `id`'s record, after checking that its kind is `k1` or `k2`. */
  private recOf(id: number, what: string, k1: Kind, k2: Kind = k1): number {
    const p = this.rec(id);
    const k = this.kinds[id];
    if (k !== k1 && k !== k2) throw new BtfError(this.file, `type [${id}] is ${KIND_NAMES[k] ?? `kind ${k}`}, not ${what}`);
    return p;
  }

  /** The kind of type `id` (`Kind.Unknown` for `void`). */
  kind(id: number): Kind {
    const k = this.kinds[id];
    if (k === undefined) throw new BtfError(this.file, `type id ${id} is out of range (0..${this.count})`);
    return k as Kind;
  }

  /** The name of type `id`, '' when anonymous or `void`. */
  name(id: number): string {
    return this.str(this.nameOff(id));
  }

  /** The offset of type `id`'s name in the string section, 0 when anonymous or `void`. */
  nameOff(id: number): number {
    return id === 0 ? 0 : this.u32(this.rec(id));
  }

  /** The string section's size in bytes: every string offset is below it. */
  get stringsSize(): number {
    return this.strEnd - this.strStart;
  }

  /** Number of members, values or parameters (`vlen`); for FUNC, the linkage. */
  vlen(id: number): number {
    return id === 0 ? 0 : this.u32(this.rec(id) + 4) & 0xffff;
  }

  /** The `kind_flag` bit. */
  kindFlag(id: number): boolean {
    return id !== 0 && (this.u32(this.rec(id) + 4) & 0x80000000) !== 0;
  }

  /** `size` for INT, ENUM, ENUM64, STRUCT, UNION, DATASEC and FLOAT. */
  size(id: number): number {
    return id === 0 ? 0 : this.u32(this.rec(id) + 8);
  }

  /** The referenced type for PTR, TYPEDEF, qualifiers, FUNC, FUNC_PROTO (return), VAR, tags. */
  ref(id: number): number {
    return id === 0 ? 0 : this.u32(this.rec(id) + 8);
  }

  /** INT encoding, bit offset and width. */
  intInfo(id: number): BtfIntInfo {
    const v = this.u32(this.recOf(id, 'an INT', Kind.Int) + 12);
    return { encoding: (v >>> 24) & 0x0f, offset: (v >>> 16) & 0xff, bits: v & 0xff };
  }

  /** ARRAY element type, index type and element count. */
  arrayInfo(id: number): { type: number; indexType: number; nelems: number } {
    const p = this.recOf(id, 'an ARRAY', Kind.Array) + 12;
    return { type: this.u32(p), indexType: this.u32(p + 4), nelems: this.u32(p + 8) };
  }

  /** Members of a STRUCT or UNION, with `kind_flag` bitfield encoding decoded. */
  members(id: number): BtfMember[] {
    this.recOf(id, 'a STRUCT or UNION', Kind.Struct, Kind.Union);
    const vlen = this.vlen(id);
    const out: BtfMember[] = new Array(vlen);
    for (let i = 0; i < vlen; i++) {
      out[i] = {
        name: this.str(this.memberNameOff(id, i)),
        type: this.memberTypeId(id, i),
        offsetBits: this.memberOffsetBits(id, i),
        bitfieldBits: this.memberBitfieldBits(id, i),
      };
    }
    return out;
  }

  /*
   * Member `i` (below `vlen(id)`, which callers keep to) of STRUCT or UNION `id` field by field,
   * without decoding its name or making an object: for a walk over every member of a kernel,
   * which takes names by their string offsets (`memberNameOff`).
   */

  /** The type id of member `i` of STRUCT or UNION `id`. */
  memberTypeId(id: number, i: number): number {
    return this.u32(this.recOf(id, 'a STRUCT or UNION', Kind.Struct, Kind.Union) + 16 + 12 * i);
  }

  /** The bit offset of member `i` of STRUCT or UNION `id`. */
  memberOffsetBits(id: number, i: number): number {
    const raw = this.memberOffsetWord(id, i);
    return this.kindFlag(id) ? raw & 0xffffff : raw;
  }

  /** The bitfield width of member `i` of STRUCT or UNION `id` (0: not a bitfield). */
  memberBitfieldBits(id: number, i: number): number {
    return this.kindFlag(id) ? this.memberOffsetWord(id, i) >>> 24 : 0;
  }

  /** Member `i`'s `offset` word: the bit offset, with the bitfield width on top under `kind_flag`. */
  private memberOffsetWord(id: number, i: number): number {
    return this.u32(this.recOf(id, 'a STRUCT or UNION', Kind.Struct, Kind.Union) + 20 + 12 * i);
  }

  /** Where the name of member `i` of STRUCT or UNION `id` is in the string section (0 for none). */
  memberNameOff(id: number, i: number): number {
    return this.u32(this.recOf(id, 'a STRUCT or UNION', Kind.Struct, Kind.Union) + 12 + 12 * i);
  }

  /** Where the name of value `i` of ENUM or ENUM64 `id` is in the string section. */
  enumNameOff(id: number, i: number): number {
    return this.u32(this.recOf(id, 'an ENUM or ENUM64', Kind.Enum, Kind.Enum64) + 12 + (this.kinds[id] === Kind.Enum ? 8 : 12) * i);
  }

  /** Values of an ENUM or ENUM64 (signedness from `kind_flag`). */
  enumValues(id: number): BtfEnumValue[] {
    this.recOf(id, 'an ENUM or ENUM64', Kind.Enum, Kind.Enum64);
    const vlen = this.vlen(id);
    const out: BtfEnumValue[] = new Array(vlen);
    for (let i = 0; i < vlen; i++) out[i] = { name: this.str(this.enumNameOff(id, i)), value: this.enumValue(id, i) };
    return out;
  }

  /**
   * The value of enumerator `i` (below `vlen(id)`, which callers keep to) of ENUM or ENUM64 `id`
   * (signedness from `kind_flag`): a number, or a bigint where an ENUM64's value is past what a
   * double holds exactly.
   */
  enumValue(id: number, i: number): number | bigint {
    const p = this.recOf(id, 'an ENUM or ENUM64', Kind.Enum, Kind.Enum64);
    const signed = this.kindFlag(id);
    if (this.kinds[id] === Kind.Enum) {
      const e = p + 12 + 8 * i;
      return signed ? this.i32(e + 4) : this.u32(e + 4);
    }
    const e = p + 12 + 12 * i;
    const lo = BigInt(this.u32(e + 4));
    const hi = BigInt(this.u32(e + 8));
    let v = (hi << 32n) | lo;
    if (signed && hi >= 0x80000000n) v -= 1n << 64n;
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  }

  /** Parameters of a FUNC_PROTO. */
  params(id: number): BtfParam[] {
    const p = this.recOf(id, 'a FUNC_PROTO', Kind.FuncProto);
    const vlen = this.vlen(id);
    const out: BtfParam[] = new Array(vlen);
    for (let i = 0; i < vlen; i++) {
      const e = p + 12 + 8 * i;
      out[i] = { name: this.str(this.u32(e)), type: this.u32(e + 4) };
    }
    return out;
  }

  /** Variables of a DATASEC. */
  datasecVars(id: number): BtfDatasecVar[] {
    const p = this.recOf(id, 'a DATASEC', Kind.Datasec);
    const vlen = this.vlen(id);
    const out: BtfDatasecVar[] = new Array(vlen);
    for (let i = 0; i < vlen; i++) {
      const e = p + 12 + 12 * i;
      out[i] = { type: this.u32(e), offset: this.u32(e + 4), size: this.u32(e + 8) };
    }
    return out;
  }

  /** `component_idx` of a DECL_TAG (-1 when it tags the whole declaration). */
  declTagComponent(id: number): number {
    return this.i32(this.recOf(id, 'a DECL_TAG', Kind.DeclTag) + 12);
  }

  /** VAR linkage. */
  varLinkage(id: number): number {
    return this.u32(this.recOf(id, 'a VAR', Kind.Var) + 12);
  }

  /**
   * Type `id` decoded into one record (see {@link BtfType}).
   * @throws BtfError for `void`, ids out of range and kinds this reader only knows the size of.
   */
  type(id: number): BtfType {
    const kind = this.kind(id);
    const name = this.name(id);
    const kindFlag = this.kindFlag(id);
    switch (kind) {
      case Kind.Int: {
        const i = this.intInfo(id);
        return { kind, name, kindFlag, size: this.size(id), encoding: i.encoding, bitOffset: i.offset, bits: i.bits };
      }
      case Kind.Ptr:
      case Kind.Typedef:
      case Kind.Volatile:
      case Kind.Const:
      case Kind.Restrict:
      case Kind.TypeTag:
        return { kind, name, kindFlag, type: this.ref(id) };
      case Kind.Array:
        return { kind, name, kindFlag, ...this.arrayInfo(id) };
      case Kind.Struct:
      case Kind.Union:
        return { kind, name, kindFlag, size: this.size(id), members: this.members(id) };
      case Kind.Enum:
      case Kind.Enum64:
        return { kind, name, kindFlag, size: this.size(id), values: this.enumValues(id) };
      case Kind.Fwd:
        return { kind, name, kindFlag };
      case Kind.Func:
        return { kind, name, kindFlag, type: this.ref(id), linkage: this.vlen(id) };
      case Kind.FuncProto:
        return { kind, name, kindFlag, returnType: this.ref(id), params: this.params(id) };
      case Kind.Var:
        return { kind, name, kindFlag, type: this.ref(id), linkage: this.varLinkage(id) };
      case Kind.Datasec:
        return { kind, name, kindFlag, size: this.size(id), vars: this.datasecVars(id) };
      case Kind.Float:
        return { kind, name, kindFlag, size: this.size(id) };
      case Kind.DeclTag:
        return { kind, name, kindFlag, type: this.ref(id), componentIdx: this.declTagComponent(id) };
      default:
        throw new BtfError(
          this.file,
          id === 0 ? 'type id 0 (void) has no record' : `type [${id}] has kind ${kind}, which this reader cannot decode`,
        );
    }
  }
}

/** Parses raw BTF bytes; a shorthand for `new Btf(bytes, file)`. */
export function parseBtf(bytes: Uint8Array, file?: string): Btf {
  return new Btf(bytes, file);
}
