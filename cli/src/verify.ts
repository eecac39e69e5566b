/**
 * `ebpf-portability verify <object.o | file.bpf.c>`: loads a BPF object in real kernels booted
 * under QEMU and reports, per kernel, whether it loads and attaches and why not. A `.bpf.c` is
 * compiled first and the linter's prediction (its source pass and its object pass on that same
 * compile) is shown beside each kernel's verdict. The machinery
 * is the kernel matrix's (groundtruth/src): Debian kernels from the archive, a busybox and
 * bpftool initramfs, TCG (no KVM needed).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { KernelDb, type Kernel } from '../../kernel-db/src/query/db';
import { btfFromBzImage } from '../../groundtruth/src/bzimage';
import { compileBpf, vmlinuxHeader } from '../../groundtruth/src/compile';
import { linterVerdicts, type LinterVerdict } from '../../groundtruth/src/differential';
import { netAttachType, objectPrograms } from '../../groundtruth/src/elf';
import { cacheDir, HostError, which } from '../../groundtruth/src/host';
import { buildInitramfs } from '../../groundtruth/src/initramfs';
import { compareRelease, imagesFromPath, nearestBuild, sortMajorMinor, type KernelImage } from '../../groundtruth/src/kernels';
import { bootAll, debianImages, findClang, findQemu, guestTools, privateApt } from '../../groundtruth/src/pipeline';
import { reasonWithProgram, type BootResult } from '../../groundtruth/src/qemu';
import { parseArgs, UsageError } from './args';
import type { Io } from './db';
import { table } from './table';

const USAGE = `usage: ebpf-portability verify <object.o | file.bpf.c> [options]

Boots real kernels under QEMU (TCG: no KVM needed), loads the object in each with bpftool
(attaching what libbpf can attach, and tcx/XDP programs to lo), and prints per kernel whether it
loaded and why not. A .bpf.c file is compiled first (clang -target bpf -O2 -g) against a
vmlinux.h from the newest kernel's own BTF, and the linter's prediction (with its object pass
on the same compile) is shown beside.

options:
  --kernels SPEC   a directory of kernel images (vmlinuz-*, bzImage, linux-image/linux-binary .debs),
                   or Debian kernels to download: versions and database names, e.g.
                   "5.10,6.1,debian-7.3.4-amd64", or "all" (default: every Debian amd64 generic
                   kernel of the database, 5.10 to 7.3)
  --btf FILE       BTF for vmlinux.h when compiling (raw or .xz; default: the newest kernel's)
  --json           machine-readable output
  --timeout S      seconds one boot may take (default 300)
  --jobs N         kernels booted at once (default: one per CPU)
  --host-bpftool   use this machine's bpftool in the guest instead of Debian's newest
needs: qemu-system-x86_64; apt-get (Debian/Ubuntu) to download kernels and bpftool, or --kernels
DIR and an installed bpftool; clang and libbpf headers for .bpf.c files.
Downloads are cached in $EBPF_MATRIX_CACHE (default ~/.cache/ebpf-portability-matrix).
exit status: 0 loads on every kernel, 1 fails on some kernel, 2 bad usage or missing tools
`;

/** One kernel's row of the report. */
interface Row {
  readonly kernel: string;
  readonly release: string;
  readonly package?: string;
  readonly verdict: string;
  readonly program?: string;
  readonly reason: string;
  readonly explain: string[];
  readonly seconds?: number;
  readonly linter?: LinterVerdict;
  /** How the database kernel was chosen, when not by the exact build. */
  readonly note?: string;
}

