/**
 * The CO-RE resolver against libbpf's own: for each test object and each kernel of the database
 * whose BTF blob is beside the project, `bpftool -d gen min_core_btf` runs libbpf's relocation
 * logic against that kernel's BTF and says, per relocation, whether a candidate matches. The
 * database's answer must be the same wherever it has one. Needs clang, bpftool and
 * ../shared/kernel-data; says it is skipped without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xzDecompress } from '../../kernel-db/src/btf/container';
import { readBpfObject } from '../../kernel-db/src/btf/object';
import { resolveRelo } from '../../kernel-db/src/query/coreRelo';
import { type Kernel, KernelDb } from '../../kernel-db/src/query/db';
import { clangFlags, compileBpf, defaultBtfBlob, pool, vmlinuxHeader } from '../../groundtruth/src/compile';

const root = join(__dirname, '..', '..');
const find = (cmd: string) =>
  [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].map((d) => join(d, cmd)).find((p) => existsSync(p));
const clang = find('clang');
const bpftool = find('bpftool');
const blobs = join(root, '..', 'shared', 'kernel-data', 'btf');
const corpus = process.env.EBPF_CORPUS ?? join(root, '..', 'shared', 'corpus');
const why = !clang ? 'clang is not installed' : !bpftool ? 'bpftool is not installed' : !existsSync(blobs) ? `${blobs} is absent` : '';

/** An object to compare: a name for messages, its path, and what the reader made of it. */
interface Obj {
  readonly name: string;
  readonly path: string;
  readonly obj: ReturnType<typeof readBpfObject>;
}

/**
 * Runs libbpf's resolution (bpftool -d gen min_core_btf) of each object on each kernel's BTF blob
 * and compares, relocation by relocation, with the database's answer where it has one. libbpf
 * names a program by its section or its function: both are tried.
 */
async function differential(db: KernelDb, objects: readonly Obj[], kernels: readonly Kernel[], dir: string) {
  let compared = 0;
  const disagreements: string[] = [];
  for (const k of kernels) {
    const raw = await xzDecompress(new Uint8Array(readFileSync(join(blobs, `${k.name}.btf.xz`))), k.name);
    const btf = join(dir, 'kernel.btf');
    writeFileSync(btf, raw);
    for (const o of objects) {
      const r = spawnSync(bpftool!, ['-d', 'gen', 'min_core_btf', btf, join(dir, 'min.btf'), o.path], { encoding: 'utf8' });
      const verdicts = libbpfVerdicts(`${r.stdout}\n${r.stderr}`);
      for (const sec of o.obj.sections) {
        const relos = o.obj.ext?.coreRelos.filter((x) => x.section === sec.name) ?? [];
        const fn = o.obj.ext?.funcInfo.find((x) => x.section === sec.name && x.insnOff === 0);
        const theirs = verdicts.get(sec.name) ?? (fn ? verdicts.get(o.obj.btf.name(fn.typeId)) : undefined);
        relos.forEach((relo, n) => {
          const libbpf = theirs?.get(n);
          const ours = resolveRelo(db, o.obj.btf, relo, [k]).outcomes[0];
          if (libbpf === undefined || ours === 'unknown') return;
          compared++;
          if ((ours === 'ok') !== libbpf)
            disagreements.push(
              `${k.name} ${o.name} ${sec.name} relo #${n} (${relo.access}): ours ${ours}, libbpf ${libbpf ? 'matches' : 'no match'}`,
            );
        });
      }
    }
  }
  return { compared, disagreements };
}

/** libbpf's verdict per relocation index of each program: matched or not. */
function libbpfVerdicts(out: string): Map<string, Map<number, boolean>> {
  const byProg = new Map<string, Map<number, boolean>>();
  for (const m of out.matchAll(/prog '([^']+)': relo #(\d+): (matching candidate|no matching targets found)/g)) {
    let p = byProg.get(m[1]);
    if (!p) byProg.set(m[1], (p = new Map()));
    const n = Number(m[2]);
    p.set(n, (p.get(n) ?? false) || m[3] === 'matching candidate');
  }
  return byProg;
}

