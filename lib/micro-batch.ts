// Micro-batching: extract() calls of one kind (same image size, pixel type, levels and options, on
// one model) that arrive within a short window run as a single batch, and each caller gets its
// slice of the outputs. On a GPU one batch of 8 frames takes far less than 8 runs of 1; on the CPU
// it did not pay where measured (bench/microbatch.js), so it is off there by default.
//
// The batcher knows nothing about models: it joins inputs along N, calls the run function it was
// handed once per batch, and splits every output along N. Inputs are copied into the batch when
// they are submitted (a caller may reuse its array as soon as extract() returns). The output slices
// are zero-copy views (subarray) of the batch's arrays, so a batch's memory lives until all its
// callers drop their outputs.
import { abortError } from './errors';
import type { NativeInput } from './native';
import type { Tensor4, TensorNHWC } from './types';
import { checkInteger, rangeError, typeError } from './validate';

/** An output level in either layout: batches cut along N, the first dimension of both. */
type Level = Tensor4 | TensorNHWC;

// Defaults: on a GPU, batching is where throughput comes from; on the CPU see bench/microbatch.js.
const GPU_WINDOW_MS = 2;
const CPU_WINDOW_MS = 0;
const DEFAULT_MAX_BATCH = 8;

/** Runs one (possibly joined) input; returns its outputs, each [N, ...] with the input's N. */
export type RunBatch = (input: NativeInput) => Promise<Level[]>;

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

/** The key under which inputs may be joined: pixel type and [C, H, W], plus the caller's run options. */
export function batchKey(input: NativeInput, options: string): string {
  return `${input.data.constructor.name}/${input.shape.slice(1).join('x')}/${options}`;
}

type Pixels = NativeInput['data'];

interface Member {
  images: number;
  settled: boolean;
  resolve: (outputs: Level[]) => void;
  reject: (err: unknown) => void;
  detach: () => void;
}

// Calls waiting for their window to close, their pixels already copied into one growing buffer.
class Group {
  readonly members: Member[] = [];
  images = 0;
  data: Pixels;
  used = 0;
  timer: NodeJS.Timeout | undefined;

  constructor(readonly shape: NativeInput['shape'], readonly run: RunBatch, sample: Pixels, capacity: number) {
    this.data = new (sample.constructor as new (length: number) => Pixels)(capacity);
  }

  add(input: NativeInput, member: Member): void {
    const length = input.data.length;
    if (this.used + length > this.data.length) {
      const grown = new (this.data.constructor as new (length: number) => Pixels)(Math.max(this.data.length * 2, this.used + length));
      grown.set(this.data.subarray(0, this.used));
      this.data = grown;
    }
    this.data.set(input.data, this.used);
    this.used += length;
    this.members.push(member);
    this.images += member.images;
  }

  input(): NativeInput {
    return { data: this.data.subarray(0, this.used), shape: [this.images, this.shape[1], this.shape[2], this.shape[3]] };
  }
}

export class MicroBatcher {
  readonly #groups = new Map<string, Group>();

  constructor(readonly options: Readonly<MicroBatchOptions>) {}

  /** Whether a call with this many images may wait for company. */
  accepts(images: number): boolean {
    return this.options.windowMs > 0 && images < this.options.maxBatch;
  }

  /**
   * Runs input, alone or joined with other calls of the same key (see batchKey) that arrive within
   * the window. The first call's run function runs the batch. An aborted call rejects at once with
   * an AbortError; before its batch starts it also leaves the batch. Callers send here only what
   * accepts(); an input of maxBatch images or more would run alone, at once.
   */
  submit(key: string, input: NativeInput, run: RunBatch, signal?: AbortSignal): Promise<Level[]> {
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    const images = input.shape[0];
    return new Promise<Level[]>((resolve, reject) => {
      let group = this.#groups.get(key);
      if (group && group.images + images > this.options.maxBatch) {
        this.#flush(key, group);
        group = undefined;
      }
      if (!group) {
        const perImage = input.data.length / images;
        const created = new Group(input.shape, run, input.data, perImage * Math.min(this.options.maxBatch, 2 * images));
        created.timer = setTimeout(() => this.#flush(key, created), this.options.windowMs);
        group = created;
        this.#groups.set(key, group);
      }
      const owner = group;
      const member: Member = {
        images,
        settled: false,
        resolve: (outputs) => settle(() => resolve(outputs)),
        reject: (err) => settle(() => reject(err)),
        detach: () => {},
      };
      function settle(then: () => void): void {
        if (member.settled) return;
        member.settled = true;
        member.detach();
        then();
      }
      if (signal) {
        const onAbort = () => {
          this.#withdraw(key, owner, member);
          member.reject(abortError(signal.reason));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        member.detach = () => signal.removeEventListener('abort', onAbort);
      }
      group.add(input, member);
      if (group.images >= this.options.maxBatch) this.#flush(key, group);
    });
  }

  // A call aborted while its group waits leaves it: the group is dropped when no one else is left in
  // it; otherwise the call's pixels still run with the batch (cheaper than moving the others) and
  // its slice is dropped.
  #withdraw(key: string, group: Group, member: Member): void {
    if (this.#groups.get(key) !== group || !group.members.includes(member)) return;
    if (group.members.every((m) => m === member || m.settled)) {
      clearTimeout(group.timer);
      this.#groups.delete(key);
    }
  }

  #flush(key: string, group: Group): void {
    clearTimeout(group.timer);
    if (this.#groups.get(key) !== group) return;
    this.#groups.delete(key);
    const members = group.members;
    if (members.every((m) => m.settled)) return;
    let batch: Promise<Level[]>;
    try {
      batch = group.run(group.input());
    } catch (err) {
      batch = Promise.reject(err);
    }
    batch.then(
      (outputs) => {
        const parts = split(outputs, members.map((m) => m.images));
        members.forEach((m, i) => m.resolve(parts[i]));
      },
      (err) => members.forEach((m, i) => m.reject(i === 0 ? err : copyError(err))),
    );
  }
}

/** Each output [sum(counts), ...] cut along N into views of counts[i] images each. */
export function split(outputs: Level[], counts: number[]): Level[][] {
  const parts: Level[][] = counts.map(() => []);
  for (const out of outputs) {
    const [, a, b, c] = out.shape;
    const per = a * b * c;
    let first = 0;
    counts.forEach((n, i) => {
      parts[i].push({ data: out.data.subarray(first * per, (first + n) * per), shape: [n, a, b, c] });
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