/** Runs `verify`; returns the exit status. */
export async function verifyCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { valued: ['kernels', 'btf', 'timeout', 'jobs'], flags: ['help', 'json', 'host-bpftool'] });
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length !== 1) throw new UsageError('verify takes one object (.o) or BPF C file (.bpf.c / .c)');
  const input = resolve(args.positional[0]);
  if (!existsSync(input) || !statSync(input).isFile()) throw new UsageError(`no such file: ${args.positional[0]}`);
  const isObject = /\.o$/.test(input);
  if (!isObject && !/\.c$/.test(input)) throw new UsageError(`${args.positional[0]} is neither an object (.o) nor a C file (.c)`);
  const timeoutS = Number(args.options.get('timeout') ?? 300);
  if (!(timeoutS >= 10)) throw new UsageError('--timeout needs at least 10 seconds');
  const jobs = args.options.has('jobs') ? Number(args.options.get('jobs')) : undefined;
  if (jobs !== undefined && !(jobs >= 1)) throw new UsageError('--jobs needs a number of at least 1');
  const json = args.flags.has('json');
  const log = (s: string) => io.err(`verify: ${s}\n`);

  // Tools first, so that a missing one is said before anything is downloaded.
  const qemu = findQemu(false, log);
  const clang = isObject ? undefined : findClang(false, log);
  const cache = cacheDir();
  const db = KernelDb.open({ noUser: true });
  const spec = args.options.get('kernels') ?? 'all';
  const fromDir = existsSync(spec) && statSync(spec).isDirectory();
  // Names are checked before anything is fetched, so a typo costs nothing.
  const wanted = fromDir ? undefined : spec === 'all' ? 'all' : kernelVersions(spec, db.kernels);
  // Images from a directory need the archive only for the guest's bpftool: any lists will do.
  const apt = privateApt(cache, log, fromDir);
  if (!apt && !fromDir)
    throw new HostError(
      "no kernel images: this machine has no apt-get to download Debian's; give --kernels a directory of vmlinuz files or kernel .debs",
    );
  const guest = guestTools(apt, cache, args.flags.has('host-bpftool'), log);

  // Kernel images.
  let images: KernelImage[];
  if (fromDir) {
    images = imagesFromPath(spec, cache, log);
    if (images.length === 0)
      throw new HostError(`no kernel images in ${spec}: expected vmlinuz-<release>, bzImage or linux-image/linux-binary .deb files`);
  } else {
    const r = debianImages(apt!, db.kernels, wanted!, cache, log);
    if (r.missing.length) log(`the Debian archive has no amd64 generic kernel for ${r.missing.join(', ')}`);
    images = r.images;
    if (images.length === 0) throw new HostError(`no Debian kernel images for "${spec}"`);
  }

  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, 'verify-'));
  try {
    // The object, compiled when given as C.
    let object = input;
    /** The vmlinux.h the program is compiled against: the linter's object pass compiles it the same way. */
    let include: string | undefined;
    if (!isObject) {
      const newest = [...images].sort((a, b) => compareRelease(b.release, a.release))[0];
      const btfFile = args.options.get('btf') ?? join(work, 'kernel.btf');
      if (!args.options.has('btf')) writeFileSync(btfFile, await btfFromBzImage(newest.vmlinuz));
      const bpftool = guest.hostRunnable ?? (which('bpftool') ? { cmd: which('bpftool')!, args: [] } : undefined);
      if (!bpftool) throw new HostError('bpftool is needed on this machine to make vmlinux.h (Debian package bpftool)');
      include = await vmlinuxHeader(btfFile, bpftool, work);
      object = join(work, `${basename(input).replace(/\.(bpf\.)?c$/, '')}.o`);
      await compileBpf(clang!, input, include, object);
      log(`compiled ${basename(input)} against vmlinux.h from ${args.options.get('btf') ?? `${newest.release}'s BTF`}`);
    }
    const netAttach = objectPrograms(object).flatMap((p) => {
      const type = netAttachType(p.sec);
      return type ? [{ type, program: p.name }] : [];
    });
    const initrd = join(work, 'initramfs.cpio.gz');
    buildInitramfs(initrd, guest.files, [{ id: 'object', path: object, ...(netAttach.length ? { netAttach } : {}) }], guest.autoattach);
    const boots = await bootAll(qemu, images, initrd, ['object'], { jobs, timeoutS }, log);

    const names = new Map(images.map((img) => [img.release, databaseKernel(img, boots.get(img.release)!, db.kernels)]));
    let linter: Map<string, LinterVerdict> | undefined;
    if (!isObject) {
      const dbNames = [...new Set([...names.values()].filter((n) => !!n).map((n) => n!.name))];
      if (dbNames.length) {
        const lv = await linterVerdicts(
          '/',
          [{ id: 'object', source: input, sourceSha256: '' }],
          dbNames,
          guest.libbpfVersion,
          include && clang ? { clang, includeDir: include } : undefined,
        );
        linter = lv.get(input);
      }
    }
    const rows: Row[] = [...images]
      .sort((a, b) => compareRelease(a.release, b.release))
      .map((img) => {
        const b = boots.get(img.release)!;
        const r = b.objects.object;
        const db = names.get(img.release);
        const name = db?.name;
        const verdict = r.verdict === 'no-result' ? (b.timedOut ? 'timed out' : 'no result') : r.verdict;
        return {
          kernel: name ?? img.release,
          release: img.release,
          ...(img.package ? { package: `${img.package} ${img.version}` } : {}),
          verdict,
          ...(r.program ? { program: r.program } : {}),
          reason:
            r.verdict === 'no-result'
              ? `no result from the guest${b.tail.length ? `; last console line: ${b.tail[b.tail.length - 1]}` : ''}`
              : r.reason,
          explain: r.verdict === 'no-result' ? b.tail.slice(-8) : r.explain,
          ...(r.seconds !== undefined ? { seconds: r.seconds } : {}),
          ...(name && linter?.get(name) ? { linter: linter.get(name) } : {}),
          ...(db?.note ? { note: db.note } : {}),
        };
      });
    const failed = rows.filter((r) => r.verdict !== 'loaded');
    if (json) {
      io.out(
        `${JSON.stringify(
          {
            version: 1,
            input: args.positional[0],
            guest: { bpftool: guest.bpftoolVersion, origin: guest.origin, autoattach: guest.autoattach },
            kernels: rows,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      io.out(
        table(
          ['KERNEL', 'VERDICT', ...(linter ? ['LINTER'] : []), 'WHY'],
          rows.map((r) => [r.kernel, r.verdict, ...(linter ? [r.linter ? (r.linter.fails ? 'fails' : 'loads') : '-'] : []), why(r)]),
        ),
      );
      const disagree = linter
        ? rows.filter((r) => r.linter && r.linter.fails !== (r.verdict !== 'loaded') && !/^(timed out|no result)$/.test(r.verdict))
        : [];
      io.out(
        `${basename(input)}: loads on ${rows.length - failed.length} of ${rows.length} kernels${failed.length ? `; fails on ${failed.map((r) => r.kernel).join(', ')}` : ''}\n`,
      );
      if (disagree.length) io.out(`the linter and the kernel disagree on ${disagree.map((r) => r.kernel).join(', ')}\n`);
      for (const r of rows) if (r.note) io.out(`${r.release}: ${r.note}\n`);
    }
    return failed.length ? 1 : 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The most telling line of a failure, with the failing program's name. */
function why(r: Row): string {
  return r.verdict === 'loaded' ? '' : reasonWithProgram(r).slice(0, 160);
}

/** major.minor versions named by a --kernels list of versions and database kernel names. */
function kernelVersions(spec: string, kernels: readonly Kernel[]): string[] {
  const out: string[] = [];
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (/^\d+\.\d+$/.test(item)) out.push(item);
    else {
      const k = kernels.find((x) => x.name === item);
      if (!k)
        throw new UsageError(
          `--kernels: "${item}" is neither a directory, a major.minor version nor a kernel of the database (see ebpf-portability db list)`,
        );
      if (k.distro !== 'debian' || k.arch !== 'x86_64')
        throw new UsageError(
          `--kernels: ${item} is not a Debian amd64 kernel, the only ones verify can download; give a directory of images instead`,
        );
      out.push(/^(\d+\.\d+)/.exec(k.version)![1]);
    }
  }
  return sortMajorMinor(out);
}

/**
 * The database kernel a booted image is: by the chosen build, else by the BTF the guest saw, else
 * the nearest build of the same major.minor and flavour (with a note saying so).
 */
function databaseKernel(img: KernelImage, boot: BootResult, kernels: readonly Kernel[]): { name: string; note?: string } | undefined {
  if (img.dbName) return { name: img.dbName };
  const exact = boot.btfSha256 ? kernels.find((k) => k.sha256 === boot.btfSha256) : undefined;
  if (exact) return { name: exact.name };
  const near = nearestBuild(boot.release ?? img.release, kernels);
  return near
    ? { name: near.name, note: `its exact build is not in the database; the linter's verdict is for the nearest build, ${near.release}` }
    : undefined;
}
