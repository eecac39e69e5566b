/**
 * Sets of target kernels as bitsets over the target list: guards narrow them, rules intersect
 * them with what the database says, all kernels at once rather than one analysis per kernel.
 */
import type { Kernel } from '../../../kernel-db/src/query/db';

/** An immutable set of positions in a target kernel list. */
export class KSet {
  private constructor(
    readonly target: readonly Kernel[],
    private readonly bits: Uint32Array,
  ) {}

  /** Every target kernel. */
  static all(target: readonly Kernel[]): KSet {
    const b = new Uint32Array((target.length + 31) >>> 5);
    for (let i = 0; i < target.length; i++) b[i >>> 5] |= 1 << (i & 31);
    return new KSet(target, b);
  }

  /** No kernel. */
  static none(target: readonly Kernel[]): KSet {
    return new KSet(target, new Uint32Array((target.length + 31) >>> 5));
  }

  /** The kernels for which `pred` holds. */
  static where(target: readonly Kernel[], pred: (k: Kernel, i: number) => boolean): KSet {
    const b = new Uint32Array((target.length + 31) >>> 5);
    target.forEach((k, i) => {
      if (pred(k, i)) b[i >>> 5] |= 1 << (i & 31);
    });
    return new KSet(target, b);
  }

  has(i: number): boolean {
    return (this.bits[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  and(o: KSet): KSet {
    return new KSet(
      this.target,
      this.bits.map((w, i) => w & o.bits[i]),
    );
  }

  or(o: KSet): KSet {
    return new KSet(
      this.target,
      this.bits.map((w, i) => w | o.bits[i]),
    );
  }

  /** Kernels of the target not in this set. */
  not(): KSet {
    return KSet.all(this.target).minus(this);
  }

  minus(o: KSet): KSet {
    return new KSet(
      this.target,
      this.bits.map((w, i) => w & ~o.bits[i]),
    );
  }

  get size(): number {
    let n = 0;
    for (let w of this.bits) {
      while (w) {
        w &= w - 1;
        n++;
      }
    }
    return n;
  }

  get empty(): boolean {
    return this.bits.every((w) => w === 0);
  }

  equals(o: KSet): boolean {
    return this.bits.every((w, i) => w === o.bits[i]);
  }

  /** The kernels, in target order. */
  kernels(): Kernel[] {
    return this.target.filter((_, i) => this.has(i));
  }

  /** Memo of {@link key}: a set never changes once built. */
  private keyText?: string;

  /** A stable key (for caches). */
  key(): string {
    this.keyText ??= Array.from(this.bits, (w) => w.toString(36)).join('.');
    return this.keyText;
  }
}
