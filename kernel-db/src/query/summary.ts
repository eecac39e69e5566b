/**
 * Short human descriptions of kernel sets, for messages and tables: runs of consecutive target
 * kernels become version ranges ("4.15–5.11"), so a message stays one line however many kernels.
 */
import { compareVersions, majorMinor } from '../version';

/** What the summary needs of a kernel. */
export interface Summarizable {
  readonly name: string;
  readonly version: string;
}

/**
 * Describes `subset` within `all` as version ranges. The kernels are taken by version, whatever
 * order they come in (imported kernels follow the built-in ones): each `M.m` of `all` that has a
 * kernel in `subset` is in, and consecutive versions that are in form one range ("7.0–7.3"); a
 * version of `all` without one ends it.
 */
export function versionRanges(subset: readonly Summarizable[], all: readonly Summarizable[]): string {
  const inSet = new Set(subset.map((k) => k.name));
  const versions = new Map<string, boolean>();
  for (const k of all) {
    const v = majorMinor(k.version);
    versions.set(v, (versions.get(v) ?? false) || inSet.has(k.name));
  }
  const ordered = [...versions].sort(([a], [b]) => compareVersions(a, b));
  const runs: string[] = [];
  let start: string | undefined;
  let end: string | undefined;
  for (const [v, isIn] of ordered) {
    if (isIn) {
      start ??= v;
      end = v;
    } else if (start !== undefined) {
      runs.push(start === end ? start : `${start}–${end}`);
      start = end = undefined;
    }
  }
  if (start !== undefined) runs.push(start === end ? start : `${start}–${end}`);
  return runs.join(', ');
}

/** `3 of 40 kernels`-style count. */
export function countOf(subset: readonly unknown[], all: readonly unknown[]): string {
  return `${subset.length} of ${all.length} kernel${all.length === 1 ? '' : 's'}`;
}

const DISTRO_NAMES: Record<string, string> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  rhel: 'CentOS/RHEL',
  openeuler: 'openEuler',
  vanilla: 'vanilla',
  arch: 'Arch',
  unknown: 'developer builds',
  local: 'local',
  user: 'imported',
};

/** What {@link describeKernels} needs of a kernel. */
export interface Describable extends Summarizable {
  readonly distro: string;
}

/**
 * A one-line description of `subset` within `all`: version ranges, then the distro families with
 * their versions, e.g. `4.15–5.13 (Ubuntu 4.15–5.13, Debian 5.10)`. Imported kernels are named.
 */
export function describeKernels(subset: readonly Describable[], all: readonly Describable[]): string {
  if (subset.length === 0) return 'no kernels';
  if (subset.length === all.length) return `all ${all.length} target kernels`;
  const families = new Map<string, string[]>();
  for (const k of subset) {
    const key = k.distro;
    if (!families.has(key)) families.set(key, []);
    families.get(key)!.push(k.distro === 'user' ? k.name : majorMinor(k.version));
  }
  const parts = [...families].map(([d, vs]) => {
    const uniq = d === 'user' ? [...new Set(vs)] : [...new Set(vs)].sort(compareVersions);
    const label = DISTRO_NAMES[d] ?? d;
    if (d === 'user') return `${label} ${uniq.join(', ')}`;
    return uniq.length === 1
      ? `${label} ${uniq[0]}`
      : uniq.length === 2
        ? `${label} ${uniq[0]}, ${uniq[1]}`
        : `${label} ${uniq[0]} … ${uniq[uniq.length - 1]}`;
  });
  return `${versionRanges(subset, all)} (${parts.join('; ')})`;
}
