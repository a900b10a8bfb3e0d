import * as path from 'node:path';

import { disposedError, withCallerStack } from './errors';
import { installExitHook } from './exit';
import { checkDeviceBuilt, checkEngine, checkLoad } from './load-checks';
import { checkSignal, runFlags, settle } from './run-control';
import { type FramePlan, runFrame, runFrameHeld } from './frame-plan';
import { readImage } from './image-input';
import { batchKey, checkBatchOptions, MicroBatcher } from './micro-batch';
import { readExtractorWeights } from './model-file';
import { addonBuild, native, packageRoot, RUN_HOLD_OUTPUTS, RUN_NHWC_OUTPUTS, type HeldOutputs, type NativeExtractor, type NativeInput, type NativeJob, type NativeOutput } from './native';
import { buildPyramid } from './pyramid';
import type { CacheOptions, CacheStats, Counters, ExtractOptions, ImageInput, Layout, LoadOptions, ModelInfo, Precision, Tensor4, TensorNHWC } from './types';
import { checkBoolean, checkChoice, checkInteger, checkLevels, checkTensor4, maxLevels, outOfRange, readOptions, typeError } from './validate';

/** The model that ships with the package: C=64, S=4, fixed-seed weights (models/export.py). */
export const defaultModelPath = path.join(packageRoot, 'models', 'film_extractor.pt');

const DEFAULT_LEVELS = 7;
const LOAD_OPTIONS = ['device', 'threads', 'half', 'engine', 'precision', 'batchWindowMs', 'maxBatch'] as const;
const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];
const EXTRACT_OPTIONS = ['levels', 'pyramidOnDevice', 'layout', 'signal'] as const;
const LAYOUTS: readonly Layout[] = ['nchw', 'nhwc'];

const MB = 2 ** 20;


/** addonBuild(), frozen (its shadows too) for info.build. */
function frozenBuild(): ModelInfo['build'] {
  const b = addonBuild();
  return Object.freeze({ ...b, shadows: Object.freeze(b.shadows), skipped: Object.freeze(b.skipped) });
}

/** FILM's cascaded feature extractor, loaded from a TorchScript file. */
export class FeatureExtractor {
  #native: NativeExtractor | null;
  readonly #threads: number;
  readonly #batcher: MicroBatcher;
  /** The device runs go to: 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** What the file holds, read from its weights. */
  readonly info: Readonly<ModelInfo>;

  private constructor(handle: NativeExtractor, threads: number, batcher: MicroBatcher) {
    this.#native = handle;
    this.#threads = threads;
    this.#batcher = batcher;
    this.device = handle.device!;
    this.info = Object.freeze({ ...handle.info!, build: frozenBuild() });
  }

  /**
   * Loads a TorchScript feature extractor (default: the model shipped with the package) and
   * prepares it for inference. Off the main thread; rejects with an Error naming the file
   * (code ERR_FILM_MODEL_FILE when it cannot be read, ERR_FILM_MODEL_FORMAT when it is not a FILM
   * extractor).
   */
  static load(modelPath?: string, options?: LoadOptions): Promise<FeatureExtractor> {
    return withCallerStack(async () => {
      const { file, device, threads, half, options: opts } =
        checkLoad(modelPath === undefined ? defaultModelPath : modelPath, options, LOAD_OPTIONS);
      const engine = checkEngine(opts.engine);
      const precision = checkChoice(opts.precision, 'options.precision', PRECISIONS, 'fp32');
      const batching = checkBatchOptions(opts);
      const binding = native(); // throws the setup hint where no addon loads, before any hook is set
      checkDeviceBuilt(device, binding, addonBuild().file);
      installExitHook();
      // Every file is read by our own reader first: its checks hold before libtorch sees the file.
      const weights = await readExtractorWeights(file);
      const handle = await binding.load(file, device, threads, half, engine, precision, {
        source: weights.source, format: weights.format, dtype: weights.dtype, origin: weights.origin,
        channels: weights.channels, stages: weights.stages,
      });
      return new FeatureExtractor(handle, threads, new MicroBatcher(batching(handle.device!)));
    });
  }

