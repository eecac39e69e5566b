/**
 * A compiled BPF object (`clang -target bpf -g`), read with the project's own ELF and BTF readers:
 * its program sections and the programs in them, the symbol table and relocations (which say what
 * a `call` or `ld_imm64` refers to: a subprogram, a kfunc, a map or global data), the externs
 * declared in `.BTF` (`__ksym`, `__kconfig`), license, `.BTF` and `.BTF.ext` (CO-RE relocations and
 * source lines).
 */
import { ElfError, type ElfFile, ElfFile as Elf, type ElfSection, SHF_EXECINSTR, SHT_SYMTAB } from '../elf';
import { type BtfExt, parseBtfExt } from './ext';
import { type Btf, Kind, parseBtf } from './reader';

/** One ELF symbol. */
export interface ObjSymbol {
  readonly name: string;
  /** Offset in its section (bytes). */
  readonly value: number;
  readonly size: number;
  /** STT_*: 0 notype, 1 object, 2 func, 3 section. */
  readonly type: number;
  /** STB_*: 0 local, 1 global, 2 weak. */
  readonly bind: number;
  /** Section index; 0 for an undefined (extern) symbol. */
  readonly shndx: number;
}

/** A relocation of one instruction of a section. */
export interface ObjReloc {
  /** Byte offset of the instruction in its section. */
  readonly offset: number;
  readonly symbol: ObjSymbol;
  /** Name of the section the symbol is defined in ('' for an extern). */
  readonly symbolSection: string;
}

/** A program: a global function in a program section, where libbpf starts loading. */
export interface ObjProgram {
  readonly section: string;
  /** The function's name ('' for a section without symbols: one program from offset 0). */
  readonly name: string;
  /** Byte offset of its first instruction in the section. */
  readonly offset: number;
}

/** An extern the object declares: a kfunc or kernel variable (`__ksym`) or a `__kconfig` value. */
export interface ObjExtern {
  readonly name: string;
  readonly kind: 'ksym' | 'kconfig';
  /** Declared `__weak`: libbpf leaves it unresolved (0) where the kernel lacks it, instead of failing. */
  readonly weak: boolean;
  /** The BTF FUNC (kfuncs) or VAR type id in the object's `.BTF`. */
  readonly typeId: number;
  readonly isFunction: boolean;
}

/** What the analysis reads from an object. */
export interface BpfObject {
  /** Executable sections (program sections and `.text`), by name, with their instructions' bytes. */
  readonly sections: readonly { readonly name: string; readonly size: number; readonly code: Uint8Array }[];
  /**
   * The non-empty sections libbpf turns into global data maps (`.data`, `.rodata`, `.bss` and their
   * `.data.*`, `.rodata.*`, `.bss.*` kin): an object without any needs no global data support.
   */
  readonly globalData: readonly string[];
  /** The programs libbpf would load: each global function of a section other than `.text`. */
  readonly programs: readonly ObjProgram[];
  /** Relocations of each executable section, by section name, sorted by offset. */
  readonly relocs: ReadonlyMap<string, readonly ObjReloc[]>;
  readonly externs: readonly ObjExtern[];
  /** The `license` section's string, if any. */
  readonly license?: string;
  readonly btf: Btf;
  /** Absent when the object was built without `-g` (no `.BTF.ext`). */
  readonly ext?: BtfExt;
}

/** A BPF object that cannot be read, with why. */
export class BpfObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BpfObjectError';
  }
}

const SHT_REL = 9;
const SHT_RELA = 4;
const STT_FUNC = 2;
const STB_LOCAL = 0;
const STB_WEAK = 2;

/** Sections libbpf keeps as global data maps (libbpf's `.data`, `.rodata`, `.bss` and their `.name` kin). */
const GLOBAL_DATA_SECTION = /^\.(data|rodata|bss)(\..+)?$/;

