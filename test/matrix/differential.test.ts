/**
 * The differential test: every program × kernel verdict of the linter against the verdict of the
 * real kernel, booted under QEMU by `npm run matrix` (results in the matrix cache), for each
 * architecture (x86_64 in latest.json, arm64 in latest-arm64.json beside it). A disagreement
 * fails unless docs/ground-truth.md lists it as a known limitation with its reason.
 *
 * Without results for the current programs it skips with the reason, unless EBPF_MATRIX_REQUIRED=1
 * (set by `npm run matrix -- --ci`, which CI runs), where missing or stale results of the
 * architectures it ran (EBPF_MATRIX_ARCHES; x86_64 when unset) fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { compileBpf, vmlinuxHeader } from '../../groundtruth/src/compile';
import {
  compare,
  comparePrograms,
  describeDisagreement,
  kernelFails,
  linterProgramVerdicts,
  linterVerdicts,
  parseLimitations,
  renderMatrix,
  type MatrixKernel,
  type MatrixResults,
} from '../../groundtruth/src/differential';
import type { ObjectResult } from '../../groundtruth/src/qemu';
import { ARCHES, resultsPath, type MatrixArch } from '../../groundtruth/src/arch';
import { cacheDir, sha256, sha256File, which } from '../../groundtruth/src/host';

const root = join(__dirname, '..', '..');
const baseResults = process.env.EBPF_MATRIX_RESULTS || join(cacheDir(), 'results', 'latest.json');
/** The architectures whose results must be there (the ones `npm run matrix -- --ci` ran). */
const requiredArches = (process.env.EBPF_MATRIX_ARCHES || 'x86_64').split(',').map((a) => a.trim());

/** The results of an architecture, and the programs whose source changed since the matrix compiled them. */
function load(arch: MatrixArch): { results?: MatrixResults; stale: string[]; why?: string } {
  const resultsFile = resultsPath(baseResults, arch);
  if (!existsSync(resultsFile)) {
    const qemu = which(ARCHES[arch].qemu) ? 'is installed' : 'is not installed';
    return {
      stale: [],
      why: `no ${arch} kernel matrix results at ${resultsFile} (${ARCHES[arch].qemu} ${qemu}); run \`npm run matrix -- --arch ${arch}\` to boot the kernels (CI runs \`npm run matrix -- --ci\`)`,
    };
  }
  const all = JSON.parse(readFileSync(resultsFile, 'utf8')) as MatrixResults;
  if ((all.arch ?? 'x86_64') !== arch) throw new Error(`${resultsFile} holds ${all.arch ?? 'x86_64'} results, not ${arch}`);
  // The corpus programs (`npm run matrix -- --corpus`) are reported by the matrix run, not held to these tests.
  const results: MatrixResults = { ...all, programs: all.programs.filter((p) => !p.corpus) };
  const stale = results.programs
    .filter((p) => {
      const path = join(root, p.source);
      return !existsSync(path) || sha256(readFileSync(path, 'utf8')) !== p.sourceSha256;
    })
    .map((p) => p.source);
  return { results, stale };
}

