// FILM frame interpolation: a whole FILM TorchScript file (forward(x0, x1, batch_dt) -> Tensor) run
// natively. The devices, threads, tasks, input reading, zero-copy outputs and errors are the
// extractor's (native/interpolator.cc reuses them); this file gives the API its shape and checks
// arguments.
import { disposedError, withCallerStack, withCode } from './errors';
import { installExitHook } from './exit';
import { checkDeviceBuilt, checkEngine, checkLoad } from './load-checks';
import { readImage } from './image-input';
import { checkSignal, runFlags, settle } from './run-control';
import { readModelFile, toFloat32 } from './model-file';
import { addonBuild, native, RUN_BYTES, RUN_RECURSION_PREDICTION, type NativeInput, type NativeInterpolator } from './native';
import type { ImageInput, InterpolatorLoadOptions, Precision, RawImage, RgbImage, Tensor4 } from './types';
import { checkChoice, checkInteger, isPlainObject, outOfRange, rangeError, readOptions, typeError } from './validate';

/**
 * What a recursion feeds back between its steps, where the frames are padded (sides not multiples
 * of 64): 'zeros', the middle frame with its padding set to zeros again (each step a whole
 * pad-predict-crop call, as Google's FILM does), or 'prediction', the padded prediction as it is,
 * clamped to [0, 1] (as the PyTorch port's inference.py does).
 */
export type RecursionPadding = 'zeros' | 'prediction';

export interface InterpolateOptions {
  /** Where between a (0) and b (1): one time, or a list of times (then one frame per time). Default 0.5. */
  time?: number | number[];
  /**
   * k >= 1: the 2^k - 1 frames at i / 2^k, made by recursion at t = 0.5 (a and b give the middle
   * frame, which with a and b gives the quarter frames, ...), as FILM's authors do with models
   * trained on mid-frames only. Cannot be combined with time.
   */
  recursions?: number;
  /**
   * With recursions only: what each step feeds back where the frames are padded to a multiple of
   * 64. 'zeros' (default): the middle frame cropped, its padding zeros again, as Google's FILM does;
   * 'prediction': the padded prediction as it is (clamped), as the PyTorch port's inference.py does,
   * to reproduce its frames. The same frames either way where no padding is needed, and for the
   * middle frame.
   */
  recursionPadding?: RecursionPadding;
  /** Aborts the call: a queued run rejects at once with an AbortError; a running one is discarded. */
  signal?: AbortSignal;
}

/** What the file holds. */
export interface InterpolatorInfo {
  /** How the file was read (always by film-features' own reader first). */
  format: 'torchscript' | 'torch.save' | 'safetensors';
  /** The weights' dtype in the file; float16 and bfloat16 files run in float32 on the CPU. */
  dtype: 'float32' | 'float16' | 'bfloat16';
  /** What runs it: 'onednn' (the whole network on the fused engine, CPU) or 'torchscript' (the file's own code, libtorch). */
  engine: 'onednn' | 'torchscript';
  /** The fused engine, or TorchScript frozen and optimized at load and checked to give the plain module's frames. */
  optimized: boolean;
  /** Whether the file's TorchScript code was run (libtorch loaded it: engine 'torchscript', or the full build's check of the engine). */
  codeRun: boolean;
  /** The image pyramid's depth (the file's pyramid_levels; FILM's is 7): frames are padded to a multiple of 2^(levels - 1). */
  levels: number;
  /** What the fused engine's convolutions compute in: 'fp32', or 'bf16' where it was asked for. */
  precision: Precision;
  /**
   * The shape of the time tensor (batch_dt) the file's forward takes, found at load where libtorch ran
   * it: '[n, 1]' (Google's FILM, the PyTorch port since v1.0.2, models/export.py --interpolator), else
   * '[n, 1, 1, 1]' (older exports); null where the file's code was not run.
   */
  dtShape: '[n, 1]' | '[n, 1, 1, 1]' | null;
}

/** What load() says when there is no path: nothing in the package interpolates. */
const NO_INTERPOLATOR = 'Interpolator.load needs the path of a whole FILM interpolator (TorchScript): the model ' +
  'shipped with film-features is an extractor only. Make one to try with random weights: ' +
  '`/usr/bin/python3 node_modules/film-features/models/export.py --interpolator film_net.pt`, or download ' +
  'film_net_fp32.pt (real weights) from https://github.com/dajes/frame-interpolation-pytorch/releases';

const LOAD_OPTIONS = ['device', 'threads', 'half', 'engine', 'precision'] as const;
const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];
/** The parts of a whole FILM the fused engine runs (onednn/film_net.h); other tensors stay behind. */
const FILM_NET_PARTS = /^(extract|predict_flow|fuse)\./;
const INTERPOLATE_OPTIONS = ['time', 'recursions', 'recursionPadding', 'signal'] as const;
const RECURSION_PADDINGS: readonly RecursionPadding[] = ['zeros', 'prediction'];
const MAX_RECURSIONS = 10;

