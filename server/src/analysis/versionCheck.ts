/**
 * Version comparisons in BPF C: `LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 8, 0)` (libbpf's
 * `__kconfig` extern), `#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 14, 0)` (kernel headers, BCC),
 * either side first, with the version as `KERNEL_VERSION(a, b, c)` or its number. The guard
 * evaluation and the kernel-version-gate rule both read comparisons here.
 */
import { compareVersions } from '../../../kernel-db/src/version';

/** A comparison operator. */
export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** `<running kernel's version> op version`, with the operands put in that order. */
export interface VersionComparison {
  readonly op: CompareOp;
  /** `major.minor.patch`. */
  readonly version: string;
}

const VERSION_NAME = /^LINUX_(?:KERNEL_)?VERSION(?:_CODE)?$/;
const FLIP: Readonly<Record<CompareOp, CompareOp>> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '==': '==', '!=': '!=' };

function isOp(op: string | undefined): op is CompareOp {
  return op !== undefined && Object.hasOwn(FLIP, op);
}

/** `left op right` where one side names the running kernel's version and the other is a version. */
export function versionComparison(left: string, op: string | undefined, right: string): VersionComparison | undefined {
  if (!isOp(op)) return undefined;
  const l = left.trim();
  const r = right.trim();
  if (VERSION_NAME.test(l)) {
    const version = versionValue(r);
    return version ? { op, version } : undefined;
  }
  if (VERSION_NAME.test(r)) {
    const version = versionValue(l);
    return version ? { op: FLIP[op], version } : undefined;
  }
  return undefined;
}

/** The text of an `#if` condition that is exactly one version comparison. */
export function versionCondition(text: string): VersionComparison | undefined {
  const m = /^\s*(.+?)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$/s.exec(text);
  return m ? versionComparison(m[1], m[2], m[3]) : undefined;
}

/** Whether a kernel of version `kernel` satisfies the comparison. */
export function holds(c: VersionComparison, kernel: string): boolean {
  const d = compareVersions(kernel, c.version);
  switch (c.op) {
    case '<':
      return d < 0;
    case '<=':
      return d <= 0;
    case '>':
      return d > 0;
    case '>=':
      return d >= 0;
    case '==':
      return d === 0;
    case '!=':
      return d !== 0;
  }
}

/** `KERNEL_VERSION(5, 8, 0)` or its numeric value (`0x050800`, `329728`) as `5.8.0`. */
export function versionValue(s: string): string | undefined {
  const t = s.trim();
  const m = /^KERNEL_VERSION\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
  if (m) return `${m[1]}.${m[2]}.${m[3]}`;
  const n = /^(0x[0-9a-fA-F]+|\d+)$/.exec(t);
  if (!n) return undefined;
  const v = Number(n[1]);
  return v > 0xffff ? `${v >> 16}.${(v >> 8) & 0xff}.${v & 0xff}` : undefined;
}
