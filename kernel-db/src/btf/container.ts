/**
 * Unwraps the containers BTF arrives in: xz and gzip compression, tar archives (BTFHub ships
 * `<release>.btf.tar.xz`), and ELF files with a `.BTF` section (vmlinux, BPF objects).
 * What remains must be raw BTF; anything else gets a {@link BtfError} naming the file.
 */
import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ElfError, isElf, readElf, SHF_COMPRESSED } from '../elf';
import { Btf, BtfError } from './reader';
import type * as XzDecompress from 'xz-decompress';

/** What a container held, and how it was reached. */
export interface LoadedBtf {
  readonly btf: Btf;
  /** The raw BTF bytes (after every container was removed). */
  readonly raw: Uint8Array;
  /** sha256 of {@link raw}, hex. */
  readonly sha256: string;
  /** The layers peeled off, outermost first, e.g. `['xz', 'tar:5.4.0.btf']`. */
  readonly layers: string[];
}

const isXz = (b: Uint8Array) =>
  b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0;
const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
const isZstd = (b: Uint8Array) => b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd;
const isBtf = (b: Uint8Array) => b.length >= 2 && ((b[0] === 0x9f && b[1] === 0xeb) || (b[0] === 0xeb && b[1] === 0x9f));
const isTar = (b: Uint8Array) => b.length >= 512 && String.fromCharCode(...b.subarray(257, 262)) === 'ustar';

/**
 * The most a compressed layer may unpack to. A kernel's raw BTF is 5-10 MB and an ELF vmlinux a
 * few hundred; more is refused as it is read, before it is held (a compression bomb, or a length
 * field claiming gigabytes).
 */
export const MAX_UNPACKED_BYTES = 512 * 1024 * 1024;

/** Decompresses a whole xz stream, refusing more than `max` bytes of output. */
export async function xzDecompress(bytes: Uint8Array, file: string, max = MAX_UNPACKED_BYTES): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    // Loaded on first use: the module (and the web streams it needs) costs ~8 ms at start-up, and
    // only importing a kernel's BTF reads xz.
    const xz = require('xz-decompress') as typeof XzDecompress;
    const reader = new xz.XzReadableStream(new Blob([bytes]).stream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel();
        throw new BtfError(file, `xz data unpacks to more than ${max / 1024 / 1024} MB; not a kernel's BTF`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof BtfError) throw e;
    throw new BtfError(file, `xz data is corrupt or truncated (${(e as Error).message || String(e)})`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Returns the raw BTF inside `bytes`, peeling off compression, tar and ELF layers.
 * @throws BtfError when no BTF can be found.
 */
export async function unwrapBtf(bytes: Uint8Array, file: string, max = MAX_UNPACKED_BYTES): Promise<{ raw: Uint8Array; layers: string[] }> {
  const layers: string[] = [];
  for (let depth = 0; depth < 6; depth++) {
    if (isBtf(bytes)) return { raw: bytes, layers };
    if (isXz(bytes)) {
      bytes = await xzDecompress(bytes, file, max);
      layers.push('xz');
    } else if (isGzip(bytes)) {
      try {
        bytes = new Uint8Array(gunzipSync(bytes, { maxOutputLength: max }));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
          throw new BtfError(file, `gzip data unpacks to more than ${max / 1024 / 1024} MB; not a kernel's BTF`);
        throw new BtfError(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
      }
      layers.push('gzip');
    } else if (isZstd(bytes)) {
      throw new BtfError(file, 'zstd-compressed; decompress it first (`zstd -d`)');
    } else if (isElf(bytes)) {
      bytes = elfSection(bytes, '.BTF', file);
      layers.push('elf:.BTF');
    } else if (isTar(bytes)) {
      const member = tarFirstFile(bytes, file);
      bytes = member.data;
      layers.push(`tar:${member.name}`);
    } else {
      const head = Array.from(bytes.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
      throw new BtfError(
        file,
        bytes.length === 0
          ? 'file is empty'
          : `not a BTF file: starts with bytes ${head}; expected raw BTF (9f eb), xz, gzip, tar or an ELF file with a .BTF section`,
      );
    }
  }
  throw new BtfError(file, 'too many nested containers');
}

/** Reads a file and parses the BTF inside it. */
export async function loadBtfFile(path: string): Promise<LoadedBtf> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new BtfError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return loadBtfBytes(bytes, path);
}

/** Parses the BTF inside `bytes` (any supported container). */
export async function loadBtfBytes(bytes: Uint8Array, file: string): Promise<LoadedBtf> {
  const { raw, layers } = await unwrapBtf(bytes, file);
  const btf = new Btf(raw, file);
  // Valid as BTF, but nothing a kernel's BTF could be (it would import as "version 0.0.0").
  if (btf.count === 0) throw new BtfError(file, "BTF header claims no types (an empty type section): not a kernel's BTF");
  return { btf, raw, layers, sha256: createHash('sha256').update(raw).digest('hex') };
}

/** Returns the contents of the ELF section `name`; a {@link BtfError} naming `file` otherwise. */
export function elfSection(b: Uint8Array, name: string, file: string): Uint8Array {
  try {
    const elf = readElf(b);
    const s = elf.section(name);
    if (!s) throw new ElfError(`no ${name} section (was the kernel built with CONFIG_DEBUG_INFO_BTF=y?)`);
    if (s.flags & SHF_COMPRESSED) throw new ElfError(`section ${name} is compressed (SHF_COMPRESSED); decompress it with objcopy first`);
    return elf.data(s);
  } catch (e) {
    if (e instanceof ElfError) throw new BtfError(file, `ELF: ${e.message}`);
    throw e;
  }
}

/** Returns the first regular file of a tar archive that holds BTF or ELF data. */
function tarFirstFile(b: Uint8Array, file: string): { name: string; data: Uint8Array } {
  const dec = new TextDecoder();
  const field = (at: number, len: number) => {
    let end = at;
    while (end < at + len && b[end] !== 0) end++;
    return dec.decode(b.subarray(at, end));
  };
  let p = 0;
  while (p + 512 <= b.length) {
    const name = field(p, 100);
    if (name === '') break;
    const size = parseInt(field(p + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(b[p + 156] || 0x30);
    const start = p + 512;
    if (!Number.isFinite(size) || size < 0 || start + size > b.length) {
      throw new BtfError(file, `tar member ${name} is truncated`);
    }
    const data = b.subarray(start, start + size);
    if ((type === '0' || type === '\0') && (isBtf(data) || isElf(data))) return { name, data };
    p = start + Math.ceil(size / 512) * 512;
  }
  throw new BtfError(file, 'tar archive holds no BTF or ELF file');
}
