/**
 * The architectures the kernel matrix boots, and everything that differs between them: Debian's
 * name for the architecture, the QEMU machine and console, the compiler for the guest's loader and
 * its multiarch directory, the dynamic loader's path, and the `__TARGET_ARCH_*` the BPF programs
 * are compiled with. The database names architectures as `x86_64` and `arm64`.
 */
import type { Kernel } from '../../kernel-db/src/query/db';

/** An architecture of the matrix, as the kernel database names it. */
export type MatrixArch = 'x86_64' | 'arm64';

/** What one architecture needs on the host and in the guest. */
export interface ArchSpec {
  readonly arch: MatrixArch;
  /** Debian's architecture name (`.deb` files, `apt-get download pkg:arch`). */
  readonly debian: 'amd64' | 'arm64';
  /** The QEMU system emulator, and the Debian package that has it. */
  readonly qemu: string;
  readonly qemuPackage: string;
  /** QEMU options before the kernel's: machine, CPU and memory. */
  readonly machine: readonly string[];
  /** The serial console the kernel writes to. */
  readonly console: string;
  /** The C compiler that builds the guest's loader, and its Debian package. */
  readonly gcc: string;
  readonly gccPackage: string;
  /** The multiarch directory of libraries and system headers (`/usr/lib/<triplet>`). */
  readonly triplet: string;
  /** The dynamic loader's path in the guest (and in Debian's packages). */
  readonly interpreter: string;
  /** The value of `__TARGET_ARCH_*` libbpf's bpf_tracing.h keys pt_regs access on. */
  readonly targetArch: string;
}

export const ARCHES: Readonly<Record<MatrixArch, ArchSpec>> = {
  x86_64: {
    arch: 'x86_64',
    debian: 'amd64',
    qemu: 'qemu-system-x86_64',
    qemuPackage: 'qemu-system-x86',
    machine: ['-accel', 'tcg', '-cpu', 'max', '-m', '512'],
    console: 'ttyS0',
    gcc: 'gcc',
    gccPackage: 'gcc',
    triplet: 'x86_64-linux-gnu',
    interpreter: 'lib64/ld-linux-x86-64.so.2',
    targetArch: 'x86',
  },
  arm64: {
    arch: 'arm64',
    debian: 'arm64',
    qemu: 'qemu-system-aarch64',
    qemuPackage: 'qemu-system-arm',
    // The virt board with every CPU feature QEMU emulates; pointer authentication with QEMU's own
    // cheap algorithm instead of the architected QARMA one, which costs TCG much of its speed and
    // changes nothing a BPF program sees.
    machine: ['-M', 'virt', '-accel', 'tcg', '-cpu', 'max,pauth-impdef=on', '-m', '1024'],
    console: 'ttyAMA0',
    gcc: 'aarch64-linux-gnu-gcc',
    gccPackage: 'gcc-aarch64-linux-gnu',
    triplet: 'aarch64-linux-gnu',
    interpreter: 'lib/ld-linux-aarch64.so.1',
    targetArch: 'arm64',
  },
};

/** The spec of an architecture name (`x86_64`, `amd64`, `arm64`, `aarch64`); undefined for others. */
export function archSpec(name: string): ArchSpec | undefined {
  const n = name.trim().toLowerCase();
  if (n === 'x86_64' || n === 'amd64' || n === 'x86') return ARCHES.x86_64;
  if (n === 'arm64' || n === 'aarch64') return ARCHES.arm64;
  return undefined;
}

/** A Debian package name for this architecture: arm64 packages are named `pkg:arm64` on this amd64 host. */
export function debPackage(spec: ArchSpec, name: string): string {
  return spec.debian === 'amd64' ? name : `${name}:${spec.debian}`;
}

/**
 * The results file of an architecture's run: `base` (`latest.json`) for x86_64, the same name
 * with `-arm64` before the extension beside it for arm64.
 */
export function resultsPath(base: string, arch: MatrixArch): string {
  return arch === 'x86_64' ? base : base.replace(/(\.json)?$/, `-${arch}.json`);
}

/** Whether a database kernel is a Debian generic build of the architecture (what the matrix boots). */
export function isDebianGeneric(k: Pick<Kernel, 'distro' | 'arch' | 'flavour'>, spec: ArchSpec): boolean {
  return k.distro === 'debian' && k.arch === spec.arch && k.flavour === 'generic';
}
