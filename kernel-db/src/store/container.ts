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
import * as zlib from 'node:zlib';
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
    // A fixed level and zlib's fixed gzip header (no timestamp) keep output byte-identical.
    return new Uint8Array(gzipSync(this.serialise(meta), { level }));
  }

  /**
   * {@link finish}, compressed on zlib's thread pool in {@link PIECES} pieces at once: each piece
   * is deflated on its own and ends on a byte boundary (a sync flush), so the pieces joined are
   * one deflate stream, framed as one gzip member whose trailer holds the whole CRC and size.
   * Readers see an ordinary gzip file; the pieces cost some ratio (no match across a cut) and the
   * fixed cuts keep output byte-identical. Where Node lacks `zlib.crc32` it is {@link finish}.
   */
  async finishAsync(meta: Record<string, unknown>, level: number): Promise<Uint8Array> {
    const raw = this.serialise(meta);
    const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
    if (!crc32) return new Uint8Array(gzipSync(raw, { level }));
    const step = Math.ceil(raw.length / PIECES);
    const pieces = await Promise.all(
      Array.from({ length: PIECES }, (_, i) => {
        const piece = raw.subarray(i * step, Math.min(raw.length, (i + 1) * step));
        const last = i === PIECES - 1;
        return new Promise<Buffer>((resolve, reject) =>
          zlib.deflateRaw(piece, { level, finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH }, (e, out) =>
            e ? reject(e) : resolve(out),
          ),
        );
      }),
    );
    const body = pieces.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(GZIP_HEADER.length + body + 8);
    out.set(GZIP_HEADER, 0);
    let at = GZIP_HEADER.length;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    const trailer = new DataView(out.buffer, at, 8);
    trailer.setUint32(0, crc32(raw), true);
    // ISIZE: the size modulo 2^32.
    trailer.setUint32(4, raw.length >>> 0, true);
    return out;
  }

  /** Header `meta` and all sections, uncompressed. */
  private serialise(meta: Record<string, unknown>): Uint8Array {
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
    return out;
  }
}

/** Pieces {@link ContainerWriter.finishAsync} compresses at once: zlib's thread pool has four threads. */
const PIECES = 4;
/** A gzip member header: deflate, no flags, no timestamp, no extra flags, OS unknown. */
const GZIP_HEADER = Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff);

/** Reads a container produced by {@link ContainerWriter}. */
export class ContainerReader {
  readonly meta: Record<string, unknown>;
  private readonly entries: Record<string, SectionEntry>;
  private readonly buf: Uint8Array;
  private readonly base: number;
  /** Sections of a twin read in pages on demand ({@link ensureRows}): the pages read so far, per section. */
  private readonly lazy?: { readonly fd: number; readonly pages: Map<string, Uint8Array> };

  /**
   * @param compressed the file's bytes.
   * @param file the name used in error messages.
   */
  constructor(
    compressed: Uint8Array,
    readonly file: string,
    /** `compressed` is already decompressed (by {@link ContainerReader.decompress}). */
    decompressed = false,
    /** A twin read without some sections ({@link readTwin}): where to read them from. */
    twin?: Twin,
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
    if (twin?.fd !== undefined && twin.unread.size) {
      const pages = new Map<string, Uint8Array>();
      for (const name of twin.unread) {
        const e = this.entries[name];
        if (e) pages.set(name, new Uint8Array(Math.ceil((e.length * CTORS[e.type].BYTES_PER_ELEMENT) / PAGE)));
      }
      this.lazy = { fd: twin.fd, pages };
      twinFiles.register(this, twin.fd);
    }
  }

  /**
   * Makes rows `[from, to)` of section `name` readable: a section the twin was read without is
   * read now, in pages of {@link PAGE} bytes, where it was not yet. Other sections are whole already.
   */
  ensureRows(name: string, from: number, to: number): void {
    const pages = this.lazy?.pages.get(name);
    if (!pages || from >= to) return;
    const e = this.entries[name];
    const size = CTORS[e.type].BYTES_PER_ELEMENT;
    const start = this.base + e.offset;
    const end = start + e.length * size;
    for (let p = Math.floor((from * size) / PAGE); p <= Math.floor((to * size - 1) / PAGE) && p < pages.length; p++) {
      if (pages[p]) continue;
      // The twin's bytes are the buffer's, at the same offsets.
      const at = start + p * PAGE;
      const n = Math.min(PAGE, end - at);
      if (readFully(this.lazy!.fd, this.buf, at, n) !== n) throw new Error(`${this.file}: its decompressed twin changed while in use`);
      pages[p] = 1;
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

/**
 * Lazily read sections are read in pages of this many bytes: the memory page size, since the
 * strings one analysis decodes lie scattered over the whole (sorted) table. 16 KiB pages read
 * 3.6 MB of the strings' 7 MB for twenty open documents, 4 KiB pages 1.6 MB.
 */
const PAGE = 4 * 1024;

/** Closes a twin's file when the reader that reads its pages is collected. */
const twinFiles = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // Closed already.
  }
});

