// A counting semaphore with weights, FIFO: the bounded queues between the pipeline's stages.
export class Semaphore {
  #free: number;
  readonly #waiting: { weight: number; wake: () => void }[] = [];

  constructor(readonly capacity: number) {
    this.#free = capacity;
  }

  /** Resolves once `weight` units (at most the capacity) are taken; waiters are served in order. */
  acquire(weight = 1): Promise<void> {
    const w = Math.min(weight, this.capacity);
    if (this.#waiting.length === 0 && this.#free >= w) {
      this.#free -= w;
      return Promise.resolve();
    }
    return new Promise((wake) => this.#waiting.push({ weight: w, wake }));
  }

  release(weight = 1): void {
    this.#free += Math.min(weight, this.capacity);
    while (this.#waiting.length > 0 && this.#free >= this.#waiting[0].weight) {
      const next = this.#waiting.shift()!;
      this.#free -= next.weight;
      next.wake();
    }
  }
}
