/**
 * The on-disk container of a kernel database: a gzip stream holding a small JSON header and a
 * set of named, 8-byte-aligned binary sections (typed-array columns and a string table).
 *
 * Layout after decompression:
 *   bytes 0..7   magic `EBPFKDB1`
 *   bytes 8..11  u32 LE length H of the JSON header
 *   bytes 12..   the JSON header (UTF-8), padded with spaces to a multiple of 8 bytes
 *   then         each section at the offset the header gives, relative to the end of the header
 *
 * The container knows nothing about kernels; `db.ts` and `builder.ts` give the sections meaning.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { gunzip, gunzipSync, gzipSync } from 'node:zlib';

const MAGIC = 'EBPFKDB1';
/** Bumped whenever the meaning of any section changes; readers refuse other versions. */
export const FORMAT_VERSION = 2;

/** Element types a section may hold. */
export type SectionType = 'u8' | 'i8' | 'u16' | 'u32' | 'i32' | 'f64' | 'bytes';

interface SectionEntry {
  readonly type: SectionType;
  readonly offset: number;
  readonly length: number;
}

/** A typed array of any section type. */
export type Column = Uint8Array | Int8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

const CTORS = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f64: Float64Array,
  bytes: Uint8Array,
} as const;

/** The typed array of a section of element type `T`. */
export type ColumnOf<T extends SectionType> = InstanceType<(typeof CTORS)[T]>;

/** Collects sections and a JSON header, and serialises them deterministically. */
export class ContainerWriter {
  private readonly sections: { name: string; type: SectionType; data: Column }[] = [];

  /** Adds a section; names must be unique. */
  add(name: string, type: SectionType, data: Column): void {
    if (this.sections.some((s) => s.name === name)) throw new Error(`duplicate section ${name}`);
    this.sections.push({ name, type, data });
  }

  /** Serialises header `meta` and all sections, gzip-compressed. */
  finish(meta: Record<string, unknown>, level = 9): Uint8Array {
    const entries: Record<string, SectionEntry> = {};
    let offset = 0;
    for (const s of this.sections) {
      entries[s.name] = { type: s.type, offset, length: s.data.length };
      offset += align8(s.data.byteLength);
    }
    const header = Buffer.from(JSON.stringify({ format: FORMAT_VERSION, meta, sections: entries }), 'utf8');
    const headerLen = align8(12 + header.length) - 12;
    const out = new Uint8Array(12 + headerLen + offset);
    out.set(Buffer.from(MAGIC, 'latin1'), 0);
    new DataView(out.buffer).setUint32(8, headerLen, true);
    out.fill(0x20, 12, 12 + headerLen);
    out.set(header, 12);
    const base = 12 + headerLen;
    for (const s of this.sections) {
      const e = entries[s.name];
      out.set(new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength), base + e.offset);
    }
    // A fixed level and zlib's fixed gzip header (no timestamp) keep output byte-identical.
    return new Uint8Array(gzipSync(out, { level }));
  }
}

/** Reads a container produced by {@link ContainerWriter}. */
export class ContainerReader {
  readonly meta: Record<string, unknown>;
  private readonly entries: Record<string, SectionEntry>;
  private readonly buf: Uint8Array;
  private readonly base: number;

