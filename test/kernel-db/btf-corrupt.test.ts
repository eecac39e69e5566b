/**
 * Damaged input never crashes, hangs or reads out of bounds: every defect in a BTF blob or in the
 * container around it (xz, gzip, tar, ELF) surfaces as a BtfError that names the file and says
 * what is wrong. Also checks the positive side: the same BTF in any supported container loads to
 * the same types.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadBtfBytes, loadBtfFile } from '../../kernel-db/src/btf/container';
import { extractKernelColumns, extractKernelFacts, FactStrings } from '../../kernel-db/src/btf/extract';
import { Btf, BtfError, Kind, OffsetTable, type BtfType } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import type { FuzzResult } from './fuzz-btf';
import { MINI_DATA, REPO_ROOT, makeElf64, makeTar, minimalBtf } from './helpers';

const FILE = 'corrupt/vmlinux.btf';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'btf-corrupt-'));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/**
 * Loads `bytes` the way the tools do and asserts a BtfError whose message starts with the file
 * name and matches `defect`.
 */
async function assertRejected(bytes: Uint8Array, defect: RegExp, file = FILE): Promise<BtfError> {
  let err: unknown;
  try {
    await loadBtfBytes(bytes, file);
  } catch (e) {
    err = e;
  }
  return checkError(err, defect, file);
}

