/**
 * Seeded fuzzing of BTF loading, run as a child process by `btf-corrupt.test.ts` so that a hang
 * fails the test (the parent kills the child after a timeout) instead of stalling the run.
 *
 * Usage: `node --import tsx test/kernel-db/fuzz-btf.ts SEED ITERATIONS`. Before each case it
 * prints `case N`; at the end it prints `RESULT {json}` with the counts and any case that threw
 * something other than a BtfError. A failure is replayed by running the same seed again.
 *
 * First come the fixed {@link ADVERSARIAL} cases: structurally valid BTF whose type graph C could
 * never produce (cycles, exponential sharing), which once made fact extraction overflow the stack,
 * run out of memory or loop forever. Then each random case builds an input (random bytes, a BTF-looking header over random bytes, or a valid blob
 * or container with a few bytes or fields changed), loads it through the container code, decodes
 * every type, and extracts the database facts: all of that must succeed or throw BtfError. One
 * loaded input in {@link STORE_EVERY} is also made into a one-kernel store both ways `db add` and
 * a build would (columns, and facts keyed by their cells), which must give the same bytes.
 */
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBtfBytes } from '../../kernel-db/src/btf/container';
import { extractKernelColumns, extractKernelFacts } from '../../kernel-db/src/btf/extract';
import { DbBuilder } from '../../kernel-db/src/store/builder';
import type { KernelMeta } from '../../kernel-db/src/store/schema';
import { Btf, BtfError, Kind, type BtfType } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import { EVERY_KIND, MINI_DATA, makeElf64, makeTar, minimalBtf, prng } from './helpers';

const INT: BtfType = { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 };
const member = (name: string, type: number) => ({ name, type, offsetBits: 0, bitfieldBits: 0 });

/** Type graphs that are valid BTF records but impossible C, by name. */
export const ADVERSARIAL: Record<string, BtfType[]> = {
  'array-contains-itself': [
    INT,
    { kind: Kind.Array, name: '', kindFlag: false, type: 2, indexType: 1, nelems: 2 },
    { kind: Kind.Struct, name: 's', kindFlag: false, size: 4, members: [member('a', 2)] },
  ],
  'struct-with-two-anonymous-copies-of-itself': [
    INT,
    { kind: Kind.Struct, name: 's', kindFlag: false, size: 4, members: [member('', 2), member('', 2), member('x', 1)] },
  ],
  'anonymous-struct-containing-itself': [
    INT,
    { kind: Kind.Struct, name: '', kindFlag: false, size: 4, members: [member('m', 2), member('x', 1)] },
    { kind: Kind.Struct, name: 's', kindFlag: false, size: 4, members: [member('a', 2)] },
  ],
  'prototype-dag-40-levels': (() => {
    // Prototype k takes two pointers to prototype k+1: the text doubles at every level.
    const t: BtfType[] = [INT];
    for (let k = 0; k < 40; k++) {
      const next = 2 + 2 * (k + 1) + 1;
      t.push({
        kind: Kind.FuncProto,
        name: '',
        kindFlag: false,
        returnType: 1,
        params:
          k === 39
            ? []
            : [
                { name: 'a', type: next },
                { name: 'b', type: next },
              ],
      });
      t.push({ kind: Kind.Ptr, name: '', kindFlag: false, type: 2 + 2 * k });
    }
    t.push({ kind: Kind.Func, name: 'bpf_lsm_file_open', kindFlag: false, type: 2, linkage: 0 });
    return t;
  })(),
  'prototype-taking-itself': [
    INT,
    { kind: Kind.FuncProto, name: '', kindFlag: false, returnType: 1, params: [{ name: 'f', type: 3 }] },
    { kind: Kind.Ptr, name: '', kindFlag: false, type: 2 },
    { kind: Kind.Typedef, name: 'loop_fn', kindFlag: false, type: 3 },
  ],
  'typedef-loop': [
    INT,
    { kind: Kind.Typedef, name: 't', kindFlag: false, type: 3 },
    { kind: Kind.Typedef, name: 'u', kindFlag: false, type: 2 },
    { kind: Kind.Struct, name: 's', kindFlag: false, size: 4, members: [member('a', 2)] },
  ],
  'pointer-to-itself': [
    INT,
    { kind: Kind.Ptr, name: '', kindFlag: false, type: 2 },
    { kind: Kind.Struct, name: 's', kindFlag: false, size: 8, members: [member('p', 2)] },
  ],
};

/** Every this many loaded inputs, the two ways of making a store are compared. */
const STORE_EVERY = 5;

const META: KernelMeta = {
  name: 'fuzz',
  release: 'fuzz',
  version: '6.1.0',
  arch: 'x86_64',
  distro: 'user',
  flavour: 'user',
  fidelity: 'btf',
  source: 'fuzz',
  hasConfig: false,
  hasHelperEnum: false,
  hasFuncs: true,
  sha256: '',
};

/**
 * Throws unless the store `db add` makes of `btf` (columns) is the one a build makes (keyed
 * facts): both the same bytes, or both refusing the BTF with the same BtfError, which is thrown.
 */
