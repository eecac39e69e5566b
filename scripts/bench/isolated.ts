/**
 * Runs one bench section in a Node process of its own and records its figures here. The
 * in-process figures that compare two workloads (one target kernel against 84) are measured away
 * from the heap and the caches the earlier sections left in this process, as the language server
 * runs them: in a process that holds only its own documents.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Figure, record } from './table';

const MARK = '@@figures ';

/** The sections a child can run (bench/child.ts). */
export type IsolatedSection = 'targets';

export function isolated(section: IsolatedSection): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'child.ts'), section], {
    cwd: join(__dirname, '..', '..'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  for (const line of (r.stdout ?? '').split('\n')) {
    if (line.startsWith(MARK)) for (const f of JSON.parse(line.slice(MARK.length)) as Figure[]) record(f);
    else if (line !== '') console.log(line);
  }
  if (r.status !== 0) throw new Error(`bench section ${section} failed in its process (exit ${r.status ?? r.signal})`);
}

/** What a child prints last: its figures, for {@link isolated} to record. */
export function figuresLine(figures: readonly Figure[]): string {
  return `${MARK}${JSON.stringify(figures)}`;
}
