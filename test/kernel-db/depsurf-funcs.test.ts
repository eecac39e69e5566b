/**
 * DepSurf's function tables are incomplete: a function none of them lists (mutex_unlock, exported
 * and never inlined) is unknown on the DepSurf kernels, not absent; one they list somewhere keeps
 * its absence on the others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelDb } from '../../kernel-db/src/query/db';

const db = KernelDb.open({ noUser: true });
const ubuntu = db.kernels.filter((k) => k.fidelity === 'depsurf' && k.hasFuncs && k.arch === 'x86_64');

test('a function no DepSurf table lists is unknown on the DepSurf kernels', () => {
  assert.ok(ubuntu.length > 5);
  const answers = db.func('mutex_unlock', ubuntu);
  assert.deepEqual([...new Set(answers.map((a) => a.present))], [null]);
  // BTF kernels still answer exactly.
  const debian = db.kernels.filter((k) => k.fidelity === 'btf' && k.name.startsWith('debian-') && k.hasFuncs);
  assert.ok(db.func('mutex_unlock', debian).every((a) => a.present === true));
});

test('near miss: a function DepSurf lists on newer kernels is absent on the older ones', () => {
  const answers = db.func('do_sys_openat2', ubuntu);
  const old = answers.find((a) => a.kernel.version.startsWith('4.15'));
  const recent = answers.find((a) => a.kernel.version.startsWith('5.15'));
  assert.equal(old?.present, false);
  assert.equal(recent?.present, true);
});
