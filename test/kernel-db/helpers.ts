/**
 * Shared helpers of the kernel-db tests: where the optional real kernel data lives, where
 * bpftool is, and small writers for the containers BTF arrives in (tar, ELF) so that tests can
 * wrap a blob without external tools.
 */
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { Kind, type BtfType } from '../../kernel-db/src/btf/reader';

/** The repository root. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/** The committed miniature input folder (see `kernel-db/scripts/make-fixture.ts`). */
export const MINI_DATA = join(REPO_ROOT, 'test', 'fixtures', 'kernel-data-mini');

/**
 * The real kernel data beside the clone (`<repo>/../shared/kernel-data`). A user's clone does not
 * have it, so callers skip with {@link NO_SHARED_DATA} when this returns undefined.
 */
export function sharedKernelData(): string | undefined {
  const dir = resolve(REPO_ROOT, '..', 'shared', 'kernel-data');
  return existsSync(join(dir, 'btf')) ? dir : undefined;
}

/** The skip reason used when {@link sharedKernelData} finds nothing. */
export const NO_SHARED_DATA = `real kernel data not found at ${resolve(REPO_ROOT, '..', 'shared', 'kernel-data')} (it sits beside the project checkout, not in it)`;

/**
 * The bpftool executable: `$BPFTOOL` when set (to test a particular build, or to check the skip
 * path with a name that does not exist), else the Debian location, then every directory of PATH.
 */
