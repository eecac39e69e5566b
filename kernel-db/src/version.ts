/** Kernel version numbers: parsing and ordering of `M.m.p` strings. */

/** `[major, minor, patch]` of a version string such as `5.10.262` or `6.7`; missing parts are 0. */
export function parseVersion(v: string): [number, number, number] {
  let r = parsed.get(v);
  if (!r) {
    const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
    r = m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : [0, 0, 0];
    if (parsed.size > 4096) parsed.clear();
    parsed.set(v, r);
  }
  return r;
}

/** Versions are compared in tight loops over kernels; the few distinct strings are parsed once. */
const parsed = new Map<string, [number, number, number]>();

/** Orders version strings numerically. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

/** `M.m` of a version string. */
export function majorMinor(v: string): string {
  const [a, b] = parseVersion(v);
  return `${a}.${b}`;
}
