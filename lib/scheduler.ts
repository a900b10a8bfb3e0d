// Admission control for native runs. Each CPU run brings its own OpenMP team of `threads`
// threads, so runs are admitted while their threads fit the cores; the rest wait in FIFO order.
// (libuv's 4 pool threads would otherwise run 4 teams at once and oversubscribe the machine.)
import * as os from 'node:os';

class WeightedQueue {
  #used = 0;
  readonly #waiting: { weight: number; start: () => void }[] = [];

  constructor(readonly capacity: number) {}

  async run<T>(weight: number, task: () => Promise<T>): Promise<T> {
    const w = Math.min(weight, this.capacity);
    if (this.#waiting.length > 0 || this.#used + w > this.capacity) {
      await new Promise<void>((start) => this.#waiting.push({ weight: w, start }));
    } else {
      this.#used += w;
    }
    try {
      return await task();
    } finally {
      this.#used -= w;
      this.#admit();
    }
  }

  #admit(): void {
    while (this.#waiting.length > 0 && this.#used + this.#waiting[0].weight <= this.capacity) {
      const next = this.#waiting.shift()!;
      this.#used += next.weight;
      next.start();
    }
  }
}

const queues = new Map<string, WeightedQueue>();

/** The queue for a device: CPU runs share the cores; each GPU takes two runs at a time. */
export function queueFor(device: string): WeightedQueue {
  let queue = queues.get(device);
  if (!queue) {
    queue = new WeightedQueue(device === 'cpu' ? os.availableParallelism() : 2);
    queues.set(device, queue);
  }
  return queue;
}
