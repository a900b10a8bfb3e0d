// film-features interpolate A B: in-between frames as PNGs; film-features slowmo IN: a video with
// factor - 1 frames made between each pair of its frames. Both need a whole FILM file (--model).
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { InvalidArgumentError, type Command } from 'commander';
import sharp = require('sharp');

import { OutputExistsError, whyNotOurFile } from '../batch/ownership';
import { writeOwnFile } from '../batch/write';
import { decodeImage } from '../batch/frames';
import { ffmpegCommand, videoFrames } from '../batch/video';
import { undecodableImage } from '../decode-error';
import { Interpolator, type RecursionPadding } from '../interpolator';
import type { Device, Engine, RawImage } from '../types';
import type { Register } from './main';
import { loadModel } from './model';
import { device, explain, fail, integer, reason } from './flags';
import { markPng, pngMark, videoMark } from './owned';
import { encodeVideo, probeFrameRate } from './video-out';

interface Common {
  model: string;
  device: Device;
  threads: number;
  verbose: boolean;
  recursionPadding?: RecursionPadding;
}

const ms = (t: number): string => `${(performance.now() - t).toFixed(0)} ms`;

function times(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  const bad = list.find((s) => s === '' || !(Number(s) >= 0 && Number(s) <= 1));
  if (bad !== undefined) {
    // commander's message names the flag and the whole value: "--times: '1.5' is not ..."
    const what = list.length === 1 ? 'is not' : bad === '' ? 'has an empty item, which is not' : `has ${bad}, which is not`;
    throw new InvalidArgumentError(`${what} a time from 0 to 1 (0 is the first image, 1 the second; a list is written 0.25,0.5,0.75)`);
  }
  return list.map(Number);
}

function engineFlag(value: string): Engine {
  if (!['auto', 'onednn', 'torchscript'].includes(value)) throw new InvalidArgumentError("is not 'auto', 'onednn' or 'torchscript'");
  return value as Engine;
}

function recursionPaddingFlag(value: string): RecursionPadding {
  if (value !== 'zeros' && value !== 'prediction') throw new InvalidArgumentError("is not 'zeros' or 'prediction'");
  return value;
}

function factor(value: string): number {
  if (!['2', '4', '8'].includes(value.trim())) throw new InvalidArgumentError('is not 2, 4 or 8');
  return Number(value);
}

const load = (flags: Common): Promise<Interpolator | null> => loadModel(flags, (file, options) => Interpolator.load(file!, options),
  (film) => `model ${flags.model} (${film.info.dtype}${film.info.dtShape ? `, batch_dt ${film.info.dtShape}` : ''}) on ${film.device} ` +
    `(${film.info.engine === 'onednn' ? 'the fused oneDNN engine' : "the file's TorchScript"})`);

/** The file name of the frame at time t: t0.25.png, with as many digits as t needs. */
export const frameFile = (t: number): string => `t${Number(t.toFixed(6))}.png`;

interface InterpolateFlags extends Common {
  times?: number[];
  recursions?: number;
  out: string;
}

async function interpolateCommand(a: string, b: string, flags: InterpolateFlags): Promise<number> {
  if (flags.times && flags.recursions) {
    console.error('error: --times and --recursions cannot be combined');
    return 2;
  }
  if (flags.recursionPadding && !flags.recursions) {
    console.error('error: --recursion-padding applies only with --recursions');
    return 2;
  }
  // One at a time: libvips's error buffer is shared, and two failing decodes blur each other's detail.
  const frames: RawImage[] = [];
  for (const [file, role] of [[a, 'the first input'], [b, 'the second input']]) {
    try {
      const { rgb } = await decodeImage(file, null, 0);
      frames.push({ data: rgb.data, info: rgb });
    } catch (err) {
      fail(undecodableImage(file, err, role));
      return 1;
    }
  }
  const [fa, fb] = frames;
  if (fa.info.width !== fb.info.width || fa.info.height !== fb.info.height) {
    fail(`${a} is ${fa.info.width}x${fa.info.height} but ${b} is ${fb.info.width}x${fb.info.height}: both must have the same size`);
    return 1;
  }
  const film = await load(flags);
  if (!film) return 1;
  try {
    const k = flags.recursions;
    const ts = k ? Array.from({ length: 2 ** k - 1 }, (_, i) => (i + 1) / 2 ** k) : (flags.times ?? [0.5]);
    const t = performance.now();
    const out = k ? await film.interpolate(fa, fb, { recursions: k, recursionPadding: flags.recursionPadding })
      : await film.interpolate(fa, fb, { time: ts });
    console.log(`${out.length} frame(s) of ${fa.info.width}x${fa.info.height} in ${ms(t)}`);
    await fs.mkdir(flags.out, { recursive: true });
    let failed = 0;
    for (let i = 0; i < out.length; i++) {
      const file = path.join(flags.out, frameFile(ts[i]));
      const png = await sharp(out[i].data, { raw: out[i].info as sharp.CreateRaw }).png().toBuffer();
      try {
        await writeOwnFile(file, (identity) => [markPng(png, identity)], { mark: pngMark });
        console.log(`wrote ${file}`);
      } catch (err) {
        if (!(err instanceof OutputExistsError)) throw err;
        fail(`${err.message} (${err.code})`);
        failed++;
      }
    }
    return failed > 0 ? 1 : 0;
  } catch (err) {
    fail(explain(err, flags.verbose));
    return 1;
  } finally {
    film.dispose();
  }
}

