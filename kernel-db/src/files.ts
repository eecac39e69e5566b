/**
 * Reading and replacing files without trusting them: a bounded read of regular files only (a
 * `/proc` file that says it is empty, a FIFO, a device never hold or flood the reader), and an
 * atomic replacement (a temporary file beside the target, synced, renamed over it), so a crash
 * leaves either the old bytes or the new ones.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** The bytes of a regular file of at most `max` bytes, or why they cannot be had. */
export function readBoundedBytes(path: string, max: number): { bytes: Buffer } | { error: string } {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    // A socket cannot be opened at all (ENXIO): say what it is.
    try {
      const st = statSync(path);
      if (!st.isFile()) return { error: `not a regular file (${kindOf(st)})` };
    } catch {
      // Nothing there to describe: the open's own error says it.
    }
    return { error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { error: `not a regular file (${kindOf(st)})` };
    // The size stat claims proves nothing (a /proc file says 0): the bound applies while reading.
    const buf = Buffer.alloc(Math.min(max + 1, 1 << 20));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      total += n;
      if (total > max) return { error: `larger than ${describeBytes(max)}` };
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return { bytes: Buffer.concat(chunks, total) };
  } catch (e) {
    return { error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  } finally {
    closeSync(fd);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not regular';
}

/** `n` bytes in the largest unit that keeps it whole-ish. */
export function describeBytes(n: number): string {
  if (n >= 1 << 30) return `${Math.round(n / (1 << 30))} GiB`;
  if (n >= 1 << 20) return `${Math.round(n / (1 << 20))} MiB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KiB`;
  return `${n} bytes`;
}

/** A name for a temporary file beside `target` that no other writer picks. */
export function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes `data` to a new file at `path` (which must not exist: `O_EXCL`) with `mode`, and syncs
 * it to disk before returning.
 */
export function writeNewFileSynced(path: string, data: Uint8Array, mode: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    // The mode asked for, not the umask's cut of it.
    fchmodSync(fd, mode);
    let at = 0;
    while (at < data.length) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Syncs a directory, so a rename in it is on disk (some systems refuse: then nothing more can be done). */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY);
    fsyncSync(fd);
  } catch {
    // Directories cannot be opened or synced everywhere; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Replaces the file at `path` with `data` atomically: written to a temporary file in the same
 * directory (through a symbolic link, beside the file it names), synced, given the old file's
 * permission bits, and renamed over it. Readers see the old bytes or the new ones, never a part.
 */
export function replaceFileAtomic(path: string, data: Uint8Array): void {
  const target = realpathSync(path);
  const mode = statSync(target).mode & 0o7777;
  const tmp = tempNameFor(target);
  try {
    writeNewFileSynced(tmp, data, mode);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dirname(target));
}
