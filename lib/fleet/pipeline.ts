// One job through the extract pipeline: decode, extract, write each file under a temporary name and
// rename it into place, meta.json last. meta.json marks a complete output, so a job that runs again
// (its worker was killed after writing) finds the output complete and writes nothing twice.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import sharp = require('sharp');

import type { FeatureExtractor } from '../feature-extractor';
import { imageToTensor } from '../image';
import { padToMultiple } from '../pyramid';
import { writeNpy } from '../cli/npy';
import type { FleetJobData } from './job';

export interface JobResult {
  output: string;
  /** The output was already complete: nothing was written. */
  skipped: boolean;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (percent: number) => void;
}

/** A failure that another try cannot fix: the input is missing or is not an image. */
class PermanentError extends Error {}

export function isPermanent(err: unknown): boolean {
  return err instanceof PermanentError;
}

const TEMP = /^\..+\.tmp-\d+-[0-9a-f]{8}$/;
const tempName = (file: string): string =>
  path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);

async function writeAtomic(file: string, write: (temp: string) => Promise<void>): Promise<void> {
  const temp = tempName(file);
  try {
    await write(temp);
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
}

async function isComplete(dir: string, input: string): Promise<boolean> {
  try {
    const meta = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8')) as { source?: unknown };
    return meta.source === input;
  } catch {
    return false;
  }
}

/** Temporary files a killed worker left behind. */
async function removeStale(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) if (TEMP.test(name)) await fs.rm(path.join(dir, name), { force: true });
}

export async function runJob(fx: FeatureExtractor, job: FleetJobData, opts: RunOptions = {}): Promise<JobResult> {
  const { input, output } = job;
  const levels = typeof job.options.levels === 'number' ? job.options.levels : 7;
  const progress = opts.onProgress ?? (() => {});
  const check = () => opts.signal?.throwIfAborted();
  if (await isComplete(output, input)) {
    progress(100);
    return { output, skipped: true };
  }
  let decoded;
  try {
    decoded = await sharp(input).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new PermanentError(`cannot decode ${input}: ${(err as Error).message}`);
  }
  progress(10);
  check();
  await fs.mkdir(output, { recursive: true });
  await removeStale(output);
  const { data, info } = decoded;
  const image = imageToTensor({ data, width: info.width, height: info.height, channels: info.channels as 3 });
  const { tensor, crop } = padToMultiple(image, 2 ** (levels - 1));
  const features = await fx.extract(tensor, { levels });
  progress(70);
  for (const [i, f] of features.entries()) {
    check();
    await writeAtomic(path.join(output, `level${i}.npy`), (temp) => writeNpy(temp, f.data, f.shape));
    progress(70 + Math.round((25 * (i + 1)) / features.length));
  }
  const meta = { source: input, width: info.width, height: info.height, levels, crop, shapes: features.map((f) => f.shape), device: fx.device };
  await writeAtomic(path.join(output, 'meta.json'), (temp) => fs.writeFile(temp, `${JSON.stringify(meta, null, 2)}\n`));
  progress(100);
  return { output, skipped: false };
}