  /** Devices this build can run on: 'cpu', then 'cuda:0', 'cuda:1', ... where present. */
  static devices(): string[] {
    const binding = native();
    const count = binding.cudaCompiledIn ? binding.cudaDeviceCount() : 0;
    return ['cpu', ...Array.from({ length: count }, (_, i) => `cuda:${i}`)];
  }

  /**
   * Turns cuDNN's benchmark mode on or off for the whole process (default: on, or off when
   * FILM_FEATURES_CUDNN_BENCHMARK=0). When on, cuDNN times its algorithms on the first run of each
   * input shape and keeps the fastest: best when frames of one size repeat, a slow first run for
   * every new size. Affects runs that start afterwards; no effect on the CPU.
   */
  static setCudnnBenchmark(enabled: boolean): void {
    native().setCudnnBenchmark(checkBoolean(enabled, 'enabled'));
  }

  /** Whether cuDNN's benchmark mode is on (see setCudnnBenchmark). */
  static get cudnnBenchmark(): boolean {
    return native().cudnnBenchmark();
  }

  /**
   * The memory kept for reuse, in the style of sharp.cache(): the CPU block cache holds freed
   * activation blocks of 1 MiB or more so that the next runs skip mmap and page faults.
   * - `cache()` reports, in MB: `{ memory: { current, high, max } }`.
   * - `cache({ memory: MB })` sets the limit; blocks past it are freed now.
   * - `cache({ memory: 0 })` or `cache(false)` frees now every cached block, the C heap's free
   *   pages and cached GPU memory and idle pinned buffers, and turns caching off: freed blocks go
   *   straight back to the system from then on. Call it after a burst of work.
   * - `cache(true)` restores the default: FILM_FEATURES_CPU_CACHE_MB (read once, when the addon
   *   loads: a whole number of MiB, capped at the machine's memory; any other value is ignored, with
   *   a process warning of code FILM_FEATURES_ENV), else a quarter of the RAM or of the cgroup's
   *   memory limit, at most 8 GiB.
   * Turning the cache on or off at run time, even with runs in flight, only changes its limit.
   * Process-wide (every worker_thread shares it). GPU memory is cached by libtorch's own allocator,
   * which cannot be turned off; `{ memory: 0 }` empties it.
   */
  static cache(options?: CacheOptions): CacheStats {
    const binding = native();
    let state;
    if (options === undefined) {
      state = binding.cache();
    } else if (typeof options === 'boolean') {
      state = binding.cache(options ? binding.cache().initialLimit : 0);
    } else {
      const opts = readOptions(options, 'options', ['memory'] as const);
      state = opts.memory === undefined ? binding.cache() : binding.cache(checkInteger(opts.memory, 'options.memory', 0) * MB);
    }
    const mb = (bytes: number) => Math.round(bytes / MB);
    return { memory: { current: mb(state.cached), high: mb(state.high), max: mb(state.limit) } };
  }

  /**
   * The cores the addon's executor shares out among runs, in the style of sharp.concurrency():
   * all runs together never use more intra-op threads than this. `concurrency()` reports it,
   * `concurrency(n)` sets it (0: the default, the cores this process may run on, or
   * FILM_FEATURES_CORES read once when the addon loads) and returns it. Process-wide; runs
   * in flight keep their threads, the next ones get the new share.
   */
  static concurrency(n?: number): number {
    if (n === undefined) return native().concurrency();
    return native().concurrency(checkInteger(n, 'concurrency', 0, 1024));
  }

