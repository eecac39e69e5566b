/**
 * The order in which the language server's analyses take their time slices (server.ts).
 */
/**
 * Who runs the next slice: the newest analysis waiting, and while an edit or an open is being
 * handled ({@link SliceQueue.hold}), no run older than it. Each waiting analysis used to get a
 * slice in turn, and a run whose single steps are long (a function of thousands of branches:
 * hundreds of milliseconds each) ran one between every two turns of the event loop that another
 * document's open took (its message, its scheduling, its settings' round trip): that document was
 * answered seconds late. Every slice still follows a turn of the event loop, so messages are read
 * between any two.
 */
export class SliceQueue {
  private readonly waiting: { rank: number; go: () => void }[] = [];
  private scheduled = false;
  /** Runs ranked `below` or lower wait until `until` (ms), or until the newer work is done. */
  private held: { below: number; until: number } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** Resolves when the run ranked `rank` (higher is newer) may take its next slice. */
  turn(rank: number): Promise<void> {
    return new Promise((go) => {
      this.waiting.push({ rank, go });
      this.schedule();
    });
  }

  /** Runs ranked `below` or lower wait at most `ms`: newer work is on its way. */
  hold(below: number, ms: number): void {
    this.held = { below, until: performance.now() + ms };
  }

  /** The run ranked `rank` has ended: older runs go on when it was the newer work and none waits. */
  ended(rank: number): void {
    const held = this.held;
    if (!held || rank <= held.below || this.waiting.some((w) => w.rank > held.below)) return;
    this.held = undefined;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const now = performance.now();
      if (this.held && now >= this.held.until) this.held = undefined;
      const held = this.held;
      let best = -1;
      for (let i = 0; i < this.waiting.length; i++) {
        const w = this.waiting[i];
        if (held && w.rank <= held.below) continue;
        if (best < 0 || w.rank > this.waiting[best].rank) best = i;
      }
      if (best < 0) {
        // Only held runs wait: they go on when the hold ends, or sooner when the newer work ends.
        if (held && this.timer === undefined)
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.schedule();
          }, held.until - now);
        return;
      }
      const [next] = this.waiting.splice(best, 1);
      this.schedule();
      next.go();
    });
  }
}

/** How long older analyses wait for an edit or an open being handled to start its own. */
export const HOLD_MS = 250;
