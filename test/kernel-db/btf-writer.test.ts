/**
 * The BTF writer is the exact inverse of the reader's decoded model: whatever it writes reads back
 * as the same types, in either byte order, with each string stored once; and it refuses records
 * the reader would reject instead of writing them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadBtfFile } from '../../kernel-db/src/btf/container';
import { Btf, Kind, type BtfType } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import { EVERY_KIND, MINI_DATA, NO_SHARED_DATA, sharedKernelData } from './helpers';

/** Every type of `btf`, decoded. */
function decodeAll(btf: Btf): BtfType[] {
  const out: BtfType[] = [];
  for (let id = 1; id <= btf.count; id++) out.push(btf.type(id));
  return out;
}

test('every kind round-trips through the writer, in both byte orders', () => {
  for (const littleEndian of [true, false]) {
    const raw = writeBtf(EVERY_KIND, { littleEndian });
    const btf = new Btf(raw, 'every-kind');
    assert.equal(btf.count, EVERY_KIND.length);
    assert.deepEqual(decodeAll(btf), EVERY_KIND, `byte order ${littleEndian ? 'LE' : 'BE'}`);
    assert.equal(raw[0], littleEndian ? 0x9f : 0xeb, 'magic in the requested byte order');
  }
});

test('the string section holds each distinct string once', () => {
  const types: BtfType[] = [
    { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 },
    { kind: Kind.Typedef, name: 'int', kindFlag: false, type: 1 },
    {
      kind: Kind.Struct,
      name: 'x',
      kindFlag: false,
      size: 8,
      members: [
        { name: 'int', type: 1, offsetBits: 0, bitfieldBits: 0 },
        { name: 'x', type: 1, offsetBits: 32, bitfieldBits: 0 },
      ],
    },
  ];
  const raw = writeBtf(types);
  const strLen = new DataView(raw.buffer, raw.byteOffset).getUint32(20, true);
  // '' + 'int' + 'x', each NUL-terminated.
  assert.equal(strLen, 1 + 4 + 2);
  assert.deepEqual(decodeAll(new Btf(raw)), types);
});

test('the writer refuses records the reader would reject or read back differently', () => {
  const int: BtfType = { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 };
  const cases: [string, BtfType[], RegExp][] = [
    [
      'dangling type id',
      [int, { kind: Kind.Ptr, name: '', kindFlag: false, type: 3 }],
      /type \[2\].*refers to type id 3, but only 2 types exist/,
    ],
    [
      'bitfield without kind_flag',
      [int, { kind: Kind.Struct, name: 's', kindFlag: false, size: 4, members: [{ name: 'b', type: 1, offsetBits: 0, bitfieldBits: 3 }] }],
      /bitfield, which needs kind_flag/,
    ],
    [
      'offset too large for kind_flag',
      [
        int,
        { kind: Kind.Struct, name: 's', kindFlag: true, size: 4, members: [{ name: 'b', type: 1, offsetBits: 1 << 24, bitfieldBits: 3 }] },
      ],
      /does not fit the kind_flag encoding/,
    ],
    [
      'enum value beyond 32 bits',
      [{ kind: Kind.Enum, name: 'e', kindFlag: false, size: 4, values: [{ name: 'X', value: 2 ** 32 }] }],
      /X=4294967296 does not fit 32 bits/,
    ],
    [
      'enum64 value beyond 64 bits',
      [{ kind: Kind.Enum64, name: 'e', kindFlag: false, size: 8, values: [{ name: 'X', value: 1n << 64n }] }],
      /does not fit 64 bits/,
    ],
    [
      'too many members',
      [
        int,
        {
          kind: Kind.Struct,
          name: 's',
          kindFlag: false,
          size: 4,
          members: Array.from({ length: 0x10000 }, () => ({ name: 'm', type: 1, offsetBits: 0, bitfieldBits: 0 })),
        },
      ],
      /exceed the BTF limit of 65535/,
    ],
    ['NUL inside a name', [{ ...int, name: 'a\0b' }], /contains a NUL byte/],
    ['negative size', [{ ...int, size: -1 }], /size -1 does not fit 32 bits/],
  ];
  for (const [what, types, message] of cases) assert.throws(() => writeBtf(types), message, what);
});

test('committed fixture blobs re-encode to the same bytes', async () => {
  const dir = join(MINI_DATA, 'btf');
  const blobs = readdirSync(dir).filter((f) => f.endsWith('.btf.xz'));
  assert.ok(blobs.length >= 3, `expected at least 3 fixture blobs in ${dir}`);
  for (const f of blobs) {
    const loaded = await loadBtfFile(join(dir, f));
    // The fixture was written by this writer, so decoding and encoding again is the identity.
    assert.deepEqual(writeBtf(decodeAll(loaded.btf)), loaded.raw, f);
  }
});

test('a real kernel round-trips type by type', async (t) => {
  const shared = sharedKernelData();
  if (!shared) return t.skip(NO_SHARED_DATA);
  const loaded = await loadBtfFile(join(shared, 'btf', 'debian-7.3.4-arm64.btf.xz'));
  const types = decodeAll(loaded.btf);
  const again = new Btf(writeBtf(types), 'rewritten');
  assert.equal(again.count, loaded.btf.count);
  for (let id = 1; id <= again.count; id++) {
    // Comparing one record at a time keeps a failure message readable.
    assert.deepEqual(again.type(id), types[id - 1], `type [${id}]`);
  }
  // Real BTF deduplicates its strings too, so the rewritten string section is no larger.
  const strLen = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(20, true);
  assert.ok(strLen(writeBtf(types)) <= strLen(loaded.raw));
});
