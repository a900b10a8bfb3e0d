// film-features extract: the batch pipeline (lib/batch) over files, folders, lists and videos.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

import type { Command } from 'commander';

import {
  checkWritable, expandInputs, inspectVideoFolder, inspectUnit, isFrameName, runBatch, unitComplete, unitDir, type BatchEvent, type FrameOptions,
  type InputItem, type OutputOptions,
} from '../batch';
import { estimateOutput, freeBytes, type Estimate } from '../batch/estimate';
// The addon loads with the model (where none loads, that error says how to fix it), so commands
// that need no model (status, enqueue) start without libtorch.
import { FeatureExtractor, defaultModelPath } from '../feature-extractor';
import type { Device } from '../types';
import type { Register } from './main';
import { loadModel } from './model';
import {
  addFrameOptions, addInputOptions, addOutputOptions, device, fail, frameOptionsFrom, integer, outputOptionsFrom, reason, usageMessage,
  type CliOutputFlags,
} from './flags';
import { Interrupt, INTERRUPTED } from './program';
import { gb, Reporter } from './report';

interface Flags extends CliOutputFlags {
  model?: string;
  device: Device;
  threads: number;
  recursive: boolean;
  fromList?: string;
  every: number;
  frames?: { start: number; end?: number };
  skipExisting: boolean;
  fsync: boolean;
  jobs: number;
  force: boolean;
}

/**
 * Lets lib/batch collect a large frame's band outputs (the extractor's memory) as soon as each band
 * is done: without it a 12-megapixel photo peaked at 6.3 GB instead of 5.4. The CLI owns its process.
 */
function exposeGc(): void {
  if (typeof (globalThis as { gc?: unknown }).gc === 'function') return;
  v8.setFlagsFromString('--expose-gc');
  (globalThis as { gc?: unknown }).gc = vm.runInNewContext('gc');
}

/** How many items already have output of ours there, from the same source (a still's folder, or a video's). */
async function existing(items: InputItem[], out: string): Promise<number> {
  let count = 0;
  for (const item of items) {
    const dir = unitDir(out, item, null);
    const state = await (item.kind === 'video' ? inspectVideoFolder(dir, item.source) : inspectUnit(dir, item.source)).catch(() => null);
    if (state?.state === 'ours') count++;
  }
  return count;
}

/** Frames of `item` whose complete output is there (a resume skips them). */
async function framesDone(item: InputItem, out: string): Promise<number> {
  const dir = unitDir(out, item, null);
  if (item.kind !== 'video') return (await unitComplete(dir)) ? 1 : 0;
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names.filter(isFrameName).length;
}

/**
 * Estimates the bytes the run will write and compares them with the free space: says both, and
 * refuses a run that cannot fit (unless --force) with the options that shrink it.
 */
async function checkSpace(items: InputItem[], output: OutputOptions, frames: FrameOptions, shape: { channels: number; subLevels: number },
  flags: Flags): Promise<Estimate> {
  const estimate = await estimateOutput(items, output, frames, { channels: shape.channels, subLevels: shape.subLevels },
    flags.skipExisting ? (item) => framesDone(item, output.out) : undefined);
  const free = await freeBytes(output.out);
  const unknown = estimate.unknown > 0 ? ` (and ${estimate.unknown} input(s) whose size could not be read)` : '';
  const line = `about ${gb(estimate.bytes)} to write for ${estimate.frames} frame(s)${unknown}; ${gb(free)} free in ${output.out}`;
  if (estimate.bytes > free && !flags.force) {
    const shrink = [
      output.dtype === 'float32' ? '--dtype float16 (half the size)' : '',
      '--save-levels (only the levels you need, e.g. 0,2)',
      output.crop ? '' : '--crop (no padding)',
      '--max-side (smaller frames)',
    ].filter(Boolean);
    throw new Error(`${line}: it will not fit. Shrink it with ${shrink.join(', ')}, or free space; --force runs anyway`);
  }
  console.log(line);
  return estimate;
}

