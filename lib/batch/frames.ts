// Decoding: every input as a sequence of RGB frames, each once its plan (plan.ts) says to write it.
// Stills are one frame (EXIF orientation applied); animated images give each page; videos each
// frame ffmpeg decodes.

import sharp = require('sharp');

import type { InputItem } from './inputs';
import { takesFrame, type FrameOptions, type OutputOptions } from './batch-options';
import { imageDecodeProblem } from '../decode-error';
import { unitDir } from './names';
import { planFrame, planVideoFolder } from './plan';
import { videoFrames, type RgbFrame } from './video';

export type { RgbFrame } from './video';

export interface Size {
  width: number;
  height: number;
}

/** A frame ready to extract, or one that was skipped or failed to decode. */
export type SourceEvent =
  | {
    kind: 'frame'; item: InputItem; frame: number | null; dir: string; rgb: RgbFrame; original: Size | null; decodeMs: number;
    /** Our complete output is there, made with other options (skipExisting): what differs; it is made again. */
    redo?: string;
  }
  | { kind: 'skipped'; item: InputItem; frame: number | null; dir: string }
  | { kind: 'failed'; item: InputItem; frame: number | null; error: Error };

export interface SourceOptions {
  out: string;
  /** What the outputs are made with: an output made otherwise is not skipped (skipExisting). */
  output: OutputOptions;
  modelFile: string;
  frames: FrameOptions;
  skipExisting: boolean;
  signal?: AbortSignal;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
/** An image sharp could not read: the cause in plain words and what to do (decode-error.ts). */
const undecodable = (err: unknown): Error => new Error(imageDecodeProblem(err), { cause: err });

/**
 * One page of an image, upright (EXIF orientation applied), scaled to fit maxSide, as RGB.
 * `metadata`: what sharp(file).metadata() gave, when the caller has it (a still is then read once).
 */
export async function decodeImage(file: string, page: number | null, maxSide: number, metadata?: sharp.Metadata): Promise<{ rgb: RgbFrame; original: Size }> {
  const options: sharp.SharpOptions = page === null ? {} : { page, pages: 1 };
  let image = sharp(file, options).rotate(); // no angle: from the EXIF orientation
  const meta = page === null && metadata ? metadata : await image.metadata();
  const turned = (meta.orientation ?? 1) >= 5; // orientations 5..8 swap width and height
  const h = page === null ? meta.height : (meta.pageHeight ?? meta.height);
  const original = turned ? { width: h, height: meta.width } : { width: meta.width, height: h };
  if (maxSide > 0 && Math.max(original.width, original.height) > maxSide) {
    image = image.resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true });
  }
  // toColourspace: greyscale files decode to 1 band otherwise; removeAlpha: RGBA to RGB
  const { data, info } = await image.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { rgb: { data, width: info.width, height: info.height, channels: 3 }, original };
}

async function* imageFrames(item: InputItem, o: SourceOptions): AsyncGenerator<SourceEvent> {
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(item.source).metadata();
  } catch (err) {
    yield { kind: 'failed', item, frame: null, error: undecodable(err) };
    return;
  }
  const pages = metadata.pages ?? 1;
  const indices = pages > 1 ? Array.from({ length: pages }, (_, i) => i).filter((i) => takesFrame(o.frames, i)) : [null];
  if (pages > 1) {
    const failed = await planVideoFolder(item, o);
    if (failed) {
      yield failed;
      return;
    }
  }
  for (const frame of indices) {
    o.signal?.throwIfAborted();
    const dir = unitDir(o.out, item, frame);
    const settled = await planFrame(item, frame, dir, o);
    if (settled.kind !== 'write') {
      yield settled;
      continue;
    }
    const t = performance.now();
    let decoded;
    try {
      decoded = await decodeImage(item.source, frame, o.output.maxSide, metadata);
    } catch (err) {
      yield { kind: 'failed', item, frame, error: undecodable(err) };
      continue;
    }
    yield { kind: 'frame', item, frame, dir, ...decoded, decodeMs: performance.now() - t, redo: settled.redo };
  }
}

async function* videoSource(item: InputItem, o: SourceOptions): AsyncGenerator<SourceEvent> {
  let index = 0;
  let t = performance.now();
  try {
    const failed = await planVideoFolder(item, o);
    if (failed) {
      yield failed;
      return;
    }
    for await (const rgb of videoFrames(item.source, { maxSide: o.output.maxSide, limit: o.frames.end, signal: o.signal })) {
      const frame = index++;
      if (!takesFrame(o.frames, frame)) continue;
      const dir = unitDir(o.out, item, frame);
      const settled = await planFrame(item, frame, dir, o);
      if (settled.kind !== 'write') {
        yield settled;
      } else {
        // (the size before --max-side is not known without probing the file)
        yield { kind: 'frame', item, frame, dir, rgb, original: null, decodeMs: performance.now() - t, redo: settled.redo };
      }
      t = performance.now();
    }
  } catch (err) {
    o.signal?.throwIfAborted();
    yield { kind: 'failed', item, frame: null, error: asError(err) };
    return;
  }
  if (index === 0) yield { kind: 'failed', item, frame: null, error: new Error('ffmpeg decoded no video frames') };
}

/** The frames of one input, in order. Decode errors are yielded, not thrown; an abort throws. */
export function framesOf(item: InputItem, options: SourceOptions): AsyncGenerator<SourceEvent> {
  return item.kind === 'video' ? videoSource(item, options) : imageFrames(item, options);
}

/** The frames of every input, one input after another. */
export async function* framesOfAll(items: Iterable<InputItem>, options: SourceOptions): AsyncGenerator<SourceEvent> {
  for (const item of items) yield* framesOf(item, options);
}
