/**
 * BPF instructions of a program section, and which of them a kernel's verifier reaches once
 * libbpf has patched the CO-RE relocations. The encoding is the kernel's
 * (Documentation/bpf/standardization/instruction-set.rst): 8-byte slots of opcode, registers,
 * 16-bit offset and 32-bit immediate; `ld_imm64` takes two slots.
 *
 * Reachability follows what the verifier does with constants: a register set by `mov` (or
 * `ld_imm64`) is a known scalar, ALU on known scalars stays known, and a conditional jump on known
 * operands goes one way only — so code behind `if (bpf_core_field_exists(...))`, whose relocated
 * immediate is 0 on a kernel without the field, is never visited there. Everything else may be
 * either (both ways are followed).
 */

/** One decoded instruction. */
export interface Insn {
  /** Byte offset in the section. */
  readonly off: number;
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  /** Signed 16-bit offset (jumps: in slots, from the next slot). */
  readonly jmpOff: number;
  /** Signed 32-bit immediate; for `ld_imm64` the 64-bit value (as a bigint when it does not fit). */
  readonly imm: number;
  /** Slots it takes (2 for `ld_imm64`). */
  readonly slots: number;
}

const CLASS_LD = 0x00;
const CLASS_JMP = 0x05;
const CLASS_JMP32 = 0x06;
const CLASS_ALU = 0x04;
const CLASS_ALU64 = 0x07;
const CLASS_LDX = 0x01;
const OP_CALL = 0x80;
const OP_EXIT = 0x90;
const OP_JA = 0x00;
const SRC_X = 0x08;
const LD_IMM64 = 0x18;

