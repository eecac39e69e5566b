/**
 * `db add` reads what it says of a kernel from the columns it stores: the version estimated from
 * the BPF enums when none is given, the architecture from `struct pt_regs`, whether the kernel's
 * own `enum bpf_func_id` came with it, and whether it has functions. Small BTFs written here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kind, type BtfType } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import { KernelDb } from '../../kernel-db/src/query/db';
import { UserKernels } from '../../kernel-db/src/query/user';

const scratch = mkdtempSync(join(tmpdir(), 'ebpf-import-facts-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const facts = KernelDb.open({ noUser: true }).facts;

const ULONG: BtfType = { kind: Kind.Int, name: 'long unsigned int', kindFlag: false, size: 8, encoding: 0, bitOffset: 0, bits: 64 };
const enumOf = (name: string, values: string[]): BtfType => ({
  kind: Kind.Enum,
  name,
  kindFlag: false,
  size: 4,
  values: values.map((v, i) => ({ name: v, value: i })),
});

/** A BTF with `long unsigned int` as type 1, then `types`. */
function blob(file: string, types: BtfType[]): string {
  const path = join(scratch, file);
  writeFileSync(path, writeBtf([ULONG, ...types]));
  return path;
}

const regs = (...names: string[]): BtfType => ({
  kind: Kind.Struct,
  name: 'pt_regs',
  kindFlag: false,
  size: 8 * names.length,
  members: names.map((n, i) => ({ name: n, type: 1, offsetBits: 64 * i, bitfieldBits: 0 })),
});

test('the version is estimated from the BPF enums, the architecture from pt_regs, the helper enum is seen', async () => {
  const user = new UserKernels(join(scratch, 'a'));
  const path = blob('lsm.btf', [
    regs('orig_ax', 'ip'),
    { kind: Kind.Typedef, name: 'uintptr_t', kindFlag: false, type: 1 },
    enumOf('bpf_prog_type', ['BPF_PROG_TYPE_UNSPEC', 'BPF_PROG_TYPE_LSM']),
    enumOf('bpf_func_id', ['BPF_FUNC_unspec', 'BPF_FUNC_map_lookup_elem']),
    // Enum names an object's prototype has: looked up as names of enums only.
    enumOf('constructor', ['A']),
    enumOf('toString', ['B']),
    { kind: Kind.FuncProto, name: '', kindFlag: false, returnType: 0, params: [] },
    { kind: Kind.Func, name: 'do_unlinkat', kindFlag: false, type: 8, linkage: 1 },
  ]);
  const meta = await user.add(path, facts, () => false, { name: 'lsm-kernel' });
  assert.equal(meta.version, '5.7.0', 'BPF_PROG_TYPE_LSM came in 5.7');
  assert.match(meta.source, /estimated/);
  assert.equal(meta.arch, 'x86_64');
  assert.equal(meta.hasHelperEnum, true);
  assert.equal(meta.fidelity, 'btf');
  assert.equal(meta.hasFuncs, true);
  // What it stored answers as imported.
  const store = user.load('lsm-kernel');
  assert.deepEqual(store.kernels, [meta], 'the index says of the kernel what its store says');
});

test('the near miss: no BPF enums, no pt_regs, no functions say nothing of them', async () => {
  const user = new UserKernels(join(scratch, 'b'));
  const path = blob('bare.btf', [regs('x0', 'x1'), enumOf('other', ['C'])]);
  const meta = await user.add(path, facts, () => false, { name: 'bare-kernel' });
  assert.equal(meta.version, '0.0.0');
  assert.equal(meta.arch, 'unknown');
  assert.equal(meta.hasHelperEnum, false);
  assert.equal(meta.fidelity, 'btf-types-only');
  assert.equal(meta.hasFuncs, false);
});