  /**
   * Hands back memory kept for reuse: the CPU block cache (large activations, capped by
   * FILM_FEATURES_CPU_CACHE_MB, default a quarter of the RAM or cgroup limit up to 8 GiB), cached
   * GPU blocks and idle pinned host buffers. Call it after a burst of work or after dispose().
   * Returns the CPU bytes released.
   */
  static releaseCachedMemory(): number {
    return native().releaseCachedMemory();
  }

  /**
   * The addon's admission counters, process-wide (every worker_thread shares one executor sized to
   * the cores): work queued and running, threads granted now and at most.
   */
  static counters(): Counters {
    return native().counters();
  }

  /**
   * Features of an image. The image is copied before this returns; the pyramid (2x2 average
   * pooling) is built natively off the main thread. Returns one tensor per level, finest first:
   * [N, channels_i, H >> i, W >> i], or [N, H >> i, W >> i, channels_i] with layout 'nhwc'.
   */
  extract(image: ImageInput, options: ExtractOptions & { layout: 'nhwc' }): Promise<TensorNHWC[]>;
  extract(image: ImageInput, options?: ExtractOptions & { layout?: 'nchw' }): Promise<Tensor4[]>;
  extract(image: ImageInput, options?: ExtractOptions): Promise<Tensor4[] | TensorNHWC[]>;
  extract(image: ImageInput, options?: ExtractOptions): Promise<Tensor4[] | TensorNHWC[]> {
    return withCallerStack(async () => {
      const handle = this.#live();
      const opts = readOptions(options, 'options', EXTRACT_OPTIONS);
      const layout = checkChoice(opts.layout, 'options.layout', LAYOUTS, 'nchw');
      const input = readImage(image, 'image');
      const [, , h, w] = input.shape;
      const levels = opts.levels === undefined ? Math.min(DEFAULT_LEVELS, maxLevels(h, w)) : opts.levels;
      checkLevels(levels, 'options.levels', h, w);
      const onDevice = checkBoolean(opts.pyramidOnDevice ?? true, 'options.pyramidOnDevice');
      const signal = checkSignal(opts.signal, 'options.signal');
      if (!onDevice && !(input.data instanceof Float32Array)) {
        throw outOfRange('options.pyramidOnDevice: false needs a float Tensor4 image; 8-bit images are pooled natively');
      }
      if (this.#batcher.accepts(input.shape[0])) {
        // Micro-batched (micro-batch.ts): the batch runs on whatever this model is when it starts.
        return this.#batcher.submit(batchKey(input, `${levels}/${onDevice}/${layout}`), input, (joined) =>
          this.#runImage(this.#live(), joined, levels as number, onDevice, layout), signal) as Promise<Tensor4[] | TensorNHWC[]>;
      }
      return this.#runImage(handle, input, levels as number, onDevice, layout, signal);
    });
  }

  /** Features of a pyramid you built (see buildPyramid): levels finest first, each half the last. */
  extractPyramid(pyramid: Tensor4[], options: Pick<ExtractOptions, 'signal' | 'layout'> & { layout: 'nhwc' }): Promise<TensorNHWC[]>;
  extractPyramid(pyramid: Tensor4[], options?: Pick<ExtractOptions, 'signal'> & { layout?: 'nchw' }): Promise<Tensor4[]>;
  extractPyramid(pyramid: Tensor4[], options?: Pick<ExtractOptions, 'signal' | 'layout'>): Promise<Tensor4[] | TensorNHWC[]>;
  extractPyramid(pyramid: Tensor4[], options?: Pick<ExtractOptions, 'signal' | 'layout'>): Promise<Tensor4[] | TensorNHWC[]> {
    return withCallerStack(async () => {
      const handle = this.#live();
      const opts = readOptions(options, 'options', ['signal', 'layout'] as const);
      const layout = checkChoice(opts.layout, 'options.layout', LAYOUTS, 'nchw');
      if (!Array.isArray(pyramid)) throw typeError('an array of Tensor4', 'pyramid', pyramid);
      if (pyramid.length === 0) throw outOfRange('Expected at least one level in pyramid');
      const levels = Array.from(pyramid, (level, i) => checkTensor4(level, `pyramid[${i}]`));
      for (let i = 1; i < levels.length; i++) {
        const [n0, , h0, w0] = levels[i - 1].shape;
        const [n, , h, w] = levels[i].shape;
        if (n !== n0) throw outOfRange(`pyramid[${i}] has batch ${n} but pyramid[0] has ${n0}`);
        if (h !== Math.floor(h0 / 2) || w !== Math.floor(w0 / 2)) {
          throw outOfRange(`pyramid[${i}] is ${h}x${w}; half of pyramid[${i - 1}] (${h0}x${w0}) is ` +
            `${Math.floor(h0 / 2)}x${Math.floor(w0 / 2)}`);
        }
      }
      return this.#run(handle, levels, levels.length, layout, checkSignal(opts.signal, 'options.signal'));
    });
  }

