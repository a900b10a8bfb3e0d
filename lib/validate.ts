// Argument checks. Messages follow "Expected X for NAME but received V of type T".
import type { RgbImage, Tensor4 } from './types';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as Uint8Array).length ?? ''})`;
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'Object';
  return String(value);
}

export function expected(what: string, name: string, value: unknown): string {
  return `Expected ${what} for ${name} but received ${describe(value)} of type ${typeof value}`;
}

export function typeError(what: string, name: string, value: unknown): TypeError {
  return new TypeError(expected(what, name, value));
}

export function rangeError(what: string, name: string, value: unknown): RangeError {
  return new RangeError(expected(what, name, value));
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

export function checkInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError('an integer', name, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
    throw rangeError(`an integer ${range}`, name, value);
  }
  return value;
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw typeError('a boolean', name, value);
  return value;
}

export function checkOptions(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw typeError('an object', name, value);
  return value;
}

function isDetached(array: ArrayBufferView): boolean {
  const buffer = array.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  return array.byteLength === 0 && buffer.byteLength === 0;
}

// Largest element count we pass to the native side (int32 range, as V8 arrays index).
const MAX_ELEMENTS = 2 ** 31 - 1;

/** Checks a Tensor4 (with 3 channels unless anyChannels) whose data matches its shape. */
export function checkTensor4(value: unknown, name: string, anyChannels = false): Tensor4 {
  if (!isPlainObject(value)) throw typeError('a Tensor4 {data, shape}', name, value);
  const { data, shape } = value as { data: unknown; shape: unknown };
  if (!(data instanceof Float32Array)) throw typeError('a Float32Array', `${name}.data`, data);
  if (!Array.isArray(shape)) throw typeError('an array [n, c, h, w]', `${name}.shape`, shape);
  if (shape.length !== 4) throw rangeError('4 dimensions [n, c, h, w]', `${name}.shape`, shape);
  let count = 1;
  shape.forEach((d, i) => {
    checkInteger(d, `${name}.shape[${i}]`, 1);
    count *= d as number;
  });
  if (!anyChannels && shape[1] !== 3) throw rangeError('3 channels', `${name}.shape[1]`, shape[1]);
  if (count > MAX_ELEMENTS) {
    throw new RangeError(`${name}.shape [${shape.join(', ')}] has ${count} elements; at most ${MAX_ELEMENTS} are supported`);
  }
  if (isDetached(data)) throw new TypeError(`${name}.data is a detached ArrayBuffer (was it transferred?)`);
  if (data.length !== count) {
    throw new RangeError(`${name}.data has ${data.length} elements but ${name}.shape [${shape.join(', ')}] needs ${count}`);
  }
  return value as unknown as Tensor4;
}

export function checkRgbImage(value: unknown, name: string): RgbImage {
  if (!isPlainObject(value)) throw typeError('an RgbImage {data, width, height, channels}', name, value);
  const { data, width, height, channels } = value as Record<string, unknown>;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw typeError('a Uint8Array or Uint8ClampedArray', `${name}.data`, data);
  }
  checkInteger(width, `${name}.width`, 1);
  checkInteger(height, `${name}.height`, 1);
  if (channels !== 3 && channels !== 4) throw rangeError('3 or 4', `${name}.channels`, channels);
  const count = (width as number) * (height as number) * channels;
  if (count > MAX_ELEMENTS) throw new RangeError(`${name} is too large: ${width}x${height}`);
  if (isDetached(data)) throw new TypeError(`${name}.data is a detached ArrayBuffer (was it transferred?)`);
  if (data.length !== count) {
    throw new RangeError(`${name}.data has ${data.length} bytes but ${width}x${height}x${channels} needs ${count}`);
  }
  return value as unknown as RgbImage;
}

/** Levels an image of this size allows: the coarsest level must keep at least one pixel. */
export function maxLevels(height: number, width: number): number {
  let levels = 1;
  for (let size = Math.min(height, width); size >= 2; size = Math.floor(size / 2)) levels++;
  return levels;
}