test('CO-RE differential: every relocation resolves where libbpf (bpftool gen min_core_btf) finds a candidate, and only there', {
  skip: why ? `skipped: ${why}` : false,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-core-diff-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = KernelDb.open({ noUser: true });
  const build = (name: string, src: string, flags: string[]) => {
    const out = join(dir, `${name}.o`);
    const r = spawnSync(clang!, [...flags, '-c', src, '-o', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { name, path: out, obj: readBpfObject(new Uint8Array(readFileSync(out)), out) };
  };
  const objects = ['relocations', 'guards'].map((name) =>
    build(name, join(root, 'test', 'fixtures', 'objects', `${name}.bpf.c`), ['-target', 'bpf', '-O2', '-g']),
  );
  // The examples, against a vmlinux.h bpftool dumps from the newest Debian kernel's BTF, with
  // libbpf's headers when the system has them.
  const blob = defaultBtfBlob(root);
  if (blob && existsSync('/usr/include/bpf/bpf_helpers.h')) {
    const inc = await vmlinuxHeader(blob, { cmd: bpftool!, args: [] }, dir);
    for (const name of ['process-tracer', 'task-flavors', 'tcp-connect'])
      objects.push(build(name, join(root, 'examples', `${name}.bpf.c`), clangFlags(inc)));
  }
  const kernels = db.kernels.filter((k) => k.fidelity !== 'depsurf' && existsSync(join(blobs, `${k.name}.btf.xz`)));
  assert.ok(kernels.length >= 30, `BTF blobs found for ${kernels.length} kernels`);
  const { compared, disagreements } = await differential(db, objects, kernels, dir);
  assert.ok(compared >= kernels.length * 8, `${compared} relocation verdicts compared`);
  t.diagnostic(`${compared} relocation verdicts of ${objects.length} objects compared on ${kernels.length} kernels`);
  assert.deepEqual(disagreements, []);
});

test('CO-RE differential on real programs: the corpus objects (libbpf-tools, libbpf-bootstrap) on kernels of every family', {
  skip: why ? `skipped: ${why}` : !existsSync(corpus) ? `skipped: ${corpus} is absent` : false,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-core-corpus-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = KernelDb.open({ noUser: true });
  const blob = defaultBtfBlob(root);
  if (!blob || !existsSync('/usr/include/bpf/bpf_helpers.h'))
    return t.skip('skipped: needs the Debian 7.3 BTF blob and libbpf-dev headers');
  const inc = await vmlinuxHeader(blob, { cmd: bpftool!, args: [] }, dir);
  // Each project as its build compiles it (../shared/corpus/README.md), against that vmlinux.h.
  const sources = [
    { dir: join(corpus, 'bcc', 'libbpf-tools'), inc: [join(corpus, 'bcc', 'libbpf-tools')] },
    { dir: join(corpus, 'libbpf-bootstrap', 'examples', 'c'), inc: [] },
  ].flatMap((p) =>
    readdirSync(p.dir)
      .filter((f) => f.endsWith('.bpf.c'))
      .sort()
      .map((f) => ({ src: join(p.dir, f), inc: p.inc })),
  );
  const built = await pool(sources, 2, async (s) => {
    const out = join(dir, `${s.src.split('/').slice(-3).join('_')}.o`);
    try {
      await compileBpf(clang!, s.src, inc, out, [...s.inc.flatMap((i) => ['-I', i]), '-idirafter', '/usr/include/x86_64-linux-gnu']);
      return { name: s.src, path: out, obj: readBpfObject(new Uint8Array(readFileSync(out)), out) };
    } catch {
      // A program the system's libbpf headers are too old for: not this test's concern.
      return undefined;
    }
  });
  const objects = built.filter((o): o is NonNullable<typeof o> => !!o);
  assert.ok(objects.length >= sources.length * 0.8, `${objects.length} of ${sources.length} corpus programs compiled`);
  // One kernel of each family and era: Debian old and new, a vanilla build, Ubuntu-era CI, openEuler, CentOS, Arch.
  const names = new Set([
    'debian-5.10.0-46-amd64',
    'debian-6.1.0-56-amd64',
    'debian-7.3.4-amd64',
    'vanilla-ci-5.18.4-x86_64',
    'cilium-testdata-5.4-x86_64',
    'bclinux21.10u3-4.19.90-2107.6.0.0248.35.oe1.bclinux-x86_64',
    'arch-5.17.9-arch1-1-x86_64',
  ]);
  const kernels = db.kernels.filter((k) => names.has(k.name) && existsSync(join(blobs, `${k.name}.btf.xz`)));
  const { compared, disagreements } = await differential(db, objects, kernels, dir);
  t.diagnostic(`${compared} relocation verdicts of ${objects.length} corpus objects compared on ${kernels.length} kernels`);
  assert.ok(compared > 1000, `${compared} relocation verdicts compared`);
  assert.deepEqual(disagreements, []);
});
