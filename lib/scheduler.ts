// Admission control for native runs. A CPU run brings an OpenMP team of its own, so runs are
// admitted while their threads fit the cores, in FIFO order (libuv's 4 pool threads would otherwise
// run 4 teams at once and oversubscribe the machine). Threads are shared out when runs queue up:
// a run alone gets all it asks for, and a burst of runs gets a thread or two each, which on small
// frames gives more images/s than running them one by one on every core. Results do not depend
// on the thread count.
import * as os from 'node:os';

interface Waiting {
  maxThreads: number;
  start: (threads: number) => void;
}

export class CoreQueue {
  #free: number;
  readonly #waiting: Waiting[] = [];
  #admitting = false;

  constructor(readonly capacity: number) {
    this.#free = capacity;
  }

  /** Runs task when cores are free, with the threads granted to it. */
  async run<T>(maxThreads: number, task: (threads: number) => Promise<T>): Promise<T> {
    const threads = await new Promise<number>((start) => {
      this.#waiting.push({ maxThreads: Math.max(1, Math.min(maxThreads, this.capacity)), start });
      this.#scheduleAdmit();
    });
    try {
      return await task(threads);
    } finally {
      this.#free += threads;
      this.#scheduleAdmit();
    }
  }

  // Deferred by one turn so that calls made together are shared out together.
  #scheduleAdmit(): void {
    if (this.#admitting) return;
    this.#admitting = true;
    setImmediate(() => {
      this.#admitting = false;
      while (this.#waiting.length > 0 && this.#free > 0) {
        const share = Math.max(1, Math.floor(this.#free / this.#waiting.length));
        const next = this.#waiting.shift()!;
        const threads = Math.min(next.maxThreads, share, this.#free);
        this.#free -= threads;
        next.start(threads);
      }
    });
  }
}

const queues = new Map<string, CoreQueue>();

/** The queue for a device: CPU runs share the cores; each GPU takes two runs at a time. */
export function queueFor(device: string): CoreQueue {
  let queue = queues.get(device);
  if (!queue) {
    queue = new CoreQueue(device === 'cpu' ? os.availableParallelism() : 2);
    queues.set(device, queue);
  }
  return queue;
}
