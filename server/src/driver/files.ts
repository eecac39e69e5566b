/**
 * Reading the files a program names (headers, loaders, project files) without trusting what they
 * say about themselves: at most `max` bytes are read, whatever the size `stat` claims, so a
 * `/proc` file (size 0, endless content), a device or a FIFO never holds the analysis
 * (kernel-db/src/files.ts reads them).
 */
import { describeBytes, readBoundedBytes } from '../../../kernel-db/src/files';

export { describeBytes };

/** The file's text (UTF-8, or Latin-1 with `latin1`), or undefined when it is not a regular file of at most `max` bytes. */
export function readBounded(path: string, max: number, encoding: 'utf8' | 'latin1' = 'utf8'): string | undefined {
  const r = readBoundedBytes(path, max);
  return 'bytes' in r ? r.bytes.toString(encoding) : undefined;
}

/** The file's UTF-8 text, or why it was not read (not a regular file, larger than `max`, a read error). */
export function readBoundedText(path: string, max: number): { text: string } | { error: string } {
  const r = readBoundedBytes(path, max);
  return 'bytes' in r ? { text: r.bytes.toString('utf8') } : r;
}