function checkError(err: unknown, defect: RegExp, file: string): BtfError {
  assert.ok(err !== undefined, `expected a BtfError matching ${defect}, but the input loaded`);
  assert.ok(
    err instanceof BtfError,
    `expected a BtfError matching ${defect}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
  );
  assert.equal(err.file, file);
  assert.ok(err.message.startsWith(`${file}: `), `the message names the file: ${err.message}`);
  assert.match(err.message, defect);
  return err;
}

/** The minimal blob with `edit` applied to a copy (a DataView over it, little-endian). */
function corrupt(edit: (v: DataView, b: Uint8Array, at: ReturnType<typeof minimalBtf>['at']) => void): Uint8Array {
  const { bytes, at } = minimalBtf();
  const b = bytes.slice();
  edit(new DataView(b.buffer), b, at);
  return b;
}

/** Every type of `btf`, decoded. */
function decodeAll(btf: Btf): BtfType[] {
  const out: BtfType[] = [];
  for (let id = 1; id <= btf.count; id++) out.push(btf.type(id));
  return out;
}

test('the hand-built minimal blob is valid, so each corruption below tests one defect', async () => {
  const { bytes } = minimalBtf();
  const { btf } = await loadBtfBytes(bytes, FILE);
  assert.equal(btf.count, 4);
  assert.deepEqual(btf.members(3), [
    { name: 'pid', type: 1, offsetBits: 0, bitfieldBits: 0 },
    { name: 'next', type: 2, offsetBits: 64, bitfieldBits: 0 },
  ]);
  assert.deepEqual(btf.enumValues(4), [{ name: 'RUNNING', value: 0 }]);
  // Encoded independently by hand and by the writer, the two must agree to the byte.
  assert.deepEqual(writeBtf(decodeAll(btf)), bytes);
});

test('a blob cut at any byte is rejected with the defect its cut point causes', async () => {
  const { bytes, at } = minimalBtf();
  for (let cut = 0; cut < bytes.length; cut++) {
    const part = bytes.subarray(0, cut);
    if (cut === 0) await assertRejected(part, /file is empty/);
    else if (cut < 2) await assertRejected(part, /not a BTF file: starts with bytes 9f/);
    else if (cut < 24) await assertRejected(part, new RegExp(`too short for a BTF header \\(${cut} bytes, need 24\\)`));
    else if (cut < at.strings)
      await assertRejected(
        part,
        new RegExp(`type section \\(24\\.\\.${at.strings}\\) runs past the end of the blob \\(${cut} bytes\\); the file is truncated`),
      );
    else
      await assertRejected(
        part,
        new RegExp(
          `string section \\(${at.strings}\\.\\.${bytes.length}\\) runs past the end of the blob \\(${cut} bytes\\); the file is truncated`,
        ),
      );
  }
});

test('header defects: magic, version, header length, section bounds and layout', async () => {
  const { bytes, at } = minimalBtf();
  const len = bytes.length;
  const strLen = len - at.strings;
  await assertRejected(
    corrupt((v) => v.setUint16(0, 0x1234, true)),
    /not a BTF file: starts with bytes 34 12 01 00/,
  );
  // Past the container sniffing, the reader itself reports the magic.
  assert.throws(
    () =>
      new Btf(
        corrupt((v) => v.setUint16(0, 0x1234, true)),
        FILE,
      ),
    /^BtfError: corrupt\/vmlinux\.btf: not BTF: magic is 0x1234, expected 0xeb9f$/,
  );
  await assertRejected(
    corrupt((_v, b) => {
      b[2] = 2;
    }),
    /unsupported BTF version 2 \(only version 1 exists\)/,
  );
  await assertRejected(
    corrupt((v) => v.setUint32(4, len + 100, true)),
    new RegExp(`header length ${len + 100} is invalid for a ${len}-byte blob`),
  );
  await assertRejected(
    corrupt((v) => v.setUint32(4, 8, true)),
    /header length 8 is invalid/,
  );
  await assertRejected(
    corrupt((v) => v.setUint32(12, 1000, true)),
    new RegExp(`type section \\(24\\.\\.1024\\) runs past the end of the blob \\(${len} bytes\\)`),
  );
  await assertRejected(
    corrupt((v) => v.setUint32(8, 1000, true)),
    new RegExp(`type section \\(1024\\.\\.${1024 + at.strings - 24}\\) runs past the end`),
  );
  await assertRejected(
    corrupt((v) => v.setUint32(20, 1000, true)),
    new RegExp(`string section \\(${at.strings}\\.\\.${at.strings + 1000}\\) runs past the end`),
  );
  await assertRejected(
    corrupt((v) => v.setUint32(12, at.strings - 24 - 2, true)),
    new RegExp(`type section length ${at.strings - 24 - 2} is not a multiple of 4`),
  );
  // Strings placed 40 bytes into the type section.
  await assertRejected(
    corrupt((v) => v.setUint32(16, 40, true)),
    new RegExp(`type section \\(24\\.\\.${at.strings}\\) overlaps the string section \\(64\\.\\.${64 + strLen}\\)`),
  );
  await assertRejected(
    corrupt((v) => v.setUint32(20, 0, true)),
    /string section does not start with the empty string/,
  );
  await assertRejected(
    corrupt((_v, b, at) => {
      b[at.strings] = 0x41;
    }),
    /string section does not start with the empty string/,
  );
  await assertRejected(
    corrupt((_v, b) => {
      b[b.length - 1] = 0x78;
    }),
    /string section is not NUL-terminated/,
  );
});

test('type record defects: dangling ids, bad string offsets, unknown kinds, overlong records', async () => {
  const { bytes, at } = minimalBtf();
  const strLen = bytes.length - at.strings;
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.member[1] + 4, 99, true)),
    /type \[3\] member 1 refers to type id 99, but only 4 types exist/,
  );
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.type[2] + 8, 5, true)),
    /type \[2\] PTR refers to type id 5, but only 4 types exist/,
  );
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.member[0], 500, true)),
    new RegExp(`type \\[3\\] member 0 name offset 500 is past the end of the string section \\(${strLen} bytes\\)`),
  );
  // The first offset past the end: one beyond the final NUL.
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.type[4] + 12, strLen, true)),
    new RegExp(`type \\[4\\] value 0 name offset ${strLen} is past the end`),
  );
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.type[1], 0xffffffff, true)),
    /type \[1\] its name offset 4294967295 is past the end/,
  );
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.type[2] + 4, 25 << 24, true)),
    /type \[2\] at byte 40 has unknown kind 25/,
  );
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.type[2] + 4, 0, true)),
    /type \[2\] at byte 40 has unknown kind 0/,
  );
  await assertRejected(
    corrupt((v, _b, at) => v.setUint32(at.type[3] + 4, (4 << 24) | 100, true)),
    /type \[3\] \(STRUCT\) at byte 52 runs past the end of the type section/,
  );
  await assertRejected(
    corrupt((v) => v.setUint32(12, at.strings - 24 - 4, true)),
    new RegExp(`type \\[4\\] \\(ENUM\\) at byte ${at.type[4]} runs past the end of the type section`),
  );
});

test('accessors refuse ids and offsets that are not in the blob instead of reading elsewhere', () => {
  const { bytes, at } = minimalBtf();
  const strLen = bytes.length - at.strings;
  const btf = new Btf(bytes, FILE);
  checkThrows(() => btf.name(5), /type id 5 is out of range \(1\.\.4\)/);
  checkThrows(() => btf.kind(-1), /type id -1 is out of range/);
  checkThrows(() => btf.members(1), /type \[1\] is INT, not a STRUCT or UNION/);
  checkThrows(() => btf.enumValues(3), /type \[3\] is STRUCT, not an ENUM or ENUM64/);
  checkThrows(() => btf.params(0), /type id 0 is out of range/);
  checkThrows(() => btf.str(strLen), new RegExp(`string offset ${strLen} is outside the string section \\(${strLen} bytes\\)`));
  checkThrows(() => btf.str(-4), /string offset -4 is outside the string section/);
  checkThrows(() => btf.type(0), /type id 0 \(void\) has no record/);
  assert.equal(btf.str(1), 'int');
  assert.equal(btf.name(0), '');
});

function checkThrows(fn: () => unknown, defect: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  checkError(err, defect, FILE);
}

test('empty and unreadable files', async () => {
  await assertRejected(new Uint8Array(0), /file is empty/);
  const empty = join(tmp, 'empty.btf');
  writeFileSync(empty, new Uint8Array(0));
  checkError(await loadBtfFile(empty).catch((e: unknown) => e), /file is empty/, empty);
  const missing = join(tmp, 'missing.btf');
  checkError(await loadBtfFile(missing).catch((e: unknown) => e), /cannot read: ENOENT/, missing);
  checkError(await loadBtfFile(tmp).catch((e: unknown) => e), /cannot read: EISDIR/, tmp);
});

test('truncated and damaged compression', async () => {
  const xz = new Uint8Array(readFileSync(join(MINI_DATA, 'btf', 'debian-5.10.0-46-amd64.btf.xz')));
  for (const cut of [6, 12, 24, 100, xz.length >> 1, xz.length - 8, xz.length - 1]) {
    await assertRejected(xz.subarray(0, cut), /xz data is corrupt or truncated/, 'corrupt/vmlinux.btf.xz');
  }
  const flipped = xz.slice();
  flipped[xz.length >> 1] ^= 0x55;
  await assertRejected(flipped, /xz data is corrupt or truncated/, 'corrupt/vmlinux.btf.xz');

  const gz = new Uint8Array(gzipSync(minimalBtf().bytes));
  for (const cut of [2, 10, 16, gz.length >> 1, gz.length - 4, gz.length - 1]) {
    await assertRejected(gz.subarray(0, cut), /gzip data is corrupt or truncated/, 'corrupt/vmlinux.btf.gz');
  }
  await assertRejected(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0]), /zstd-compressed; decompress it first/);
});

test('ELF files: no .BTF section, truncated, compressed section, section past the end', async () => {
  const btf = minimalBtf().bytes;
  await assertRejected(makeElf64([{ name: '.text', data: new Uint8Array(16) }]), /ELF: no \.BTF section/);
  const elf = makeElf64([
    { name: '.text', data: new Uint8Array(16) },
    { name: '.BTF', data: btf },
  ]);
  for (const cut of [4, 6, 51]) await assertRejected(elf.subarray(0, cut), /ELF: file is shorter than an ELF header/);
  for (const cut of [52, 63]) await assertRejected(elf.subarray(0, cut), /ELF: file is shorter than an ELF64 header/);
  // Section headers sit at the end of the file, so any later cut loses some of them.
  for (const cut of [64, 200, elf.length - 64, elf.length - 1])
    await assertRejected(elf.subarray(0, cut), /ELF: section header \d+ is past the end of the file \(truncated\?\)/);
  await assertRejected(makeElf64([{ name: '.BTF', data: btf, flags: 0x800 }]), /ELF: section \.BTF is compressed \(SHF_COMPRESSED\)/);
  const huge = elf.slice();
  const v = new DataView(huge.buffer);
  const shoff = Number(v.getBigUint64(0x28, true));
  // Section 2 is .BTF; its sh_size says it runs far beyond the file.
  v.setBigUint64(shoff + 2 * 64 + 0x20, 1n << 40n, true);
  await assertRejected(huge, /ELF: section \.BTF \(\d+\+1099511627776\) is past the end of the file \(truncated\?\)/);
  const garbage = makeElf64([{ name: '.BTF', data: new Uint8Array([1, 2, 3, 4]) }]);
  await assertRejected(garbage, /not a BTF file: starts with bytes 01 02 03 04/);
});

test('tar archives: no BTF member, truncated member', async () => {
  const enc = new TextEncoder();
  await assertRejected(
    makeTar([{ name: 'README', data: enc.encode('no types in here\n') }]),
    /tar archive holds no BTF or ELF file/,
    'corrupt/btf.tar',
  );
  const tar = makeTar([{ name: '5.4.0.btf', data: minimalBtf().bytes }]);
  await assertRejected(tar.subarray(0, 600), /tar member 5\.4\.0\.btf is truncated/, 'corrupt/btf.tar');
});

test('seeded fuzzing: random and mutated inputs either load or throw BtfError, quickly', () => {
  const seed = 13;
  const iterations = 20000;
  // A child process, so that a hang becomes a timeout failure rather than a stalled test run.
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'test', 'kernel-db', 'fuzz-btf.ts'), String(seed), String(iterations)],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      maxBuffer: 64 << 20,
    },
  );
  const lines = (r.stdout ?? '').trimEnd().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const replay = `replay: node --import tsx test/kernel-db/fuzz-btf.ts ${seed} ${iterations}`;
  if (!last.startsWith('RESULT ')) {
    const started = [...lines].reverse().find((l) => l.startsWith('case '));
    assert.fail(
      `the fuzz child did not finish (${r.error ? r.error.message : `exit ${r.status}, signal ${r.signal}`}); last ${started ?? 'no case started'}; ${replay}\n${r.stderr ?? ''}${last}`,
    );
  }
  const result = JSON.parse(last.slice('RESULT '.length)) as FuzzResult;
  assert.deepEqual(result.failures, [], `inputs that threw something other than a BtfError; ${replay}`);
  // Both outcomes must actually occur, or the fuzzer is not reaching the parser.
  assert.ok(result.loaded > 1000 && result.rejected > 1000, `loaded ${result.loaded}, rejected ${result.rejected}`);
  // The store `db add` makes equals a build's for a sample of what loaded.
  assert.ok(result.stores >= result.loaded / 6, `${result.stores} stores compared of ${result.loaded} loaded`);
  assert.ok(result.slowest.ms < 5000, `case ${result.slowest.case} took ${result.slowest.ms} ms; ${replay}`);

  // Impossible-in-C type graphs: each finishes, with facts or with a BtfError naming the defect.
  assert.deepEqual(result.fixed, {
    'array-contains-itself': 'ok',
    'struct-with-two-anonymous-copies-of-itself':
      'BtfError: struct-with-two-anonymous-copies-of-itself.btf: anonymous members of type [2] repeat too often to flatten (cyclic or exponential); the BTF is malformed',
    'anonymous-struct-containing-itself': 'ok',
    'prototype-dag-40-levels':
      'BtfError: prototype-dag-40-levels.btf: type [22] has parameters longer than 16384 characters in all; the BTF is malformed',
    'prototype-taking-itself': 'ok',
    'typedef-loop': 'ok',
    'pointer-to-itself': 'ok',
  });
});

test('the same BTF in every supported container loads to the same types', async () => {
  const xzBytes = new Uint8Array(readFileSync(join(MINI_DATA, 'btf', 'debian-6.12.117-arm64.btf.xz')));
  const ref = await loadBtfBytes(xzBytes, 'mini.btf.xz');
  assert.deepEqual(ref.layers, ['xz']);
  const raw = ref.raw;
  const want = decodeAll(ref.btf);
  assert.ok(want.length > 100, 'the fixture blob has types');
  const elf = makeElf64([
    { name: '.text', data: new Uint8Array(32) },
    { name: '.BTF', data: raw },
    { name: '.BTF.ext', data: new Uint8Array(8) },
  ]);
  const cases: [string, Uint8Array, string[]][] = [
    ['raw', raw, []],
    ['gzip', new Uint8Array(gzipSync(raw)), ['gzip']],
    [
      'tar',
      makeTar([
        { name: 'README', data: new TextEncoder().encode('x') },
        { name: '6.12.btf', data: raw },
      ]),
      ['tar:6.12.btf'],
    ],
    ['ELF64 .BTF section', elf, ['elf:.BTF']],
    ['gzip of a tar of an ELF', new Uint8Array(gzipSync(makeTar([{ name: 'vmlinux', data: elf }]))), ['gzip', 'tar:vmlinux', 'elf:.BTF']],
    ['big-endian raw', writeBtf(want, { littleEndian: false }), []],
  ];
  for (const [what, bytes, layers] of cases) {
    const got = await loadBtfBytes(bytes, `mini (${what})`);
    assert.deepEqual(got.layers, layers, what);
    if (what !== 'big-endian raw') assert.equal(got.sha256, ref.sha256, what);
    assert.deepEqual(decodeAll(got.btf), want, what);
  }
  // A container around damaged BTF still reports the BTF defect, under the container's name.
  await assertRejected(
    new Uint8Array(gzipSync(raw.subarray(0, raw.length - 10))),
    /string section .* runs past the end of the blob .*; the file is truncated/,
    'corrupt/vmlinux.btf.gz',
  );
});

test('a string offset that is not a whole offset inside the section is refused, by the reader and by an extraction', () => {
  const btf = new Btf(minimalBtf().bytes, FILE);
  assert.equal(btf.str(1), 'int');
  assert.equal(btf.strByNumber(btf.strNumber(1)), 'int');
  assert.throws(() => btf.strNumber(0), BtfError, 'strNumber(0): the empty string has no number');
  for (const off of [-1, 1.5, btf.stringsSize, 1e9]) {
    assert.throws(() => btf.str(off), BtfError, `str(${off})`);
    assert.throws(() => btf.strNumber(off), BtfError, `strNumber(${off})`);
    assert.throws(() => new FactStrings(btf).at(off), BtfError, `at(${off})`);
  }
});

test('an extraction keeps the names of members after a type whose spelling read thousands of names', () => {
  // The reader numbers every string it decodes: rendering `callback`'s type reads its 2,100
  // parameters' names, so `after`'s number is far past any an extraction has seen before it.
  const INT: BtfType = { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 };
  const params = Array.from({ length: 2100 }, (_, i) => ({ name: `p${i}`, type: 1 }));
  const types: BtfType[] = [
    INT,
    { kind: Kind.FuncProto, name: '', kindFlag: false, returnType: 1, params },
    { kind: Kind.Ptr, name: '', kindFlag: false, type: 2 },
    {
      kind: Kind.Struct,
      name: 'holder',
      kindFlag: false,
      size: 16,
      members: [
        { name: 'callback', type: 3, offsetBits: 0, bitfieldBits: 0 },
        { name: 'after', type: 1, offsetBits: 64, bitfieldBits: 0 },
      ],
    },
  ];
  const fields = extractKernelFacts(new Btf(writeBtf(types), FILE)).aggregates.get('holder')?.fields ?? [];
  assert.deepEqual(
    fields.map((f) => [f.name, f.offsetBits]),
    [
      ['callback', 0],
      ['after', 64],
    ],
  );
  const columns = extractKernelColumns(new Btf(writeBtf(types), FILE));
  assert.deepEqual(
    Array.from(columns.field.name, (n) => columns.strings[n]),
    ['callback', 'after'],
  );
  // The near miss: a struct whose members come before any such type was never affected.
  const holder: BtfType = {
    kind: Kind.Struct,
    name: 'holder',
    kindFlag: false,
    size: 16,
    members: [{ name: 'after', type: 1, offsetBits: 64, bitfieldBits: 0 }],
  };
  const plain = extractKernelColumns(new Btf(writeBtf([INT, holder]), FILE));
  assert.deepEqual(
    Array.from(plain.field.name, (n) => plain.strings[n]),
    ['after'],
  );
});

test('names of a string section past the offset array limit are read through a map, the same', () => {
  // One type whose name sits past the limit, behind a long filler string.
  const filler = 'x'.repeat(OffsetTable.ARRAY_LIMIT);
  const types: BtfType[] = [
    { kind: Kind.Int, name: filler, kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 },
    { kind: Kind.Int, name: 'far', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 },
  ];
  const btf = new Btf(writeBtf(types), FILE);
  assert.ok(btf.stringsSize > OffsetTable.ARRAY_LIMIT);
  assert.equal(btf.name(2), 'far');
  assert.equal(btf.name(2), 'far', 'read again from the map');
  const strings = new FactStrings(btf);
  const id = strings.at(btf.nameOff(2));
  assert.equal(strings.list[id], 'far');
  assert.equal(strings.at(btf.nameOff(2)), id, 'one id per offset');
});
