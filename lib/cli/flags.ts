// Command-line options shared by commands that take inputs and write features (extract, enqueue):
// the same flags, parsed the same way, checked by lib/batch's resolveOutputOptions.
import { Command, InvalidArgumentError, Option } from 'commander';

import {
  DTYPES, FORMATS, isOptionProblem, MAX_LEVELS, parseFrameRange, parseSaveLevels, resolveFrameOptions, resolveOutputOptions,
  type FrameOptions, type OutputOptions,
} from '../batch';
import { DEVICE_NAMES, DEVICE_PATTERN } from '../load-checks';
import type { Device } from '../types';

// Parsers say what is wrong with the value ("is not ..."); commander's message, which names the flag
// and the value typed, is reworded by ./program's flagMessage to "--flag: 'value' is not ...".

/** A commander parser for an integer in [min, max]. */
export function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`is not an integer from ${min} to ${max}`);
    }
    return n;
  };
}

export function device(value: string): Device {
  if (!DEVICE_PATTERN.test(value)) throw new InvalidArgumentError(`is not a device: ${DEVICE_NAMES}`);
  return value as Device;
}

/** A commander parser from a checking function of lib/: its OptionProblem (or message) becomes the usage error. */
export function checked<T>(parse: (value: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(isOptionProblem(err) ? err.problem : reason(err));
    }
  };
}

/**
 * An error from lib/batch's checks of the options the flags were turned into, said with the flag:
 * "--save-levels: 9 is not a level (0..6)". The flag is the command's option whose attribute is
 * the option named (commander's own mapping), so no table of names is kept here.
 */
export function usageMessage(err: unknown, cmd: Command): string {
  if (!isOptionProblem(err)) return reason(err);
  const name = err.option.replace(/\[.*$/, '');
  const flag = cmd.options.find((o) => o.attributeName() === name)?.long ?? name;
  const value = Array.isArray(err.value) ? err.value.join(',') : typeof err.value === 'string' ? `'${err.value}'` : String(err.value);
  return `${flag}: ${value} ${err.problem}`;
}

/** -r/--recursive and --from-list FILE|- */
export function addInputOptions(cmd: Command): Command {
  return cmd
    .option('-r, --recursive', 'scan folders recursively (outputs mirror the sub-folders)', false)
    .option('--from-list <file>', "read input paths from FILE, one per line ('-': standard input; # starts a comment)");
}

/** --every N and --frames A:B, for videos and animated images. */
export function addFrameOptions(cmd: Command): Command {
  return cmd
    .option('--every <n>', 'videos and animated images: take every Nth frame', integer(1, 1e9), 1)
    .option('--frames <A:B>', 'videos and animated images: frames A to B-1 (0-based; A or B may be left out)', checked((v) => parseFrameRange(v)));
}

/** --out --levels --save-levels --dtype --crop --format --max-side --preview */
export function addOutputOptions(cmd: Command): Command {
  return cmd
    .option('--out <dir>', 'output folder', 'film-features-out')
    .option('--levels <n>', `pyramid levels, 1 to ${MAX_LEVELS}; frames are zero-padded to a multiple of 2^(n-1)`, integer(1, MAX_LEVELS), 7)
    .option('--save-levels <list>', 'levels to write, e.g. 0,2,4,6 (default: all)', checked((v) => parseSaveLevels(v)))
    .addOption(new Option('--dtype <type>', 'element type written').choices(DTYPES).default('float32'))
    .option('--crop', 'write each level cut back to the frame (default: the padded frame; the crop box is in meta.json)', false)
    .addOption(new Option('--format <format>', 'npy: a .npy per level; safetensors: one file per frame, meta in its header')
      .choices(FORMATS).default('npy'))
    .option('--max-side <n>', 'scale frames whose longer side is larger down to this first (0: never)', integer(0, 1 << 20), 0)
    .option('--preview', 'also write preview.png: the frame and each saved level in PCA colours (slow)', false)
    .option('--no-preview', 'no preview.png (the default)');
}

export interface CliOutputFlags {
  out: string;
  levels: number;
  saveLevels?: number[];
  dtype: string;
  crop: boolean;
  format: string;
  maxSide: number;
  preview: boolean;
}

/** The parsed flags as OutputOptions; throws RangeError for combinations (a level past --levels). */
export function outputOptionsFrom(flags: CliOutputFlags): OutputOptions {
  return resolveOutputOptions({
    out: flags.out, levels: flags.levels, saveLevels: flags.saveLevels, dtype: flags.dtype,
    crop: flags.crop, format: flags.format, maxSide: flags.maxSide, preview: flags.preview,
  });
}

export function frameOptionsFrom(flags: { every: number; frames?: { start: number; end?: number } }): FrameOptions {
  return resolveFrameOptions({ every: flags.every, ...flags.frames });
}

/** Prints an error line the way every command does: "film-features: message". */
export function fail(message: string): void {
  console.error(`film-features: ${message.replace(/^film-features: /, '')}`);
}

export const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** reason(err), and with verbose its cause too (a model's whole TorchScript trace), indented. */
export function explain(err: unknown, verbose: boolean): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (!verbose || cause === undefined) return reason(err);
  return `${reason(err)}\n  cause: ${reason(cause).replace(/\n/g, '\n  ')}`;
}