type Form = 'tensor' | 'rgb' | 'sharp';
interface Prepared {
  form: Form;
  list: boolean; // given as an array of images
  inputs: NativeInput[];
  height: number;
  width: number;
  count: number; // pairs
}

function formOf(value: unknown): Form {
  if (isPlainObject(value) && 'shape' in value) return 'tensor';
  return isPlainObject(value) && 'info' in value ? 'sharp' : 'rgb';
}

/** A frame, or an array of 8-bit frames of one size and form (a batch), read once for the binding. */
function prepare(value: unknown, name: string): Prepared {
  if (Array.isArray(value)) {
    if (value.length === 0) throw outOfRange(`Expected at least one image in ${name}`);
    const form = formOf(value[0]);
    const inputs = value.map((v, i) => {
      if (formOf(v) === 'tensor') throw typeError('an RgbImage or sharp {data, info} (batch Tensor4s along n)', `${name}[${i}]`, v);
      if (formOf(v) !== form) throw withCode(new TypeError(`${name}[${i}] is not in the form of ${name}[0]`), 'ERR_INVALID_ARG_TYPE');
      return readImage(v, `${name}[${i}]`);
    });
    const [, , height, width] = inputs[0].shape;
    inputs.forEach(({ shape: [, , h, w] }, i) => {
      if (h !== height || w !== width) throw outOfRange(`${name}[${i}] is ${w}x${h} but ${name}[0] is ${width}x${height}`);
    });
    return { form, list: true, inputs, height, width, count: inputs.length };
  }
  const input = readImage(value, name);
  const [n, , height, width] = input.shape;
  return { form: formOf(value), list: false, inputs: [input], height, width, count: n };
}

/** What interpolate() takes for a and b: one frame in any input form, or an array of 8-bit frames. */
export type Frames = ImageInput | (RgbImage | RawImage)[];

/** A frame as interpolate() returns it for an input of type T. */
export type Interpolated<T> = T extends Tensor4 ? Tensor4
  : T extends RawImage ? { data: Uint8Array; info: { width: number; height: number; channels: 3 } } // data: a Node Buffer
  : T extends RgbImage ? { data: Uint8Array; width: number; height: number; channels: 3 }
  : T extends readonly (infer U)[] ? Interpolated<U>[]
  : never;

function checkTime(value: unknown, name: string): number {
  if (typeof value !== 'number') throw typeError('a number between 0 and 1', name, value);
  if (!(value >= 0 && value <= 1)) throw rangeError('a number between 0 and 1', name, value);
  return value;
}

/** A whole FILM interpolator loaded from TorchScript: makes in-between frames of two images. */
export class Interpolator {
  #native: NativeInterpolator | null;
  readonly #threads: number;
  /** The device runs go to: 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** What the file holds. */
  readonly info: Readonly<InterpolatorInfo>;

  private constructor(handle: NativeInterpolator, threads: number) {
    this.#native = handle;
    this.#threads = threads;
    this.device = handle.device!;
    this.info = Object.freeze({ ...handle.info! });
  }

  /**
   * Loads a whole FILM interpolator (film_net_fp32.pt, film_net_fp16.pt, or any TorchScript module
   * whose forward is (x0: Tensor, x1: Tensor, batch_dt: Tensor) -> Tensor) and checks that forward.
   * The model shipped with the package is an extractor only and cannot interpolate: make one with
   * `models/export.py --interpolator OUT` (random weights), or download the real weights (README).
   * A file that runs with neither batch_dt shape ([n, 1], [n, 1, 1, 1]) is refused here, not at the first run.
   */
  static load(modelPath: string, options?: InterpolatorLoadOptions): Promise<Interpolator> {
    return withCallerStack(async () => {
      if (modelPath === undefined || modelPath === null) throw withCode(new TypeError(NO_INTERPOLATOR), 'ERR_INVALID_ARG_TYPE');
      const { file, device, threads, half, options: opts } = checkLoad(modelPath, options, LOAD_OPTIONS);
      const engine = checkEngine(opts.engine);
      const precision = checkChoice(opts.precision, 'options.precision', PRECISIONS, 'fp32');
      const binding = native();
      checkDeviceBuilt(device, binding, addonBuild().file);
      // Our own reader's checks hold before libtorch sees the file; its weights feed the fused engine.
      const model = await readModelFile(file);
      const tensors: Record<string, { data: Float32Array; shape: number[] }> = {};
      let dtype: InterpolatorInfo['dtype'] = 'float32';
      for (const [name, t] of model.tensors) {
        if (!FILM_NET_PARTS.test(name) || t.shape.length === 0 || !['float32', 'float16', 'bfloat16'].includes(t.dtype)) continue;
        tensors[name] = { data: toFloat32(t), shape: t.shape };
        if (t.dtype !== 'float32') dtype = t.dtype as InterpolatorInfo['dtype'];
      }
      const levels = model.attributes.get('pyramid_levels');
      installExitHook();
      const handle = await binding.loadInterpolator(file, device, threads, half, engine, {
        format: model.format, dtype, levels: typeof levels === 'number' ? levels : 7, tensors,
      }, precision);
      return new Interpolator(handle, threads);
    });
  }

