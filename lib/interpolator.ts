// FILM frame interpolation: a whole FILM TorchScript file (forward(x0, x1, batch_dt) -> Tensor) run
// natively. The devices, threads, tasks, input reading, zero-copy outputs and errors are the
// extractor's (native/interpolator.cc reuses them); this file gives the API its shape and checks
// arguments.
import * as os from 'node:os';
import * as path from 'node:path';

import { withCallerStack } from './errors';
import { native, type Binding } from './native';
import type { LoadOptions, RgbImage, Tensor4 } from './types';
import {
  checkBoolean, checkInteger, checkOptions, checkRgbImage, checkTensor4, expected, isPlainObject, rangeError, typeError,
} from './validate';

/** sharp's raw output, as `sharp(...).raw().toBuffer({ resolveWithObject: true })` gives it. */
export interface SharpRaw {
  data: Uint8Array;
  info: { width: number; height: number; channels: number };
}

/** One frame in any form interpolate() takes: planar floats, interleaved bytes, or sharp's raw output. */
export type Frame = Tensor4 | RgbImage | SharpRaw;

export interface InterpolateOptions {
  /** Where between a (0) and b (1): one time, or a list of times (then one frame per time). Default 0.5. */
  time?: number | number[];
  /**
   * k >= 1: the 2^k - 1 frames at i / 2^k, made by recursion at t = 0.5 (a and b give the middle
   * frame, which with a and b gives the quarter frames, ...), as FILM's authors do with models
   * trained on mid-frames only. Cannot be combined with time.
   */
  recursions?: number;
  /** Aborts the call: a queued run is dropped, a running one has its result discarded. */
  signal?: AbortSignal;
}

/** What the file holds. */
export interface InterpolatorInfo {
  /** The weights' dtype in the file; float16 files run in float32 on the CPU. */
  dtype: 'float32' | 'float16';
  /** Frozen and optimized for inference at load. */
  optimized: boolean;
}

// The native side, typed here: lib/native.ts types the extractor's.
interface NativeInput {
  data: Float32Array | Uint8Array | Uint8ClampedArray;
  shape: [number, number, number, number];
}
interface NativeFrame {
  data: Float32Array | Uint8Array;
  shape: number[];
  tensorAddress?: bigint;
}
interface NativeJob<T> {
  promise: Promise<T>;
  cancel(): void;
}
interface NativeInterpolator {
  readonly device: string | null;
  readonly info: InterpolatorInfo | null;
  run(a: NativeInput[], b: NativeInput[], times: number[], recursions: number, threads: number, flags: number): NativeJob<NativeFrame[]>;
  dispose(): void;
}
type InterpolatorBinding = Binding & {
  loadInterpolator(path: string, device: string, threads: number, half: boolean): Promise<NativeInterpolator>;
};

// run() flags, as native/interpolator.cc reads them
const COPY_OUTPUTS = 1;
const WITH_ADDRESSES = 2;
const BYTES = 4; // frames as 8-bit interleaved RGB [n, h, w, 3]

const DEVICE = /^(auto|cpu|cuda(:\d{1,4})?)$/;
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
  if (isPlainObject(value) && 'info' in value) return 'sharp';
  if (isPlainObject(value) && 'width' in value) return 'rgb';
  return 'tensor';
}

function prepareOne(value: unknown, name: string): { form: Form; input: NativeInput } {
  const form = formOf(value);
  if (form === 'tensor') {
    const t = checkTensor4(value, name);
    return { form, input: { data: t.data, shape: t.shape } };
  }
  let image: RgbImage;
  if (form === 'sharp') {
    const { data, info } = value as { data: unknown; info: unknown };
    if (!isPlainObject(info)) throw typeError("sharp's info {width, height, channels}", `${name}.info`, info);
    image = checkRgbImage({ data, width: info.width, height: info.height, channels: info.channels }, `${name}.info`);
  } else {
    image = checkRgbImage(value, name);
  }
  return { form, input: { data: image.data, shape: [1, image.channels, image.height, image.width] } };
}

function prepare(value: unknown, name: string): Prepared {
  if (Array.isArray(value)) {
    if (value.length === 0) throw new RangeError(`Expected at least one image in ${name}`);
    const items = value.map((v, i) => prepareOne(v, `${name}[${i}]`));
    items.forEach(({ form, input }, i) => {
      if (form === 'tensor') throw typeError('an RgbImage or sharp {data, info}', `${name}[${i}]`, value[i]);
      const [, , h, w] = input.shape;
      const [, , h0, w0] = items[0].input.shape;
      if (h !== h0 || w !== w0) throw new RangeError(`${name}[${i}] is ${w}x${h} but ${name}[0] is ${w0}x${h0}`);
      if (form !== items[0].form) throw new TypeError(`${name}[${i}] is not in the form of ${name}[0]`);
    });
    const [, , height, width] = items[0].input.shape;
    return { form: items[0].form, list: true, inputs: items.map((x) => x.input), height, width, count: items.length };
  }
  const { form, input } = prepareOne(value, name);
  const [n, , height, width] = input.shape;
  return { form, list: false, inputs: [input], height, width, count: n };
}

function checkTime(value: unknown, name: string): number {
  if (typeof value !== 'number') throw typeError('a number between 0 and 1', name, value);
  if (!(value >= 0 && value <= 1)) throw rangeError('a number between 0 and 1', name, value);
  return value;
}