export function findBpftool(): string | undefined {
  const override = process.env.BPFTOOL;
  if (override !== undefined) return existsSync(override) ? override : undefined;
  const dirs = ['/usr/sbin', '/usr/bin', '/sbin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  for (const d of dirs) {
    const p = join(d, 'bpftool');
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** A deterministic PRNG (mulberry32), so a failing fuzz case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A ustar archive holding `files` in order (regular files, mode 0644, mtime 0). */
export function makeTar(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
  for (const f of files) {
    const h = new Uint8Array(512);
    h.set(enc.encode(f.name).subarray(0, 100), 0);
    h.set(enc.encode(octal(0o644, 8)), 100);
    h.set(enc.encode(octal(0, 8)), 108);
    h.set(enc.encode(octal(0, 8)), 116);
    h.set(enc.encode(octal(f.data.length, 12)), 124);
    h.set(enc.encode(octal(0, 12)), 136);
    h[156] = 0x30;
    h.set(enc.encode('ustar\0'), 257);
    h.set(enc.encode('00'), 263);
    // The checksum is computed with its own field read as eight spaces.
    h.fill(0x20, 148, 156);
    const sum = h.reduce((s, x) => s + x, 0);
    h.set(enc.encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
    blocks.push(h);
    const body = new Uint8Array(Math.ceil(f.data.length / 512) * 512);
    body.set(f.data);
    blocks.push(body);
  }
  // Two zero blocks end the archive.
  blocks.push(new Uint8Array(1024));
  return concat(blocks);
}

/**
 * A minimal little-endian ELF64 relocatable file with the given sections (plus the null section
 * and `.shstrtab`), laid out as: ELF header, section contents, section-name table, section headers.
 */
export function makeElf64(sections: { name: string; data: Uint8Array; flags?: number }[]): Uint8Array {
  const enc = new TextEncoder();
  const names = ['', ...sections.map((s) => s.name), '.shstrtab'];
  const nameOff: number[] = [];
  const strParts: Uint8Array[] = [];
  let strLen = 0;
  for (const n of names) {
    nameOff.push(strLen);
    const b = enc.encode(`${n}\0`);
    strParts.push(b);
    strLen += b.length;
  }
  const shstrtab = concat(strParts);
  const bodies = [...sections.map((s) => s.data), shstrtab];
  const offsets: number[] = [];
  let p = 64;
  for (const b of bodies) {
    p = align(p, 8);
    offsets.push(p);
    p += b.length;
  }
  const shoff = align(p, 8);
  const shnum = bodies.length + 1;
  const out = new Uint8Array(shoff + 64 * shnum);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(0x10, 1, true); // ET_REL
  v.setUint16(0x12, 247, true); // EM_BPF
  v.setUint32(0x14, 1, true);
  v.setBigUint64(0x28, BigInt(shoff), true);
  v.setUint16(0x34, 64, true);
  v.setUint16(0x3a, 64, true);
  v.setUint16(0x3c, shnum, true);
  v.setUint16(0x3e, shnum - 1, true);
  bodies.forEach((b, i) => {
    out.set(b, offsets[i]);
    const h = shoff + 64 * (i + 1);
    const isStrtab = i === bodies.length - 1;
    v.setUint32(h, nameOff[i + 1], true);
    v.setUint32(h + 4, isStrtab ? 3 : 1, true); // SHT_STRTAB or SHT_PROGBITS
    v.setBigUint64(h + 8, BigInt(isStrtab ? 0 : (sections[i].flags ?? 0)), true);
    v.setBigUint64(h + 0x18, BigInt(offsets[i]), true);
    v.setBigUint64(h + 0x20, BigInt(b.length), true);
    v.setBigUint64(h + 0x30, 1n, true);
  });
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** One record of every kind the writer supports, with the awkward values of each. */
export const EVERY_KIND: BtfType[] = [
  /* 1 */ { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 },
  /* 2 */ { kind: Kind.Int, name: 'long unsigned int', kindFlag: false, size: 8, encoding: 0, bitOffset: 0, bits: 64 },
  /* 3 */ { kind: Kind.Ptr, name: '', kindFlag: false, type: 4 },
  /* 4 */ {
    kind: Kind.Struct,
    name: 'task_struct',
    kindFlag: true,
    size: 24,
    members: [
      { name: 'pid', type: 1, offsetBits: 0, bitfieldBits: 0 },
      { name: 'flag', type: 1, offsetBits: 32, bitfieldBits: 3 },
      { name: 'parent', type: 3, offsetBits: 64, bitfieldBits: 0 },
      { name: '', type: 6, offsetBits: 128, bitfieldBits: 0 },
    ],
  },
  /* 5 */ { kind: Kind.Array, name: '', kindFlag: false, type: 1, indexType: 1, nelems: 16 },
  /* 6 */ {
    kind: Kind.Union,
    name: '',
    kindFlag: false,
    size: 8,
    members: [
      { name: 'a', type: 1, offsetBits: 0, bitfieldBits: 0 },
      { name: 'b', type: 2, offsetBits: 0, bitfieldBits: 0 },
    ],
  },
  /* 7 */ {
    kind: Kind.Enum,
    name: 'signed_enum',
    kindFlag: true,
    size: 4,
    values: [
      { name: 'NEG', value: -1 },
      { name: 'MIN', value: -2147483648 },
      { name: 'POS', value: 7 },
    ],
  },
  /* 8 */ {
    kind: Kind.Enum,
    name: 'unsigned_enum',
    kindFlag: false,
    size: 4,
    values: [
      { name: 'BIG', value: 4294967295 },
      { name: 'ZERO', value: 0 },
    ],
  },
  /* 9 */ {
    kind: Kind.Enum64,
    name: 'e64',
    kindFlag: false,
    size: 8,
    values: [
      { name: 'U64_MAX', value: 18446744073709551615n },
      { name: 'SAFE', value: 4294967296 },
      { name: 'UNSAFE', value: 9007199254740993n },
    ],
  },
  /* 10 */ {
    kind: Kind.Enum64,
    name: 's64',
    kindFlag: true,
    size: 8,
    values: [
      { name: 'S64_MIN', value: -9223372036854775808n },
      { name: 'M1', value: -1 },
    ],
  },
  /* 11 */ { kind: Kind.Fwd, name: 'sock', kindFlag: false },
  /* 12 */ { kind: Kind.Fwd, name: 'bpf_attr', kindFlag: true },
  /* 13 */ { kind: Kind.Typedef, name: 'pid_t', kindFlag: false, type: 1 },
  /* 14 */ { kind: Kind.Volatile, name: '', kindFlag: false, type: 1 },
  /* 15 */ { kind: Kind.Const, name: '', kindFlag: false, type: 14 },
  /* 16 */ { kind: Kind.Restrict, name: '', kindFlag: false, type: 3 },
  /* 17 */ {
    kind: Kind.FuncProto,
    name: '',
    kindFlag: false,
    returnType: 1,
    params: [
      { name: 'task', type: 3 },
      { name: '', type: 0 },
    ],
  },
  /* 18 */ { kind: Kind.Func, name: 'do_sys_openat2', kindFlag: false, type: 17, linkage: 1 },
  /* 19 */ { kind: Kind.Var, name: 'jiffies', kindFlag: false, type: 2, linkage: 1 },
  /* 20 */ { kind: Kind.Datasec, name: '.data..percpu', kindFlag: false, size: 8, vars: [{ type: 19, offset: 0, size: 8 }] },
  /* 21 */ { kind: Kind.Float, name: 'double', kindFlag: false, size: 8 },
  /* 22 */ { kind: Kind.DeclTag, name: 'bpf_kfunc', kindFlag: false, type: 18, componentIdx: -1 },
  /* 23 */ { kind: Kind.DeclTag, name: 'arg_tag', kindFlag: false, type: 18, componentIdx: 0 },
  /* 24 */ { kind: Kind.TypeTag, name: 'rcu', kindFlag: false, type: 4 },
];

/** Byte positions inside the blob {@link minimalBtf} returns, for precise corruption. */
export interface MinimalBtfLayout {
  /** Start of the type section (= header length, 24). */
  readonly types: number;
  /** Start of each type record, by type id. */
  readonly type: Record<1 | 2 | 3 | 4, number>;
  /** Start of each member record of type [3] (struct task). */
  readonly member: [number, number];
  /** Start of the string section. */
  readonly strings: number;
}

/**
 * A minimal valid BTF blob, encoded by hand with a DataView (not with the writer, so that it
 * checks the writer as well as the reader):
 *
 *   [1] INT 'int' size=4 signed 32 bits
 *   [2] PTR -> [3]
 *   [3] STRUCT 'task' size=16: 'pid' [1] at bit 0, 'next' [2] at bit 64
 *   [4] ENUM 'state' size=4: RUNNING=0
 */
export function minimalBtf(): { bytes: Uint8Array; at: MinimalBtfLayout } {
  const strs = ['', 'int', 'task', 'pid', 'next', 'state', 'RUNNING'];
  const off: Record<string, number> = {};
  let strLen = 0;
  for (const s of strs) {
    off[s] = strLen;
    strLen += s.length + 1;
  }
  const typeLen = 16 + 12 + (12 + 2 * 12) + (12 + 8);
  const bytes = new Uint8Array(24 + typeLen + strLen);
  const v = new DataView(bytes.buffer);
  v.setUint16(0, 0xeb9f, true);
  v.setUint8(2, 1);
  v.setUint32(4, 24, true);
  v.setUint32(8, 0, true);
  v.setUint32(12, typeLen, true);
  v.setUint32(16, typeLen, true);
  v.setUint32(20, strLen, true);
  let p = 24;
  const w = (...words: number[]) => {
    for (const x of words) {
      v.setUint32(p, x >>> 0, true);
      p += 4;
    }
  };
  const info = (kind: number, vlen: number, kflag = 0) => (kflag << 31) | (kind << 24) | vlen;
  const type = { 1: p, 2: 0, 3: 0, 4: 0 };
  w(off.int, info(1, 0), 4, (1 << 24) | 32);
  type[2] = p;
  w(0, info(2, 0), 3);
  type[3] = p;
  w(off.task, info(4, 2), 16);
  const member: [number, number] = [p, p + 12];
  w(off.pid, 1, 0);
  w(off.next, 2, 64);
  type[4] = p;
  w(off.state, info(6, 1), 4);
  w(off.RUNNING, 0);
  const strings = p;
  for (const s of strs) {
    for (let i = 0; i < s.length; i++) bytes[p++] = s.charCodeAt(i);
    bytes[p++] = 0;
  }
  return { bytes, at: { types: 24, type, member, strings } };
}