  /**
   * The frame at options.time (default 0.5) between a and b, in the form a was given: Tensor4,
   * RgbImage or sharp's {data, info} (8-bit forms come back with 3 channels, alpha dropped). An
   * array of 8-bit images, or a Tensor4 with n > 1, is a batch of pairs. With a list of times or
   * with recursions: an array of such frames, in time order. Frames are padded to a multiple of 64
   * for the model and cropped back; values are clamped to [0, 1] (8-bit forms: round(v * 255)).
   * options.recursionPadding says what a recursion feeds back between steps: 'zeros' (default, as
   * Google's FILM) or 'prediction' (the padded prediction, as the PyTorch port's inference.py).
   * Outputs are zero-copy views of the result tensors. When the file's own TorchScript code fails,
   * the error (ERR_FILM_RUNTIME) names the file and the likely cause in one line; err.cause holds
   * the whole TorchScript trace.
   */
  interpolate<T extends Frames>(a: T, b: Frames, options?: { time?: number; signal?: AbortSignal }): Promise<Interpolated<T>>;
  interpolate<T extends Frames>(a: T, b: Frames, options: { time: number[]; signal?: AbortSignal } |
    { recursions: number; recursionPadding?: RecursionPadding; signal?: AbortSignal }): Promise<Interpolated<T>[]>;
  interpolate(a: Frames, b: Frames, options?: InterpolateOptions): Promise<unknown> {
    return withCallerStack(async () => {
      const handle = this.#live();
      const opts = readOptions(options, 'options', INTERPOLATE_OPTIONS);
      const first = prepare(a, 'a');
      const second = prepare(b, 'b');
      if (first.height !== second.height || first.width !== second.width) {
        throw outOfRange(`a is ${first.width}x${first.height} but b is ${second.width}x${second.height}: ` +
          'both frames must have the same size');
      }
      if (first.count !== second.count) throw outOfRange(`a has ${first.count} frames but b has ${second.count}`);
      if (opts.time !== undefined && opts.recursions !== undefined) {
        throw withCode(new TypeError('options.time and options.recursions cannot be combined'), 'ERR_INVALID_ARG_VALUE');
      }
      if (opts.recursionPadding !== undefined && opts.recursions === undefined) {
        throw withCode(new TypeError('options.recursionPadding applies only with options.recursions'), 'ERR_INVALID_ARG_VALUE');
      }
      let times: number[] = [];
      let recursions = 0;
      let padding: RecursionPadding = 'zeros';
      if (opts.recursions !== undefined) {
        recursions = checkInteger(opts.recursions, 'options.recursions', 1, MAX_RECURSIONS);
        padding = checkChoice(opts.recursionPadding, 'options.recursionPadding', RECURSION_PADDINGS, 'zeros');
      } else if (Array.isArray(opts.time)) {
        if (opts.time.length === 0) throw outOfRange('Expected at least one time in options.time');
        times = Array.from(opts.time as unknown[], (t, i) => checkTime(t, `options.time[${i}]`));
      } else {
        times = [checkTime(opts.time ?? 0.5, 'options.time')];
      }
      const signal = checkSignal(opts.signal, 'options.signal');
      const threads = this.device === 'cpu' ? this.#threads : 1;
      const flags = runFlags() | (first.form === 'tensor' ? 0 : RUN_BYTES) |
        (padding === 'prediction' ? RUN_RECURSION_PREDICTION : 0);
      const frames = await settle(handle.run(first.inputs, second.inputs, times, recursions, threads, flags), signal);
      const shaped = frames.map((frame) => inForm(frame, first));
      return recursions > 0 || Array.isArray(opts.time) ? shaped : shaped[0];
    });
  }

  /**
   * Releases the model: at once when no run is in flight, else as soon as the running ones finish.
   * Idempotent; queued and later calls reject with ERR_FILM_DISPOSED.
   */
  dispose(): void {
    this.#native?.dispose();
    this.#native = null;
  }

  #live(): NativeInterpolator {
    if (!this.#native) throw disposedError('Interpolator');
    return this.#native;
  }
}

/** A native frame ([n, 3, h, w] floats, or [n, h, w, 3] bytes) in the caller's form; views, no copies. */
function inForm(frame: { data: Float32Array | Uint8Array; shape: number[] }, like: Prepared): unknown {
  if (like.form === 'tensor') return { data: frame.data, shape: frame.shape };
  const [n, height, width] = frame.shape;
  const data = frame.data as Uint8Array;
  const size = height * width * 3;
  const images = Array.from({ length: n }, (_, i) => {
    if (like.form === 'sharp') {
      return { data: Buffer.from(data.buffer, data.byteOffset + i * size, size), info: { width, height, channels: 3 } };
    }
    return { data: data.subarray(i * size, (i + 1) * size), width, height, channels: 3 };
  });
  return like.list ? images : images[0];
}
