/**
 * What the language server needs before it can answer anything, started as the bundle loads
 * (main.ts imports this first): the grammar's WASM compiles and the kernel database is read on
 * background threads while the rest of the bundle initialises and the client's `initialize`
 * arrives.
 */
import { KernelDb } from '../../../kernel-db/src/query/db';
import { loadCParser } from '../parse/documents';

let early: Promise<KernelDb> | undefined = KernelDb.openAsync();
// Awaited by the first `initialize`; until then a failure must not count as unhandled.
early.catch(() => undefined);
void loadCParser().catch(() => undefined);

/** The database opened at load time, the first time; a fresh open after that (a restart). */
export function openDatabase(): Promise<KernelDb> {
  const p = early ?? KernelDb.openAsync();
  early = undefined;
  return p;
}
