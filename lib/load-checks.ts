// What every model class's load() checks the same way: the model path, and the device, threads,
// half and engine options. One checker, one device pattern (the CLI's --device reuses DEVICE_PATTERN).
import * as os from 'node:os';
import * as path from 'node:path';

import { withCode } from './errors';
import type { Engine } from './types';
import { checkBoolean, checkChoice, checkInteger, expected, outOfRange, readOptions, typeError } from './validate';

/** 'auto', 'cpu', 'cuda' or 'cuda:N'. */
export const DEVICE_PATTERN = /^(auto|cpu|cuda(:\d{1,4})?)$/;
export const DEVICE_NAMES = "'auto', 'cpu', 'cuda' or 'cuda:N'";

export interface CheckedLoad<K extends string> {
  /** The model path, resolved. */
  file: string;
  device: string;
  /** CPU intra-op threads: options.threads, or every available core. */
  threads: number;
  half: boolean;
  /** The options object, read once (readOptions): the caller's own options are checked by it. */
  options: Partial<Record<K, unknown>>;
}

/** Checks load()'s arguments; known: every option this load() takes, device, threads and half among them. */
export function checkLoad<K extends string>(modelPath: unknown, options: unknown, known: readonly K[]): CheckedLoad<K> {
  if (typeof modelPath !== 'string') throw typeError('a string', 'modelPath', modelPath);
  if (modelPath.length === 0) throw outOfRange('Expected a non-empty path for modelPath');
  if (modelPath.includes('\0')) {
    throw withCode(new TypeError(expected('a path without null bytes', 'modelPath', modelPath)), 'ERR_INVALID_ARG_VALUE');
  }
  const opts = readOptions(options, 'options', known) as Partial<Record<K | 'device' | 'threads' | 'half', unknown>>;
  const device = opts.device ?? 'auto';
  if (typeof device !== 'string') throw typeError(DEVICE_NAMES, 'options.device', device);
  if (!DEVICE_PATTERN.test(device)) throw outOfRange(expected(DEVICE_NAMES, 'options.device', device));
  const threads = checkInteger(opts.threads ?? 0, 'options.threads', 0, 1024) || os.availableParallelism();
  const half = checkBoolean(opts.half ?? false, 'options.half');
  return { file: path.resolve(modelPath), device, threads, half, options: opts };
}

/**
 * Refuses a CUDA device where the addon that loaded links a CPU-only libtorch, naming the addon
 * file and the command that builds one against a CUDA libtorch (checked before the native load,
 * whose own message cannot name them).
 */
export function checkDeviceBuilt(device: string, binding: { build: string; cudaCompiledIn: boolean; torchVersion?: string }, addon: string): void {
  // The core build says itself that CUDA needs libtorch (ERR_FILM_NEEDS_LIBTORCH).
  if (!device.startsWith('cuda') || binding.cudaCompiledIn || binding.build === 'core') return;
  throw withCode(new Error(`device '${device}': the addon that loaded, ${addon}, is built against a CPU-only libtorch ` +
    `(${binding.torchVersion}), so it cannot run on CUDA. Unpack a CUDA build of libtorch (pytorch.org), then run ` +
    '`npx film-features setup --libtorch PATH` with its folder: it builds the addon against it. Or run on the CPU ' +
    "(device 'cpu' or 'auto')"), 'ERR_FILM_DEVICE');
}

const ENGINES: readonly Engine[] = ['auto', 'onednn', 'torchscript'];

/** options.engine, else FILM_FEATURES_ENGINE (read by each load(), as a default of its options), else 'auto'. */
export function checkEngine(option: unknown): Engine {
  if (option !== undefined) return checkChoice(option, 'options.engine', ENGINES);
  return checkChoice(process.env.FILM_FEATURES_ENGINE || 'auto', 'FILM_FEATURES_ENGINE', ENGINES);
}
