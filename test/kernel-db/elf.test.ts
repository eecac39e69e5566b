/**
 * The shared ELF reader (kernel-db/src/elf.ts): ELF64 and ELF32, both byte orders, section names
 * and contents; damaged headers end in an ElfError that says what is wrong, never a RangeError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElfError, readElf, SHT_NOBITS } from '../../kernel-db/src/elf';
import { makeElf64, prng } from './helpers';

const enc = new TextEncoder();

/** A big-endian ELF32 file: the null section, `.text`, a `.bss` (NOBITS) and `.shstrtab`. */
function makeElf32Be(): Uint8Array {
  const shstrtab = enc.encode('\0.text\0.bss\0.shstrtab\0');
  const text = enc.encode('code');
  const textOff = 52;
  const strOff = textOff + text.length;
  const shoff = Math.ceil((strOff + shstrtab.length) / 4) * 4;
  const out = new Uint8Array(shoff + 4 * 40);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 2, 1], 0);
  v.setUint32(0x20, shoff);
  v.setUint16(0x2e, 40);
  v.setUint16(0x30, 4);
  v.setUint16(0x32, 3);
  out.set(text, textOff);
  out.set(shstrtab, strOff);
  const section = (i: number, name: number, type: number, flags: number, offset: number, size: number) => {
    const h = shoff + 40 * i;
    v.setUint32(h, name);
    v.setUint32(h + 4, type);
    v.setUint32(h + 8, flags);
    v.setUint32(h + 0x10, offset);
    v.setUint32(h + 0x14, size);
  };
  section(1, 1, 1, 0x6, textOff, text.length);
  // .bss has a size but no bytes in the file, here more than the file holds.
  section(2, 7, SHT_NOBITS, 0x3, 0, 1 << 20);
  section(3, 12, 3, 0, strOff, shstrtab.length);
  return out;
}

test('ELF64 little-endian: names, types and contents of the sections', () => {
  const elf = readElf(
    makeElf64([
      { name: '.text', data: enc.encode('abcd'), flags: 0x6 },
      { name: '.BTF', data: enc.encode('btf!') },
    ]),
  );
  assert.equal(elf.is64, true);
  assert.equal(elf.littleEndian, true);
  assert.deepEqual(
    elf.sections.map((s) => s.name),
    ['', '.text', '.BTF', '.shstrtab'],
  );
  assert.equal(elf.sections[1].flags, 0x6);
  assert.equal(new TextDecoder().decode(elf.data(elf.section('.BTF')!)), 'btf!');
  assert.equal(elf.string(elf.section('.shstrtab')!, 1), '.text');
  assert.equal(elf.string(elf.section('.shstrtab')!, 10_000), '', 'an offset outside the table is empty');
});

test('ELF32 big-endian, and a NOBITS section larger than the file', () => {
  const elf = readElf(makeElf32Be());
  assert.equal(elf.is64, false);
  assert.equal(elf.littleEndian, false);
  assert.deepEqual(
    elf.sections.map((s) => s.name),
    ['', '.text', '.bss', '.shstrtab'],
  );
  assert.equal(new TextDecoder().decode(elf.data(elf.section('.text')!)), 'code');
  assert.equal(elf.data(elf.section('.bss')!).length, 0);
});

test('near misses: a similar name is not the section, and a bad class or encoding is named', () => {
  const elf = readElf(
    makeElf64([
      { name: '.BTF.ext', data: new Uint8Array(8) },
      { name: '.BT', data: new Uint8Array(8) },
    ]),
  );
  assert.equal(elf.section('.BTF'), undefined);
  const bad = makeElf64([{ name: '.text', data: new Uint8Array(4) }]);
  bad[4] = 3;
  assert.throws(() => readElf(bad), /^ElfError: unknown class 3$/);
  bad[4] = 2;
  bad[5] = 0;
  assert.throws(() => readElf(bad), /^ElfError: unknown data encoding 0$/);
  assert.throws(() => readElf(enc.encode('#!/bin/sh\n'.padEnd(64, '#'))), /not an ELF file \(starts with bytes 23 21 2f 62\)/);
});

test('corrupt headers: truncation, section-name table out of range, a section past the end', () => {
  const elf = makeElf64([
    { name: '.text', data: new Uint8Array(16) },
    { name: '.BTF', data: new Uint8Array(8) },
  ]);
  assert.throws(() => readElf(elf.subarray(0, 20)), /file is shorter than an ELF header \(20 bytes; truncated\?\)/);
  assert.throws(() => readElf(elf.subarray(0, 60)), /file is shorter than an ELF64 header/);
  assert.throws(() => readElf(elf.subarray(0, elf.length - 1)), /section header \d+ is past the end of the file \(truncated\?\)/);
  const v = new DataView(elf.buffer);
  const strndx = elf.slice();
  new DataView(strndx.buffer).setUint16(0x3e, 40, true);
  assert.throws(() => readElf(strndx), /section-name table index 40 is out of range \(4 sections\)/);
  const past = elf.slice();
  const shoff = Number(v.getBigUint64(0x28, true));
  new DataView(past.buffer).setBigUint64(shoff + 2 * 64 + 0x20, 1n << 40n, true);
  const parsed = readElf(past);
  assert.throws(() => parsed.data(parsed.section('.BTF')!), /section \.BTF \(\d+\+1099511627776\) is past the end of the file/);
  const noHeaders = elf.slice();
  new DataView(noHeaders.buffer).setBigUint64(0x28, 0n, true);
  assert.throws(() => readElf(noHeaders), /no section headers/);
});

test('damaged files never throw anything but an ElfError', () => {
  const originals = [
    makeElf64([
      { name: '.text', data: new Uint8Array(16) },
      { name: '.BTF', data: new Uint8Array(24) },
    ]),
    makeElf32Be(),
  ];
  const next = prng(0xe1f);
  for (const original of originals) {
    for (let i = 0; i < 400; i++) {
      const b = original.slice(0, next() < 0.2 ? Math.floor(next() * original.length) : original.length);
      for (let k = 0; k < 1 + Math.floor(next() * 4); k++) if (b.length) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
      try {
        const elf = readElf(b);
        for (const s of elf.sections) {
          elf.data(s);
          elf.string(s, 1);
        }
      } catch (e) {
        assert.ok(e instanceof ElfError, `case ${i}: ${(e as Error).stack}`);
      }
    }
  }
});
