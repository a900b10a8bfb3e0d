// The film-features command line: extract <images or folders...> writes each level as .npy.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import * as cliProgress from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import sharp = require('sharp');

import { FeatureExtractor, defaultModelPath, imageToTensor, padToMultiple } from '../index';
import type { Device, Tensor4 } from '../types';
import { writeNpy } from './npy';
import { writePreview } from './preview';
import { setupCommand } from './setup';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);
const MAX_LEVELS = 10; // padding grows as 2^(levels-1); FILM uses 7
const DEVICE = /^(auto|cpu|cuda(:\d{1,4})?)$/;

interface Options {
  model?: string;
  device: Device;
  levels: number;
  out: string;
  preview: boolean;
  threads: number;
}

interface Failure {
  name: string;
  reason: string;
}

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const fail = (message: string): void => console.error(`film-features: ${message.replace(/^film-features: /, '')}`);
const ms = (t: number): string => `${(performance.now() - t).toFixed(0)} ms`;

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

function device(value: string): Device {
  if (!DEVICE.test(value)) throw new InvalidArgumentError("Expected 'auto', 'cpu', 'cuda' or 'cuda:N'.");
  return value as Device;
}

/** Files as given, and folders' images (not recursive), in name order with numbers ordered. */
async function expandInputs(inputs: string[]): Promise<{ files: string[]; failures: Failure[] }> {
  const files: string[] = [];
  const failures: Failure[] = [];
  for (const input of inputs) {
    try {
      if (!(await fs.stat(input)).isDirectory()) {
        files.push(input);
        continue;
      }
      const names = (await fs.readdir(input))
        .filter((name) => IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase()))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
      if (names.length === 0) failures.push({ name: input, reason: 'no .png, .jpg or .jpeg files in this folder' });
      files.push(...names.map((name) => path.join(input, name)));
    } catch (err) {
      failures.push({ name: input, reason: reason(err) });
    }
  }
  return { files, failures };
}

/** One output folder per image, named after it; a repeated name gets -2, -3, ... */
function outputDirs(files: string[], out: string): string[] {
  const used = new Map<string, number>();
  return files.map((file) => {
    const base = path.basename(file, path.extname(file));
    const count = (used.get(base) ?? 0) + 1;
    used.set(base, count);
    return path.join(out, count === 1 ? base : `${base}-${count}`);
  });
}

/** Creates `dir`, removing only files an earlier run wrote there (a run with more levels leaves extras). */
async function prepareDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const ours = /^(level\d+\.npy|meta\.json|preview\.png)$/;
  for (const name of await fs.readdir(dir)) if (ours.test(name)) await fs.rm(path.join(dir, name));
}

interface Extracted {
  info: sharp.OutputInfo;
  tensor: Tensor4;
  crop: ReturnType<typeof padToMultiple>['crop'];
  features: Tensor4[];
  times: string;
}

/** Decodes, pads and extracts one image. Throws with the reason if a step fails. */
async function extractImage(fx: FeatureExtractor, file: string, opts: Options): Promise<Extracted> {
  let t = performance.now();
  // toColourspace: greyscale files decode to 1 band otherwise
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw()
    .toBuffer({ resolveWithObject: true });
  const image = imageToTensor({ data, width: info.width, height: info.height, channels: info.channels as 3 });
  const { tensor, crop } = padToMultiple(image, 2 ** (opts.levels - 1));
  const decoded = ms(t);
  t = performance.now();
  const features: Tensor4[] = await fx.extract(tensor, { levels: opts.levels });
  return { info, tensor, crop, features, times: `decode ${decoded}, extract ${ms(t)}` };
}

/** Writes one image's levels, meta.json and preview. */
async function writeImage(x: Extracted, file: string, dir: string, fx: FeatureExtractor, opts: Options) {
  const t = performance.now();
  await prepareDir(dir);
  let bytes = 0;
  for (const [i, f] of x.features.entries()) {
    await writeNpy(path.join(dir, `level${i}.npy`), f.data, f.shape);
    bytes += f.data.byteLength;
  }
  const shapes = x.features.map((f) => f.shape);
  const meta = { source: file, width: x.info.width, height: x.info.height, levels: opts.levels, crop: x.crop, shapes, device: fx.device };
  // indented, but each shape on one line
  const json = JSON.stringify(meta, null, 2).replace(/\[[\d,\s]+\]/g, (xs) => JSON.stringify(JSON.parse(xs)));
  await fs.writeFile(path.join(dir, 'meta.json'), `${json}\n`);
  if (opts.preview) await writePreview(path.join(dir, 'preview.png'), x.tensor, x.features);
  const times = `${x.times}, write ${ms(t)} (${(bytes / 1e6).toFixed(1)} MB)`;
  return { width: x.info.width, height: x.info.height, padded: x.tensor.shape, shapes, times };
}