function sameStoreBothWays(btf: Btf): void {
  // Level 0 stores the bytes as they are: equal output means equal stores.
  const outcome = (make: (b: DbBuilder) => void, b: DbBuilder): Uint8Array | BtfError => {
    try {
      make(b);
      return b.finish({}, 0);
    } catch (e) {
      if (e instanceof BtfError) return e;
      throw e;
    }
  };
  const columns = outcome((b) => b.addKernelColumns(b.addKernel(META), extractKernelColumns(btf)), new DbBuilder());
  const keyed = outcome((b) => b.addKernelFacts(b.addKernel(META), extractKernelFacts(btf)), new DbBuilder({ keyed: true }));
  if (columns instanceof BtfError || keyed instanceof BtfError) {
    if (columns instanceof BtfError && keyed instanceof BtfError && columns.message === keyed.message) throw columns;
    const say = (x: Uint8Array | BtfError) => (x instanceof BtfError ? `refused (${x.message})` : 'a store');
    throw new Error(`the columns way gave ${say(columns)}, the keyed way ${say(keyed)}`);
  }
  if (Buffer.compare(columns, keyed) !== 0) throw new Error('the columns store differs from the keyed one');
}

/** Summary printed after `RESULT `. */
export interface FuzzResult {
  /** Outcome of each {@link ADVERSARIAL} case: `ok`, or the error's class and message. */
  fixed: Record<string, string>;
  loaded: number;
  /** Loaded inputs whose two stores were compared. */
  stores: number;
  rejected: number;
  /** Loaded, but decoding or extracting then threw a BtfError. */
  rejectedLater: number;
  failures: { case: number; error: string; input: string }[];
  slowest: { case: number; ms: number };
}

async function main(seed: number, iterations: number): Promise<FuzzResult> {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

  const minimal = minimalBtf().bytes;
  const everyKind = writeBtf(EVERY_KIND);
  const bigEndian = writeBtf(EVERY_KIND, { littleEndian: false });
  const fixtureXz = new Uint8Array(readFileSync(join(MINI_DATA, 'btf', 'debian-6.12.117-arm64.btf.xz')));
  const fixture = (await loadBtfBytes(fixtureXz, 'fixture')).raw;
  const blobs = [minimal, everyKind, bigEndian];
  const containers = [
    new Uint8Array(gzipSync(everyKind)),
    makeTar([{ name: 'vmlinux.btf', data: minimal }]),
    makeElf64([
      { name: '.text', data: new Uint8Array(8) },
      { name: '.BTF', data: everyKind },
    ]),
    fixtureXz,
  ];
  // Values that sit on the edges the reader has to check.
  const edges = [0, 1, 2, 3, 4, 7, 12, 19, 20, 24, 31, 32, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

  const mutate = (src: Uint8Array, maxEdits: number): Uint8Array => {
    const b = src.slice();
    const v = new DataView(b.buffer);
    const edits = 1 + int(maxEdits);
    for (let e = 0; e < edits; e++) {
      const r = rnd();
      if (r < 0.5) {
        b[int(b.length)] = int(256);
      } else if (b.length >= 4) {
        // Overwrite an aligned word (a header field, a type id, a name offset, a size, ...).
        const at = int(b.length >>> 2) << 2;
        v.setUint32(at, r < 0.8 ? pick(edges) : int(64), rnd() < 0.5);
      }
    }
    return rnd() < 0.15 ? b.subarray(0, int(b.length + 1)) : b;
  };

  const input = (c: number): Uint8Array => {
    switch (c % 6) {
      case 0: {
        const b = new Uint8Array(int(300));
        for (let i = 0; i < b.length; i++) b[i] = int(256);
        return b;
      }
      case 1: {
        // A plausible header over random contents, so that validation gets past the first checks.
        const b = new Uint8Array(24 + int(200));
        for (let i = 24; i < b.length; i++) b[i] = int(256);
        const v = new DataView(b.buffer);
        v.setUint16(0, 0xeb9f, true);
        b[2] = 1;
        v.setUint32(4, 24, true);
        const typeLen = int(b.length - 24 + 1) & ~3;
        v.setUint32(8, 0, true);
        v.setUint32(12, typeLen, true);
        v.setUint32(16, typeLen, true);
        v.setUint32(20, b.length - 24 - typeLen, true);
        return b;
      }
      case 2:
      case 3:
        return mutate(pick(blobs), 6);
      case 4:
        return mutate(pick(containers), 4);
      default:
        return c % 12 === 5 ? mutate(fixture, 8) : mutate(minimal, 2);
    }
  };

  const result: FuzzResult = { fixed: {}, loaded: 0, stores: 0, rejected: 0, rejectedLater: 0, failures: [], slowest: { case: -1, ms: 0 } };
  for (const [name, types] of Object.entries(ADVERSARIAL)) {
    process.stdout.write(`case ${name}\n`);
    try {
      sameStoreBothWays(new Btf(writeBtf(types), `${name}.btf`));
      result.fixed[name] = 'ok';
    } catch (e) {
      result.fixed[name] = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
  }
  for (let c = 0; c < iterations; c++) {
    process.stdout.write(`case ${c}\n`);
    const bytes = input(c);
    const t0 = performance.now();
    let loaded = false;
    try {
      const l = await loadBtfBytes(bytes, 'fuzz.btf');
      loaded = true;
      result.loaded++;
      for (let id = 1; id <= l.btf.count; id++) l.btf.type(id);
      extractKernelFacts(l.btf);
      if (result.loaded % STORE_EVERY === 0) {
        sameStoreBothWays(l.btf);
        result.stores++;
      }
    } catch (e) {
      if (e instanceof BtfError) {
        if (loaded) result.rejectedLater++;
        else result.rejected++;
      } else {
        result.failures.push({
          case: c,
          error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 4).join('\n')}` : String(e),
          input: Buffer.from(bytes.subarray(0, 96)).toString('hex'),
        });
      }
    }
    const ms = performance.now() - t0;
    if (ms > result.slowest.ms) result.slowest = { case: c, ms: Math.round(ms) };
  }
  return result;
}

const [seed, iterations] = process.argv.slice(2).map(Number);
main(seed, iterations).then(
  (r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`),
  (e) => {
    process.stdout.write(`FATAL ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
