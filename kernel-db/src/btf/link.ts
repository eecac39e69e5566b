/**
 * What libbpf links into each program of an object, and which of its instructions a kernel's
 * verifier reaches. libbpf appends to a program every subprogram it calls (`call` with
 * BPF_PSEUDO_CALL, relocated against `.text` or within the section) and every subprogram whose
 * address it takes (`ld_imm64` of a function: a callback, BPF_PSEUDO_FUNC), transitively; the
 * verifier then walks from the program's first instruction, and from each subprogram where a
 * reached instruction calls it or takes its address (a global subprogram, which older kernels verify on
 * its own, from its start whatever its callers do). Offsets follow libbpf's
 * `bpf_object__reloc_code()`: a relocated call lands at the symbol's offset plus `(imm + 1)`
 * instructions, a relocated `ld_imm64` at the symbol's offset plus `imm` bytes.
 */
import { type Insn, decodeInsns, reachable } from './insns';
import type { BpfObject, ObjProgram, ObjReloc } from './object';

const CALL = 0x85;
const LD_IMM64 = 0x18;
const PSEUDO_CALL = 1;
const PSEUDO_FUNC = 4;
const STT_FUNC = 2;
const STB_GLOBAL = 1;

/** A place in the object: a section and a byte offset in it. */
export interface Place {
  readonly section: string;
  readonly off: number;
}

/** The object's executable sections decoded once, with their relocations by instruction. */
export class LinkedObject {
  readonly insns = new Map<string, readonly Insn[]>();
  private readonly relocAt = new Map<string, ReadonlyMap<number, ObjReloc>>();
  /** Per section, the `ld_imm64` instructions a relocation fills with an address. */
  readonly opaque = new Map<string, ReadonlySet<number>>();
  /** Per section, instruction offset → index. */
  readonly index = new Map<string, ReadonlyMap<number, number>>();
  /** Per section, its `call` instructions. */
  readonly calls = new Map<string, readonly Insn[]>();

  /**
   * Global subprograms the object calls: kernels before lazy verification of global functions
   * verify each on its own, with unknown arguments, whether or not its call is reached, so they
   * count as reached from their start.
   */
  private readonly globals: Place[] = [];

  constructor(readonly obj: BpfObject) {
    const programSections = new Set(obj.programs.map((p) => p.section));
    for (const relocs of obj.relocs.values())
      for (const r of relocs)
        if (r.symbol.type === STT_FUNC && r.symbol.bind === STB_GLOBAL && r.symbolSection && !programSections.has(r.symbolSection))
          if (!this.globals.some((g) => g.section === r.symbolSection && g.off === r.symbol.value))
            this.globals.push({ section: r.symbolSection, off: r.symbol.value });
    for (const s of obj.sections) {
      const insns = decodeInsns(s.code);
      this.insns.set(s.name, insns);
      this.index.set(s.name, new Map(insns.map((x, i) => [x.off, i])));
      this.calls.set(
        s.name,
        insns.filter((x) => x.code === CALL),
      );
      const at = new Map((obj.relocs.get(s.name) ?? []).map((r) => [r.offset, r]));
      this.relocAt.set(s.name, at);
      this.opaque.set(s.name, new Set(insns.filter((x) => x.code === LD_IMM64 && (at.has(x.off) || x.src !== 0)).map((x) => x.off)));
    }
  }

  /** The relocation of the instruction at `off` of `section`, if any. */
  reloc(section: string, off: number): ObjReloc | undefined {
    return this.relocAt.get(section)?.get(off);
  }

  /**
   * The subprogram an instruction enters: a BPF-to-BPF call, or the callback whose address an
   * `ld_imm64` takes (`callback` true). Undefined for anything else, kfunc calls included.
   */
  entered(section: string, x: Insn): (Place & { callback: boolean }) | undefined {
    const r = this.reloc(section, x.off);
    if (x.code === CALL) {
      if (r)
        return r.symbolSection && this.insns.has(r.symbolSection)
          ? { section: r.symbolSection, off: r.symbol.value + (x.imm + 1) * 8, callback: false }
          : undefined;
      return x.src === PSEUDO_CALL ? { section, off: x.off + (x.imm + 1) * 8, callback: false } : undefined;
    }
    if (x.code === LD_IMM64) {
      if (r)
        return r.symbolSection && this.insns.has(r.symbolSection)
          ? { section: r.symbolSection, off: r.symbol.value + x.imm, callback: true }
          : undefined;
      return x.src === PSEUDO_FUNC ? { section, off: x.off + (x.imm + 1) * 8, callback: true } : undefined;
    }
    return undefined;
  }

  /**
   * The instructions of every section a verifier reaches for `prog`, given the values libbpf
   * patches into relocated instructions (`patched(section)`: offset → value).
   */
  reach(prog: ObjProgram, patched: (section: string) => ReadonlyMap<number, number>): Map<string, Set<number>> {
    const starts = new Map<string, Set<number>>([[prog.section, new Set([prog.offset])]]);
    const dirty = [prog.section];
    for (const g of this.globals) {
      let s = starts.get(g.section);
      if (!s) starts.set(g.section, (s = new Set()));
      s.add(g.off);
      if (!dirty.includes(g.section)) dirty.push(g.section);
    }
    const seen = new Map<string, Set<number>>();
    let rounds = 0;
    while (dirty.length && rounds++ < 10_000) {
      const section = dirty.pop()!;
      const insns = this.insns.get(section);
      if (!insns) continue;
      const got = reachable(insns, patched(section), [...starts.get(section)!], this.opaque.get(section), this.index.get(section));
      seen.set(section, got);
      const index = this.index.get(section)!;
      for (const off of got) {
        const x = insns[index.get(off)!];
        if (x.code !== CALL && x.code !== LD_IMM64) continue;
        const e = this.entered(section, x);
        if (!e) continue;
        let s = starts.get(e.section);
        if (!s) starts.set(e.section, (s = new Set()));
        if (s.has(e.off)) continue;
        s.add(e.off);
        if (!dirty.includes(e.section)) dirty.push(e.section);
      }
    }
    return seen;
  }
}