async function extract(inputs: string[], flags: Flags, cmd: Command): Promise<number> {
  let output: OutputOptions;
  try {
    output = outputOptionsFrom(flags);
  } catch (err) {
    console.error(`error: ${usageMessage(err, cmd)}`);
    return 2;
  }
  const frames = frameOptionsFrom(flags);
  if (inputs.length === 0 && flags.fromList === undefined) {
    console.error('error: no inputs: name files or folders, or give --from-list');
    return 2;
  }
  const { items, skipped } = await expandInputs(inputs, { recursive: flags.recursive, fromList: flags.fromList });
  for (const s of skipped) fail(`${s.missing ? '' : 'skipped '}${s.path}: ${s.reason}`);
  const missing = skipped.filter((s) => s.missing).length;
  if (items.length === 0) return 1;

  // Before the model loads: an output folder that cannot be written fails now, not after the work.
  try {
    await checkWritable(output.out);
  } catch (err) {
    fail(reason(err));
    return 1;
  }
  exposeGc();
  const fx = await loadModel(flags, (file, options) => FeatureExtractor.load(file, options), (m) =>
    `model ${flags.model ?? `${path.basename(defaultModelPath)} (shipped)`} (C=${m.info.channels}, S=${m.info.subLevels}, ` +
    `weights: ${m.info.weights}) on ${m.device} (${m.info.engine}, ${m.info.build.variant} build)`);
  if (!fx) return 1;

  let estimate: Estimate;
  try {
    estimate = await checkSpace(items, output, frames, fx.info, flags);
  } catch (err) {
    fail(reason(err));
    fx.dispose();
    return 1;
  }
  // Said once the run can start (the model loaded, the space checked), never before a failure that writes nothing.
  if (!flags.skipExisting) {
    const count = await existing(items, output.out);
    if (count > 0) fail(`${count} of ${items.length} inputs already have output in ${output.out}; overwriting it (--skip-existing keeps it)`);
  }
  const reporter = new Reporter(items, output, flags.maxSide, estimate.bytes);
  const interrupt = new Interrupt();
  try {
    const summary = await runBatch(items, {
      extractor: fx, modelFile: flags.model, output, frames, skipExisting: flags.skipExisting, fsync: flags.fsync, jobs: flags.jobs,
      signal: interrupt.signal, onEvent: (e: BatchEvent) => reporter.event(e),
    });
    reporter.finish(summary);
    return summary.failed.length + missing > 0 ? 1 : 0;
  } catch (err) {
    reporter.close();
    // only the user's SIGINT or SIGTERM is an interrupt; any other error stopped the run: a failure
    fail(`${interrupt.by ? `interrupted (${interrupt.by})` : reason(err)}; complete outputs are kept, the one being written is not`);
    return interrupt.by ? INTERRUPTED : 1;
  } finally {
    interrupt.dispose();
    fx.dispose();
  }
}

export const registerExtract: Register = (program: Command, setExitCode) => {
  let cmd = program.command('extract')
    .description('Writes the feature levels of images, animated images and video frames: <out>/<name>/level<i>.npy ' +
      'and meta.json (<out>/<name>/<frame>/ for videos and animations)')
    .argument('[inputs...]', 'image or video files, or folders of them')
    .option('--model <path>', 'TorchScript extractor (default: the model shipped in models/)')
    .option('--device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", device, 'auto' as Device)
    .option('--threads <n>', 'CPU threads; 0 = every core', integer(0, 1024), 0);
  cmd = addOutputOptions(cmd);
  cmd = addInputOptions(cmd);
  cmd = addFrameOptions(cmd);
  cmd.option('--skip-existing', 'leave frames whose complete output exists alone (resumes a killed run)', false)
    .option('--fsync', 'flush each frame\'s files and folder to the disk before renaming it into place (storage that may lose power)', false)
    .option('--jobs <n>', 'extracts in flight at once (large frames go alone)', integer(1, 64), 2)
    .option('--force', 'run even where the estimated output does not fit in the free space', false)
    .addHelpText('after', '\nExit status: 0 when every frame was written; 1 when any input or frame failed (the others are\n' +
      'still written: something film-features did not write at an output path fails that input, and is left\n' +
      'alone), the output folder cannot be written, the model did not load, or an error stopped the run;\n' +
      '2 for bad usage; 130 when interrupted by SIGINT or SIGTERM (complete outputs are kept).')
    .action(async (inputs: string[], flags: Flags, cmd: Command) => {
      setExitCode(await extract(inputs, flags, cmd));
    });
};
