// Argument checks. Messages follow "Expected X for NAME but received V of type T"; errors carry
// Node's codes (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE).
import { withCode } from './errors';
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
  return withCode(new TypeError(expected(what, name, value)), 'ERR_INVALID_ARG_TYPE');
}

export function rangeError(what: string, name: string, value: unknown): RangeError {
  return withCode(new RangeError(expected(what, name, value)), 'ERR_OUT_OF_RANGE');
}

/** A RangeError with a message of its own. */
export function outOfRange(message: string): RangeError {
  return withCode(new RangeError(message), 'ERR_OUT_OF_RANGE');
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

/**
 * One of a few strings, or `fallback` where the value is undefined and there is one: a string of
 * another value is a RangeError, anything else a TypeError.
 */
export function checkChoice<T extends string>(value: unknown, name: string, choices: readonly T[], fallback?: T): T {
  if (value === undefined && fallback !== undefined) return fallback;
  const what = choices.map((c) => `'${c}'`).join(', ').replace(/, ([^,]*)$/, ' or $1');
  if (typeof value !== 'string') throw typeError(what, name, value);
  if (!(choices as readonly string[]).includes(value)) throw rangeError(what, name, value);
  return value as T;
}

/**
 * An options object read once into a plain copy of the known keys; any other key is an error
 * naming it (a misspelt option must not be silently ignored).
 */
export function readOptions<K extends string>(value: unknown, name: string, known: readonly K[]): Partial<Record<K, unknown>> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw typeError('an object', name, value);
  const out: Partial<Record<K, unknown>> = {};
  for (const key of Object.keys(value)) {
    if (!(known as readonly string[]).includes(key)) {
      throw withCode(new TypeError(`Unknown option ${name}.${key}; known options: ${known.join(', ')}`), 'ERR_INVALID_ARG_VALUE');
    }
    const v = value[key];
    if (v !== undefined) out[key as K] = v;
  }
  return out;
}

export function isDetached(array: ArrayBufferView): boolean {
  const buffer = array.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  return array.byteLength === 0 && buffer.byteLength === 0;
}

// Largest element count we pass to the native side (int32 range, as V8 arrays index).
export const MAX_ELEMENTS = 2 ** 31 - 1;

/**
 * Checks a Tensor4 (with 3 channels unless anyChannels) whose data matches its shape. Reads each
 * property once and returns what it read, as a new object: later reads cannot see other values.
 */
export function checkTensor4(value: unknown, name: string, anyChannels = false): Tensor4 {
  if (!isPlainObject(value)) throw typeError('a Tensor4 {data, shape}', name, value);
  const { data, shape } = value as { data: unknown; shape: unknown };
  if (!(data instanceof Float32Array)) throw typeError('a Float32Array', `${name}.data`, data);
  if (!Array.isArray(shape)) throw typeError('an array [n, c, h, w]', `${name}.shape`, shape);
  if (shape.length !== 4) throw rangeError('4 dimensions [n, c, h, w]', `${name}.shape`, shape);
  const dims = Array.from(shape as unknown[], (d, i) => checkInteger(d, `${name}.shape[${i}]`, 1)) as Tensor4['shape'];
  const count = dims.reduce((a, b) => a * b, 1);
  if (!anyChannels && dims[1] !== 3) throw rangeError('3 channels', `${name}.shape[1]`, dims[1]);
  if (count > MAX_ELEMENTS) {
    throw outOfRange(`${name}.shape [${dims.join(', ')}] has ${count} elements; at most ${MAX_ELEMENTS} are supported`);
  }
  if (isDetached(data)) throw withCode(new TypeError(`${name}.data is a detached ArrayBuffer (was it transferred?)`), 'ERR_INVALID_ARG_VALUE');
  if (data.length !== count) {
    throw outOfRange(`${name}.data has ${data.length} elements but ${name}.shape [${dims.join(', ')}] needs ${count}`);
  }
  return { data, shape: dims };
}

/** An RgbImage read once, with its channel count resolved. */
export interface CheckedRgbImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 3 | 4;
}

