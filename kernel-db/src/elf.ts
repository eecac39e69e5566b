/**
 * The one ELF reader of the project: the file header (ELF32 and ELF64, either byte order), the
 * section headers and their names. Everything is validated on construction, so a truncated or
 * corrupt file ends in one {@link ElfError} saying what is wrong, never in a RangeError. A
 * section's contents are bounds-checked when asked for (SHT_NOBITS sections such as `.bss` have a
 * size but no bytes in the file).
 */

/** A defect of an ELF file; the message says what is wrong (the caller names the file). */
export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

/** One section header. */
export interface ElfSection {
  readonly index: number;
  /** The name from the section-name table; '' when its offset lies outside that table. */
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly entsize: number;
}

export const SHT_NOBITS = 8;
export const SHT_SYMTAB = 2;
export const SHF_EXECINSTR = 0x4;
export const SHF_COMPRESSED = 0x800;

/** Whether `b` starts with the ELF magic. */
export function isElf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
}

/** An ELF file's header and section headers, validated. */
export class ElfFile {
  readonly is64: boolean;
  readonly littleEndian: boolean;
  readonly sections: readonly ElfSection[];
  /** The bytes as a DataView, for callers that read records (symbols) inside a section. */
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    const b = bytes;
    const fail = (d: string): never => {
      throw new ElfError(d);
    };
    // The 32-bit header is the shorter one; anything less cannot even say which class it is.
    if (b.length < 52) fail(`file is shorter than an ELF header (${b.length} bytes; truncated?)`);
    if (!isElf(b)) fail(`not an ELF file (starts with bytes ${hex(b.subarray(0, 4))})`);
    const cls = b[4];
    const data = b[5];
    if (cls !== 1 && cls !== 2) fail(`unknown class ${cls}`);
    if (data !== 1 && data !== 2) fail(`unknown data encoding ${data}`);
    const le = data === 1;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const is64 = cls === 2;
    if (is64 && b.length < 64) fail(`file is shorter than an ELF64 header (${b.length} bytes; truncated?)`);
    this.is64 = is64;
    this.littleEndian = le;
    this.view = v;
    const num = (off: number, wide: boolean): number => {
      if (off + (wide ? 8 : 4) > b.length) fail(`read at ${off} is past the end of the file`);
      if (!wide) return v.getUint32(off, le);
      const big = v.getBigUint64(off, le);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) fail(`offset ${big} is too large`);
      return Number(big);
    };
    const shoff = num(is64 ? 0x28 : 0x20, is64);
    const shentsize = v.getUint16(is64 ? 0x3a : 0x2e, le);
    let shnum = v.getUint16(is64 ? 0x3c : 0x30, le);
    let shstrndx = v.getUint16(is64 ? 0x3e : 0x32, le);
    if (shoff === 0) fail('no section headers (a raw kernel Image? extract its BTF first)');
    if (shentsize < (is64 ? 64 : 40)) fail(`section header size ${shentsize} is too small`);
    const sh = (i: number) => {
      const base = shoff + i * shentsize;
      if (base + shentsize > b.length) fail(`section header ${i} is past the end of the file (truncated?)`);
      return {
        nameOffset: v.getUint32(base, le),
        type: v.getUint32(base + 4, le),
        flags: is64 ? num(base + 8, true) : v.getUint32(base + 8, le),
        offset: num(base + (is64 ? 0x18 : 0x10), is64),
        size: num(base + (is64 ? 0x20 : 0x14), is64),
        link: v.getUint32(base + (is64 ? 0x28 : 0x18), le),
        info: v.getUint32(base + (is64 ? 0x2c : 0x1c), le),
        entsize: num(base + (is64 ? 0x38 : 0x24), is64),
      };
    };
    // Extended numbering: counts that do not fit 16 bits live in section header 0.
    if (shnum === 0) shnum = sh(0).size;
    if (shstrndx === 0xffff) shstrndx = sh(0).link;
    if (shnum > 65535 * 16) fail(`implausible section count ${shnum}`);
    if (shstrndx >= shnum) fail(`section-name table index ${shstrndx} is out of range (${shnum} sections)`);
    const strtab = sh(shstrndx);
    if (strtab.offset + strtab.size > b.length) fail('section-name table is past the end of the file');
    const names = b.subarray(strtab.offset, strtab.offset + strtab.size);
    const sections: ElfSection[] = [];
    for (let i = 0; i < shnum; i++) {
      const { nameOffset, ...h } = sh(i);
      sections.push({ index: i, name: nameOffset < names.length ? cString(names, nameOffset) : '', ...h });
    }
    this.sections = sections;
  }

  /** The first section called `name`, if any. */
  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** A section's bytes in the file; an {@link ElfError} when they run past its end. */
  data(s: ElfSection): Uint8Array {
    if (s.type === SHT_NOBITS) return new Uint8Array(0);
    if (s.offset + s.size > this.bytes.length)
      throw new ElfError(`section ${s.name || `#${s.index}`} (${s.offset}+${s.size}) is past the end of the file (truncated?)`);
    return this.bytes.subarray(s.offset, s.offset + s.size);
  }

  /** The NUL-terminated string at `offset` in a string-table section; '' when out of range. */
  string(s: ElfSection, offset: number): string {
    const table = this.data(s);
    return offset < table.length ? cString(table, offset) : '';
  }
}

/** Parses an ELF file's headers; throws an {@link ElfError} on anything malformed. */
export function readElf(bytes: Uint8Array): ElfFile {
  return new ElfFile(bytes);
}

const decoder = new TextDecoder();

function cString(b: Uint8Array, at: number): string {
  let end = at;
  while (end < b.length && b[end] !== 0) end++;
  return decoder.decode(b.subarray(at, end));
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
