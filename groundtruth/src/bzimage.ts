/**
 * A kernel's own BTF from its boot image, to make a `vmlinux.h` that matches the kernel being
 * verified. An x86 bzImage: the boot protocol header locates the compressed vmlinux, which is
 * decompressed (gzip, xz, zstd or lz4, as Debian builds use) and its `.BTF` section copied out.
 * An arm64 Image (Debian's `vmlinuz`, raw or gzip'd) is the kernel's memory image without ELF
 * section headers: its BTF is found by the header's magic and checked by the BTF reader.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { elfSection } from '../../kernel-db/src/btf/container';
import { parseBtf } from '../../kernel-db/src/btf/reader';
import { HostError, which } from './host';

/** The compressed vmlinux inside a bzImage, and how it is compressed. */
export function bzImagePayload(b: Uint8Array, file: string): { bytes: Uint8Array; format: 'gzip' | 'xz' | 'zstd' | 'lz4' | 'unknown' } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 0x260 || buf.toString('latin1', 0x202, 0x206) !== 'HdrS')
    throw new HostError(`${file} is not an x86 bzImage (no "HdrS" boot header)`);
  const setupSects = buf[0x1f1] || 4;
  const offset = (setupSects + 1) * 512 + buf.readUInt32LE(0x248);
  const length = buf.readUInt32LE(0x24c);
  if (offset + length > buf.length || length < 16)
    throw new HostError(`${file}: the boot header's payload (${offset}+${length}) lies outside the file`);
  const bytes = b.subarray(offset, offset + length);
  const m = (sig: number[]) => sig.every((x, i) => bytes[i] === x);
  const format = m([0x1f, 0x8b])
    ? 'gzip'
    : m([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])
      ? 'xz'
      : m([0x28, 0xb5, 0x2f, 0xfd])
        ? 'zstd'
        : m([0x02, 0x21, 0x4c, 0x18])
          ? 'lz4'
          : 'unknown';
  return { bytes, format };
}

/** The vmlinux BTF of a bzImage; throws a message naming what is missing when it cannot. */
export async function btfFromBzImage(file: string): Promise<Uint8Array> {
  const { bytes, format } = bzImagePayload(new Uint8Array(readFileSync(file)), file);
  // The build appends the decompressed size as 4 bytes after the stream; decoders that insist on
  // a clean end get the stream without it.
  const stream = bytes.subarray(0, bytes.length - 4);
  let vmlinux: Uint8Array;
  if (format === 'gzip') vmlinux = gunzipSync(bytes);
  else if (format === 'xz' || format === 'zstd' || format === 'lz4') {
    // The kernel's xz stream uses the x86 BCJ filter, which the bundled xz decoder lacks, so all
    // three go through the host's decompressors.
    const tool = format;
    if (!which(tool))
      throw new HostError(
        `${file} is ${format}-compressed; install ${tool} (Debian package ${tool === 'xz' ? 'xz-utils' : tool}) to read its BTF, or pass --btf`,
      );
    const r = spawnSync(tool, ['-dc'], { input: format === 'lz4' ? bytes : stream, maxBuffer: 1 << 30 });
    // lz4's legacy frames carry no end marker, so its decoder may complain about the size trailer
    // after writing everything; what it wrote is what counts.
    if (!r.stdout || r.stdout.length === 0)
      throw new HostError(`${tool} could not decompress the kernel in ${file}: ${String(r.stderr).trim()}`);
    vmlinux = new Uint8Array(r.stdout);
  } else throw new HostError(`${file}: unknown kernel compression; pass --btf`);
  return elfSection(vmlinux, '.BTF', file);
}

/** The magic of an arm64 Image header (`ARM\x64` at offset 0x38). */
const ARM64_MAGIC = 0x644d5241;

/** Whether bytes are an arm64 Image (uncompressed). */
export function isArm64Image(b: Uint8Array): boolean {
  return b.length >= 64 && Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32LE(0x38) === ARM64_MAGIC;
}

/**
 * The vmlinux BTF inside an arm64 Image (gzip'd or not): the first blob with BTF's header (magic
 * 0xeB9F, version 1, a 24-byte header, types then strings) whose sections lie in the image and that
 * the BTF reader accepts whole; the kernel's `.BTF` section is that blob, byte for byte.
 */
export function btfFromArm64Image(bytes: Uint8Array, file: string): Uint8Array {
  const image = bytes[0] === 0x1f && bytes[1] === 0x8b ? new Uint8Array(gunzipSync(bytes)) : bytes;
  if (!isArm64Image(image)) throw new HostError(`${file} is not an arm64 Image (no "ARM\\x64" magic at 0x38)`);
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const header = Buffer.from([0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00]);
  for (let at = buf.indexOf(header); at >= 0; at = buf.indexOf(header, at + 1)) {
    if (at + 24 > buf.length) break;
    const typeOff = buf.readUInt32LE(at + 8);
    const typeLen = buf.readUInt32LE(at + 12);
    const strOff = buf.readUInt32LE(at + 16);
    const strLen = buf.readUInt32LE(at + 20);
    const end = at + 24 + Math.max(typeOff + typeLen, strOff + strLen);
    // vmlinux's BTF has its types first and the strings right after them.
    if (typeOff !== 0 || strOff !== typeLen || typeLen === 0 || strLen === 0 || end > buf.length) continue;
    const blob = image.subarray(at, end);
    try {
      parseBtf(blob, file);
      return new Uint8Array(blob);
    } catch {
      // Bytes that only look like a header; keep looking.
    }
  }
  throw new HostError(`${file}: no BTF in the arm64 Image (a kernel built without CONFIG_DEBUG_INFO_BTF?); pass --btf`);
}

/** The vmlinux BTF of a kernel image of either architecture. */
export async function btfFromImage(file: string): Promise<Uint8Array> {
  const head = new Uint8Array(readFileSync(file));
  const arm64 = head[0] === 0x1f && head[1] === 0x8b ? isArm64Image(new Uint8Array(gunzipSync(head))) : isArm64Image(head);
  return arm64 ? btfFromArm64Image(head, file) : btfFromBzImage(file);
}
