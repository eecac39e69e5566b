/**
 * The programs in a compiled BPF object: each global function symbol with the ELF section
 * (`SEC()` name) it lives in, read from the section headers (the shared reader,
 * kernel-db/src/elf.ts) and the symbol table. libbpf names a program after its function, and
 * bpftool pins it under that name.
 */
import { readFileSync } from 'node:fs';
import { ElfError, isElf, readElf, SHF_EXECINSTR, SHT_SYMTAB, type ElfFile } from '../../kernel-db/src/elf';

/** One BPF program of an object. */
export interface ObjectProgram {
  /** The SEC() name, e.g. `tcx/ingress`. */
  readonly sec: string;
  /** The function (and libbpf program) name. */
  readonly name: string;
}

/** Reads the programs of a BPF object (ELF32 or ELF64, either byte order); throws on anything else. */
export function objectPrograms(path: string): ObjectProgram[] {
  const b = new Uint8Array(readFileSync(path));
  if (!isElf(b)) throw new Error(`${path} is not an ELF file`);
  try {
    return programs(readElf(b));
  } catch (e) {
    if (e instanceof ElfError) throw new Error(`${path}: ${e.message}`);
    throw e;
  }
}

function programs(elf: ElfFile): ObjectProgram[] {
  const out: ObjectProgram[] = [];
  const symtab = elf.sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return out;
  const strtab = elf.sections[symtab.link];
  if (!strtab) throw new ElfError(`the symbol table's string table ${symtab.link} does not exist`);
  const syms = elf.data(symtab);
  const v = elf.view;
  const le = elf.littleEndian;
  // Elf64_Sym: name u32, info u8, other u8, shndx u16, value u64, size u64.
  // Elf32_Sym: name u32, value u32, size u32, info u8, other u8, shndx u16.
  const size = elf.is64 ? 24 : 16;
  const stride = Math.max(symtab.entsize, size);
  const count = Math.floor(syms.length / stride);
  for (let i = 0; i < count; i++) {
    const o = symtab.offset + i * stride;
    const info = elf.bytes[o + (elf.is64 ? 4 : 12)];
    const shndx = v.getUint16(o + (elf.is64 ? 6 : 14), le);
    const bind = info >> 4;
    const type = info & 0xf;
    // STT_FUNC, STB_GLOBAL or STB_WEAK, in an executable section other than .text (subprograms).
    if (type !== 2 || (bind !== 1 && bind !== 2) || shndx === 0 || shndx >= elf.sections.length) continue;
    const sec = elf.sections[shndx];
    if (!(sec.flags & SHF_EXECINSTR) || sec.name === '.text') continue;
    out.push({ sec: sec.name, name: elf.string(strtab, v.getUint32(o, le)) });
  }
  return out.sort((x, y) => x.name.localeCompare(y.name));
}

/**
 * The `bpftool net attach` type for programs libbpf cannot attach by itself but bpftool can, on
 * the guest's loopback device: tcx and XDP. Others (tc, netfilter, syscall, cgroup…) are only
 * loaded.
 */
export function netAttachType(sec: string): string | undefined {
  if (/^tcx\/ingress$/.test(sec)) return 'tcx_ingress';
  if (/^tcx\/egress$/.test(sec)) return 'tcx_egress';
  if (/^xdp(\/|$)/.test(sec) && !/^xdp\/(cpumap|devmap)/.test(sec)) return 'xdpgeneric';
  return undefined;
}
