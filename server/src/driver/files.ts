/**
 * Reading the files a program names (headers, loaders, project files) without trusting what they
 * say about themselves: at most `max` bytes are read, whatever the size `stat` claims, so a
 * `/proc` file (size 0, endless content), a device or a FIFO never holds the analysis.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { constants } from 'node:fs';

/** The file's text (UTF-8, or Latin-1 with `latin1`), or undefined when it is not a regular file of at most `max` bytes. */
export function readBounded(path: string, max: number, encoding: 'utf8' | 'latin1' = 'utf8'): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(max + 1, 1 << 20));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      total += n;
      if (total > max) return undefined;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString(encoding);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
