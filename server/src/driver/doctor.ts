/**
 * What a machine offers BPF programs, read from files only (no command runs, nothing loads): the
 * kernel release, its BTF, kernel headers, the CONFIG options the facts name, lockdown, the
 * sysctls that gate BPF and the active LSMs; what is missing with what to do, for headers with
 * the distro's own install command. Every path is read under `root` (`/`, or a copy of another
 * machine's files). The CLI's `doctor` prints it; the language server answers it for the
 * editor's Check This Machine.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readBoundedBytes } from '../../../kernel-db/src/files';

/** One thing the report found, or found missing. */
export interface DoctorItem {
  readonly what: string;
  readonly value: string;
  /** `ok`, `missing` (a program needs it and it is not there) or `note` (worth knowing). */
  readonly status: 'ok' | 'missing' | 'note';
  /** What to do, and why, when it is not ok. */
  readonly advice?: string;
}

/** The report of `doctor`. */
export interface DoctorReport {
  readonly root: string;
  readonly release?: string;
  readonly distro?: { id: string; like: string[]; name?: string };
  readonly items: DoctorItem[];
  readonly configSource?: string;
  readonly configs: { name: string; value: string; purpose?: string }[];
}

/**
 * Per distro family, the command that installs the running kernel's headers. Source: Pixie's
 * "Installing your distro's Linux kernel headers" guidance (../shared/seeds, Pixie issue #2051):
 * Debian/Ubuntu `linux-headers-$(uname -r)`, RHEL/Rocky/Alma/Fedora and Amazon Linux
 * `kernel-devel-$(uname -r)`, openSUSE `kernel-default-devel`; Google COS ships none.
 */
const HEADER_INSTALL: { ids: string[]; command: (release: string) => string }[] = [
  { ids: ['debian', 'ubuntu'], command: (r) => `sudo apt-get update && sudo apt-get install -y linux-headers-${r}` },
  { ids: ['fedora', 'rhel', 'centos', 'rocky', 'almalinux', 'ol'], command: (r) => `sudo dnf install -y kernel-devel-${r}` },
  { ids: ['amzn'], command: (r) => `sudo yum install -y kernel-devel-${r} (Amazon Linux 2023: sudo dnf install -y kernel-devel)` },
  {
    ids: ['opensuse', 'opensuse-leap', 'opensuse-tumbleweed', 'suse', 'sles'],
    command: () => 'sudo zypper install -y kernel-default-devel',
  },
];

