/**
 * The programs in a compiled BPF object: each global function symbol with the ELF section
 * (`SEC()` name) it lives in, read from the section headers and the symbol table. libbpf names a
 * program after its function, and bpftool pins it under that name.
 */
import { readFileSync } from 'node:fs';

/** One BPF program of an object. */
export interface ObjectProgram {
  /** The SEC() name, e.g. `tcx/ingress`. */
  readonly sec: string;
  /** The function (and libbpf program) name. */
  readonly name: string;
}

/** Reads the programs of a little-endian ELF64 BPF object; throws on anything else. */
export function objectPrograms(path: string): ObjectProgram[] {
  const b = readFileSync(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path} is not an ELF file`);
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${path} is not a little-endian ELF64 object`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > b.length || shentsize < 64) throw new Error(`${path}: section headers out of bounds`);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      name: b.readUInt32LE(o), type: b.readUInt32LE(o + 4), flags: Number(b.readBigUInt64LE(o + 8)),
      offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28), entsize: Number(b.readBigUInt64LE(o + 0x38)),
    };
  });
  const str = (sec: (typeof sections)[number], off: number) => {
    const start = sec.offset + off;
    const end = b.indexOf(0, start);
    return b.toString('latin1', start, end < 0 ? sec.offset + sec.size : end);
  };
  const names = sections[shstrndx];
  const secName = (i: number) => str(names, sections[i].name);
  const SHT_SYMTAB = 2;
  const SHF_EXECINSTR = 0x4;
  const out: ObjectProgram[] = [];
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return out;
  const strtab = sections[symtab.link];
  const count = Math.floor(symtab.size / (symtab.entsize || 24));
  for (let i = 0; i < count; i++) {
    const o = symtab.offset + i * 24;
    const info = b[o + 4];
    const shndx = b.readUInt16LE(o + 6);
    const bind = info >> 4;
    const type = info & 0xf;
    // STT_FUNC, STB_GLOBAL or STB_WEAK, in an executable section other than .text (subprograms).
    if (type !== 2 || (bind !== 1 && bind !== 2) || shndx === 0 || shndx >= sections.length) continue;
    if (!(sections[shndx].flags & SHF_EXECINSTR)) continue;
    const sec = secName(shndx);
    if (sec === '.text') continue;
    out.push({ sec, name: str(strtab, b.readUInt32LE(o)) });
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