function copyOutputsForced(): boolean {
  return process.env.FILM_FEATURES_COPY_OUTPUTS === '1';
}

// Test hook: outputs carry the native tensor's address (non-enumerable), to prove zero copy.
function withAddresses(): boolean {
  return process.env.FILM_FEATURES_TEST_ADDRESSES === '1';
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
   * The model shipped with the package is an extractor only and cannot interpolate.
   */
  static load(modelPath: string, options?: LoadOptions): Promise<Interpolator> {
    return withCallerStack(async () => {
      if (typeof modelPath !== 'string') throw typeError('a string', 'modelPath', modelPath);
      if (modelPath.length === 0) throw new RangeError('Expected a non-empty path for modelPath');
      const opts = checkOptions(options, 'options');
      const device = opts.device ?? 'auto';
      if (typeof device !== 'string') throw typeError("'auto', 'cpu', 'cuda' or 'cuda:N'", 'options.device', device);
      if (!DEVICE.test(device)) throw new RangeError(expected("'auto', 'cpu', 'cuda' or 'cuda:N'", 'options.device', device));
      const threads = checkInteger(opts.threads ?? 0, 'options.threads', 0, 1024) || os.availableParallelism();
      const half = checkBoolean(opts.half ?? false, 'options.half');
      const binding = native() as InterpolatorBinding;
      const handle = await binding.loadInterpolator(path.resolve(modelPath), device, threads, half);
      return new Interpolator(handle, threads);
    });
  }

  /**
   * The frame at options.time (default 0.5) between a and b, in the form a was given (Tensor4,
   * RgbImage with 3 channels, or sharp's {data, info}); arrays of images, or a Tensor4 with n > 1,
   * are batches of pairs. With a list of times, or with recursions, an array of frames in time order.
   * Frames are padded to a multiple of 64 for the model and cropped back; values are clamped to
   * [0, 1] (8-bit forms: rounded v * 255). Alpha is dropped.
   */
  interpolate<T extends Frame | Frame[]>(a: T, b: Frame | Frame[], options?: InterpolateOptions & { time?: number; recursions?: undefined }): Promise<T>;
  interpolate<T extends Frame | Frame[]>(a: T, b: Frame | Frame[], options: InterpolateOptions): Promise<T[]>;
  interpolate(a: Frame | Frame[], b: Frame | Frame[], options?: InterpolateOptions): Promise<unknown> {
    return withCallerStack(async () => {
      this.#live();
      const first = prepare(a, 'a');
      const second = prepare(b, 'b');
      if (first.height !== second.height || first.width !== second.width) {
        throw new RangeError(`a is ${first.width}x${first.height} but b is ${second.width}x${second.height}: ` +
          'both frames must have the same size');
      }
      if (first.count !== second.count) throw new RangeError(`a has ${first.count} frames but b has ${second.count}`);
      const opts = checkOptions(options, 'options');
      if (opts.time !== undefined && opts.recursions !== undefined) {
        throw new TypeError('options.time and options.recursions cannot be combined');
      }
      let times: number[] = [];
      let recursions = 0;
      let single = true;
      if (opts.recursions !== undefined) {
        recursions = checkInteger(opts.recursions, 'options.recursions', 1, MAX_RECURSIONS);
        single = false;
      } else if (Array.isArray(opts.time)) {
        if (opts.time.length === 0) throw new RangeError('Expected at least one time in options.time');
        times = opts.time.map((t, i) => checkTime(t, `options.time[${i}]`));
        single = false;
      } else {
        times = [checkTime(opts.time ?? 0.5, 'options.time')];
      }
      const signal = opts.signal as AbortSignal | undefined;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('an AbortSignal', 'options.signal', signal);
      signal?.throwIfAborted();

      const bytes = first.form !== 'tensor';
      const flags = (copyOutputsForced() ? COPY_OUTPUTS : 0) | (withAddresses() ? WITH_ADDRESSES : 0) | (bytes ? BYTES : 0);
      const frames = await this.#run(first.inputs, second.inputs, times, recursions, flags, signal);
      const shaped = frames.map((frame) => shape(frame, first));
      return single ? shaped[0] : shaped;
    });
  }

  /** Releases the model. Idempotent; runs already started finish; later calls reject. */
  dispose(): void {
    this.#native?.dispose();
    this.#native = null;
  }

  #live(): NativeInterpolator {
    if (!this.#native) throw new Error('This Interpolator has been disposed');
    return this.#native;
  }

  async #run(a: NativeInput[], b: NativeInput[], times: number[], recursions: number, flags: number,
    signal: AbortSignal | undefined): Promise<NativeFrame[]> {
    const threads = this.device === 'cpu' ? this.#threads : 1;
    const job = this.#live().run(a, b, times, recursions, threads, flags);
    if (!signal) return job.promise;
    const abort = () => job.cancel();
    signal.addEventListener('abort', abort, { once: true });
    try {
      return await job.promise;
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }
}

/** A native frame ([n, 3, h, w] floats or [n, h, w, 3] bytes) in the caller's form. */
function shape(frame: NativeFrame, like: Prepared): unknown {
  if (like.form === 'tensor') {
    const out = { data: frame.data as Float32Array, shape: frame.shape as Tensor4['shape'] };
    if (frame.tensorAddress !== undefined) Object.defineProperty(out, 'tensorAddress', { value: frame.tensorAddress });
    return out;
  }
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
