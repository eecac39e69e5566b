/**
 * Short human descriptions of kernel sets, for messages and tables: runs of consecutive target
 * kernels become version ranges ("4.15–5.11"), so a message stays one line however many kernels.
 */
import { majorMinor } from '../version';

/** What the summary needs of a kernel. */
export interface Summarizable {
  readonly name: string;
  readonly version: string;
}

/**
 * Describes `subset` within `all` (both in database order, oldest first) as version ranges:
 * consecutive members of `all` that are all in `subset` form one range.
 */
export function versionRanges(subset: readonly Summarizable[], all: readonly Summarizable[]): string {
  const inSet = new Set(subset.map((k) => k.name));
  const runs: string[] = [];
  let start: string | undefined;
  let end: string | undefined;
  const flush = () => {
    if (start !== undefined) runs.push(start === end ? start : `${start}–${end}`);
    start = end = undefined;
  };
  for (const k of all) {
    if (inSet.has(k.name)) {
      const v = majorMinor(k.version);
      start ??= v;
      end = v;
    } else if (start !== undefined) {
      // A kernel outside the set ends the run.
      flush();
    }
  }
  flush();
  // Runs split inside one major.minor (e.g. generic in, cloud out) would repeat a label.
  return [...new Set(runs)].join(', ');
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
    const uniq = [...new Set(vs)];
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
