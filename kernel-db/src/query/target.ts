/**
 * Target specs: which kernels a program must work on, written the way people say it.
 *
 *   `4.14-6.x`   every kernel from 4.14.0 up to the last 6.x
 *   `5.8-7.x`    likewise
 *   `5.10`       every 5.10.* build;  `5.10.262` that exact version;  `6.x` every 6.*
 *   `5.8+`       5.8 and newer
 *   `*`          every built-in kernel
 *   `NAME`       one kernel by name (built-in or imported with `db add`)
 *   `user`       every imported kernel
 *
 * Items are separated by commas or spaces. Filters narrow the result: `arch=x86_64,arm64` and
 * `distro=debian,ubuntu` inside the spec, or the `arch`/`distro` options.
 */
import { normalizeArch } from '../build/inputs';
import { parseVersion } from '../version';
import { quoted } from '../strings';

/** A malformed target spec; the message says what was expected. */
export class TargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

/** What the resolver needs of a kernel. */
export interface TargetKernel {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly distro: string;
  readonly user: boolean;
}

/** Filters beside the spec string. */
export interface TargetFilters {
  readonly arch?: readonly string[];
  readonly distro?: readonly string[];
}

type Bound = [number, number, number];
type Item = { kind: 'all' } | { kind: 'user' } | { kind: 'name'; name: string } | { kind: 'range'; lo: Bound; hi: Bound };

const VERSION = /^(\d+)\.(x|\d+)(?:\.(\d+))?$/;
const MAX = 1e9;

/** The [lowest, highest] versions a version token covers: `5.10` → 5.10.0 … 5.10.∞. */
function versionSpan(tok: string, spec: string): [Bound, Bound] | undefined {
  const m = VERSION.exec(tok);
  if (!m) return undefined;
  const major = Number(m[1]);
  if (m[2] === 'x') {
    if (m[3] !== undefined)
      throw new TargetError(`malformed target ${quoted(spec)}: ${quoted(tok)} — write "${major}.x" without a patch level`);
    return [
      [major, 0, 0],
      [major, MAX, MAX],
    ];
  }
  const minor = Number(m[2]);
  if (m[3] !== undefined) {
    const p = Number(m[3]);
    return [
      [major, minor, p],
      [major, minor, p],
    ];
  }
  return [
    [major, minor, 0],
    [major, minor, MAX],
  ];
}

function cmpBound(a: Bound, b: Bound): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Parsed form of a spec; {@link TargetSpec.select} applies it to a kernel list. */
export class TargetSpec {
  private constructor(
    readonly text: string,
    private readonly items: Item[],
    private readonly arch: string[],
    private readonly distro: string[],
  ) {}

  /**
   * Parses `text`.
   * @throws TargetError with a message that quotes the bad part and shows the accepted forms.
   */
  static parse(text: string, filters: TargetFilters = {}): TargetSpec {
    const items: Item[] = [];
    const arch = (filters.arch ?? []).map(normalizeArch);
    const distro = (filters.distro ?? []).map((d) => d.toLowerCase());
    const trimmed = text.trim();
    if (trimmed === '')
      throw new TargetError('empty target: write a range such as "4.14-7.x", a version such as "5.10", "*", or kernel names');
    for (const word of trimmed.split(/\s+/)) {
      const f = /^(arch|distro)=(.*)$/.exec(word);
      if (f) {
        const list = f[2].split(',').filter(Boolean);
        if (list.length === 0) throw new TargetError(`malformed target ${quoted(text)}: ${quoted(word)} names no ${f[1]}`);
        if (f[1] === 'arch') arch.push(...list.map(normalizeArch));
        else distro.push(...list.map((d) => d.toLowerCase()));
        continue;
      }
      for (const tok of word.split(',')) {
        if (tok === '') continue;
        items.push(parseItem(tok, text));
      }
    }
    if (items.length === 0) items.push({ kind: 'all' });
    return new TargetSpec(trimmed, items, arch, distro);
  }

  /**
   * The kernels of `all` this spec selects, in the order given. Imported (user) kernels are
   * selected only by name or by `user`, and so is the build machine's own kernel (distro
   * `local`), whose configuration no user's fleet shares. Unknown names throw.
   */
  select<K extends TargetKernel>(all: readonly K[]): K[] {
    for (const it of this.items) {
      if (it.kind === 'name' && !all.some((k) => k.name === it.name)) {
        throw new TargetError(
          `unknown kernel ${quoted(it.name)} in target ${quoted(this.text)} (list them with \`ebpf-portability db list\`)`,
        );
      }
    }
    return all.filter((k) => {
      if (this.arch.length && !this.arch.includes(k.arch)) return false;
      if (this.distro.length && !this.distro.includes(k.distro)) return false;
      return this.items.some((it) => {
        switch (it.kind) {
          case 'name':
            return it.name === k.name;
          case 'user':
            return k.user;
          case 'all':
            return !k.user && k.distro !== 'local';
          case 'range': {
            if (k.user || k.distro === 'local') return false;
            const v = parseVersion(k.version);
            return cmpBound(v, it.lo) >= 0 && cmpBound(v, it.hi) <= 0;
          }
        }
      });
    });
  }
}

function parseItem(tok: string, spec: string): Item {
  if (tok === '*') return { kind: 'all' };
  if (tok === 'user' || tok === 'user:*') return { kind: 'user' };
  if (tok.endsWith('+')) {
    const span = versionSpan(tok.slice(0, -1), spec);
    if (!span) throw new TargetError(`malformed target ${quoted(spec)}: ${quoted(tok)} — write a version before "+", e.g. "5.8+"`);
    return { kind: 'range', lo: span[0], hi: [MAX, MAX, MAX] };
  }
  const dash = /^([\d.x]+)-([\d.x]+)$/.exec(tok);
  if (dash) {
    const lo = versionSpan(dash[1], spec);
    const hi = versionSpan(dash[2], spec);
    if (!lo || !hi)
      throw new TargetError(`malformed target ${quoted(spec)}: ${quoted(tok)} — a range is two versions such as "4.14-6.x" or "5.4-5.15"`);
    if (cmpBound(lo[0], hi[1]) > 0)
      throw new TargetError(`malformed target ${quoted(spec)}: range ${quoted(tok)} is empty (its start is after its end)`);
    return { kind: 'range', lo: lo[0], hi: hi[1] };
  }
  const span = versionSpan(tok, spec);
  if (span) return { kind: 'range', lo: span[0], hi: span[1] };
  if (/^[\d.x-]+$/.test(tok) || /^[-.]/.test(tok)) {
    throw new TargetError(
      `malformed target ${quoted(spec)}: ${quoted(tok)} — use "4.14-7.x", "5.10", "6.x", "5.8+", "*", or a kernel name`,
    );
  }
  if (!/^[A-Za-z0-9_.+~:-]+$/.test(tok))
    throw new TargetError(`malformed target ${quoted(spec)}: ${quoted(tok)} is not a version, range or kernel name`);
  return { kind: 'name', name: tok };
}