/** The tests of one architecture's results. */
function suite(arch: MatrixArch): void {
  const { results, stale, why } = load(arch);
  const required = process.env.EBPF_MATRIX_REQUIRED === '1' && requiredArches.includes(arch);

  function skipOrFail(t: { skip: (m: string) => void }, message: string): void {
    if (required) assert.fail(message);
    t.skip(message);
  }

  test(`${arch}: the matrix booted every kernel, and each is the build the linter's database was made from`, (t) => {
    if (!results) return skipOrFail(t, why!);
    assert.ok(results.kernels.length > 0, 'no kernels in the results');
    for (const k of results.kernels) {
      assert.ok(k.complete, `${k.release} did not report every object (timed out: ${k.timedOut})`);
      if (k.dbName)
        assert.equal(k.btfMatchesDb, true, `${k.release}: its /sys/kernel/btf/vmlinux differs from ${k.dbName} in the database`);
    }
    const unmapped = results.kernels.filter((k) => !k.dbName);
    if (unmapped.length) t.diagnostic(`not in the database (not compared): ${unmapped.map((k) => k.release).join(', ')}`);
  });

  test(`${arch}: the harness tells loading from failing: guarded programs load everywhere, unguarded ones fail somewhere`, (t) => {
    if (!results) return skipOrFail(t, why!);
    const m: MatrixResults = results;
    const oldest = m.kernels.some((k) => k.majorMinor === '5.10');
    for (const p of m.programs) {
      const verdicts: { k: MatrixKernel; r?: ObjectResult }[] = m.kernels.map((k) => ({ k, r: m.results[p.source]?.[k.release] }));
      if (p.expect === 'loads-everywhere') {
        for (const { k, r } of verdicts) {
          assert.equal(
            r?.verdict,
            'loaded',
            `${p.source} must load on ${k.release}:\n${(r?.explain.length ? r.explain : (r?.log ?? [])).join('\n')}`,
          );
        }
      }
      // Every fails-somewhere program fails on 5.10; with fewer kernels there may be no boundary.
      if (p.expect === 'fails-somewhere' && oldest) {
        assert.ok(
          verdicts.some(({ r }) => r && kernelFails(r.verdict)),
          `${p.source} loads on every kernel, though it uses something newer than 5.10`,
        );
        assert.ok(
          verdicts.some(({ r }) => r?.verdict === 'loaded'),
          `${p.source} fails on every kernel: ${verdicts.map(({ r }) => r?.explain[0]).join(' | ')}`,
        );
      }
    }
  });

  test(`${arch}: every linter verdict agrees with the kernel, or is a documented known limitation`, async (t) => {
    if (!results) return skipOrFail(t, why!);
    if (stale.length) {
      const msg = `results are stale for ${stale.join(', ')} (changed since the matrix compiled them); run \`npm run matrix\``;
      if (required) assert.fail(msg);
      t.diagnostic(`${msg}; comparing the others`);
    }
    const current: MatrixResults = { ...results, programs: results.programs.filter((p) => !stale.includes(p.source)) };
    const mapped = current.kernels.filter((k) => k.dbName);
    const linter = await linterVerdicts(
      root,
      current.programs,
      mapped.map((k) => k.dbName!),
      current.guest.libbpf,
    );
    const limitations = parseLimitations(readFileSync(join(root, 'docs', 'ground-truth.md'), 'utf8'));
    const { cells, unused } = compare(current, linter, limitations);
    t.diagnostic(`\n${renderMatrix(current, cells)}`);
    for (const l of unused)
      t.diagnostic(`known limitation no longer seen (remove it from docs/ground-truth.md): ${l.program} on ${l.kernels.join(',')}`);
    assert.ok(cells.length > 0, 'nothing was compared');
    const bad = cells.filter((c) => !c.agree && !c.limitation);
    assert.deepEqual(
      bad.map(describeDisagreement),
      [],
      'disagreements between the linter and the kernels that docs/ground-truth.md does not explain',
    );
  });

  /**
   * What the tests that compile the programs need: clang, a vmlinux.h from the results' BTF in a
   * work directory removed after the test, the programs whose results are current and the database
   * names of the booted kernels; undefined (after skipping or failing) when a tool is missing.
   */
  async function compiling(t: { skip: (m: string) => void; after: (fn: () => void) => void }, r: MatrixResults) {
    const clang = which('clang');
    const bpftool = which('bpftool') ?? (existsSync('/usr/sbin/bpftool') ? '/usr/sbin/bpftool' : undefined);
    const blobPath = btfBlob(r);
    if (!clang || !bpftool || !blobPath) {
      const missing = [
        !clang && 'clang',
        !bpftool && 'bpftool',
        !blobPath &&
          `the BTF the results were made from (${basename(r.btf.blob)}, in ../shared/kernel-data/btf, sha256 ${r.btf.sha256.slice(0, 12)}…)`,
      ];
      skipOrFail(t, `needs ${missing.filter(Boolean).join(', ')}`);
      return undefined;
    }
    const current: MatrixResults = { ...r, programs: r.programs.filter((p) => !stale.includes(p.source)) };
    const names = current.kernels.filter((k) => k.dbName).map((k) => k.dbName!);
    const work = mkdtempSync(join(tmpdir(), 'ebpf-matrix-compile-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    const includeDir = await vmlinuxHeader(blobPath, { cmd: bpftool, args: [] }, work);
    return { clang, includeDir, current, names, work };
  }

  test(`${arch}: the object pass (check --compile) agrees with the kernels at least wherever the source pass does`, async (t) => {
    if (!results) return skipOrFail(t, why!);
    const env = await compiling(t, results);
    if (!env) return;
    const { clang, includeDir, current, names } = env;
    const limitations = parseLimitations(readFileSync(join(root, 'docs', 'ground-truth.md'), 'utf8'));
    const source = compare(current, await linterVerdicts(root, current.programs, names, current.guest.libbpf), limitations).cells;
    const object = compare(
      current,
      await linterVerdicts(root, current.programs, names, current.guest.libbpf, { clang, includeDir }),
      limitations,
    ).cells;
    const key = (c: (typeof source)[number]) => `${c.program} ${c.kernel.release}`;
    const objectByKey = new Map(object.map((c) => [key(c), c]));
    const worse = source
      .filter((c) => c.agree && !objectByKey.get(key(c))?.agree)
      .map((c) => describeDisagreement(objectByKey.get(key(c)) ?? c));
    t.diagnostic(
      `agreement with the kernels: source pass ${source.filter((c) => c.agree).length} of ${source.length}, object pass ${object.filter((c) => c.agree).length} of ${object.length}`,
    );
    assert.deepEqual(worse, [], 'cells where the source pass agrees with the kernel and the object pass does not');
  });

  test(`${arch}: each program loaded alone agrees with the linter verdict for that program, or is a documented known limitation`, async (t) => {
    if (!results) return skipOrFail(t, why!);
    if (!results.guest.loader) return skipOrFail(t, 'the last matrix run had no per-program loader (it needs apt-get and gcc)');
    const env = await compiling(t, results);
    if (!env) return;
    const { clang, includeDir, current, names, work } = env;
    // The objects, compiled as the matrix compiled them, tell which lines each program's code covers.
    const objects = new Map<string, string>();
    for (const p of current.programs) {
      const out = join(work, `${p.id}.o`);
      await compileBpf(clang, join(root, p.source), includeDir, out, [], arch);
      objects.set(p.source, out);
    }
    const linter = await linterProgramVerdicts(root, current.programs, names, objects, results.guest.loader.libbpf);
    const limitations = parseLimitations(readFileSync(join(root, 'docs', 'ground-truth.md'), 'utf8'));
    const cells = comparePrograms(current, linter, limitations);
    assert.ok(cells.length > 0, 'no program was compared');
    const multi = current.programs.filter((p) => new Set(cells.filter((c) => c.program === p.source).map((c) => c.name)).size > 1);
    t.diagnostic(
      `per program: ${cells.filter((c) => c.agree).length} of ${cells.length} program × kernel pairs agree (${multi.length} objects with several programs)`,
    );
    const bad = cells
      .filter((c) => !c.agree && !c.limitation)
      .map(
        (c) =>
          `${c.program} ${c.name} on ${c.kernel.majorMinor}: kernel ${c.result.verdict}${c.result.reason ? ` (${c.result.reason})` : ''}, linter ${c.linter.fails ? `fails: ${c.linter.because[0]?.split('\n')[0]}` : 'loads'}`,
      );
    assert.deepEqual(bad, [], 'programs whose kernel verdict and linter verdict disagree, not explained in docs/ground-truth.md');
  });
}

for (const arch of ['x86_64', 'arm64'] as const) suite(arch);

/**
 * The BTF blob the results were computed from: where they say (relative to this clone, or
 * absolute), else the file of that name in `../shared/kernel-data/btf` (results written by a
 * clone elsewhere), as long as its sha256 is the one the results recorded.
 */
function btfBlob(r: MatrixResults): string | undefined {
  const candidates = [join(root, r.btf.blob), r.btf.blob, join(root, '..', 'shared', 'kernel-data', 'btf', basename(r.btf.blob))];
  return candidates.find((p) => existsSync(p) && sha256File(p) === r.btf.sha256);
}