  /**
   * @param compressed the file's bytes.
   * @param file the name used in error messages.
   */
  constructor(
    compressed: Uint8Array,
    readonly file: string,
    /** `compressed` is already decompressed (by {@link ContainerReader.decompress}). */
    decompressed = false,
  ) {
    let buf: Uint8Array;
    try {
      const raw = decompressed ? compressed : gunzipSync(compressed);
      // Typed-array views need aligned offsets; Node may hand back a pooled, unaligned slice.
      buf = raw.byteOffset % 8 === 0 ? new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) : new Uint8Array(raw);
    } catch (e) {
      throw new Error(`${file}: not a kernel database (gzip: ${(e as Error).message})`);
    }
    if (buf.length < 12 || Buffer.from(buf.subarray(0, 8)).toString('latin1') !== MAGIC) {
      throw new Error(`${file}: not a kernel database (bad magic)`);
    }
    const headerLen = new DataView(buf.buffer, buf.byteOffset).getUint32(8, true);
    if (12 + headerLen > buf.length) throw new Error(`${file}: truncated kernel database header`);
    let parsed: { format: number; meta: Record<string, unknown>; sections: Record<string, SectionEntry> };
    try {
      parsed = JSON.parse(Buffer.from(buf.subarray(12, 12 + headerLen)).toString('utf8'));
    } catch {
      throw new Error(`${file}: corrupt kernel database header`);
    }
    if (parsed.format !== FORMAT_VERSION) {
      throw new Error(
        `${file}: kernel database format ${parsed.format}, this version reads format ${FORMAT_VERSION}; rebuild or re-import it`,
      );
    }
    this.meta = parsed.meta;
    this.entries = parsed.sections;
    this.buf = buf;
    this.base = 12 + headerLen;
    for (const [name, e] of Object.entries(this.entries)) {
      const size = e.length * CTORS[e.type].BYTES_PER_ELEMENT;
      if (this.base + e.offset + size > buf.length) throw new Error(`${file}: section ${name} is truncated`);
    }
  }

  /**
   * Decompresses a container's bytes off the main thread (zlib's thread pool), for a reader built
   * with `decompressed`: the language server's start-up loads the parser meanwhile.
   */
  static decompress(compressed: Uint8Array, file: string): Promise<Uint8Array> {
    // One output chunk as large as the gzip trailer's size (ISIZE, the size modulo 2^32): zlib
    // then calls back once and hands its buffer over, where 16 KiB chunks cost a callback each and
    // a copy of the whole store on the main thread.
    const n = compressed.length;
    const isize = n >= 18 ? new DataView(compressed.buffer, compressed.byteOffset + n - 4, 4).getUint32(0, true) : 0;
    const chunkSize = Math.min(Math.max(isize + 1024, 64 * 1024), 1 << 30);
    return new Promise((resolve, reject) =>
      gunzip(compressed, { chunkSize }, (e, raw) =>
        e
          ? reject(new Error(`${file}: not a kernel database (gzip: ${e.message})`))
          : resolve(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)),
      ),
    );
  }

  /** Whether section `name` exists. */
  has(name: string): boolean {
    return name in this.entries;
  }

  /** A view of section `name` (no copy). */
  get<T extends SectionType>(name: string, type: T): ColumnOf<T> {
    const e = this.entries[name];
    if (!e) throw new Error(`${this.file}: missing section ${name}`);
    if (e.type !== type) throw new Error(`${this.file}: section ${name} is ${e.type}, expected ${type}`);
    const Ctor = CTORS[type];
    return new Ctor(this.buf.buffer as ArrayBuffer, this.buf.byteOffset + this.base + e.offset, e.length) as ColumnOf<T>;
  }
}

/**
 * The decompressed twin of a container file, `<file>.raw`, which the build writes beside it
 * (`scripts/build.mjs`): the container's bytes followed by the last 8 bytes of the gzip file it
 * was made from (the CRC-32 and size of those bytes). Start-up reads it instead of decompressing
 * (~20 ms against ~140 ms); a twin whose trailer is not the file's own (the store was rebuilt
 * since) is not used.
 */
export function twinPath(file: string): string {
  return `${file}.raw`;
}

/** The bytes of `file`'s twin, decompressed, or undefined when there is none or it is not `file`'s. */
export function readTwin(file: string): Uint8Array | undefined {
  let fd: number | undefined;
  let tfd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    if (size < 18) return undefined;
    const trailer = Buffer.alloc(8);
    if (readSync(fd, trailer, 0, 8, size - 8) !== 8) return undefined;
    tfd = openSync(twinPath(file), 'r');
    const st = fstatSync(tfd);
    // ISIZE is the size modulo 2^32; a store is far below 4 GiB.
    if (!st.isFile() || st.size !== trailer.readUInt32LE(4) + 8) return undefined;
    const buf = new Uint8Array(new ArrayBuffer(st.size));
    let off = 0;
    while (off < st.size) {
      const n = readSync(tfd, buf, off, st.size - off, off);
      if (n <= 0) return undefined;
      off += n;
    }
    if (!Buffer.from(buf.buffer, st.size - 8, 8).equals(trailer)) return undefined;
    return buf.subarray(0, st.size - 8);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (tfd !== undefined) closeSync(tfd);
  }
}

/** {@link readTwin} on libuv's threads: the language server reads the twin while it starts. */
export async function readTwinAsync(file: string): Promise<Uint8Array | undefined> {
  let f: Awaited<ReturnType<typeof open>> | undefined;
  let t: Awaited<ReturnType<typeof open>> | undefined;
  try {
    f = await open(file, 'r');
    const size = (await f.stat()).size;
    if (size < 18) return undefined;
    const trailer = Buffer.alloc(8);
    if ((await f.read(trailer, 0, 8, size - 8)).bytesRead !== 8) return undefined;
    t = await open(twinPath(file), 'r');
    const st = await t.stat();
    if (!st.isFile() || st.size !== trailer.readUInt32LE(4) + 8) return undefined;
    const buf = new Uint8Array(new ArrayBuffer(st.size));
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await t.read(buf, off, st.size - off, off);
      if (bytesRead <= 0) return undefined;
      off += bytesRead;
    }
    if (!Buffer.from(buf.buffer, st.size - 8, 8).equals(trailer)) return undefined;
    return buf.subarray(0, st.size - 8);
  } catch {
    return undefined;
  } finally {
    await f?.close();
    await t?.close();
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