/** Decodes a section's bytes (little-endian objects); a truncated trailing slot is an error. */
export function decodeInsns(bytes: Uint8Array): Insn[] {
  if (bytes.length % 8 !== 0) throw new Error(`program section of ${bytes.length} bytes is not a whole number of 8-byte instructions`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = [];
  for (let off = 0; off < bytes.length; ) {
    const code = v.getUint8(off);
    const regs = v.getUint8(off + 1);
    const jmpOff = v.getInt16(off + 2, true);
    let imm = v.getInt32(off + 4, true);
    let slots = 1;
    if (code === LD_IMM64) {
      if (off + 16 > bytes.length) throw new Error(`ld_imm64 at ${off} is missing its second slot`);
      const hi = v.getInt32(off + 12, true);
      imm = hi * 2 ** 32 + (imm >>> 0);
      slots = 2;
    }
    out.push({ off, code, dst: regs & 0x0f, src: regs >> 4, jmpOff, imm, slots });
    off += slots * 8;
  }
  return out;
}

/** A known scalar, or unknown. */
type Val = number | undefined;

function alu(op: number, a: number, b: number, is64: boolean): Val {
  const r = (() => {
    switch (op) {
      case 0x00:
        return a + b;
      case 0x10:
        return a - b;
      case 0x20:
        return a * b;
      case 0x40:
        return Number(BigInt.asIntN(64, BigInt(Math.trunc(a)) | BigInt(Math.trunc(b))));
      case 0x50:
        return Number(BigInt.asIntN(64, BigInt(Math.trunc(a)) & BigInt(Math.trunc(b))));
      case 0xa0:
        return Number(BigInt.asIntN(64, BigInt(Math.trunc(a)) ^ BigInt(Math.trunc(b))));
      case 0x60:
        return b >= 0 && b < 64 ? Number(BigInt.asIntN(64, BigInt(Math.trunc(a)) << BigInt(b))) : undefined;
      case 0x70:
        return b >= 0 && b < 64 ? Number(BigInt.asUintN(64, BigInt(Math.trunc(a))) >> BigInt(b)) : undefined;
      case 0xc0:
        return b >= 0 && b < 64 ? Number(BigInt.asIntN(is64 ? 64 : 32, BigInt(Math.trunc(a))) >> BigInt(b)) : undefined;
      case 0x30:
        return a >= 0 && b > 0 ? Math.floor(a / b) : undefined;
      case 0x90:
        return a >= 0 && b > 0 ? a % b : undefined;
      case 0xb0:
        return b;
      default:
        return undefined;
    }
  })();
  if (r === undefined || !Number.isSafeInteger(r)) return undefined;
  return is64 ? r : Number(BigInt.asUintN(32, BigInt(r)));
}

/** Whether a conditional jump on known operands is taken (unsigned tests only on non-negative values). */
function taken(op: number, a: number, b: number): boolean | undefined {
  const unsigned = a >= 0 && b >= 0;
  switch (op) {
    case 0x10:
      return a === b;
    case 0x50:
      return a !== b;
    case 0x20:
      return unsigned ? a > b : undefined;
    case 0x30:
      return unsigned ? a >= b : undefined;
    case 0xa0:
      return unsigned ? a < b : undefined;
    case 0xb0:
      return unsigned ? a <= b : undefined;
    case 0x60:
      return a > b;
    case 0x70:
      return a >= b;
    case 0xc0:
      return a < b;
    case 0xd0:
      return a <= b;
    case 0x40:
      return Number(BigInt(Math.trunc(a)) & BigInt(Math.trunc(b))) !== 0;
    default:
      return undefined;
  }
}

/**
 * The instruction offsets reached from `starts` (byte offsets; the section's start by default),
 * given the values libbpf writes into relocated immediates or the verifier knows a load yields
 * (`patched`: instruction offset → value).
 * An `ld_imm64` in `opaque` (one a relocation fills with an address: a map, global data, a
 * subprogram, a kernel symbol) loads an unknown value unless `patched` says otherwise. Calls to
 * subprograms are taken as returning.
 */
export function reachable(
  insns: readonly Insn[],
  patched: ReadonlyMap<number, number>,
  starts: readonly number[] = [0],
  opaque: ReadonlySet<number> = new Set(),
  /** Instruction offset → index in `insns`, when the caller keeps one (built here otherwise). */
  index: ReadonlyMap<number, number> = new Map(insns.map((x, i) => [x.off, i])),
): Set<number> {
  const states: (Val[] | undefined)[] = new Array(insns.length);
  const seen = new Set<number>();
  const work: number[] = [];
  const push = (i: number, regs: Val[]) => {
    if (i < 0 || i >= insns.length) return;
    const old = states[i];
    if (!old) {
      states[i] = regs.slice();
      work.push(i);
      return;
    }
    let changed = false;
    for (let r = 0; r < 11; r++) {
      if (old[r] !== undefined && old[r] !== regs[r]) {
        old[r] = undefined;
        changed = true;
      }
    }
    if (changed) work.push(i);
  };
  for (const at of starts) push(index.get(at) ?? -1, new Array(11).fill(undefined));
  let steps = 0;
  while (work.length && steps++ < 1_000_000) {
    const i = work.pop()!;
    const x = insns[i];
    seen.add(x.off);
    const regs = states[i]!.slice();
    const cls = x.code & 0x07;
    const op = x.code & 0xf0;
    const next = i + 1;
    const target = (slots: number) => index.get(x.off + (slots + 1) * 8) ?? -1;
    if (cls === CLASS_ALU || cls === CLASS_ALU64) {
      const imm = patched.has(x.off) ? patched.get(x.off)! : x.imm;
      const b = x.code & SRC_X ? regs[x.src] : imm;
      const a = regs[x.dst];
      regs[x.dst] =
        op === 0xb0
          ? b === undefined
            ? undefined
            : alu(op, 0, b, cls === CLASS_ALU64)
          : a === undefined || b === undefined
            ? undefined
            : alu(op, a, b, cls === CLASS_ALU64);
      push(next, regs);
    } else if (x.code === LD_IMM64) {
      regs[x.dst] = patched.has(x.off) ? patched.get(x.off)! : x.src === 0 && !opaque.has(x.off) ? x.imm : undefined;
      push(next, regs);
    } else if (cls === CLASS_JMP || cls === CLASS_JMP32) {
      if (op === OP_EXIT) continue;
      if (op === OP_CALL) {
        for (let r = 0; r <= 5; r++) regs[r] = undefined;
        push(next, regs);
        continue;
      }
      const dest = target(x.jmpOff);
      if (op === OP_JA) {
        push(cls === CLASS_JMP32 ? (index.get(x.off + (x.imm + 1) * 8) ?? -1) : dest, regs);
        continue;
      }
      const a = regs[x.dst];
      const b = x.code & SRC_X ? regs[x.src] : x.imm;
      const t = a === undefined || b === undefined ? undefined : taken(op, a, b);
      if (t !== false) push(dest, regs);
      if (t !== true) push(next, regs);
    } else {
      // A load is unknown, unless libbpf fixed its value (a `__kconfig` read from the frozen `.kconfig` map).
      if (cls === CLASS_LDX || cls === CLASS_LD) regs[x.dst] = patched.has(x.off) ? patched.get(x.off) : undefined;
      push(next, regs);
    }
  }
  return seen;
}
