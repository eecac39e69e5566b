/**
 * The heap in use after full collections, for tests that check what is kept alive. V8's own
 * `gc()` is exposed at run time, so the tests need no command-line flag.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap in use once two full collections have run. */
export function heapAfterCollection(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
