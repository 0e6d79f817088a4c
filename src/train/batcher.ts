import type { Rng } from '../random';

/**
 * An endless stream of indices into a dataset, reshuffled with the run's generator at every pass
 * (the originals' memoized pipeline: each epoch a fresh permutation, augmentation applied anew).
 * Its position is part of a checkpoint so a resumed run continues the same data order.
 */
export interface BatcherState {
  order: number[];
  pos: number;
}

export class Batcher {
  private order: number[] = [];
  private pos = 0;

  constructor(private readonly count: number, private readonly rng: Rng) {}

  next(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (this.pos >= this.order.length) {
        this.order = this.rng.permutation(this.count);
        this.pos = 0;
      }
      out[i] = this.order[this.pos++];
    }
    return out;
  }

  getState(): BatcherState {
    return { order: this.order.slice(), pos: this.pos };
  }

  setState(s: BatcherState): void {
    this.order = s.order.slice();
    this.pos = s.pos;
  }
}