/**
 * A store's twin as read: its bytes (without the trailer), where sections named in `unread` are
 * still zeros, and the open file to read them from (`ContainerReader.ensureRows`).
 */
export interface Twin {
  readonly bytes: Uint8Array;
  readonly unread: ReadonlySet<string>;
  readonly fd?: number;
}

/**
 * What to read of a twin of `size` bytes (its trailer included) whose first bytes are `head`:
 * the byte ranges of the header and of every section not in `lazy`, or undefined when `head`
 * is not a container's start (then the store file itself decides). `head` holds at least
 * {@link TWIN_HEAD} bytes, or the whole twin when shorter.
 */
function twinPlan(
  head: Uint8Array,
  size: number,
  lazy: ReadonlySet<string>,
): { ranges: [number, number][]; unread: Set<string> } | undefined {
  const total = size - 8;
  if (head.length < 12 || Buffer.from(head.subarray(0, 8)).toString('latin1') !== MAGIC) return undefined;
  const headerLen = new DataView(head.buffer, head.byteOffset, 12).getUint32(8, true);
  const base = 12 + headerLen;
  if (base > total || base > head.length) return { ranges: [[0, total]], unread: new Set() };
  let sections: Record<string, SectionEntry>;
  try {
    sections = (JSON.parse(Buffer.from(head.subarray(12, base)).toString('utf8')) as { sections: Record<string, SectionEntry> }).sections;
  } catch {
    return { ranges: [[0, total]], unread: new Set() };
  }
  const skip: [number, number][] = [];
  const unread = new Set<string>();
  for (const name of lazy) {
    const e = sections?.[name];
    const width = e && CTORS[e.type]?.BYTES_PER_ELEMENT;
    if (!width || !Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.length)) continue;
    const a = base + e.offset;
    const b = a + e.length * width;
    if (a < base || b > total) continue;
    skip.push([a, b]);
    unread.add(name);
  }
  skip.sort((x, y) => x[0] - y[0]);
  const ranges: [number, number][] = [];
  let at = 0;
  for (const [a, b] of skip) {
    if (a > at) ranges.push([at, a]);
    at = Math.max(at, b);
  }
  if (at < total) ranges.push([at, total]);
  return { ranges, unread };
}

/** Bytes enough for a store's header (its JSON names ~40 sections); a larger one is read whole. */
const TWIN_HEAD = 64 * 1024;

/** Reads `n` bytes of `fd` at `at` into `buf` at `at`; the count read. */
function readFully(fd: number, buf: Uint8Array, at: number, n: number): number {
  let done = 0;
  while (done < n) {
    const r = readSync(fd, buf, at + done, n - done, at + done);
    if (r <= 0) break;
    done += r;
  }
  return done;
}

/**
 * What reading a twin asks of the file system: to open a file (a handle), its size and kind, and
 * `n` bytes at file offset `pos` into `buf` at `at` (the count read; 0 at the end). The steps of
 * {@link twinSteps} ask for these and {@link readTwin} and {@link readTwinAsync} carry them out,
 * so the two read the same way.
 */
type TwinIo =
  | { readonly op: 'open'; readonly path: string }
  | { readonly op: 'stat'; readonly handle: number }
  | {
      readonly op: 'read';
      readonly handle: number;
      readonly buf: Uint8Array;
      readonly at: number;
      readonly n: number;
      readonly pos: number;
    };

/** What a `stat` step answers. */
interface TwinStat {
  readonly size: number;
  readonly isFile: boolean;
}

/**
 * The reading of `file`'s twin as steps (see {@link TwinIo}): the bytes and unread sections, with
 * the handle of the twin to keep open when sections are left unread (`keep`), or undefined.
 */
