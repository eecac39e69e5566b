/**
 * `npm run matrix`: boots real Debian kernels under QEMU, loads every example and matrix test
 * program in each, writes the kernel's verdicts as JSON, and holds the linter's per-kernel
 * verdicts against them (the differential check). Downloads and results live in the cache
 * (`$EBPF_MATRIX_CACHE`, default ~/.cache/ebpf-portability-matrix), never in the repository.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { type Args, parseArgs, UsageError } from '../../cli/src/args';
import { KernelDb } from '../../kernel-db/src/query/db';
import { ARCHES, archSpec, resultsPath, type ArchSpec } from '../../groundtruth/src/arch';
import { btfFromImage } from '../../groundtruth/src/bzimage';
import { compileBpf, defaultBtfBlob, pool, vmlinuxHeader } from '../../groundtruth/src/compile';
import {
  compare,
  compareHooks,
  comparePrograms,
  describeDisagreement,
  expectation,
  linterHooks,
  linterProgramVerdicts,
  linterVerdicts,
  parseLimitations,
  renderKernelTable,
  renderMatrix,
  type MatrixKernel,
  type MatrixProgram,
  type MatrixResults,
} from '../../groundtruth/src/differential';
import { cacheDir, HostError, secs, sha256, sha256File, which } from '../../groundtruth/src/host';
import { objectPrograms, netAttachType } from '../../groundtruth/src/elf';
import { buildInitramfs, type GuestObject } from '../../groundtruth/src/initramfs';
import { imagesFromPath, type KernelImage } from '../../groundtruth/src/kernels';
import {
  bootAll,
  debianImages,
  defaultJobs,
  findClang,
  findCrossGcc,
  findQemu,
  guestTools,
  privateApt,
} from '../../groundtruth/src/pipeline';
import type { ObjectResult } from '../../groundtruth/src/qemu';
import { buildLoader, type GuestLoader } from '../../groundtruth/src/loader';

const root = join(__dirname, '..', '..');

/** The arm64 kernels `--quick` boots: the oldest, the two LTS releases between, and the newest. */
const QUICK_ARM64 = ['5.10', '6.1', '6.12', '7.3'];

const USAGE = `usage: npm run matrix -- [options]

Boots Debian amd64 and arm64 kernels under QEMU, loads every example and
test/matrix/programs/*.bpf.c in each, writes the kernel's verdicts as JSON (one file per
architecture) and compares them with the linter's.

options:
  --arch LIST      x86_64, arm64 or both (default: x86_64, and arm64 where qemu-system-aarch64
                   and aarch64-linux-gnu-gcc are installed, or installable with --install/--ci)
  --kernels LIST   major.minor versions (5.10,6.1,…), "all" (default: every Debian generic kernel
                   of the architecture in the database), or a directory of amd64 vmlinuz files /
                   kernel .debs
  --quick          arm64 boots only ${QUICK_ARM64.join(', ')} (the oldest, the LTS releases
                   and the newest) unless --kernels names others
  --ci             CI mode: installs missing tools with apt-get, runs test/matrix/differential.test.ts
                   and verify.test.ts, and fails on any unexplained disagreement
  --only LIST      only programs whose path contains one of these substrings
  --jobs N         kernels booted at once (default: one per CPU)
  --timeout S      seconds one boot may take (default 300)
  --out FILE       results file (default <cache>/results/latest.json; arm64's beside it, latest-arm64.json)
  --host-bpftool   use this machine's bpftool in the guest instead of Debian's newest
  --install        install missing host tools (qemu-system-x86, qemu-system-arm, gcc-aarch64-linux-gnu,
                   clang, libbpf-dev) with apt-get
  --no-diff        only boot and record; skip the comparison with the linter
  --corpus         also load the real programs of ../shared/corpus (libbpf-tools, libbpf-bootstrap),
                   compiled with their projects' flags, and report how each program's verdict
                   compares with the linter's
`;

interface Options {
  arches: ArchSpec[];
  quick: boolean;
  kernels?: string;
  ci: boolean;
  only?: string[];
  jobs?: number;
  timeoutS: number;
  out: string;
  hostBpftool: boolean;
  install: boolean;
  diff: boolean;
  corpus: boolean;
}

