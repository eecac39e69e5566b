/**
 * A minimal BTF encoder: the inverse of {@link Btf.type}. It takes types in the reader's model
 * ({@link BtfType}, type id = position + 1) and writes raw BTF version 1 with a 24-byte header,
 * the type section, and a deduplicated string section.
 *
 * It exists to make small, hand-checkable test fixtures out of real kernel BTF. It refuses what
 * the reader would reject or read back differently (dangling type ids, values that do not fit
 * their fields, bitfields without `kind_flag`) instead of writing a subtly different blob.
 */
import { Kind, type BtfType } from './reader';

/** Options of {@link writeBtf}. */
export interface WriteBtfOptions {
  /** Byte order of the output; BTF is normally in the target's order (little-endian here). */
  readonly littleEndian?: boolean;
}

const HEADER_LEN = 24;
const MAX_VLEN = 0xffff;

/**
 * Encodes `types` as raw BTF. The string section holds each distinct string once, in order of
 * first use, so the same input always gives the same bytes.
 * @throws Error naming the type when a record cannot be encoded.
 */
export function writeBtf(types: readonly BtfType[], opts: WriteBtfOptions = {}): Uint8Array {
  const le = opts.littleEndian ?? true;
  const strings = new StringTable();
  const count = types.length;
  const words: number[] = [];
  const fail = (i: number, t: BtfType, detail: string): never => {
    throw new Error(`btf writer: type [${i + 1}] (kind ${t.kind} '${t.name}'): ${detail}`);
  };
  const u32 = (i: number, t: BtfType, v: number, what: string) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(i, t, `${what} ${v} does not fit 32 bits`);
    words.push(v >>> 0);
  };
  const ref = (i: number, t: BtfType, id: number, what: string) => {
    if (!Number.isInteger(id) || id < 0 || id > count) fail(i, t, `${what} refers to type id ${id}, but only ${count} types exist`);
    words.push(id);
  };
  const head = (i: number, t: BtfType, vlen: number, sizeOrType: number, isRef: boolean) => {
    if (vlen > MAX_VLEN) fail(i, t, `${vlen} members/values/parameters exceed the BTF limit of ${MAX_VLEN}`);
    words.push(strings.offset(t.name));
    words.push((((t.kindFlag ? 1 : 0) << 31) | (t.kind << 24) | vlen) >>> 0);
    if (isRef) ref(i, t, sizeOrType, 'it');
    else u32(i, t, sizeOrType, 'size');
  };

  types.forEach((t, i) => {
    switch (t.kind) {
      case Kind.Int:
        head(i, t, 0, t.size, false);
        if (t.encoding > 0x0f || t.bitOffset > 0xff || t.bits > 0xff) fail(i, t, 'INT encoding, offset or width out of range');
        words.push(((t.encoding << 24) | (t.bitOffset << 16) | t.bits) >>> 0);
        break;
      case Kind.Ptr:
      case Kind.Typedef:
      case Kind.Volatile:
      case Kind.Const:
      case Kind.Restrict:
      case Kind.TypeTag:
        head(i, t, 0, t.type, true);
        break;
      case Kind.Array:
        head(i, t, 0, 0, false);
        ref(i, t, t.type, 'element type');
        ref(i, t, t.indexType, 'index type');
        u32(i, t, t.nelems, 'element count');
        break;
      case Kind.Struct:
      case Kind.Union:
        head(i, t, t.members.length, t.size, false);
        for (const m of t.members) {
          words.push(strings.offset(m.name));
          ref(i, t, m.type, `member '${m.name}'`);
          if (t.kindFlag) {
            // With kind_flag set, the offset word holds the bitfield width in its top 8 bits.
            if (m.offsetBits > 0xffffff || m.bitfieldBits > 0xff)
              fail(i, t, `member '${m.name}' offset or bitfield width does not fit the kind_flag encoding`);
            words.push(((m.bitfieldBits << 24) | m.offsetBits) >>> 0);
          } else {
            if (m.bitfieldBits !== 0) fail(i, t, `member '${m.name}' is a bitfield, which needs kind_flag`);
            u32(i, t, m.offsetBits, `member '${m.name}' offset`);
          }
        }
        break;
      case Kind.Enum:
        head(i, t, t.values.length, t.size, false);
        for (const v of t.values) {
          words.push(strings.offset(v.name));
          const n = Number(v.value);
          if (!Number.isInteger(n) || n < -0x80000000 || n > 0xffffffff) fail(i, t, `value ${v.name}=${v.value} does not fit 32 bits`);
          words.push(n >>> 0);
        }
        break;
      case Kind.Enum64:
        head(i, t, t.values.length, t.size, false);
        for (const v of t.values) {
          words.push(strings.offset(v.name));
          const big = BigInt(v.value);
          if (big < -(1n << 63n) || big >= 1n << 64n) fail(i, t, `value ${v.name}=${v.value} does not fit 64 bits`);
          const bits = BigInt.asUintN(64, big);
          words.push(Number(bits & 0xffffffffn), Number(bits >> 32n));
        }
        break;
      case Kind.Fwd:
        head(i, t, 0, 0, false);
        break;
      case Kind.Func:
        head(i, t, t.linkage, t.type, true);
        break;
      case Kind.FuncProto:
        head(i, t, t.params.length, t.returnType, true);
        for (const p of t.params) {
          words.push(strings.offset(p.name));
          ref(i, t, p.type, `parameter '${p.name}'`);
        }
        break;
      case Kind.Var:
        head(i, t, 0, t.type, true);
        u32(i, t, t.linkage, 'linkage');
        break;
      case Kind.Datasec:
        head(i, t, t.vars.length, t.size, false);
        for (const v of t.vars) {
          ref(i, t, v.type, 'variable');
          u32(i, t, v.offset, 'variable offset');
          u32(i, t, v.size, 'variable size');
        }
        break;
      case Kind.Float:
        head(i, t, 0, t.size, false);
        break;
      case Kind.DeclTag:
        head(i, t, 0, t.type, true);
        if (!Number.isInteger(t.componentIdx) || t.componentIdx < -1 || t.componentIdx > MAX_VLEN)
          fail(i, t, `component_idx ${t.componentIdx} is out of range`);
        words.push(t.componentIdx >>> 0);
        break;
      default:
        throw new Error(`btf writer: type [${i + 1}] has kind ${(t as { kind: number }).kind}, which cannot be encoded`);
    }
  });

  const str = strings.bytes();
  const typeLen = words.length * 4;
  const out = new Uint8Array(HEADER_LEN + typeLen + str.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0xeb9f, le);
  v.setUint8(2, 1); // version
  v.setUint8(3, 0); // flags
  v.setUint32(4, HEADER_LEN, le);
  v.setUint32(8, 0, le); // type_off
  v.setUint32(12, typeLen, le);
  v.setUint32(16, typeLen, le); // str_off: strings follow the types
  v.setUint32(20, str.length, le);
  words.forEach((w, i) => v.setUint32(HEADER_LEN + 4 * i, w, le));
  out.set(str, HEADER_LEN + typeLen);
  return out;
}

/** The string section under construction: '' at offset 0, then each new string once. */
class StringTable {
  private readonly offsets = new Map<string, number>([['', 0]]);
  private readonly parts: Uint8Array[] = [new Uint8Array(1)];
  private length = 1;
  private readonly enc = new TextEncoder();

  offset(s: string): number {
    let off = this.offsets.get(s);
    if (off === undefined) {
      const b = this.enc.encode(`${s}\0`);
      if (b.indexOf(0) !== b.length - 1) throw new Error(`btf writer: string ${JSON.stringify(s)} contains a NUL byte`);
      off = this.length;
      this.offsets.set(s, off);
      this.parts.push(b);
      this.length += b.length;
    }
    return off;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}