async function extract(inputs: string[], opts: Options): Promise<number> {
  const { files, failures } = await expandInputs(inputs);
  failures.forEach((f) => fail(`${f.name}: ${f.reason}`));
  const unreadable = failures.length; // inputs that gave no files: missing paths, empty folders
  if (files.length === 0) return 1;

  let t = performance.now();
  let fx: FeatureExtractor;
  try {
    if (opts.model !== undefined) await fs.access(opts.model);
    fx = await FeatureExtractor.load(opts.model, { device: opts.device, threads: opts.threads });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'ENOENT' ? `model file not found: ${opts.model}` : reason(err));
    return 1;
  }
  const { channels, subLevels } = fx.info;
  const model = opts.model ?? `${path.basename(defaultModelPath)} (shipped)`;
  console.log(`model ${model} (C=${channels}, S=${subLevels}, weights: ${fx.info.weights}) on ${fx.device}, loaded in ${ms(t)}`);

  const dirs = outputDirs(files, opts.out);
  const single = files.length === 1;
  // A bar only on a terminal; MultiBar because its log() prints failures above the bar.
  const format = '{bar} {value}/{total} images | {eta_formatted} left | {name}';
  const multi = !single && process.stderr.isTTY
    ? new cliProgress.MultiBar({ stream: process.stderr, format, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  const bar = multi?.create(files.length, 0, { name: '' });
  t = performance.now();
  const report = (file: string, err: unknown): void => {
    failures.push({ name: file, reason: reason(err) });
    const line = `film-features: ${file}: ${reason(err)}`;
    if (multi) multi.log(`${line}\n`);
    else console.error(line);
  };
  // Image i is written while image i + 1 is extracted: for batch jobs the writes (and the preview)
  // cost about as much as the extract.
  let writing: Promise<void> = Promise.resolve();
  for (const [i, file] of files.entries()) {
    bar?.update(i, { name: file });
    let extracted: Extracted;
    try {
      extracted = await extractImage(fx, file, opts);
    } catch (err) {
      report(file, err);
      continue;
    }
    await writing;
    writing = writeImage(extracted, file, dirs[i], fx, opts).then((r) => {
      const size = `${r.width}x${r.height}, padded to ${r.padded[3]}x${r.padded[2]}, ${opts.levels} levels`;
      if (single) {
        console.log(`${file}: ${size}`);
        r.shapes.forEach((s, level) => console.log(`  level ${level}: [${s.join(', ')}]`));
        console.log(`${r.times} -> ${dirs[i]}`);
      } else if (!multi) {
        console.log(`[${i + 1}/${files.length}] ${file}: ${size}; ${r.times} -> ${dirs[i]}`);
      }
    }, (err) => report(file, err));
  }
  await writing;
  bar?.update(files.length, { name: '' });
  multi?.stop();
  fx.dispose();
  if (!single) {
    const total = files.length + unreadable;
    const s = (performance.now() - t) / 1000;
    console.log(`${total} images in ${s.toFixed(1)} s (${(total / s).toFixed(2)} images/s), ${failures.length} failed`);
  }
  return failures.length > 0 ? 1 : 0;
}

/** Runs the CLI on process.argv-style arguments; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('film-features')
    .description("FILM's cascaded feature extractor over libtorch")
    .version((require('../../package.json') as { version: string }).version)
    .exitOverride() // throw instead of exiting, so usage errors map to exit code 2 here
    .showHelpAfterError('(run with --help for usage)');
  program.command('extract')
    .description('Writes each image\'s feature levels as .npy files: <out>/<name>/level<i>.npy, meta.json, preview.png')
    .argument('<inputs...>', 'image files (.png, .jpg, .jpeg) or folders of them (not recursive)')
    .option('--model <path>', 'TorchScript extractor (default: the model shipped in models/)')
    .option('--device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", device, 'auto' as Device)
    .option('--levels <n>', `pyramid levels, 1 to ${MAX_LEVELS}; images are zero-padded to a multiple of 2^(n-1)`, integer(1, MAX_LEVELS), 7)
    .option('--out <dir>', 'output folder', 'film-features-out')
    .option('--no-preview', 'skip preview.png (the input and each level in PCA colours)')
    .option('--threads <n>', 'CPU threads; 0 = every core', integer(0, 1024), 0)
    .addHelpText('after', '\nExit status: 0 when every image was written; 1 when any failed (the others are still\n' +
      'written) or the model did not load; 2 for bad usage.')
    .action(async (inputs: string[], opts: Options) => {
      code = await extract(inputs, opts);
    });
  program.addCommand(setupCommand((status) => { code = status; }));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return code;
}