/** Reads an object's bytes; throws {@link BpfObjectError} (or the readers' own errors) when it is not a BPF object with BTF. */
export function readBpfObject(bytes: Uint8Array, file = '<object>'): BpfObject {
  const elf = new Elf(bytes);
  const btfSec = elf.section('.BTF');
  if (!btfSec) throw new BpfObjectError(`${file}: no .BTF section (compile with -g)`);
  const btf = parseBtf(elf.data(btfSec), file);
  const extSec = elf.section('.BTF.ext');
  const ext = extSec ? parseBtfExt(elf.data(extSec), btf) : undefined;
  const exec = elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0);
  const sections = exec.map((s) => ({ name: s.name, size: s.size, code: elf.data(s) }));
  const symbols = readSymbols(elf);
  const byIndex = new Map(elf.sections.map((s) => [s.index, s]));
  const programs: ObjProgram[] = [];
  for (const s of exec) {
    if (s.name === '.text') continue;
    const fns = symbols.filter((y) => y.shndx === s.index && y.type === STT_FUNC && y.bind !== STB_LOCAL).sort((a, b) => a.value - b.value);
    if (fns.length === 0) programs.push({ section: s.name, name: '', offset: 0 });
    for (const f of fns) programs.push({ section: s.name, name: f.name, offset: f.value });
  }
  const relocs = new Map<string, ObjReloc[]>();
  for (const r of elf.sections) {
    if (r.type !== SHT_REL && r.type !== SHT_RELA) continue;
    const target = byIndex.get(r.info);
    if (!target || (target.flags & SHF_EXECINSTR) === 0) continue;
    relocs.set(target.name, readRelocs(elf, r, symbols, byIndex));
  }
  const lic = elf.section('license');
  const license = lic ? new TextDecoder().decode(elf.data(lic)).replace(/\0[\s\S]*$/, '') : undefined;
  const globalData = elf.sections.filter((s) => s.size > 0 && GLOBAL_DATA_SECTION.test(s.name)).map((s) => s.name);
  return {
    sections,
    globalData,
    programs,
    relocs,
    externs: readExterns(btf, symbols),
    btf,
    ...(ext ? { ext } : {}),
    ...(license !== undefined ? { license } : {}),
  };
}

/** The symbol table (ELF64 little-endian records, as clang writes for `-target bpf`). */
function readSymbols(elf: ElfFile): (ObjSymbol & { index: number })[] {
  const tab = elf.sections.find((s) => s.type === SHT_SYMTAB);
  if (!tab) return [];
  const strs = elf.sections[tab.link];
  if (!strs) throw new ElfError(`symbol table's string table index ${tab.link} is out of range`);
  const data = elf.data(tab);
  const size = elf.is64 ? 24 : 16;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = elf.littleEndian;
  const out: (ObjSymbol & { index: number })[] = [];
  for (let i = 0, p = 0; p + size <= data.length; i++, p += size) {
    const name = elf.string(strs, v.getUint32(p, le));
    const info = v.getUint8(p + (elf.is64 ? 4 : 12));
    const shndx = v.getUint16(p + (elf.is64 ? 6 : 14), le);
    const value = elf.is64 ? Number(v.getBigUint64(p + 8, le)) : v.getUint32(p + 4, le);
    const sz = elf.is64 ? Number(v.getBigUint64(p + 16, le)) : v.getUint32(p + 8, le);
    out.push({ index: i, name, value, size: sz, type: info & 0xf, bind: info >> 4, shndx });
  }
  return out;
}

function readRelocs(elf: ElfFile, r: ElfSection, symbols: readonly ObjSymbol[], byIndex: ReadonlyMap<number, ElfSection>): ObjReloc[] {
  const data = elf.data(r);
  const size = (elf.is64 ? 16 : 8) + (r.type === SHT_RELA ? (elf.is64 ? 8 : 4) : 0);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = elf.littleEndian;
  const out: ObjReloc[] = [];
  for (let p = 0; p + size <= data.length; p += size) {
    const offset = elf.is64 ? Number(v.getBigUint64(p, le)) : v.getUint32(p, le);
    const sym = elf.is64 ? Number(v.getBigUint64(p + 8, le) >> 32n) : v.getUint32(p + 4, le) >>> 8;
    const symbol = symbols[sym];
    if (!symbol) throw new ElfError(`relocation in ${r.name} names symbol ${sym}, out of range (${symbols.length} symbols)`);
    out.push({ offset, symbol, symbolSection: symbol.shndx ? (byIndex.get(symbol.shndx)?.name ?? '') : '' });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** Externs from `.BTF`: the variables and functions of the `.ksyms` and `.kconfig` DATASECs. */
function readExterns(btf: Btf, symbols: readonly ObjSymbol[]): ObjExtern[] {
  const out: ObjExtern[] = [];
  const weak = new Set(symbols.filter((y) => y.shndx === 0 && y.bind === STB_WEAK).map((y) => y.name));
  for (let id = 1; id <= btf.count; id++) {
    if (btf.kind(id) !== Kind.Datasec) continue;
    const sec = btf.name(id);
    if (sec !== '.ksyms' && sec !== '.kconfig') continue;
    for (const v of btf.datasecVars(id)) {
      const t = btf.type(v.type);
      if (t.kind !== Kind.Func && t.kind !== Kind.Var) continue;
      // `__weak` is the ELF symbol's binding (libbpf reads it there; `.BTF` does not carry it).
      out.push({
        name: t.name,
        kind: sec === '.ksyms' ? 'ksym' : 'kconfig',
        weak: weak.has(t.name),
        typeId: v.type,
        isFunction: t.kind === Kind.Func,
      });
    }
  }
  return out;
}