function* twinSteps(
  file: string,
  lazy: ReadonlySet<string>,
): Generator<TwinIo, (Omit<Twin, 'fd'> & { readonly keep?: number }) | undefined, number | TwinStat> {
  const fd = (yield { op: 'open', path: file }) as number;
  const size = ((yield { op: 'stat', handle: fd }) as TwinStat).size;
  if (size < 18) return undefined;
  const trailer = new Uint8Array(8);
  if ((yield { op: 'read', handle: fd, buf: trailer, at: 0, n: 8, pos: size - 8 }) !== 8) return undefined;
  const tfd = (yield { op: 'open', path: twinPath(file) }) as number;
  const st = (yield { op: 'stat', handle: tfd }) as TwinStat;
  const isize = new DataView(trailer.buffer).getUint32(4, true);
  // ISIZE is the size modulo 2^32; a store is far below 4 GiB.
  if (!st.isFile || st.size !== isize + 8) return undefined;
  const own = new Uint8Array(8);
  if ((yield { op: 'read', handle: tfd, buf: own, at: 0, n: 8, pos: st.size - 8 }) !== 8) return undefined;
  if (!Buffer.from(own).equals(Buffer.from(trailer))) return undefined;
  const bytes = new Uint8Array(new ArrayBuffer(st.size - 8));
  const readAll = function* (at: number, n: number): Generator<TwinIo, number, number | TwinStat> {
    let done = 0;
    while (done < n) {
      const r = (yield { op: 'read', handle: tfd, buf: bytes, at: at + done, n: n - done, pos: at + done }) as number;
      if (r <= 0) break;
      done += r;
    }
    return done;
  };
  const headLen = Math.min(TWIN_HEAD, bytes.length);
  if ((yield* readAll(0, headLen)) !== headLen) return undefined;
  const plan = twinPlan(bytes.subarray(0, headLen), st.size, lazy);
  if (!plan) return undefined;
  for (const [a, b] of plan.ranges) {
    const from = Math.max(a, headLen);
    if (b > from && (yield* readAll(from, b - from)) !== b - from) return undefined;
  }
  return { bytes, unread: plan.unread, ...(plan.unread.size ? { keep: tfd } : {}) };
}

/**
 * `file`'s twin, decompressed, or undefined when there is none or it is not `file`'s. Sections
 * named in `lazy` are left unread, to be read in pages when asked for: the store's field table is
 * half its bytes, and an editor session reads the rows of a few structs.
 */
export function readTwin(file: string, lazy: ReadonlySet<string> = new Set()): Twin | undefined {
  const fds: number[] = [];
  let keep: number | undefined;
  try {
    const steps = twinSteps(file, lazy);
    for (let r = steps.next(0); ; ) {
      if (r.done) {
        if (!r.value) return undefined;
        keep = r.value.keep;
        return { bytes: r.value.bytes, unread: r.value.unread, ...(keep !== undefined ? { fd: fds[keep] } : {}) };
      }
      const io = r.value;
      if (io.op === 'open') {
        fds.push(openSync(io.path, 'r'));
        r = steps.next(fds.length - 1);
      } else if (io.op === 'stat') {
        const st = fstatSync(fds[io.handle]);
        r = steps.next({ size: st.size, isFile: st.isFile() });
      } else r = steps.next(readSync(fds[io.handle], io.buf, io.at, io.n, io.pos));
    }
  } catch {
    return undefined;
  } finally {
    fds.forEach((fd, h) => h === keep || closeSync(fd));
  }
}

/**
 * {@link readTwin} on libuv's threads: the language server reads the twin while it starts. The
 * file stays open for the sections left unread, which are read synchronously later (a few pages).
 */
export async function readTwinAsync(file: string, lazy: ReadonlySet<string> = new Set()): Promise<Twin | undefined> {
  const handles: Awaited<ReturnType<typeof open>>[] = [];
  try {
    const steps = twinSteps(file, lazy);
    for (let r = steps.next(0); ; ) {
      if (r.done) {
        if (!r.value) return undefined;
        const { bytes, unread, keep } = r.value;
        if (keep === undefined) return { bytes, unread };
        // Pages are read synchronously later: a descriptor of the same file outlives the handle.
        const fd = openSync(twinPath(file), 'r');
        if (fstatSync(fd).ino !== (await handles[keep].stat()).ino) {
          closeSync(fd);
          return undefined;
        }
        return { bytes, unread, fd };
      }
      const io = r.value;
      if (io.op === 'open') {
        handles.push(await open(io.path, 'r'));
        r = steps.next(handles.length - 1);
      } else if (io.op === 'stat') {
        const st = await handles[io.handle].stat();
        r = steps.next({ size: st.size, isFile: st.isFile() });
      } else r = steps.next((await handles[io.handle].read(io.buf, io.at, io.n, io.pos)).bytesRead);
    }
  } catch {
    return undefined;
  } finally {
    for (const h of handles) await h.close();
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