  /** @internal The batch pipeline's frame run (lib/frame-plan.ts): the plan is checked by its maker. */
  [runFrame](image: NativeInput, plan: FramePlan, signal?: AbortSignal): Promise<NativeOutput[]> {
    return settle(this.#frameJob(image, plan, runFlags()), signal);
  }

  /** @internal The frame run with its levels held natively, for the batch writer (native().writeFiles). */
  async [runFrameHeld](image: NativeInput, plan: FramePlan, signal?: AbortSignal): Promise<HeldOutputs> {
    const job = this.#frameJob(image, plan, RUN_HOLD_OUTPUTS);
    try {
      return await settle(job, signal);
    } catch (err) {
      job.promise.then((held) => native().releaseLevels(held.levels), () => {}); // aborted: whatever it still gives is freed
      throw err;
    }
  }

  /**
   * Releases the model: at once when no run is in flight, else as soon as the running ones finish.
   * Idempotent; queued and later calls reject with ERR_FILM_DISPOSED.
   */
  dispose(): void {
    this.#native?.dispose();
    this.#native = null;
  }

  /** The job of a frame run: its outputs as typed arrays, or held natively (RUN_HOLD_OUTPUTS). */
  #frameJob(image: NativeInput, plan: FramePlan, flags: typeof RUN_HOLD_OUTPUTS): NativeJob<HeldOutputs>;
  #frameJob(image: NativeInput, plan: FramePlan, flags: number): NativeJob<NativeOutput[]>;
  #frameJob(image: NativeInput, plan: FramePlan, flags: number): NativeJob<NativeOutput[] | HeldOutputs> {
    const handle = this.#live();
    const levels = plan.keep[plan.keep.length - 1] - plan.base + 1;
    return handle.run([image], levels, this.device === 'cpu' ? this.#threads : 1, flags, plan);
  }

  #live(): NativeExtractor {
    if (!this.#native) throw disposedError();
    return this.#native;
  }

  #runImage(handle: NativeExtractor, input: NativeInput, levels: number, onDevice: boolean, layout: Layout,
    signal?: AbortSignal): Promise<Tensor4[] | TensorNHWC[]> {
    if (onDevice) return this.#run(handle, [input], levels, layout, signal);
    return this.#run(handle, buildPyramid(input as Tensor4, levels), levels, layout, signal);
  }

  async #run(handle: NativeExtractor, inputs: NativeInput[], levels: number, layout: Layout,
    signal?: AbortSignal): Promise<Tensor4[] | TensorNHWC[]> {
    const threads = this.device === 'cpu' ? this.#threads : 1;
    const flags = runFlags() | (layout === 'nhwc' ? RUN_NHWC_OUTPUTS : 0);
    const outputs = await settle(handle.run(inputs, levels, threads, flags), signal);
    // float32 without a plan; the shape is in the layout asked for
    return outputs.map(({ data, shape }) => ({ data: data as Float32Array, shape: shape as Tensor4['shape'] }));
  }
}
