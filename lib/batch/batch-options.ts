// What a batch run writes, and which frames it takes: parsed and checked once, shared by every
// command that takes these options (extract, enqueue, the fleet's workers).
import * as path from 'node:path';

import { checkInteger, expected, isPlainObject, rangeError, typeError } from '../validate';

/**
 * What a bad option was, beside the message: the option's name (`saveLevels`), the bad value (the
 * one element of a list that is wrong) and what is wrong with it ("is not a level (0..6)"), so
 * that the CLI can name its flag and the value as typed.
 */
export interface OptionProblem {
  option: string;
  value: unknown;
  problem: string;
}

/** Adds the OptionProblem to an error about option `option`. */
export function withProblem<E extends Error>(err: E, option: string, value: unknown, problem: string): E & OptionProblem {
  return Object.assign(err, { option, value, problem });
}

/** Whether err carries an OptionProblem (an error from the checks in this file). */
export function isOptionProblem(err: unknown): err is Error & OptionProblem {
  return err instanceof Error && typeof (err as Partial<OptionProblem>).option === 'string' && typeof (err as Partial<OptionProblem>).problem === 'string';
}

/** checkInteger, with the OptionProblem. */
function integerOption(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  try {
    return checkInteger(value, name, min, max);
  } catch (err) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of ${min} or more` : `from ${min} to ${max}`;
    throw withProblem(err as Error, name, value, `is not an integer ${range}`);
  }
}

export type Dtype = 'float16' | 'float32';
export type OutputFormat = 'npy' | 'safetensors';

export const MAX_LEVELS = 10; // padding grows as 2^(levels-1); FILM uses 7
export const DTYPES: readonly Dtype[] = ['float32', 'float16'];
export const FORMATS: readonly OutputFormat[] = ['npy', 'safetensors'];

/** Everything that decides the bytes written for one frame. */
export interface OutputOptions {
  /** Output folder; one folder per image (per frame for videos and animations) inside it. */
  out: string;
  /** Pyramid levels (1..10, default 7); frames are zero-padded to a multiple of 2^(levels-1). */
  levels: number;
  /** Levels written, ascending (default: every level). */
  saveLevels: number[];
  dtype: Dtype;
  /** Cut each level back to the frame instead of writing the padded frame. */
  crop: boolean;
  format: OutputFormat;
  /** Longer side larger than this is scaled down first (0: never). */
  maxSide: number;
  /** preview.png: the frame and each saved level in PCA colours (slow; off by default). */
  preview: boolean;
}

/** Which frames of a video or animated image are taken: indices start..end-1, every `every`th. */
export interface FrameOptions {
  every: number;
  start: number;
  /** Exclusive; undefined: to the last frame. */
  end?: number;
}

export const DEFAULT_FRAMES: Readonly<FrameOptions> = Object.freeze({ every: 1, start: 0 });

/** "0,2,4,6" -> [0, 2, 4, 6]: sorted, without repeats. Throws RangeError naming the option. */
export function parseSaveLevels(text: string, name = '--save-levels'): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const bad = parts.find((s) => !/^\d{1,2}$/.test(s));
  if (bad !== undefined) {
    throw withProblem(new RangeError(`Expected a comma-separated list of level numbers for ${name} but received ${JSON.stringify(text)}`),
      name, text, `has ${JSON.stringify(bad)}, which is not a level number (a list is written 0,2,4,6)`);
  }
  return [...new Set(parts.map(Number))].sort((a, b) => a - b);
}

/** "A:B" (either side may be left out; B exclusive) -> { start, end }. Throws RangeError naming the option. */
export function parseFrameRange(text: string, name = '--frames'): { start: number; end?: number } {
  const m = /^\s*(\d*)\s*:\s*(\d*)\s*$/.exec(text);
  if (!m) {
    throw withProblem(new RangeError(`Expected A:B (frame indices, B exclusive; either may be left out) for ${name} but received ${JSON.stringify(text)}`),
      name, text, 'is not A:B (frames A to B-1; either may be left out)');
  }
  const start = m[1] === '' ? 0 : Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  if (end !== undefined && end <= start) {
    throw withProblem(new RangeError(`Expected B > A for ${name} but received ${JSON.stringify(text)}`), name, text, 'is empty: B must be larger than A');
  }
  return { start, end };
}

function pick<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const list = allowed.map((a) => `'${a}'`).join(' or ');
  if (typeof value !== 'string') throw withProblem(typeError(list, name, value), name, value, `is not ${list}`);
  if (!allowed.includes(value as T)) throw withProblem(rangeError(list, name, value), name, value, `is not ${list}`);
  return value as T;
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw withProblem(typeError('a boolean', name, value), name, value, 'is not true or false');
  return value;
}

/**
 * Checks output options given in any form a caller has (CLI strings already parsed, a job's JSON)
 * and fills in defaults. Throws TypeError/RangeError naming the option.
 */
export function resolveOutputOptions(input: unknown): OutputOptions {
  if (!isPlainObject(input)) throw typeError('an object', 'options', input);
  const o = input as Record<string, unknown>;
  if (typeof o.out !== 'string' || o.out.length === 0) {
    throw withProblem(typeError('a non-empty path', 'out', o.out), 'out', o.out, 'is not a folder path');
  }
  const levels = o.levels === undefined ? 7 : integerOption(o.levels, 'levels', 1, MAX_LEVELS);
  let saveLevels: number[];
  if (o.saveLevels === undefined) {
    saveLevels = Array.from({ length: levels }, (_, i) => i);
  } else {
    const given = typeof o.saveLevels === 'string' ? parseSaveLevels(o.saveLevels, 'saveLevels') : o.saveLevels;
    if (!Array.isArray(given) || given.length === 0) {
      throw withProblem(typeError('a non-empty array of level numbers', 'saveLevels', o.saveLevels), 'saveLevels', o.saveLevels,
        'is not a list of levels');
    }
    const notLevel = `is not a level (0..${levels - 1}${levels < MAX_LEVELS ? `; --levels ${levels} makes levels 0..${levels - 1}` : ''})`;
    given.forEach((l, i) => {
      try {
        checkInteger(l, `saveLevels[${i}]`, 0, MAX_LEVELS - 1);
      } catch (err) {
        throw withProblem(err as Error, 'saveLevels', l, notLevel);
      }
    });
    saveLevels = [...new Set(given as number[])].sort((a, b) => a - b);
    const over = saveLevels.find((l) => l >= levels);
    if (over !== undefined) {
      throw withProblem(new RangeError(`${expected(`levels below ${levels} (the pyramid has levels 0..${levels - 1})`, 'saveLevels', given)}`),
        'saveLevels', over, notLevel);
    }
  }
  const maxSide = o.maxSide === undefined ? 0 : integerOption(o.maxSide, 'maxSide', 0, 1 << 20);
  if (maxSide > 0 && maxSide < 2 ** (levels - 1)) {
    throw withProblem(new RangeError(`Expected maxSide of at least 2^(levels-1) = ${2 ** (levels - 1)} but received ${maxSide}`),
      'maxSide', maxSide, `is smaller than a padded frame's side: at least 2^(levels-1) = ${2 ** (levels - 1)}, or 0`);
  }
  return {
    out: path.resolve(o.out),
    levels,
    saveLevels,
    dtype: pick(o.dtype, 'dtype', DTYPES, 'float32'),
    crop: flag(o.crop, 'crop'),
    format: pick(o.format, 'format', FORMATS, 'npy'),
    maxSide,
    preview: flag(o.preview, 'preview'),
  };
}

/** Checks frame options; fills in every=1, start=0. */
export function resolveFrameOptions(input: unknown = {}): FrameOptions {
  if (!isPlainObject(input)) throw typeError('an object', 'frames', input);
  const o = input as Record<string, unknown>;
  const every = o.every === undefined ? 1 : integerOption(o.every, 'every', 1);
  let start = 0;
  let end: number | undefined;
  if (typeof o.frames === 'string') {
    ({ start, end } = parseFrameRange(o.frames, 'frames'));
  } else {
    start = o.start === undefined ? 0 : integerOption(o.start, 'start', 0);
    end = o.end === undefined ? undefined : integerOption(o.end, 'end', start + 1);
  }
  return end === undefined ? { every, start } : { every, start, end };
}

/** Whether frame `index` is one the options take. */
export function takesFrame(f: FrameOptions, index: number): boolean {
  return index >= f.start && (f.end === undefined || index < f.end) && (index - f.start) % f.every === 0;
}
