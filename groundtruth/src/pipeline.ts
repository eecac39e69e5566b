/**
 * The steps the matrix runner and `ebpf-portability verify` share: find (or install) QEMU, get
 * the guest tools, resolve and fetch kernel images, and boot a set of kernels in parallel with one
 * initramfs.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Kernel } from '../../kernel-db/src/query/db';
import { PrivateApt } from './apt';
import { ARCHES, isDebianGeneric, type ArchSpec } from './arch';
import { debianGuestTools, hostGuestTools, type GuestTools } from './guest';
import { aptInstall, HostError, which } from './host';
import { archiveImages, chooseKernels, fetchKernel, sortMajorMinor, type KernelImage } from './kernels';
import { boot, type BootResult } from './qemu';

/** Where to log progress. */
export type Log = (s: string) => void;

/** The QEMU binary of an architecture, installed with apt-get when allowed; a message naming the package otherwise. */
export function findQemu(install: boolean, log: Log, spec: ArchSpec = ARCHES.x86_64): string {
  let qemu = which(spec.qemu);
  if (!qemu && install) {
    aptInstall([spec.qemuPackage], log);
    qemu = which(spec.qemu);
  }
  if (!qemu)
    throw new HostError(
      `${spec.qemu} is not installed: install QEMU (Debian/Ubuntu: apt-get install ${spec.qemuPackage}; Fedora: dnf install ${spec.arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86'})`,
    );
  return qemu;
}

/** The cross compiler that builds an arm64 guest's loader, installed with apt-get when allowed; undefined when absent. */
export function findCrossGcc(install: boolean, log: Log, spec: ArchSpec): string | undefined {
  if (!which(spec.gcc) && install) aptInstall([spec.gccPackage], log);
  return which(spec.gcc);
}

/** clang, installed with apt-get (with libbpf-dev for the headers) when allowed. */
export function findClang(install: boolean, log: Log): string {
  const missing = [which('clang') ? undefined : 'clang', hasLibbpfHeaders() ? undefined : 'libbpf-dev'].filter((x): x is string => !!x);
  if (missing.length && install) aptInstall(missing, log);
  const clang = which('clang');
  if (!clang) throw new HostError('clang is not installed: it compiles .bpf.c files (Debian/Ubuntu: apt-get install clang libbpf-dev)');
  if (!hasLibbpfHeaders())
    throw new HostError('libbpf headers (<bpf/bpf_helpers.h>) are missing (Debian/Ubuntu: apt-get install libbpf-dev)');
  return clang;
}

function hasLibbpfHeaders(): boolean {
  return ['/usr/include/bpf/bpf_helpers.h', '/usr/local/include/bpf/bpf_helpers.h'].some((p) => existsSync(p));
}

/**
 * The private apt configuration with package lists at most a day old (any age with `reuseLists`,
 * when no kernel is to be downloaded); undefined when this machine has no apt.
 */
export function privateApt(cache: string, log: Log, reuseLists = false): PrivateApt | undefined {
  if (!PrivateApt.available()) return undefined;
  const apt = new PrivateApt(join(cache, 'apt'));
  apt.update(log, reuseLists ? Infinity : undefined);
  return apt;
}

/**
 * The guest tools: Debian's newest bpftool when apt can fetch it, else this machine's. Other
 * architectures than amd64 take Debian's only, of the same version as the amd64 tools (`host`).
 */
export function guestTools(
  apt: PrivateApt | undefined,
  cache: string,
  preferHost: boolean,
  log: Log,
  spec: ArchSpec = ARCHES.x86_64,
  host?: GuestTools,
): GuestTools {
  if (spec.debian !== 'amd64') {
    if (!apt) throw new HostError(`the ${spec.arch} guest tools come from Debian's archive, which needs apt-get`);
    return debianGuestTools(apt, cache, log, spec, host ?? guestTools(apt, cache, false, log));
  }
  if (apt && !preferHost) {
    try {
      return debianGuestTools(apt, cache, log);
    } catch (e) {
      log(`could not fetch Debian's bpftool (${(e as Error).message.split('\n')[0]}); using this machine's`);
    }
  }
  try {
    return hostGuestTools();
  } catch (e) {
    throw new HostError(
      `no bpftool for the guest: ${(e as Error).message}${apt ? '' : " (without apt-get, Debian's bpftool cannot be downloaded either)"}`,
    );
  }
}

/**
 * Resolves wanted major.minor versions (or `all`: every Debian generic kernel of the architecture
 * the database has) to images from the archive, downloading what the cache lacks.
 */
export function debianImages(
  apt: PrivateApt,
  db: readonly Kernel[],
  wanted: readonly string[] | 'all',
  cache: string,
  log: Log,
  spec: ArchSpec = ARCHES.x86_64,
): { images: KernelImage[]; missing: string[]; downloadMs: number } {
  const all = sortMajorMinor(db.filter((k) => isDebianGeneric(k, spec)).map((k) => /^(\d+\.\d+)/.exec(k.version)![1]));
  const mms = wanted === 'all' ? all : sortMajorMinor(wanted);
  const { chosen, missing } = chooseKernels(archiveImages(apt, spec), mms, db, spec);
  const images: KernelImage[] = [];
  let downloadMs = 0;
  for (const c of chosen) {
    const img = fetchKernel(apt, c, cache, log);
    downloadMs += img.downloadMs ?? 0;
    images.push(img);
  }
  return { images, missing, downloadMs };
}

/** Boots every image with one initramfs, `jobs` at a time; results by release. */
export async function bootAll(
  qemu: string,
  images: readonly KernelImage[],
  initrd: string,
  objectIds: readonly string[],
  opts: { jobs?: number; timeoutS: number; spec?: ArchSpec },
  log: Log,
): Promise<Map<string, BootResult>> {
  const jobs = Math.max(1, opts.jobs ?? defaultJobs());
  const out = new Map<string, BootResult>();
  let next = 0;
  const worker = async () => {
    while (next < images.length) {
      const img = images[next++];
      const r = await boot(qemu, img.vmlinuz, initrd, opts.timeoutS, objectIds, opts.spec);
      const loaded = Object.values(r.objects).filter((o) => o.verdict === 'loaded').length;
      log(
        `booted ${img.release}: ${(r.ms / 1000).toFixed(1)} s, ${loaded}/${objectIds.length} loaded${r.complete ? '' : r.timedOut ? ' (timed out)' : ' (incomplete)'}`,
      );
      out.set(img.release, r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, images.length) }, worker));
  return out;
}

/**
 * One QEMU per core (TCG runs a guest CPU on one host thread), at most 8: each guest takes 512 MB.
 */
export function defaultJobs(): number {
  return Math.max(1, Math.min(8, cpus().length));
}
