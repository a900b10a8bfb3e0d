// Micro-batching: extract calls of one kind (same image size, levels and options, on one model)
// that arrive within a short window run as a single batch, and each caller gets its slice of the
// outputs. On a GPU one batch of 8 frames takes far less than 8 runs of 1; on the CPU it only pays
// where measured (bench/microbatch.js).
//
// The batcher knows nothing about models: it joins inputs along N, calls the run function it was
// handed once per batch, and splits every output along N. The slices are zero-copy views
// (subarray) of the batch's output arrays, so a batch's memory lives until all its callers drop
// their outputs.
import type { Tensor4 } from './types';
import { checkInteger, rangeError, typeError } from './validate';

// Defaults: on a GPU, batching is where throughput comes from; on the CPU see bench/microbatch.js.
const GPU_WINDOW_MS = 2;
const CPU_WINDOW_MS = 0;
const DEFAULT_MAX_BATCH = 8;

/** Runs one (possibly joined) input; returns its outputs, each [N, ...] with the input's N. */
export type RunBatch = (input: Tensor4) => Promise<Tensor4[]>;

export interface MicroBatchOptions {
  /** How long the first call of a batch waits for others, in ms; 0 turns batching off. */
  windowMs: number;
  /** The most images (sum of N) in one batch. */
  maxBatch: number;
}

/**
 * Checks options.batchWindowMs (0 to 1000 ms) and options.maxBatch (1 to 1024); returns the
 * options for a device, whose kind sets the default window.
 */
export function checkBatchOptions(opts: { batchWindowMs?: unknown; maxBatch?: unknown }): (device: string) => MicroBatchOptions {
  const { batchWindowMs, maxBatch = DEFAULT_MAX_BATCH } = opts;
  if (batchWindowMs !== undefined) {
    if (typeof batchWindowMs !== 'number') throw typeError('a number of milliseconds', 'options.batchWindowMs', batchWindowMs);
    if (!(batchWindowMs >= 0 && batchWindowMs <= 1000)) {
      throw rangeError('a number from 0 to 1000', 'options.batchWindowMs', batchWindowMs);
    }
  }
  checkInteger(maxBatch, 'options.maxBatch', 1, 1024);
  return (device) => ({
    windowMs: batchWindowMs ?? (device === 'cpu' ? CPU_WINDOW_MS : GPU_WINDOW_MS),
    maxBatch: maxBatch as number,
  });
}

interface Pending {
  input: Tensor4;
  resolve: (outputs: Tensor4[]) => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Group {
  items: Pending[];
  images: number;
  timer: NodeJS.Timeout;
  run: RunBatch;
}

export class MicroBatcher {
  readonly #groups = new Map<string, Group>();

  constructor(readonly options: Readonly<MicroBatchOptions>) {}

  /** Whether a call with this many images may wait for company. */
  accepts(images: number): boolean {
    return this.options.windowMs > 0 && images < this.options.maxBatch;
  }

  /**
   * Runs input, alone or joined with other calls of the same key that arrive within the window.
   * Calls of one key must be interchangeable but for their images: same [C, H, W], same run
   * function semantics. The first call's run function runs the batch.
   */
  submit(key: string, input: Tensor4, run: RunBatch, signal?: AbortSignal): Promise<Tensor4[]> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const images = input.shape[0];
    if (!this.accepts(images)) return run(input);
    return new Promise<Tensor4[]>((resolve, reject) => {
      let group = this.#groups.get(key);
      if (group && group.images + images > this.options.maxBatch) {
        this.#flush(key, group);
        group = undefined;
      }
      if (!group) {
        const created: Group = { items: [], images: 0, run, timer: setTimeout(() => this.#flush(key, created), this.options.windowMs) };
        group = created;
        this.#groups.set(key, group);
      }
      const item: Pending = { input, resolve, reject, signal };
      if (signal) {
        const owner = group;
        item.onAbort = () => this.#withdraw(key, owner, item);
        signal.addEventListener('abort', item.onAbort, { once: true });
      }
      group.items.push(item);
      group.images += images;
      if (group.images >= this.options.maxBatch) this.#flush(key, group);
    });
  }

  // An aborted call leaves its group before the group runs; afterwards it is part of the batch.
  #withdraw(key: string, group: Group, item: Pending): void {
    const at = group.items.indexOf(item);
    if (at < 0) return;
    group.items.splice(at, 1);
    group.images -= item.input.shape[0];
    if (group.items.length === 0 && this.#groups.get(key) === group) {
      clearTimeout(group.timer);
      this.#groups.delete(key);
    }
    item.reject(item.signal!.reason);
  }

  #flush(key: string, group: Group): void {
    clearTimeout(group.timer);
    if (this.#groups.get(key) === group) this.#groups.delete(key);
    const items = group.items.splice(0);
    if (items.length === 0) return;
    for (const item of items) {
      if (item.onAbort) item.signal!.removeEventListener('abort', item.onAbort);
    }
    const input = items.length === 1 ? items[0].input : join(items.map((item) => item.input));
    group.run(input).then(
      (outputs) => {
        const parts = items.length === 1 ? [outputs] : split(outputs, items.map((item) => item.input.shape[0]));
        items.forEach((item, i) => item.resolve(parts[i]));
      },
      (err) => items.forEach((item, i) => item.reject(i === 0 ? err : copyError(err))),
    );
  }
}

/** Inputs of one [C, H, W] joined along N into a new tensor. */
export function join(inputs: Tensor4[]): Tensor4 {
  const [, c, h, w] = inputs[0].shape;
  const n = inputs.reduce((sum, t) => sum + t.shape[0], 0);
  const data = new Float32Array(n * c * h * w);
  let offset = 0;
  for (const t of inputs) {
    data.set(t.data, offset);
    offset += t.data.length;
  }
  return { data, shape: [n, c, h, w] };
}

/** Each output [sum(counts), ...] cut along N into views of counts[i] images each. */
export function split(outputs: Tensor4[], counts: number[]): Tensor4[][] {
  const parts: Tensor4[][] = counts.map(() => []);
  for (const out of outputs) {
    const [, c, h, w] = out.shape;
    const per = c * h * w;
    let first = 0;
    counts.forEach((n, i) => {
      parts[i].push({ data: out.data.subarray(first * per, (first + n) * per), shape: [n, c, h, w] });
      first += n;
    });
  }
  return parts;
}

// Callers of one batch each get their own error object: callers may annotate it (their stack).
function copyError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  return Object.create(Object.getPrototypeOf(err), Object.getOwnPropertyDescriptors(err));
}
