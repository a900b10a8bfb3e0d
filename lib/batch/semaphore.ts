// A counting semaphore with weights, FIFO: the bounded queues between the pipeline's stages.
// acquire() resolves only once the units are the caller's (who must then release them), and rejects
// having taken nothing: a wait ended by its AbortSignal leaves the queue, and a grant is never lost.
export class Semaphore {
  #free: number;
  readonly #waiting: { weight: number; wake: () => void }[] = [];

  constructor(readonly capacity: number) {
    this.#free = capacity;
  }

  /** Units not taken now (read-only: for checks that every acquired unit came back). */
  get free(): number {
    return this.#free;
  }

  /** Callers waiting in acquire() now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves once `weight` units (at most the capacity) are taken; waiters are served in order.
   * Rejects with the signal's reason, taking nothing, when it has fired or fires during the wait.
   */
  acquire(weight = 1, signal?: AbortSignal): Promise<void> {
    const w = Math.min(weight, this.capacity);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#waiting.length === 0 && this.#free >= w) {
      this.#free -= w;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at < 0) return; // granted already: the units are the caller's
        this.#waiting.splice(at, 1);
        reject(signal!.reason);
        this.#grant(); // those behind it may fit now
      };
      const waiter = {
        weight: w,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(weight = 1): void {
    const w = Math.min(weight, this.capacity);
    if (this.#free + w > this.capacity) throw new Error(`Released ${w} unit(s) that were not taken (${this.#free} of ${this.capacity} free)`);
    this.#free += w;
    this.#grant();
  }

  #grant(): void {
    while (this.#waiting.length > 0 && this.#free >= this.#waiting[0].weight) {
      const next = this.#waiting.shift()!;
      this.#free -= next.weight;
      next.wake();
    }
  }
}
