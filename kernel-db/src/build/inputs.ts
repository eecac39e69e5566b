/**
 * Reads the builder's inputs: BTF manifests, kernel configs, DepSurf tables and curated facts.
 * Each reader turns one input format into builder calls; none of them invents facts.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { xzDecompress } from '../btf/container';
import type { Fidelity, KernelMeta } from '../store/schema';

/** A BTF blob to read, with the metadata the manifest gives for it. */
export interface BtfInput {
  readonly meta: Omit<KernelMeta, 'sha256' | 'hasHelperEnum' | 'hasFuncs'>;
  readonly btfPath: string;
  readonly configPath?: string;
  /** sha256 of the uncompressed BTF according to the manifest (checked after reading). */
  readonly expectedSha256?: string;
  /** Where the blob came from, for the sources manifest. */
  readonly origin: string;
}

/** Normalises architecture names (`amd64` → `x86_64`, `aarch64` → `arm64`). */
export function normalizeArch(a: string): string {
  const m: Record<string, string> = {
    amd64: 'x86_64',
    x86_64: 'x86_64',
    x64: 'x86_64',
    arm64: 'arm64',
    aarch64: 'arm64',
    armhf: 'arm',
    arm: 'arm',
    armel: 'arm',
    ppc64el: 'ppc64le',
    ppc64le: 'ppc64le',
    riscv64: 'riscv64',
    s390x: 's390x',
  };
  return m[a.toLowerCase()] ?? a.toLowerCase();
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

/**
 * Debian kernels from `btf/MANIFEST.json`. The manifest may also list the kernel of the machine
 * that gathered the inputs (distro `local`): it is nobody's target, and it is not shipped — users
 * import their own machine's kernel with `db add /sys/kernel/btf/vmlinux`.
 */
export function debianInputs(dir: string): BtfInput[] {
  const p = join(dir, 'btf', 'MANIFEST.json');
  if (!existsSync(p)) return [];
  const entries = (readJson(p) as Record<string, string | boolean>[]).filter((m) => m.distro !== 'local');
  return entries.map((m) => {
    const name = String(m.name);
    const cfg = join(dir, 'config', `${name}.config.xz`);
    return {
      meta: {
        name,
        release: String(m.kernel_release),
        version: String(m.version),
        arch: normalizeArch(String(m.arch)),
        distro: 'debian',
        flavour: String(m.flavour).startsWith('cloud') ? 'cloud' : 'generic',
        fidelity: 'btf' as Fidelity,
        source: `Debian ${m.suite} package ${m.package} ${m.package_version}`,
        hasConfig: existsSync(cfg),
      },
      btfPath: join(dir, 'btf', `${name}.btf.xz`),
      configPath: existsSync(cfg) ? cfg : undefined,
      expectedSha256: String(m.sha256_of_uncompressed_btf),
      origin: `${m.package} ${m.package_version} (${m.suite}); ${m.btf_source}`,
    };
  });
}

/** Kernels from public archives and test data, `btf/MANIFEST-btfhub.json`. */
export function archiveInputs(dir: string): BtfInput[] {
  const p = join(dir, 'btf', 'MANIFEST-btfhub.json');
  if (!existsSync(p)) return [];
  return (readJson(p) as Record<string, string | number>[]).map((m) => {
    const file = String(m.name);
    const name = file.replace(/\.btf\.xz$/, '');
    const distroText = String(m.distro);
    let distro = 'unknown';
    let flavour = 'developer';
    let fidelity: Fidelity = 'btf';
    if (name.startsWith('vanilla-ci')) {
      distro = 'vanilla';
      flavour = 'minimal-ci';
      fidelity = 'btf-minimal-config';
    } else if (name.startsWith('arch-')) {
      distro = 'arch';
      flavour = 'arch';
    } else if (name.startsWith('centos')) {
      distro = 'rhel';
      flavour = 'centos';
    } else if (name.startsWith('bclinux')) {
      distro = 'openeuler';
      flavour = 'bclinux';
    } else if (name.startsWith('kylin')) {
      distro = 'openeuler';
      flavour = 'kylin';
    }
    if (Number(m.btf_func_count) === 0) fidelity = 'btf-types-only';
    const version = String(m.version);
    return {
      meta: {
        name,
        release: String(m.kernel_release),
        version,
        arch: normalizeArch(String(m.arch)),
        distro,
        flavour,
        fidelity,
        source: `${distroText}${m.distro_version ? ` ${m.distro_version}` : ''}: ${m.source_repo}@${String(m.source_commit).slice(0, 12)}:${m.source_path}`,
        hasConfig: false,
      },
      btfPath: join(dir, 'btf', file),
      expectedSha256: String(m.sha256_of_uncompressed_btf),
      origin: `${m.source_repo}@${m.source_commit}:${m.source_path}`,
    };
  });
}

/** Reads an xz-compressed JSON Lines file. */
export async function readJsonl(path: string): Promise<Record<string, unknown>[]> {
  const text = Buffer.from(await xzDecompress(new Uint8Array(readFileSync(path)), path)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** Reads a kernel `.config` (plain or xz). */
export async function readConfig(path: string): Promise<Map<string, string>> {
  let bytes: Uint8Array = new Uint8Array(readFileSync(path));
  if (path.endsWith('.xz')) bytes = await xzDecompress(bytes, path);
  return parseConfig(Buffer.from(bytes).toString('utf8'));
}

/** Parses `.config` text: `CONFIG_X=v` and `# CONFIG_X is not set` (→ `n`). */
export function parseConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    let m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (m) {
      out.set(m[1], m[2].replace(/^"(.*)"$/, '$1'));
      continue;
    }
    m = /^# (CONFIG_[A-Za-z0-9_]+) is not set/.exec(line);
    if (m) out.set(m[1], 'n');
  }
  return out;
}

/** CONFIG symbols the database keeps: BPF-related by name, plus every symbol the facts name. */
export function configFilter(factConfigs: Set<string>): (name: string) => boolean {
  const re =
    /BPF|BTF|KPROBE|UPROBE|FTRACE|TRACEPOINT|TRACING|PERF_EVENTS|CGROUP|LSM|FPROBE|IKHEADERS|IKCONFIG|DEBUG_INFO|XDP|NET_CLS|NET_ACT|NET_SCH_INGRESS|SECURITY|LOCKDOWN|KALLSYMS|FUNCTION_ERROR_INJECTION|DYNAMIC_FTRACE|MODULES|PREEMPT|SCHED_CLASS_EXT|NETKIT|NET_XGRESS|NETFILTER|HID_BPF|RETHOOK|SOCK_CGROUP|STACKTRACE|^CONFIG_BPF|SYSCALL/;
  return (n) => factConfigs.has(n) || re.test(n);
}

/** sha256 of a file, hex. */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Files directly in `dir` ending with `suffix`, sorted. */
export function listFiles(dir: string, suffix: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(suffix))
        .sort()
    : [];
}
