/**
 * `.BTF.ext` of a BPF object: per program section, the BTF type of each function (func_info), the
 * source line of instructions (line_info) and the CO-RE relocations clang emitted (core_relo).
 * Layout from the kernel's Documentation/bpf/btf.rst ("BTF.ext section"): a header (magic 0xeB9F,
 * version 1, `hdr_len`, then offset/length pairs relative to the end of the header), and for each
 * kind a record size followed by blocks of { section name offset, record count, records }. Names
 * and paths are offsets into the object's `.BTF` string table. Validated completely on read.
 */
import type { Btf } from './reader';

/** A CO-RE relocation kind (`enum bpf_core_relo_kind`, include/uapi/linux/bpf.h). */
export enum CoreReloKind {
  FieldByteOffset = 0,
  FieldByteSize = 1,
  FieldExists = 2,
  FieldSigned = 3,
  FieldLshiftU64 = 4,
  FieldRshiftU64 = 5,
  TypeIdLocal = 6,
  TypeIdTarget = 7,
  TypeExists = 8,
  TypeSize = 9,
  EnumvalExists = 10,
  EnumvalValue = 11,
  TypeMatches = 12,
}

/** One CO-RE relocation: the instruction it patches, the local type and the access string. */
export interface CoreRelo {
  /** The program section's name (`kprobe/do_exit`, `.text`). */
  readonly section: string;
  /** Byte offset of the patched instruction in the section. */
  readonly insnOff: number;
  readonly typeId: number;
  /** `0:1:2`: the first number indexes the root as an array, the rest members or elements. */
  readonly access: string;
  readonly kind: CoreReloKind;
}

/** A source position of an instruction. */
export interface LineInfo {
  readonly section: string;
  readonly insnOff: number;
  readonly file: string;
  /** The source line's text. */
  readonly text: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column (0 when unknown). */
  readonly column: number;
}

/** A function's BTF type in a section. */
export interface FuncInfo {
  readonly section: string;
  readonly insnOff: number;
  readonly typeId: number;
}

/** The decoded `.BTF.ext`. */
export interface BtfExt {
  readonly funcInfo: readonly FuncInfo[];
  readonly lineInfo: readonly LineInfo[];
  readonly coreRelos: readonly CoreRelo[];
}

/** A malformed `.BTF.ext`, with what is wrong. */
export class BtfExtError extends Error {
  constructor(message: string) {
    super(`.BTF.ext: ${message}`);
    this.name = 'BtfExtError';
  }
}

const MAGIC = 0xeb9f;
const MAX_RECORDS = 1 << 24;

/** Decodes `.BTF.ext` bytes against the object's BTF (for the strings). */
export function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  const fail = (m: string): never => {
    throw new BtfExtError(m);
  };
  if (bytes.length < 24) fail(`${bytes.length} bytes is shorter than its header (24)`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = v.getUint16(0, true) === MAGIC;
  if (!little && v.getUint16(0, false) !== MAGIC) fail(`magic is 0x${v.getUint16(0, true).toString(16)}, expected 0xeb9f`);
  const version = v.getUint8(2);
  if (version !== 1) fail(`version ${version} is not 1`);
  const u32 = (off: number): number => {
    if (off + 4 > bytes.length) fail(`read at ${off} runs past the end (${bytes.length} bytes)`);
    return v.getUint32(off, little);
  };
  const hdrLen = u32(4);
  if (hdrLen < 24 || hdrLen > bytes.length) fail(`header length ${hdrLen} is out of range`);
  const str = (off: number, what: string): string => {
    try {
      return btf.str(off);
    } catch {
      return fail(`${what} name offset ${off} is outside the BTF string table`);
    }
  };
  /** The blocks of one info kind: each record's section name and its bytes' offset. */
  const blocks = (off: number, len: number, minRec: number, what: string, each: (section: string, at: number) => void) => {
    if (len === 0) return;
    const start = hdrLen + off;
    const end = start + len;
    if (end > bytes.length || start < hdrLen) fail(`${what} (${start}..${end}) runs past the end (${bytes.length} bytes)`);
    const recSize = u32(start);
    if (recSize < minRec) fail(`${what} record size ${recSize} is smaller than ${minRec}`);
    let p = start + 4;
    let total = 0;
    while (p < end) {
      if (p + 8 > end) fail(`${what} block header at ${p} runs past its end`);
      const section = str(u32(p), `${what} section`);
      const n = u32(p + 4);
      total += n;
      if (total > MAX_RECORDS) fail(`${what} has more than ${MAX_RECORDS} records`);
      p += 8;
      if (p + n * recSize > end) fail(`${what} block of ${section} (${n} records of ${recSize} bytes) runs past its end`);
      for (let i = 0; i < n; i++, p += recSize) each(section, p);
    }
  };
  const funcInfo: FuncInfo[] = [];
  const lineInfo: LineInfo[] = [];
  const coreRelos: CoreRelo[] = [];
  blocks(u32(8), u32(12), 8, 'func_info', (section, p) => funcInfo.push({ section, insnOff: u32(p), typeId: u32(p + 4) }));
  blocks(u32(16), u32(20), 16, 'line_info', (section, p) => {
    const col = u32(p + 12);
    lineInfo.push({
      section,
      insnOff: u32(p),
      file: str(u32(p + 4), 'line_info file'),
      text: str(u32(p + 8), 'line_info line'),
      line: col >>> 10,
      column: col & 0x3ff,
    });
  });
  if (hdrLen >= 32) {
    blocks(u32(24), u32(28), 16, 'core_relo', (section, p) => {
      const kind = u32(p + 12);
      if (kind > CoreReloKind.TypeMatches) fail(`core_relo kind ${kind} is unknown`);
      const access = str(u32(p + 8), 'core_relo access');
      if (!/^\d+(:\d+)*$/.test(access)) fail(`core_relo access string "${access}" is malformed`);
      coreRelos.push({ section, insnOff: u32(p), typeId: u32(p + 4), access, kind });
    });
  }
  for (const r of coreRelos) if (r.typeId >= btf.count) fail(`core_relo type id ${r.typeId} is out of range (${btf.count} types)`);
  return { funcInfo, lineInfo, coreRelos };
}

/** The source line of an instruction: the last line_info at or before it in its section. */
export function lineOf(ext: BtfExt, section: string, insnOff: number): LineInfo | undefined {
  let best: LineInfo | undefined;
  for (const l of ext.lineInfo) {
    if (l.section !== section || l.insnOff > insnOff) continue;
    if (!best || l.insnOff >= best.insnOff) best = l;
  }
  return best;
}
