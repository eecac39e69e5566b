/**
 * The loader that will load the program, and what it does for it: libbpf rewrites some helpers
 * on old kernels, BCC compiles on each host against that host's headers. Settings choose it; the
 * rules read it.
 */

/** The loader and what it does for the program (libbpf rewrites helpers, BCC compiles on the host). */
export interface Loader {
  readonly kind: 'libbpf' | 'cilium/ebpf' | 'bcc';
  /** Minimum libbpf version the program is built with (libbpf only), `M.m`. */
  readonly minVersion?: string;
}

/**
 * libbpf version facts (libbpf releases, not kernel versions), kept here in one place so that
 * rules compare `loader.minVersion` with named facts.
 */
export const LIBBPF = {
  /** The minimum libbpf assumed when the settings name none (`"libbpf"`). */
  defaultMinVersion: '1.0',
  /**
   * From this release on, libbpf turns `bpf_probe_read_{kernel,user}[_str]` into
   * `bpf_probe_read[_str]` on kernels that lack the new helpers.
   */
  probeReadRewriteSince: '0.2',
  /** `bpf_ksym_exists()` is in libbpf's bpf_helpers.h from this release on. */
  ksymExistsSince: '1.2',
  /** Stands for a section only libbpf's development branch knows: newer than any release. */
  unreleased: '99.0',
} as const;

/** Parses `libbpf`, `libbpf>=1.3`, `cilium/ebpf`, `bcc`. */
export function parseLoader(v: string): Loader | undefined {
  const m = /^\s*(libbpf|cilium\/ebpf|bcc)\s*(?:>=\s*(\d+\.\d+)(?:\.\d+)?)?\s*$/.exec(v);
  if (!m || (m[2] && m[1] !== 'libbpf')) return undefined;
  return m[1] === 'libbpf' ? { kind: 'libbpf', minVersion: m[2] ?? LIBBPF.defaultMinVersion } : { kind: m[1] as Loader['kind'] };
}