/** Reads the machine's files under `root`. */
export function doctorReport(root: string, configNames: readonly { name: string; purpose?: string }[]): DoctorReport {
  const at = (p: string) => join(root, p);
  const read = (p: string, max = 1 << 20): string | undefined => {
    const r = readBoundedBytes(at(p), max);
    return 'error' in r ? undefined : r.bytes.toString('utf8');
  };
  const exists = (p: string) => {
    try {
      return statSync(at(p));
    } catch {
      return undefined;
    }
  };
  const items: DoctorItem[] = [];
  const release = read('proc/sys/kernel/osrelease')?.trim() || undefined;
  items.push(
    release
      ? { what: 'kernel release', value: release, status: 'ok' }
      : { what: 'kernel release', value: 'unknown', status: 'missing', advice: 'no /proc/sys/kernel/osrelease: is /proc mounted?' },
  );

  const osRelease = read('etc/os-release') ?? read('usr/lib/os-release');
  const field = (k: string) => osRelease?.match(new RegExp(`^${k}=("?)([^\\n"]*)\\1$`, 'm'))?.[2];
  const distro = field('ID')
    ? { id: field('ID')!, like: (field('ID_LIKE') ?? '').split(/\s+/).filter(Boolean), name: field('PRETTY_NAME') }
    : undefined;
  if (distro) items.push({ what: 'distribution', value: distro.name ?? distro.id, status: 'ok' });

  const btf = exists('sys/kernel/btf/vmlinux');
  items.push(
    btf
      ? {
          what: 'BTF',
          value: `/sys/kernel/btf/vmlinux (${Math.round(btf.size / 1024)} KiB)`,
          status: 'ok',
          advice: 'add it as a target: ebpf-portability db add /sys/kernel/btf/vmlinux',
        }
      : {
          what: 'BTF',
          value: 'no /sys/kernel/btf/vmlinux',
          status: 'missing',
          advice:
            'CO-RE programs (libbpf, cilium/ebpf) need the kernel BTF: a kernel built with CONFIG_DEBUG_INFO_BTF=y, or a BTF file for this kernel (BTFHub) given to the loader',
        },
  );

  const build = release ? exists(`lib/modules/${release}/build`) : undefined;
  const kheaders = exists('sys/kernel/kheaders.tar.xz');
  const install = distro && release ? headerInstall(distro, release) : undefined;
  items.push(
    build?.isDirectory()
      ? { what: 'kernel headers', value: `/lib/modules/${release}/build`, status: 'ok' }
      : kheaders
        ? { what: 'kernel headers', value: '/sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS)', status: 'ok' }
        : {
            what: 'kernel headers',
            value: release ? `no /lib/modules/${release}/build, no /sys/kernel/kheaders.tar.xz` : 'unknown (no release)',
            status: 'missing',
            advice: `BCC compiles its programs on the host against them (CO-RE programs do not need them): ${
              install ??
              (distro?.id === 'cos'
                ? 'Container-Optimized OS ships no headers package; load the kheaders module where the kernel has CONFIG_IKHEADERS'
                : "install your distribution's package for this kernel's headers, or load the kheaders module (CONFIG_IKHEADERS)")
            }`,
          },
  );

  // The kernel's configuration: /proc/config.gz (CONFIG_IKCONFIG_PROC), else /boot/config-RELEASE.
  let configText: string | undefined;
  let configSource: string | undefined;
  const gz = readBoundedBytes(at('proc/config.gz'), 8 << 20);
  if (!('error' in gz)) {
    try {
      configText = gunzipSync(gz.bytes, { maxOutputLength: 64 << 20 }).toString('utf8');
      configSource = '/proc/config.gz';
    } catch {
      configText = undefined;
    }
  }
  if (configText === undefined && release) {
    configText = read(`boot/config-${release}`, 16 << 20);
    if (configText !== undefined) configSource = `/boot/config-${release}`;
  }
  if (configText === undefined && !release) {
    // Without a release, the only /boot config there is, if there is one.
    const boot = listDir(at('boot')).filter((n) => n.startsWith('config-'));
    if (boot.length === 1) {
      configText = read(`boot/${boot[0]}`, 16 << 20);
      configSource = `/boot/${boot[0]}`;
    }
  }
  const values = new Map<string, string>();
  for (const line of configText?.split('\n') ?? []) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) values.set(set[1], set[2].replace(/^"(.*)"$/, '$1'));
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) values.set(unset[1], 'n');
  }
  const configs = configNames.map((c) => ({
    name: c.name,
    value: configText === undefined ? 'unknown' : (values.get(c.name) ?? 'unset'),
    ...(c.purpose ? { purpose: c.purpose } : {}),
  }));
  if (configText === undefined)
    items.push({
      what: 'kernel config',
      value: release ? `no /proc/config.gz, no /boot/config-${release}` : 'no /proc/config.gz',
      status: 'missing',
      advice:
        'without it the CONFIG options programs need cannot be checked (load the configs module for /proc/config.gz, or install the kernel package that ships /boot/config-*)',
    });
  else {
    items.push({ what: 'kernel config', value: configSource!, status: 'ok' });
    const syscall = values.get('CONFIG_BPF_SYSCALL');
    if (syscall !== 'y')
      items.push({
        what: 'CONFIG_BPF_SYSCALL',
        value: syscall ?? 'unset',
        status: 'missing',
        advice: 'no bpf() system call: no BPF program loads on this kernel',
      });
  }

  // Lockdown (security/lockdown): "none [integrity] confidentiality", the active level bracketed.
  // At confidentiality, LOCKDOWN_BPF_READ_KERNEL is denied (include/linux/security.h lists it
  // after LOCKDOWN_INTEGRITY_MAX): bpf_probe_read_kernel and friends fail.
  const lockdown = read('sys/kernel/security/lockdown')?.match(/\[(\w+)\]/)?.[1];
  items.push(
    lockdown === undefined
      ? {
          what: 'lockdown',
          value: 'unknown (no /sys/kernel/security/lockdown: securityfs not mounted, or no lockdown LSM)',
          status: 'note',
        }
      : lockdown === 'confidentiality'
        ? {
            what: 'lockdown',
            value: lockdown,
            status: 'missing',
            advice:
              'confidentiality lockdown denies BPF reads of kernel memory (bpf_probe_read_kernel, BPF_CORE_READ); tracing programs fail (Secure Boot kernels often set it)',
          }
        : { what: 'lockdown', value: lockdown, status: 'ok' },
  );

  // kernel.unprivileged_bpf_disabled (Documentation/admin-guide/sysctl/kernel.rst): 0 allowed,
  // 1 disabled until reboot, 2 disabled (an admin may set 0 again).
  const unpriv = read('proc/sys/kernel/unprivileged_bpf_disabled')?.trim();
  items.push(
    unpriv === undefined
      ? { what: 'kernel.unprivileged_bpf_disabled', value: 'unknown', status: 'note' }
      : {
          what: 'kernel.unprivileged_bpf_disabled',
          value: unpriv,
          status: 'note',
          advice:
            unpriv === '0'
              ? 'unprivileged users may load socket filters'
              : `loading BPF needs CAP_BPF or CAP_SYS_ADMIN${unpriv === '1' ? ' (1: until reboot)' : ''}`,
        },
  );

  // net.core.bpf_jit_enable (Documentation/admin-guide/sysctl/net.rst): 0 interpreter, 1 JIT,
  // 2 JIT with debug output. Trampolines (fentry/fexit, LSM, struct_ops) need the JIT.
  const jit = read('proc/sys/net/core/bpf_jit_enable')?.trim();
  items.push(
    jit === undefined
      ? { what: 'net.core.bpf_jit_enable', value: 'unknown', status: 'note' }
      : jit === '0'
        ? {
            what: 'net.core.bpf_jit_enable',
            value: jit,
            status: 'missing',
            advice: 'the JIT is off: fentry/fexit, LSM and struct_ops programs need it (sysctl -w net.core.bpf_jit_enable=1)',
          }
        : { what: 'net.core.bpf_jit_enable', value: jit, status: 'ok' },
  );

  // Active LSMs (security/lsm): BPF LSM programs run only with "bpf" among them
  // (Documentation/bpf/prog_lsm.rst: CONFIG_BPF_LSM and lsm=…,bpf).
  const lsm = read('sys/kernel/security/lsm')?.trim();
  items.push(
    lsm === undefined
      ? { what: 'active LSMs', value: 'unknown (no /sys/kernel/security/lsm)', status: 'note' }
      : lsm.split(',').includes('bpf')
        ? { what: 'active LSMs', value: lsm, status: 'ok' }
        : {
            what: 'active LSMs',
            value: lsm,
            status: 'note',
            advice:
              'no "bpf": SEC("lsm/…") programs load but never run; add bpf to the lsm= boot parameter (kernel built with CONFIG_BPF_LSM)',
          },
  );
  return {
    root,
    ...(release ? { release } : {}),
    ...(distro ? { distro } : {}),
    items,
    ...(configSource ? { configSource } : {}),
    configs,
  };
}

/** The install command for the running kernel's headers on `distro`, if its family is known. */
export function headerInstall(distro: { id: string; like: readonly string[] }, release: string): string | undefined {
  for (const id of [distro.id, ...distro.like]) {
    const e = HEADER_INSTALL.find((x) => x.ids.includes(id));
    if (e) return e.command(release);
  }
  return undefined;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