function parse(argv: string[]): Options {
  let args: Args;
  try {
    args = parseArgs(argv, {
      valued: ['kernels', 'jobs', 'timeout', 'out'],
      lists: ['only', 'arch'],
      flags: ['ci', 'host-bpftool', 'install', 'no-diff', 'corpus', 'quick', 'help'],
      short: { h: 'help' },
    });
    if (args.positional.length) throw new UsageError(`unexpected argument ${args.positional[0]}`);
  } catch (e) {
    if (e instanceof UsageError) throw new HostError(`${e.message}\n${USAGE}`);
    throw e;
  }
  if (args.flags.has('help')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const number = (name: string) => (args.options.has(name) ? Number(args.options.get(name)) : undefined);
  const install = args.flags.has('install') || args.flags.has('ci');
  const named = args.list('arch');
  const arches = named
    ? named.map((a) => {
        const spec = archSpec(a);
        if (!spec) throw new HostError(`--arch: "${a}" is not x86_64 or arm64`);
        return spec;
      })
    : [ARCHES.x86_64, ...(install || (which(ARCHES.arm64.qemu) && which(ARCHES.arm64.gcc)) ? [ARCHES.arm64] : [])];
  const o: Options = {
    arches: [...new Set(arches)],
    quick: args.flags.has('quick'),
    kernels: args.options.get('kernels'),
    ci: args.flags.has('ci'),
    only: args.list('only'),
    jobs: number('jobs'),
    timeoutS: number('timeout') ?? 300,
    out: args.options.get('out') ?? join(cacheDir(), 'results', 'latest.json'),
    hostBpftool: args.flags.has('host-bpftool'),
    install: args.flags.has('install'),
    diff: !args.flags.has('no-diff'),
    corpus: args.flags.has('corpus'),
  };
  if (o.jobs !== undefined && !(o.jobs >= 1)) throw new HostError('--jobs needs a number of at least 1');
  if (!(o.timeoutS >= 10)) throw new HostError('--timeout needs at least 10 seconds');
  if (o.ci) o.install = true;
  return o;
}

/** The programs the matrix loads: every example and every test/matrix/programs file. */
export function matrixSources(only?: string[]): string[] {
  const dirs = ['examples', join('test', 'matrix', 'programs')];
  const files = dirs.flatMap((d) =>
    readdirSync(join(root, d))
      .filter((f) => f.endsWith('.bpf.c'))
      .sort()
      .map((f) => join(d, f)),
  );
  return only ? files.filter((f) => only.some((s) => f.includes(s))) : files;
}

/** The corpus projects whose programs libbpf loads, with the flags their builds use (../shared/corpus/README.md). */
const CORPUS_PROJECTS = [
  { name: 'libbpf-tools', dir: join('bcc', 'libbpf-tools') },
  { name: 'libbpf-bootstrap', dir: join('libbpf-bootstrap', 'examples', 'c') },
];

/** The corpus programs, relative to the repository, with their projects' flags; none when the corpus is absent. */
export function corpusSources(only?: string[], spec: ArchSpec = ARCHES.x86_64): { src: string; project: string; flags: string[] }[] {
  const corpus = join(root, '..', 'shared', 'corpus');
  if (!existsSync(corpus)) return [];
  return CORPUS_PROJECTS.flatMap((p) => {
    const dir = join(corpus, p.dir);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.bpf.c'))
      .sort()
      .map((f) => ({ src: relative(root, join(dir, f)), project: p.name, flags: [`-D__TARGET_ARCH_${spec.targetArch}`, `-I${dir}`] }));
  }).filter((c) => !only || only.some((s) => c.src.includes(s)));
}

/** What one architecture's run found: pairs that agree, unexplained disagreements, kernels that did not finish. */
interface ArchOutcome {
  readonly spec: ArchSpec;
  readonly out: string;
  readonly kernels: number;
  readonly compared: number;
  readonly agree: number;
  readonly failed: number;
}

async function main(): Promise<number> {
  const opts = parse(process.argv.slice(2));
  const outcomes: ArchOutcome[] = [];
  for (const spec of opts.arches) {
    const log = (s: string) => process.stderr.write(`matrix${opts.arches.length > 1 ? ` (${spec.arch})` : ''}: ${s}\n`);
    outcomes.push(await runArch(opts, spec, log));
  }
  let testStatus = 0;
  if (opts.ci && opts.arches.some((a) => outcomes.find((o) => o.spec === a)?.kernels)) {
    // The differential test for every architecture run, and verify's end-to-end test (amd64),
    // which needs the kernels just cached.
    const tests = ['differential.test.ts', 'verify.test.ts'].map((f) => join('test', 'matrix', f));
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...tests], {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        EBPF_MATRIX_RESULTS: opts.out,
        EBPF_MATRIX_ARCHES: opts.arches.map((a) => a.arch).join(','),
        EBPF_MATRIX_REQUIRED: '1',
      },
    });
    testStatus = r.status ?? 1;
  }
  for (const o of outcomes)
    if (opts.arches.length > 1 && opts.diff)
      process.stdout.write(
        `matrix (${o.spec.arch}): ${o.kernels} kernels, ${o.agree} of ${o.compared} program × kernel pairs agree, ${o.failed} failed\n`,
      );
  const failed = outcomes.reduce((n, o) => n + o.failed, 0);
  if (opts.diff) process.stdout.write(`matrix: ${outcomes.reduce((n, o) => n + o.agree, 0)} passed, ${failed} failed\n`);
  return failed || testStatus ? 1 : 0;
}