interface SlowmoFlags extends Common {
  factor: number;
  out: string;
  fps?: number;
  maxSide: number;
  crf: number;
}

/** Prints progress: a rewritten line on a terminal, a line per tenth otherwise. */
class Progress {
  readonly #tty = Boolean(process.stderr.isTTY);
  readonly #started = performance.now();
  #said = -1;

  constructor(readonly total: number | undefined) {}

  update(pairs: number, written: number): void {
    const secs = (performance.now() - this.#started) / 1000;
    const of = this.total ? `/${this.total - 1}` : '';
    const line = `pair ${pairs}${of}, ${written} frames written, ${secs.toFixed(0)} s` +
      (this.total && pairs > 0 ? `, about ${((secs / pairs) * (this.total - 1 - pairs)).toFixed(0)} s left` : '');
    if (this.#tty) {
      process.stderr.write(`\r${line}\x1b[K`);
    } else {
      const tenth = this.total ? Math.floor((10 * pairs) / Math.max(1, this.total - 1)) : Math.floor(pairs / 10);
      if (tenth !== this.#said) {
        this.#said = tenth;
        process.stderr.write(`${line}\n`);
      }
    }
  }

  done(): void {
    if (this.#tty) process.stderr.write('\n');
  }
}

/** Fails unless nothing is at `file`, or a video this command wrote (which is then replaced). */
async function checkTarget(file: string): Promise<void> {
  if (!(await fs.lstat(file).catch(() => null))) return;
  const why = await whyNotOurFile(file, videoMark);
  if (why) throw new OutputExistsError(file, why);
}

async function slowmoCommand(input: string, flags: SlowmoFlags): Promise<number> {
  try {
    await checkTarget(flags.out); // before an hour of work
  } catch (err) {
    fail(`${reason(err)} (ERR_FILM_OUTPUT_EXISTS)`);
    return 1;
  }
  let rate: { fps: number; text: string; frames?: number };
  try {
    rate = await probeFrameRate(input);
  } catch (err) {
    fail(reason(err));
    return 1;
  }
  const film = await load(flags);
  if (!film) return 1;
  const fps = flags.fps ? String(flags.fps) : rate.text; // default: the source's rate, so the motion is slowed
  const recursions = Math.log2(flags.factor);
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  const progress = new Progress(rate.frames);
  const t = performance.now();
  let pairs = 0;
  let written = 0;
  try {
    let size = '';
    const format = await encodeVideo(flags.out, { fps, crf: flags.crf, signal: controller.signal }, async (write) => {
      let previous: RawImage | undefined;
      for await (const frame of videoFrames(input, { maxSide: flags.maxSide, signal: controller.signal })) {
        const current: RawImage = { data: frame.data, info: frame };
        size = `${frame.width}x${frame.height}`;
        if (previous) {
          if (previous.info.width !== current.info.width || previous.info.height !== current.info.height) {
            throw new Error(`frame size changed from ${previous.info.width}x${previous.info.height} to ` +
              `${current.info.width}x${current.info.height} after ${pairs + 1} frames; slowmo needs one size`);
          }
          const between = await film.interpolate(previous, current,
            { recursions, recursionPadding: flags.recursionPadding, signal: controller.signal });
          await write(previous);
          for (const f of between) await write(f);
          written += between.length + 1;
          pairs++;
          progress.update(pairs, written);
        }
        previous = current;
      }
      if (!previous) throw new Error(`${input} has no video frames`);
      await write(previous);
      written++;
    });
    progress.done();
    console.log(`wrote ${flags.out}: ${written} frames of ${size} at ${fps} fps (${pairs + 1} source frames, factor ${flags.factor}) in ${ms(t)}`);
    if (format === 'yuv444p') {
      console.log(`note: ${size} has an odd side, so the video is H.264 4:4:4 (yuv444p) at that size; 4:2:0, which some ` +
        'players need, takes even sides (crop or pad the input, e.g. with --max-side or ffmpeg)');
    }
    return 0;
  } catch (err) {
    progress.done();
    fail(explain(err, flags.verbose).replace(/^[^\n]*/, (line) => `${line}; ${flags.out} was not written`));
    return controller.signal.aborted ? 130 : 1;
  } finally {
    process.removeListener('SIGINT', stop);
    film.dispose();
  }
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--model <path>', 'a whole FILM TorchScript file (film_net_fp32.pt or film_net_fp16.pt, or one ' +
      'made by models/export.py --interpolator); the model shipped with film-features is an extractor only')
    .option('--device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", device, 'auto' as Device)
    .option('--threads <n>', 'CPU threads; 0 = every core', integer(0, 1024), 0)
    .option('--engine <engine>', "'auto' (the whole network on the fused oneDNN engine where it runs the file, else its " +
      "TorchScript), 'onednn' or 'torchscript' (libtorch, to compare)", engineFlag)
    .option('--verbose', "on failure, also print its cause in full (a model's TorchScript trace)", false);
}

const RECURSION_PADDING_HELP = "what each recursion step feeds back where frames are padded to a multiple of 64 " +
  "(sides not multiples of 64): 'zeros' (default: the middle frame cropped and padded with zeros again, as Google's " +
  "FILM does) or 'prediction' (the padded prediction as it is, clamped, as the PyTorch port's inference.py does)";

export const registerInterpolate: Register = (program, setExitCode) => {
  common(program.command('interpolate')
    .description('Writes in-between frames of two images of one size as PNGs: <out>/t<time>.png')
    .argument('<a>', 'the first image (time 0)')
    .argument('<b>', 'the second image (time 1)'))
    .option('--times <list>', 'times between 0 and 1, e.g. 0.25,0.5,0.75 (default 0.5)', times)
    .option('--recursions <k>', 'instead of --times: 2^k - 1 frames at i/2^k by recursion at t = 0.5', integer(1, 10))
    .option('--recursion-padding <how>', RECURSION_PADDING_HELP, recursionPaddingFlag)
    .option('--out <dir>', 'output folder', 'film-frames')
    .addHelpText('after', '\nA t<time>.png already there is replaced only when film-features wrote it (its PNG "Software" text says so).\n' +
      'Exit status: 0 when every frame was written; 1 when an image or the model could not be read, or a file\n' +
      'film-features did not write is in the way (it is left alone); 2 for bad usage.')
    .action(async (a: string, b: string, flags: InterpolateFlags) => setExitCode(await interpolateCommand(a, b, flags)));

  common(program.command('slowmo')
    .description('Makes a video factor times slower (or, with --fps, smoother): factor - 1 frames are made ' +
      'between each pair of frames, by recursion at t = 0.5; decoded and encoded (H.264) with ffmpeg; no audio')
    .argument('<input>', 'a video file'))
    .requiredOption('--out <file>', 'the video to write (.mp4, .mkv, ...); written under a temporary name, then renamed; ' +
      'an existing file is replaced only when slowmo wrote it (its comment tag says film-features)')
    .option('--factor <n>', '2, 4 or 8', factor, 2)
    .option('--recursion-padding <how>', RECURSION_PADDING_HELP, recursionPaddingFlag)
    .option('--fps <n>', "output frame rate (default: the input's, which slows the motion down by factor)", integer(1, 1000))
    .option('--max-side <n>', 'scale frames whose longer side is larger down to this first (0: never)', integer(0, 1 << 20), 0)
    .option('--crf <n>', 'H.264 quality, 0 (lossless) to 51', integer(0, 51), 18)
    .addHelpText('after', `\nffmpeg: ${ffmpegCommand()} (FILM_FEATURES_FFMPEG overrides). Memory stays bounded: two source frames ` +
      'and their in-betweens are held at a time.\nExit status: 0 when the video was written; 1 on failure (nothing is left ' +
      'at --out); 2 for bad usage; 130 when interrupted.')
    .action(async (input: string, flags: SlowmoFlags) => setExitCode(await slowmoCommand(input, flags)));
};