/** Checks interleaved 8-bit pixels; channels, when absent, come from the length. */
export function checkRgbImage(value: unknown, name: string): CheckedRgbImage {
  if (!isPlainObject(value)) throw typeError('an RgbImage {data, width, height, channels}', name, value);
  const { data, width, height, channels } = value as Record<string, unknown>;
  return checkPixels(data, width, height, channels, name, `${name}.channels`);
}

/** How to get 8-bit pixels from sharp, for 16-bit input. */
export const EIGHT_BIT_HINT = "pass 8 bits per sample, e.g. sharp(input).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }) " +
  "(or .raw({ depth: 'uchar' }))";

export function checkPixels(data: unknown, width: unknown, height: unknown, channels: unknown, name: string,
  channelsName: string): CheckedRgbImage {
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    if (data instanceof Uint16Array) {
      throw withCode(new TypeError(`${name}.data is a Uint16Array: 16-bit pixels are not taken; ${EIGHT_BIT_HINT}`), 'ERR_INVALID_ARG_TYPE');
    }
    throw typeError('a Uint8Array, Uint8ClampedArray or Buffer', `${name}.data`, data);
  }
  const w = checkInteger(width, `${name}.width`, 1);
  const h = checkInteger(height, `${name}.height`, 1);
  if (isDetached(data)) throw withCode(new TypeError(`${name}.data is a detached ArrayBuffer (was it transferred?)`), 'ERR_INVALID_ARG_VALUE');
  // 2 bytes per sample of the channels given (or of 3 or 4): 16-bit pixels, as sharp gives for rgb16
  const samples = channels === 3 || channels === 4 ? [channels] : channels === undefined ? [3, 4] : [];
  if (samples.some((k) => data.length === 2 * w * h * k)) {
    throw outOfRange(`${name}.data has ${data.length} bytes, 2 per sample of ${w}x${h} pixels: 16-bit pixels are not taken; ${EIGHT_BIT_HINT}`);
  }
  const c = channels === undefined ? data.length / (w * h) : channels;
  if (c !== 3 && c !== 4) {
    const hint = c === 1 || c === 2 ? ' (grey images: convert to RGB first, e.g. sharp().toColourspace(\'srgb\'))' : '';
    if (channels === undefined) {
      throw outOfRange(`${name}.data has ${data.length} bytes: ${w}x${h} pixels of 3 or 4 channels need ` +
        `${3 * w * h} or ${4 * w * h}${hint}`);
    }
    throw rangeError(`3 or 4${hint}`, channelsName, channels);
  }
  const count = w * h * c;
  if (count > MAX_ELEMENTS) throw outOfRange(`${name} is too large: ${w}x${h}`);
  if (data.length !== count) {
    throw outOfRange(`${name}.data has ${data.length} bytes but ${w}x${h}x${c} needs ${count}`);
  }
  return { data, width: w, height: h, channels: c };
}

/** Levels an image of this size allows: the coarsest level must keep at least one pixel. */
export function maxLevels(height: number, width: number): number {
  let levels = 1;
  for (let size = Math.min(height, width); size >= 2; size = Math.floor(size / 2)) levels++;
  return levels;
}

/**
 * A pyramid's level count for an image of height x width: an integer from 1 to maxLevels. Past
 * the limit, the message says that the image's size sets it, and how to get more levels.
 */
export function checkLevels(value: unknown, name: string, height: number, width: number): number {
  const max = maxLevels(height, width);
  if (typeof value === 'number' && Number.isInteger(value) && value > max) {
    throw outOfRange(`${name} is ${value}, but a ${width}x${height} image has at most ${max} levels: each level halves ` +
      `the one before, and level ${max - 1} is already ${width >> (max - 1)}x${height >> (max - 1)}. For ${value} levels, ` +
      `pass an image whose shorter side is at least ${2 ** (value - 1)} px: a larger one, or this one padded ` +
      `(padToMultiple(tensor, ${2 ** (value - 1)}), as the CLI's --levels does)`);
  }
  return checkInteger(value, name, 1, max);
}

export type { RgbImage };
