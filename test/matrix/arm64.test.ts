/**
 * The kernel matrix's second architecture: arm64 images chosen from the archive by name, the QEMU
 * command line of the virt board, an arm64 Image's BTF found without ELF headers, the guest's
 * libraries from DT_NEEDED, results files per architecture, and the linter's verdicts on arm64
 * kernels computed with arm64 semantics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KernelDb } from '../../kernel-db/src/query/db';
import { ARCHES, archSpec, debPackage, resultsPath } from '../../groundtruth/src/arch';
import { btfFromArm64Image, btfFromImage, isArm64Image } from '../../groundtruth/src/bzimage';
import { clangFlags } from '../../groundtruth/src/compile';
import { elfNeeded, neededLibraries } from '../../groundtruth/src/guest';
import { chooseKernels, databaseBuilds, imageName, nearestBuild } from '../../groundtruth/src/kernels';
import { qemuArgs } from '../../groundtruth/src/qemu';
import { Kind, type BtfType } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';

test('architecture names: the database, Debian and uname spellings', () => {
  assert.equal(archSpec('aarch64'), ARCHES.arm64);
  assert.equal(archSpec('arm64'), ARCHES.arm64);
  assert.equal(archSpec('amd64'), ARCHES.x86_64);
  assert.equal(archSpec('riscv64'), undefined);
  assert.equal(debPackage(ARCHES.arm64, 'bpftool'), 'bpftool:arm64');
  assert.equal(debPackage(ARCHES.x86_64, 'bpftool'), 'bpftool');
  assert.equal(resultsPath('/c/latest.json', 'x86_64'), '/c/latest.json');
  assert.equal(resultsPath('/c/latest.json', 'arm64'), '/c/latest-arm64.json');
  assert.ok(clangFlags('/inc', 'arm64').includes('-D__TARGET_ARCH_arm64'));
  assert.ok(!clangFlags('/inc', 'arm64').includes('-D__TARGET_ARCH_x86'));
  assert.ok(clangFlags('/inc').includes('-D__TARGET_ARCH_x86'));
});

test('arm64 boots on the virt board with a PL011 console', () => {
  const args = qemuArgs('/k', '/i', ARCHES.arm64);
  assert.deepEqual(args.slice(0, 2), ['-M', 'virt']);
  assert.equal(args[args.indexOf('-cpu') + 1].split(',')[0], 'max');
  assert.equal(args[args.indexOf('-append') + 1], 'console=ttyAMA0 panic=-1 quiet');
  assert.equal(args[args.indexOf('-kernel') + 1], '/k');
  // The amd64 line is unchanged by the second architecture.
  assert.equal(qemuArgs('/k', '/i')[qemuArgs('/k', '/i').indexOf('-append') + 1], 'console=ttyS0 panic=-1 quiet');
});

test('arm64 generic images are told from cloud, rt, 16k and unsigned builds and from amd64 ones', () => {
  const re = imageName(ARCHES.arm64);
  assert.equal(re.exec('linux-image-6.1.0-56-arm64:arm64')?.[2], '6.1.0-56-arm64');
  assert.equal(re.exec('linux-binary-7.3.4+deb13-arm64')?.[2], '7.3.4+deb13-arm64');
  for (const n of [
    'linux-image-6.1.0-56-cloud-arm64',
    'linux-image-6.1.0-56-rt-arm64',
    'linux-image-6.12.94+deb12-arm64-16k',
    'linux-image-6.1.0-56-arm64-unsigned',
    'linux-image-6.1.0-56-amd64',
  ])
    assert.equal(re.test(n), false, n);
  assert.equal(imageName().test('linux-image-6.1.0-56-arm64'), false);
});

test("arm64 kernels are chosen as the database's exact arm64 builds, by the package apt names with :arm64", () => {
  const db = KernelDb.open({ noUser: true });
  const builds = databaseBuilds(db.kernels, ARCHES.arm64);
  assert.ok(builds.length >= 11, `${builds.length} Debian arm64 generic kernels`);
  assert.ok(builds.every((b) => b.kernel.arch === 'arm64' && b.package.endsWith('-arm64')));
  const b61 = builds.find((b) => b.kernel.version.startsWith('6.1.'))!;
  const archive = [
    { package: `${b61.package}:arm64`, version: b61.version, suite: b61.suite },
    { package: 'linux-image-6.1.0-99-arm64:arm64', version: '6.1.999-1', suite: 'bookworm-security' },
    // An amd64 image of the same release never stands for an arm64 one.
    { package: b61.package.replace(/-arm64$/, '-amd64'), version: b61.version, suite: b61.suite },
  ];
  const { chosen, missing } = chooseKernels(archive, ['6.1', '6.12'], db.kernels, ARCHES.arm64);
  assert.deepEqual(missing, ['6.12']);
  assert.equal(chosen[0].dbName, b61.kernel.name);
  assert.equal(chosen[0].package, `${b61.package}:arm64`);
  assert.equal(nearestBuild('6.1.0-40-arm64', db.kernels)?.name, 'debian-6.1.0-56-arm64');
  assert.equal(nearestBuild('6.1.0-40-cloud-arm64', db.kernels)?.name, 'debian-6.1.0-56-cloud-arm64');
});

/** A small valid BTF blob: an int and a struct. */
function btfBlob(): Uint8Array {
  const types: BtfType[] = [
    { kind: Kind.Int, name: 'int', kindFlag: false, size: 4, encoding: 1, bitOffset: 0, bits: 32 },
    { kind: Kind.Struct, name: 'probe', kindFlag: false, size: 4, members: [{ name: 'x', type: 1, offsetBits: 0, bitfieldBits: 0 }] },
  ];
  return writeBtf(types);
}

