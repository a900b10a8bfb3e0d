import * as os from 'node:os';
import * as path from 'node:path';

import { withCallerStack } from './errors';
import { imageToTensor } from './image';
import { native, packageRoot, type NativeExtractor } from './native';
import { buildPyramid } from './pyramid';
import { queueFor } from './scheduler';
import type { Engine, ExtractOptions, LoadOptions, ModelInfo, RgbImage, Tensor4 } from './types';
import { checkBoolean, checkInteger, checkOptions, checkTensor4, expected, isPlainObject, maxLevels, typeError } from './validate';

/** The model that ships with the package: C=64, S=4, fixed-seed weights (models/export.py). */
export const defaultModelPath = path.join(packageRoot, 'models', 'film_extractor.pt');

const DEFAULT_LEVELS = 7;
const DEVICE = /^(auto|cpu|cuda(:\d{1,4})?)$/;
const ENGINES: readonly Engine[] = ['auto', 'onednn', 'torchscript'];

function copyOutputsForced(): boolean {
  return process.env.FILM_FEATURES_COPY_OUTPUTS === '1';
}

/** options.engine, else FILM_FEATURES_ENGINE, else 'auto'. */
function checkEngine(option: unknown): Engine {
  const [value, name] = option !== undefined ? [option, 'options.engine']
    : [process.env.FILM_FEATURES_ENGINE || 'auto', 'FILM_FEATURES_ENGINE'];
  if (typeof value !== 'string') throw typeError("'auto', 'onednn' or 'torchscript'", name, value);
  if (!ENGINES.includes(value as Engine)) throw new RangeError(expected("'auto', 'onednn' or 'torchscript'", name, value));
  return value as Engine;
}

function isRgbImage(value: unknown): value is RgbImage {
  return isPlainObject(value) && 'width' in value && 'height' in value;
}

/** FILM's cascaded feature extractor, loaded from a TorchScript file. */
export class FeatureExtractor {
  #native: NativeExtractor | null;
  readonly #threads: number;
  /** The device runs go to: 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** What the file holds, read from its weights. */
  readonly info: Readonly<ModelInfo>;

  private constructor(handle: NativeExtractor, threads: number) {
    this.#native = handle;
    this.#threads = threads;
    this.device = handle.device!;
    this.info = Object.freeze({ ...handle.info! });
  }

  /**
   * Loads a TorchScript feature extractor (default: the model shipped with the package) and
   * prepares it for inference. Off the main thread; rejects with an Error naming the file.
   */
  static load(modelPath?: string, options?: LoadOptions): Promise<FeatureExtractor> {
    return withCallerStack(async () => {
      const file = modelPath === undefined ? defaultModelPath : modelPath;
      if (typeof file !== 'string') throw typeError('a string', 'modelPath', file);
      if (file.length === 0) throw new RangeError('Expected a non-empty path for modelPath');
      const opts = checkOptions(options, 'options');
      const device = opts.device ?? 'auto';
      if (typeof device !== 'string') throw typeError("'auto', 'cpu', 'cuda' or 'cuda:N'", 'options.device', device);
      if (!DEVICE.test(device)) throw new RangeError(expected("'auto', 'cpu', 'cuda' or 'cuda:N'", 'options.device', device));
      const threads = checkInteger(opts.threads ?? 0, 'options.threads', 0, 1024) || os.availableParallelism();
      const half = checkBoolean(opts.half ?? false, 'options.half');
      const engine = checkEngine(opts.engine);
      const handle = await native().load(path.resolve(file), device, threads, half, engine);
      return new FeatureExtractor(handle, threads);
    });
  }

  /** Devices this build can run on: 'cpu', then 'cuda:0', 'cuda:1', ... where present. */
  static devices(): string[] {
    const binding = native();
    const count = binding.cudaCompiledIn ? binding.cudaDeviceCount() : 0;
    return ['cpu', ...Array.from({ length: count }, (_, i) => `cuda:${i}`)];
  }

  /**
   * Hands back memory kept for reuse: the CPU block cache (large activations, capped by
   * FILM_FEATURES_CPU_CACHE_MB, default a quarter of RAM up to 8 GiB) and cached GPU blocks.
   * Call it after a burst of work or after dispose(). Returns the CPU bytes released.
   */
  static releaseCachedMemory(): number {
    return native().releaseCachedMemory();
  }

  /**
   * Features of an image: builds its pyramid (2x2 average pooling) and runs the extractor.
   * Returns one tensor per level, finest first: [N, channels_i, H >> i, W >> i].
   */
  extract(image: Tensor4 | RgbImage, options?: ExtractOptions): Promise<Tensor4[]> {
    return withCallerStack(async () => {
      this.#live();
      const tensor = isRgbImage(image) ? imageToTensor(image) : checkTensor4(image, 'image');
      const opts = checkOptions(options, 'options');
      const [, , h, w] = tensor.shape;
      const levels = opts.levels === undefined ? Math.min(DEFAULT_LEVELS, maxLevels(h, w)) : opts.levels;
      checkInteger(levels, 'options.levels', 1, maxLevels(h, w));
      const onDevice = checkBoolean(opts.pyramidOnDevice ?? this.device !== 'cpu', 'options.pyramidOnDevice');
      if (onDevice) return this.#run([tensor], levels as number);
      return this.#run(buildPyramid(tensor, levels as number), levels as number);
    });
  }

  /** Features of a pyramid you built (see buildPyramid): levels finest first, each half the last. */
  extractPyramid(pyramid: Tensor4[]): Promise<Tensor4[]> {
    return withCallerStack(async () => {
      this.#live();
      if (!Array.isArray(pyramid)) throw typeError('an array of Tensor4', 'pyramid', pyramid);
      if (pyramid.length === 0) throw new RangeError('Expected at least one level in pyramid');
      pyramid.forEach((level, i) => checkTensor4(level, `pyramid[${i}]`));
      for (let i = 1; i < pyramid.length; i++) {
        const [n0, , h0, w0] = pyramid[i - 1].shape;
        const [n, , h, w] = pyramid[i].shape;
        if (n !== n0) throw new RangeError(`pyramid[${i}] has batch ${n} but pyramid[0] has ${n0}`);
        if (h !== Math.floor(h0 / 2) || w !== Math.floor(w0 / 2)) {
          throw new RangeError(`pyramid[${i}] is ${h}x${w}; half of pyramid[${i - 1}] (${h0}x${w0}) is ` +
            `${Math.floor(h0 / 2)}x${Math.floor(w0 / 2)}`);
        }
      }
      return this.#run(pyramid, pyramid.length);
    });
  }

  /** Releases the model. Idempotent; runs already started finish; later calls reject. */
  dispose(): void {
    this.#native?.dispose();
    this.#native = null;
  }

  #live(): NativeExtractor {
    if (!this.#native) throw new Error('This FeatureExtractor has been disposed');
    return this.#native;
  }

  async #run(pyramid: Tensor4[], levels: number): Promise<Tensor4[]> {
    // On a GPU a run takes one slot of the queue; on the CPU, its threads.
    const want = this.device === 'cpu' ? this.#threads : 1;
    const outputs = await queueFor(this.device).run(want, (threads) =>
      this.#live().run(pyramid, copyOutputsForced(), levels, threads));
    return outputs.map(({ data, shape }) => ({ data, shape: shape as Tensor4['shape'] }));
  }
}