/** One architecture's run: its kernels booted, its results file written, its differential printed. */
async function runArch(opts: Options, spec: ArchSpec, log: (s: string) => void): Promise<ArchOutcome> {
  const out = resultsPath(opts.out, spec.arch);
  const cache = cacheDir();
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const lap = (key: string, since: number) => {
    timings[key] = Math.round(performance.now() - since);
  };

  const qemu = findQemu(opts.install, log, spec);
  if (spec.debian !== 'amd64' && !findCrossGcc(opts.install, log, spec))
    throw new HostError(`${spec.gcc} is not installed: it builds the ${spec.arch} guest's loader (apt-get install ${spec.gccPackage})`);
  const clang = findClang(opts.install, log);
  const db = KernelDb.open({ noUser: true });

  let t = performance.now();
  const apt = privateApt(cache, log);
  lap('aptUpdateMs', t);
  if (!apt && !(opts.kernels && existsSync(opts.kernels)))
    throw new HostError('apt-get is needed to download Debian kernels; give --kernels a directory of vmlinuz files instead');

  t = performance.now();
  const guest = guestTools(apt, cache, opts.hostBpftool, log, spec);
  lap('guestToolsMs', t);
  log(`guest: ${guest.bpftoolVersion.replace(/\n/g, ', ')}; autoattach ${guest.autoattach ? 'yes' : 'no'}`);
  // Each program alone too, with the per-program loader, where it can be built.
  let loader: GuestLoader | undefined;
  if (apt)
    try {
      loader = buildLoader(apt, cache, log, spec);
    } catch (e) {
      log(`no per-program loader: ${(e as Error).message.split('\n')[0]}; objects are judged whole`);
    }
  const guestFiles = loader ? [...guest.files, { guestPath: 'bin/loader', hostPath: loader.path }] : guest.files;

  // Kernel images.
  t = performance.now();
  let images: KernelImage[];
  const wanted = opts.kernels ?? 'all';
  if (existsSync(wanted) && !/^[\d.,]+$/.test(wanted)) {
    if (spec.debian !== 'amd64') throw new HostError(`--kernels with a directory takes amd64 images; run it with --arch x86_64`);
    images = imagesFromPath(wanted, cache, log);
    if (images.length === 0) throw new HostError(`no vmlinuz files or kernel .debs in ${wanted}`);
    timings.downloadMs = 0;
  } else {
    const list =
      wanted === 'all'
        ? 'all'
        : wanted
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
    if (list !== 'all')
      for (const v of list) if (!/^\d+\.\d+$/.test(v)) throw new HostError(`--kernels: "${v}" is not a major.minor version`);
    const r = debianImages(apt!, db.kernels, opts.quick && spec.arch === 'arm64' && list === 'all' ? QUICK_ARM64 : list, cache, log, spec);
    if (r.missing.length) log(`the archive has no ${spec.debian} generic kernel for ${r.missing.join(', ')}`);
    images = r.images;
    timings.downloadMs = Math.round(r.downloadMs);
  }
  lap('kernelsMs', t);

  // Compile every program against one vmlinux.h.
  t = performance.now();
  const work = join(cache, spec.debian === 'amd64' ? 'work' : `work-${spec.debian}`);
  mkdirSync(work, { recursive: true });
  // The newest Debian kernel's BTF of the architecture beside the project, else the newest booted kernel's own.
  let blob = defaultBtfBlob(root, spec.arch);
  if (!blob) {
    const newest = images[images.length - 1];
    blob = join(work, `btf-${newest.release}`);
    writeFileSync(blob, await btfFromImage(newest.vmlinuz));
  }
  const hostBpftool = guest.hostRunnable ?? (which('bpftool') ? { cmd: which('bpftool')!, args: [] } : undefined);
  if (!hostBpftool) throw new HostError('no bpftool on this machine to dump vmlinux.h');
  const include = await vmlinuxHeader(blob, hostBpftool, work);
  const corpus = opts.corpus ? corpusSources(opts.only, spec) : [];
  if (opts.corpus && corpus.length === 0) log('--corpus: ../shared/corpus is absent; only the written programs are loaded');
  const sources: { src: string; project?: string; flags?: string[] }[] = [...matrixSources(opts.only).map((src) => ({ src })), ...corpus];
  if (sources.length === 0) throw new HostError(`no programs match --only ${opts.only?.join(',')}`);
  const ids = new Set<string>();
  const planned = sources.map((source) => {
    const src = source.src;
    let id = basename(src).replace(/\.bpf\.c$/, '');
    if (ids.has(id)) id = `${basename(dirname(src))}.${id}`;
    ids.add(id);
    return { ...source, id, out: join(work, 'objs', `${id}.o`) };
  });
  // A corpus program the system's libbpf headers cannot compile is left out, and said so.
  const notCompiled = new Set<string>();
  await pool(planned, defaultJobs(), async (p) => {
    // Corpus programs: their project's include path, libbpf's headers of the loader's version where
    // there is one (newer macros such as BPF_UPROBE), and the multiarch system headers clang's BPF
    // target does not search by itself (asm/types.h), as their builds add them; this machine's, for
    // arm64 too (the asm/ headers the programs include define the same integer types on both).
    const extra = p.flags
      ? [
          `-D__TARGET_ARCH_${spec.targetArch}`,
          ...p.flags.filter((f) => f.startsWith('-I')).flatMap((f) => ['-I', f.slice(2)]),
          ...(loader ? ['-I', loader.includeDir] : []),
          '-idirafter',
          '/usr/include/x86_64-linux-gnu',
        ]
      : [];
    try {
      await compileBpf(clang, join(root, p.src), include, p.out, extra, spec.arch);
    } catch (e) {
      if (!p.flags) throw e;
      notCompiled.add(p.src);
      log(
        `${p.src}: does not compile here (${(e as Error).message.split('\n').find((l) => /error:/.test(l)) ?? 'clang failed'}); left out`,
      );
    }
  });
  const programs: MatrixProgram[] = [];
  const objects: GuestObject[] = [];
  for (const p of planned) {
    const { src, id, out } = p;
    if (notCompiled.has(src)) continue;
    const text = readFileSync(join(root, src), 'utf8');
    // tcx and XDP programs need a device to attach to: bpftool attaches them to lo in the guest.
    const netAttach = objectPrograms(out).flatMap((p) => {
      const type = netAttachType(p.sec);
      return type ? [{ type, program: p.name }] : [];
    });
    programs.push({
      id,
      source: src,
      sourceSha256: sha256(text),
      ...(expectation(text) ? { expect: expectation(text) } : {}),
      ...(p.flags && p.project ? { corpus: { project: p.project, flags: p.flags } } : {}),
    });
    objects.push({ id, path: out, ...(netAttach.length ? { netAttach } : {}) });
  }
  lap('compileMs', t);
  log(`compiled ${programs.length} programs against vmlinux.h from ${relative(root, blob).startsWith('..') ? blob : relative(root, blob)}`);

  t = performance.now();
  const initrd = join(work, 'initramfs.cpio.gz');
  const size = buildInitramfs(initrd, guestFiles, objects, guest.autoattach);
  lap('initramfsMs', t);
  log(`initramfs: ${(size / 1e6).toFixed(1)} MB with ${objects.length} objects`);

  t = performance.now();
  const boots = await bootAll(
    qemu,
    images,
    initrd,
    objects.map((o) => o.id),
    { jobs: opts.jobs, timeoutS: opts.timeoutS, spec },
    log,
  );
  lap('bootAllMs', t);

  const kernels: MatrixKernel[] = images.map((img) => {
    const b = boots.get(img.release)!;
    // The chosen build, else the kernel whose BTF the guest saw, else one of the same release.
    const dbk =
      db.kernels.find((k) => k.name === img.dbName) ??
      (b.btfSha256 ? db.kernels.find((k) => k.sha256 === b.btfSha256) : undefined) ??
      db.kernels.find((k) => k.release === img.release && k.distro === 'debian' && k.arch === spec.arch);
    return {
      majorMinor: img.majorMinor,
      release: img.release,
      ...(img.package ? { package: img.package, version: img.version, suite: img.suite } : {}),
      ...(dbk ? { dbName: dbk.name, btfMatchesDb: b.btfSha256 === dbk.sha256 } : {}),
      ...(img.note ? { note: img.note } : {}),
      complete: b.complete,
      timedOut: b.timedOut,
      bootMs: Math.round(b.ms),
      downloadMs: img.downloadMs ?? 0,
      ...(b.cloneOnly ? { cloneOnly: b.cloneOnly } : {}),
    };
  });
  const results: Record<string, Record<string, ObjectResult>> = {};
  for (const p of programs) {
    results[p.source] = {};
    for (const img of images) results[p.source][img.release] = boots.get(img.release)!.objects[p.id];
  }
  for (const img of images) {
    const b = boots.get(img.release)!;
    if (!b.complete) log(`${img.release} did not finish; its last console lines:\n    ${b.tail.slice(-12).join('\n    ')}`);
  }
  timings.totalMs = Math.round(performance.now() - t0);
  const clangVersion = spawnSync(clang, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  const matrix: MatrixResults = {
    version: 1,
    arch: spec.arch,
    generated: new Date().toISOString(),
    guest: {
      origin: guest.origin,
      bpftool: guest.bpftoolVersion,
      ...(guest.libbpfVersion ? { libbpf: guest.libbpfVersion } : {}),
      autoattach: guest.autoattach,
      ...(loader ? { loader: { origin: loader.origin, libbpf: loader.libbpf } } : {}),
    },
    btf: { blob: relative(root, blob).startsWith('..') ? blob : relative(root, blob), sha256: sha256File(blob) },
    clang: clangVersion,
    programs,
    kernels,
    results,
    timings,
  };
  mkdirSync(dirname(out), { recursive: true });
  // Written whole and renamed, so a test reading the results never sees half a file.
  writeFileSync(`${out}.tmp`, `${JSON.stringify(matrix, null, 2)}\n`);
  renameSync(`${out}.tmp`, out);

  process.stdout.write(`\n${spec.arch}: ${renderKernelTable(matrix)}\n`);
  process.stdout.write(
    `\ntimes: apt ${secs(timings.aptUpdateMs)}, guest tools ${secs(timings.guestToolsMs)}, compile ${secs(timings.compileMs)}, kernel images ${secs(timings.kernelsMs)} (download ${secs(timings.downloadMs)}), initramfs ${secs(timings.initramfsMs)}, boots ${secs(timings.bootAllMs)} (${kernels.map((k) => `${k.majorMinor} ${secs(k.bootMs)}`).join(', ')}), total ${secs(timings.totalMs)}\n`,
  );
  process.stdout.write(`results: ${out}\n`);
  const incomplete = kernels.filter((k) => !k.complete);

  const outcome = { spec, out, kernels: kernels.length };
  if (!opts.diff) return { ...outcome, compared: 0, agree: 0, failed: incomplete.length };

  // The differential check, in this process for the printed matrix and summary line.
  const mapped = kernels.filter((k) => k.dbName);
  for (const k of kernels.filter((x) => !x.dbName)) log(`${k.release} has no kernel in the linter's database: not compared`);
  for (const k of mapped.filter((x) => x.btfMatchesDb === false))
    log(`${k.release}: the booted kernel's BTF differs from ${k.dbName}'s in the database`);
  // The corpus, per program: reported here, beside the written programs' differential.
  const corpusPrograms = programs.filter((p) => p.corpus);
  if (corpusPrograms.length && loader) {
    const objects = new Map(planned.filter((p) => !notCompiled.has(p.src)).map((p) => [p.src, p.out]));
    const lv = await linterProgramVerdicts(
      root,
      corpusPrograms,
      mapped.map((k) => k.dbName!),
      objects,
      loader.libbpf,
    );
    const pc = comparePrograms({ ...matrix, programs: corpusPrograms }, lv, [], objects);
    const fp = pc.filter((c) => !c.agree && c.linter.alone);
    const fn = pc.filter((c) => !c.agree && !c.linter.alone);
    const hooks = await linterHooks(
      root,
      corpusPrograms,
      mapped.map((k) => k.dbName!),
      objects,
      loader.libbpf,
    );
    const hc = compareHooks({ ...matrix, programs: corpusPrograms }, hooks, objects);
    const hfp = hc.filter((c) => !c.agree && c.linter.alone);
    const hfn = hc.filter((c) => !c.agree && !c.linter.alone);
    const errorsWhereOneLoads = hc.filter((c) => c.linter.fails && c.loaded.length > 0);
    process.stdout.write(
      `
corpus (${corpusPrograms.length} objects, ${notCompiled.size} left out as not compiling here), each program alone: ` +
        `${pc.filter((c) => c.agree).length} of ${pc.length} program × kernel pairs agree; the linter says a program fails where the kernel loads it on ${fp.length}, says it loads where it fails on ${fn.length}\n`,
    );
    for (const c of [...fp, ...fn])
      process.stdout.write(
        `  ${c.program} ${c.name} ${c.kernel.majorMinor}: kernel ${c.result.verdict}${c.result.reason ? ` (${c.result.reason.slice(0, 100)})` : ''}; linter ${c.linter.alone ? `fails: ${c.linter.because[0]?.split('\n')[0].slice(0, 140)}` : 'loads'}\n`,
      );
    process.stdout.write(
      `corpus hooks with variants (${new Set(hc.map((c) => `${c.program} ${c.hook.hook}`)).size}): ${hc.filter((c) => c.agree).length} of ${hc.length} hook × kernel pairs agree ` +
        `(the linter says no variant loads where one does on ${hfp.length}, that one does where none does on ${hfn.length}); an error on a hook where one of its variants loads: ${errorsWhereOneLoads.length}\n`,
    );
    for (const c of [...hfp, ...hfn, ...errorsWhereOneLoads])
      process.stdout.write(
        `  ${c.program} ${c.hook.hook} (${c.hook.programs.join(', ')}) ${c.kernel.majorMinor}: ${c.loaded.length ? `${c.loaded.join(', ')} loads` : 'none loads'}; linter ${c.linter.fails ? 'error' : c.linter.alone ? 'none loads' : 'one loads'}${c.linter.because[0] ? `: ${c.linter.because[0].split('\n')[0].slice(0, 140)}` : ''}\n`,
      );
  }
  const written = programs.filter((p) => !p.corpus);
  const linter = await linterVerdicts(
    root,
    written,
    mapped.map((k) => k.dbName!),
    guest.libbpfVersion,
  );
  const limitations = parseLimitations(readFileSync(join(root, 'docs', 'ground-truth.md'), 'utf8'));
  const { cells, unused } = compare({ ...matrix, programs: written }, linter, limitations);
  process.stdout.write(`\n${spec.arch} agreement (linter vs kernel):\n${renderMatrix({ ...matrix, programs: written }, cells)}\n`);
  const bad = cells.filter((c) => !c.agree && !c.limitation);
  const known = cells.filter((c) => !c.agree && c.limitation);
  if (bad.length) process.stdout.write(`\nunexplained disagreements:\n${bad.map((c) => `  ${describeDisagreement(c)}`).join('\n')}\n`);
  if (unused.length)
    process.stdout.write(
      `\nknown limitations that no longer occur (remove them from docs/ground-truth.md):\n${unused.map((l) => `  ${l.program} on ${l.kernels.join(',')}`).join('\n')}\n`,
    );
  const agree = cells.filter((c) => c.agree).length;
  const noResult = written.length * kernels.length - cells.length;
  process.stdout.write(
    `\nmatrix (${spec.arch}): ${kernels.length} kernels booted, ${written.length} programs, ${cells.length} program × kernel pairs compared; ${known.length} known limitations${noResult ? `, ${noResult} without a comparable result` : ''}\n`,
  );
  return { ...outcome, compared: cells.length, agree, failed: bad.length + incomplete.length };
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`matrix: ${e instanceof HostError ? e.message : (e as Error).stack}\n`);
      process.exitCode = 2;
    },
  );
}