/** An arm64 Image: the 64-byte header with its magic, text, then a BTF blob after bytes that only look like a BTF header. */
function arm64Image(btf: Uint8Array): Buffer {
  const header = Buffer.alloc(64);
  header.writeUInt32LE(0x644d5241, 0x38);
  const decoy = Buffer.from([0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, Buffer.alloc(4096, 0xd5), decoy, Buffer.alloc(100), Buffer.from(btf), Buffer.alloc(512)]);
}

test("an arm64 Image's BTF is found by its header and checked by the reader, raw or gzip'd", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'arm64-image-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const btf = btfBlob();
  const image = arm64Image(btf);
  assert.ok(isArm64Image(image));
  assert.deepEqual(Buffer.from(btfFromArm64Image(image, 'Image')), Buffer.from(btf));
  writeFileSync(join(dir, 'vmlinuz'), gzipSync(image));
  assert.deepEqual(Buffer.from(await btfFromImage(join(dir, 'vmlinuz'))), Buffer.from(btf));
  // No BTF: said so, not a wrong blob.
  assert.throws(() => btfFromArm64Image(arm64Image(new Uint8Array(0)), 'Image'), /no BTF/);
  assert.throws(() => btfFromArm64Image(Buffer.alloc(4096), 'x'), /not an arm64 Image/);
});

/** A minimal ELF64 little-endian file with a .dynamic section naming `needed` and a .dynstr. */
function elfWithNeeded(needed: string[]): Buffer {
  const strs = Buffer.concat([Buffer.from([0]), ...needed.map((n) => Buffer.from(`${n}\0`))]);
  const offsets: number[] = [];
  let at = 1;
  for (const n of needed) {
    offsets.push(at);
    at += n.length + 1;
  }
  const dyn = Buffer.alloc((needed.length + 1) * 16);
  offsets.forEach((o, i) => {
    dyn.writeBigInt64LE(1n, i * 16);
    dyn.writeBigUInt64LE(BigInt(o), i * 16 + 8);
  });
  const shstr = Buffer.from('\0.dynstr\0.dynamic\0.shstrtab\0');
  const dataStart = 64;
  const dynstrOff = dataStart;
  const dynOff = dynstrOff + strs.length;
  const shstrOff = dynOff + dyn.length;
  const shOff = (shstrOff + shstr.length + 7) & ~7;
  const sh = Buffer.alloc(64 * 4);
  const section = (i: number, name: number, type: number, off: number, size: number, link: number, entsize: number) => {
    const b = i * 64;
    sh.writeUInt32LE(name, b);
    sh.writeUInt32LE(type, b + 4);
    sh.writeBigUInt64LE(BigInt(off), b + 24);
    sh.writeBigUInt64LE(BigInt(size), b + 32);
    sh.writeUInt32LE(link, b + 40);
    sh.writeBigUInt64LE(BigInt(entsize), b + 56);
  };
  section(1, 1, 3, dynstrOff, strs.length, 0, 0);
  section(2, 9, 6, dynOff, dyn.length, 1, 16);
  section(3, 18, 3, shstrOff, shstr.length, 0, 0);
  const eh = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(eh);
  eh.writeUInt16LE(3, 16);
  eh.writeUInt16LE(183, 18);
  eh.writeUInt32LE(1, 20);
  eh.writeBigUInt64LE(BigInt(shOff), 40);
  eh.writeUInt16LE(64, 52);
  eh.writeUInt16LE(64, 58);
  eh.writeUInt16LE(4, 60);
  eh.writeUInt16LE(3, 62);
  const body = Buffer.concat([eh, strs, dyn, shstr]);
  return Buffer.concat([body, Buffer.alloc(shOff - body.length), sh]);
}

test("an arm64 bpftool's libraries come from DT_NEEDED, transitively, through the sysroot's directories", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'arm64-needed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(elfNeeded(elfWithNeeded(['libelf.so.1', 'libc.so.6']), 'bin'), ['libelf.so.1', 'libc.so.6']);
  writeFileSync(join(dir, 'bpftool'), elfWithNeeded(['libelf.so.1', 'libc.so.6', 'ld-linux-aarch64.so.1']));
  writeFileSync(join(dir, 'libelf.so.1'), elfWithNeeded(['libz.so.1', 'libc.so.6']));
  writeFileSync(join(dir, 'libc.so.6'), elfWithNeeded(['ld-linux-aarch64.so.1']));
  const libs = neededLibraries(join(dir, 'bpftool'), [join(dir, 'none'), dir]);
  assert.deepEqual(
    libs.map((l) => [l.soname, l.hostPath !== undefined]),
    [
      ['libelf.so.1', true],
      ['libc.so.6', true],
      ['libz.so.1', false],
    ],
  );
});
