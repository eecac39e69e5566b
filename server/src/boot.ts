/**
 * The language server's launcher (dist/server.js): runs the server's bundle (dist/server-bundle.js)
 * from V8's code cache when this machine has one for that very bundle and Node, and writes one
 * when it has none. Compiling the bundle and the functions the first analysis runs is a good part
 * of a cold start; with the cache, V8 skips it. The cache is the bundle's bytecode, kept per user
 * (`$EBPF_PORTABILITY_HOME/cache`, else `$XDG_CACHE_HOME/ebpf-portability`, else
 * `~/.cache/ebpf-portability`); V8 checks it against the source and its own version and flags and
 * ignores one that does not match. `EBPF_PORTABILITY_CODE_CACHE=off` runs the bundle without it.
 *
 * Nothing here may fail the start: without a cache, or with an unwritable folder, the bundle
 * runs as a plain script.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { constants, Script } from 'node:vm';
import { CODE_CACHE_STATE, type CodeCacheState } from './lsp/codeCache';
import { boundMemory } from './lsp/memoryFlags';

// Before anything compiles: the flags are part of what V8's code cache must match.
const memory = boundMemory();

const bundle = join(__dirname, 'server-bundle.js');
const source = readFileSync(bundle, 'utf8');
const enabled = process.env.EBPF_PORTABILITY_CODE_CACHE !== 'off';
const dir = cacheDir();
// One file per Node build and bundle: a new version never reads an old cache, and VS Code's own
// Node and the one on PATH keep one each.
const node = `server-${process.version}-${process.arch}-`.replace(/[^\w.-]/g, '_');
const name = `${node}${createHash('sha256').update(source).digest('hex').slice(0, 20)}.v8cache`;
let cachedData: Buffer | undefined;
if (enabled) {
  try {
    cachedData = readFileSync(join(dir, name));
  } catch {
    // None yet.
  }
}
// The bundle's dynamic import()s (none on the paths the server takes today) resolve as in a
// module where Node offers it (20.12 and later; VS Code 1.90's own Node is 20.9).
const mainLoader = (constants as typeof constants | undefined)?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  ...(cachedData ? { cachedData } : {}),
  ...(mainLoader ? { importModuleDynamically: mainLoader } : {}),
});
const state: CodeCacheState = !enabled ? 'off' : cachedData && !script.cachedDataRejected ? 'used' : 'written';
(globalThis as Record<symbol, CodeCacheState>)[CODE_CACHE_STATE] = state;
// Written when the server exits: by then the functions the analysis ran are compiled too.
if (state === 'written')
  process.once('exit', () => {
    memory.settle();
    writeCache(script.createCachedData());
  });
const bundled = { exports: {} };
(script.runInThisContext() as (...a: unknown[]) => void).call(bundled.exports, bundled.exports, require, bundled, bundle, __dirname);

function cacheDir(): string {
  if (process.env.EBPF_PORTABILITY_HOME) return join(process.env.EBPF_PORTABILITY_HOME, 'cache');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ebpf-portability');
}

function writeCache(data: Buffer): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `${name}.${process.pid}.tmp`);
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, join(dir, name));
    // This Node's caches of other bundles (older versions) are of no use any more.
    for (const f of readdirSync(dir)) if (f.startsWith(node) && f.endsWith('.v8cache') && f !== name) rmSync(join(dir, f), { force: true });
  } catch {
    // A read-only or full disk: the next start compiles again.
  }
}
