// The batch pipeline: decode -> extract -> write, with bounded queues between the stages.
// The source decodes one frame ahead; `jobs` extracts run at once; one writer converts and writes.
// Frames holding features are capped at jobs + 1 slots, a frame taking slots in proportion to its
// pixels (a large one takes them all, so it is alone): that bounds memory, as features are ~50x
// the bytes of the decoded frame.
import * as path from 'node:path';

import { withCode } from '../errors';
import type { FeatureExtractor } from '../feature-extractor';
import { defaultModelPath } from '../feature-extractor';
import { framePlan, keptBox, runFrame, runFrameHeld, type Padding } from '../frame-plan';
import { native, type HeldOutputs, type NativeInput, type NativeOutput } from '../native';
import { paddedSize } from '../pyramid';
import type { CropBox } from '../types';
import { extractFrameInBands, type BandProgress } from './bands';
import type { LevelBuffer } from './encode';
import { framesOf, framesOfAll, type Size, type SourceEvent } from './frames';
import { nameClash, type InputItem } from './inputs';
import type { Chunk } from './write';
import { npyHeader, safetensorsHeader } from './formats';
import { DEFAULT_FRAMES, type FrameOptions, type OutputOptions } from './batch-options';
import { sha256File } from './digest';
import { checkOutputName } from './names';
import { writeUnit, type OutputFile } from './output';
import { LAYOUT, WRITER } from './ownership';
import { frameTile, previewPng, PreviewSampler } from './preview';
import { Semaphore } from './semaphore';

/** Frames above this many pixels are extracted alone, in bands (bands.ts), and written alone. */
export const LARGE_FRAME_PIXELS = 4_000_000;

export const packageVersion: string = (require('../../package.json') as { version: string }).version;

/**
 * The bounds a pipeline runs under: extracts in flight, frames holding features (a large frame
 * takes every slot, so it is alone) and one writer. Runs that share one (a fleet worker's
 * concurrent jobs) share the bounds, so together they hold what one run would.
 */
export class PipelineLimits {
  /** Frames between decoded and written: jobs + 1 slots. */
  readonly holding: Semaphore;
  readonly extracting: Semaphore;
  #writer: Promise<void> = Promise.resolve();

  constructor(readonly jobs = 2) {
    if (!Number.isInteger(jobs) || jobs < 1) throw new RangeError(`Expected an integer jobs >= 1 but received ${jobs}`);
    this.holding = new Semaphore(jobs + 1);
    this.extracting = new Semaphore(jobs);
  }

  /**
   * Takes a frame's slots: `weight` holding slots, then an extracting one. Resolves once both are
   * the caller's, who releases them through the returned FrameSlots on every path; rejects having
   * kept none (the signal fired during a wait, or before or after the slots were granted).
   */
  async admit(weight: number, signal?: AbortSignal): Promise<FrameSlots> {
    await this.holding.acquire(weight, signal);
    try {
      await this.extracting.acquire(1, signal);
    } catch (err) {
      this.holding.release(weight);
      throw err;
    }
    const slots = new FrameSlots(this, weight);
    if (signal?.aborted) { // granted as the signal fired: never the caller's
      slots.release();
      throw signal.reason;
    }
    return slots;
  }

  /** Runs `write` after every write queued before it (one write at a time, in turn). */
  write(write: () => Promise<void>): Promise<void> {
    const turn = this.#writer.then(write);
    this.#writer = turn.catch(() => {});
    return turn;
  }
}

/** One frame's slots of a PipelineLimits (admit()); each is given back once, whatever calls come. */
export class FrameSlots {
  #extracting = true;
  #holding = true;

  constructor(readonly limits: PipelineLimits, readonly weight: number) {}

  /** The extract is done: the next frame may start extracting (the frame still holds its features). */
  releaseExtracting(): void {
    if (!this.#extracting) return;
    this.#extracting = false;
    this.limits.extracting.release();
  }

  /** The frame is written, skipped or has failed: every slot it still has goes back. */
  release(): void {
    this.releaseExtracting();
    if (!this.#holding) return;
    this.#holding = false;
    this.limits.holding.release(this.weight);
  }
}

export interface BatchContext {
  extractor: FeatureExtractor;
  /** The file the extractor was loaded from (default: the shipped model); recorded with its sha256. */
  modelFile?: string;
  output: OutputOptions;
  frames?: FrameOptions;
  /** Leave frames whose complete output (ours, from the same source) exists alone. */
  skipExisting?: boolean;
  /** Flush each frame's files and folder to the disk before it is renamed into place (slower). */
  fsync?: boolean;
  /** Extracts in flight (default 2: on the CPU two runs share the cores better than one). */
  jobs?: number;
  /** Bounds shared with other runs (then `jobs` is theirs); default: this run's own. */
  limits?: PipelineLimits;
  /** Frames with more pixels (padded) are extracted in bands, alone (default LARGE_FRAME_PIXELS). */
  largeFramePixels?: number;
  /** Decode, extract and write each frame before decoding the next (for comparison). */
  sequential?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: BatchEvent) => void;
}

interface FrameRef {
  /** The frame's place in the run, in source order from 0; events of one frame share it. */
  seq: number;
  item: InputItem;
  /** Frame index for videos and animated images; null for a still. */
  frame: number | null;
}

export type BatchEvent = FrameRef & (
  | {
    type: 'decoded'; width: number; height: number; original: Size | null; scaled: boolean;
    /** skipExisting found our complete output made with other options: what differs (it is made again). */
    redo?: string;
  }
  | { type: 'extracting'; pixels: number; /** large frames go in bands (see bands.ts) */ band?: BandProgress }
  | { type: 'writing'; level: number; /** 1-based place of the level among those saved */ index: number; of: number }
  | {
    type: 'written'; dir: string; bytes: number; ms: { decode: number; extract: number; write: number }; meta: FrameMeta;
    /** The output is in place and complete, but flushing its folder (--fsync) failed: it may not survive a power cut. */
    syncError?: Error;
  }
  | { type: 'skipped'; dir: string }
  | { type: 'failed'; error: Error });

export interface BatchSummary {
  /** Frames written (a still image is one frame). */
  written: number;
  /** Frames left alone because their output exists (skipExisting). */
  skipped: number;
  failed: { item: InputItem; frame: number | null; error: Error }[];
  bytes: number;
  /** The most bytes written for one frame. */
  largestBytes: number;
  seconds: number;
  /** Written frames per second of the run; failures do not count. */
  framesPerSecond: number;
  /** Summed stage times over written frames, ms. */
  ms: { decode: number; extract: number; write: number };
}

export interface FrameMeta {
  /** 'film-features': how an output folder is known to be ours (only ours is ever replaced). */
  writer: typeof WRITER;
  /** The version of this folder layout. */
  layout: number;
  source: string;
  frame: number | null;
  width: number;
  height: number;
  /** Size before --max-side scaled the frame down (null where not known: video). */
  original: Size | null;
  maxSide: number;
  padded: Size;
  /** Where the frame sits in the padded level 0. */
  crop: CropBox;
  /** Whether the levels were cut back to the crop box (else they cover the padded frame). */
  cropped: boolean;
  levels: number;
  savedLevels: number[];
  dtype: string;
  format: string;
  shapes: Record<string, number[]>;
  files: string[];
  model: { file: string; sha256: string };
  version: string;
  device: string;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** A frame's levels: each one's shape as written, and its bytes on demand (made once, when written). */
interface Levels {
  shapes: Record<string, number[]>;
  bytes: (level: number) => Chunk;
  /** Frees what was not written (held levels); called once the frame is written or has failed. */
  release?: () => void;
}

/**
 * A whole-frame run's levels held natively (cut and converted): each is written from native memory
 * into its file off the main thread, and freed once written. The main thread never holds them.
 */
function levelsFromHeld(held: HeldOutputs, o: OutputOptions): Levels {
  const shapes: Record<string, number[]> = {};
  o.saveLevels.forEach((level, i) => (shapes[`level${level}`] = held.shapes[i]));
  return {
    shapes,
    bytes: (level) => ({ levels: held.levels, index: o.saveLevels.indexOf(level) }),
    release: () => native().releaseLevels(held.levels),
  };
}

/** A whole-frame run's outputs, one per saved level, already cut and converted natively. */
function levelsFromOutputs(outputs: (NativeOutput | null)[], o: OutputOptions): Levels {
  const shapes: Record<string, number[]> = {};
  o.saveLevels.forEach((level, i) => (shapes[`level${level}`] = outputs[i]!.shape));
  return {
    shapes,
    bytes: (level) => {
      const i = o.saveLevels.indexOf(level);
      const { data } = outputs[i]!;
      outputs[i] = null; // the level can go once written
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    },
  };
}

function levelsFromBuffers(buffers: Map<number, LevelBuffer>): Levels {
  const shapes: Record<string, number[]> = {};
  for (const [level, buffer] of buffers) shapes[`level${level}`] = buffer.shape;
  return { shapes, bytes: (level) => buffers.get(level)!.encoded().bytes };
}

/** The files of one frame: levels as .npy or one .safetensors, maybe preview.png; meta.json's fields (writeUnit writes it). */
async function outputFiles(levels: Levels, preview: Buffer | null, meta: Omit<FrameMeta, 'shapes' | 'files'>, o: OutputOptions,
  onLevel: (level: number, k: number) => void): Promise<{ files: OutputFile[]; meta: FrameMeta }> {
  const { shapes } = levels;
  const files: OutputFile[] = [];
  if (preview) files.push({ name: 'preview.png', chunks: [preview] });
  function* encoded(level: number, k: number): Generator<Chunk> {
    onLevel(level, k);
    yield levels.bytes(level);
  }
  const names = o.format === 'npy' ? o.saveLevels.map((l) => `level${l}.npy`) : ['features.safetensors'];
  const full: FrameMeta = { ...meta, shapes, files: [...names, 'meta.json', ...(preview ? ['preview.png'] : [])] };
  if (o.format === 'npy') {
    o.saveLevels.forEach((level, k) => {
      files.push({ name: names[k], chunks: (function* () { yield npyHeader(shapes[`level${level}`], o.dtype); yield* encoded(level, k); })() });
    });
  } else {
    const sizes = o.saveLevels.map((l) => shapes[`level${l}`].reduce((a, b) => a * b, 1) * (o.dtype === 'float16' ? 2 : 4));
    const metadata = Object.fromEntries(Object.entries(full).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    const header = safetensorsHeader(o.saveLevels.map((l, k) => ({
      name: `level${l}`,
      level: { bytes: { byteLength: sizes[k] } as Uint8Array, shape: shapes[`level${l}`] as [number, number, number, number], dtype: o.dtype },
    })), metadata);
    files.push({ name: names[0], chunks: (function* () { yield header; for (const [k, l] of o.saveLevels.entries()) yield* encoded(l, k); })() });
  }
  return { files, meta: full };
}

/** Runs decoded frames through extract and write; the engine under processInput and runBatch. */
export async function runFrames(source: AsyncIterable<SourceEvent>, ctx: BatchContext): Promise<BatchSummary> {
  const { extractor: fx, output: o, signal } = ctx;
  const limits = ctx.limits ?? new PipelineLimits(ctx.jobs ?? 2);
  const { holding } = limits;
  const large = ctx.largeFramePixels ?? LARGE_FRAME_PIXELS;
  const emit = ctx.onEvent ?? (() => {});
  const modelFile = path.resolve(ctx.modelFile ?? defaultModelPath);
  const sha256 = await sha256File(modelFile);
  const summary: BatchSummary = {
    written: 0, skipped: 0, failed: [], bytes: 0, largestBytes: 0, seconds: 0, framesPerSecond: 0, ms: { decode: 0, extract: 0, write: 0 },
  };
  const started = performance.now();
  const multiple = 2 ** (o.levels - 1);
  const capacity = holding.capacity;
  const running = new Set<Promise<void>>();
  const written = new Map<InputItem, number>(); // frames written per input, for a damaged input's message

  const fail = (ref: FrameRef, err: unknown) => {
    const error = asError(err);
    summary.failed.push({ item: ref.item, frame: ref.frame, error });
    emit({ ...ref, type: 'failed', error });
  };

  /** Runs one frame; it owns `slots` from its first line, and gives them back on every path. */
  async function process(ref: FrameRef, ev: Extract<SourceEvent, { kind: 'frame' }>, slots: FrameSlots): Promise<void> {
    let levels: Levels | undefined;
    try {
      signal?.throwIfAborted();
      const t0 = performance.now();
      // The decoded bytes go to native code with the padding: it converts, pads, pools, extracts,
      // cuts and converts the levels off this thread (lib/frame-plan.ts).
      const { rgb } = ev;
      const image: NativeInput = { data: rgb.data, shape: [1, rgb.channels, rgb.height, rgb.width] };
      const { height: ph, width: pw, crop } = paddedSize(rgb.height, rgb.width, multiple);
      const pad: Padding = { height: ph, width: pw, top: crop.top, left: crop.left };
      const kept = o.crop ? crop : null;
      emit({ ...ref, type: 'extracting', pixels: ph * pw });
      // The preview is drawn from samples at its own size, of the levels as written.
      const samplers = new Map<number, PreviewSampler>();
      const sample = (level: number, rows: NativeOutput, first: number) => {
        const box = keptBox(pad, level, kept);
        let s = samplers.get(level);
        if (!s) samplers.set(level, s = new PreviewSampler(rows.shape[1], box.height, box.width));
        s.putRows(rows, first - box.top);
      };
      if (ph * pw > large) {
        const buffers = await extractFrameInBands(fx, image, pad, o.saveLevels, kept, o.dtype,
          (band) => emit({ ...ref, type: 'extracting', pixels: ph * pw, band }), signal, undefined, o.preview ? sample : undefined);
        levels = levelsFromBuffers(buffers);
      } else {
        const plan = framePlan(pad, o.saveLevels, kept, o.dtype === 'float16');
        if (o.preview) {
          // the preview samples the levels: they come to JS
          const outputs = await fx[runFrame](image, plan, signal);
          o.saveLevels.forEach((level, i) => sample(level, outputs[i], plan.boxes[i][0]));
          levels = levelsFromOutputs(outputs, o);
        } else {
          levels = levelsFromHeld(await fx[runFrameHeld](image, plan, signal), o);
        }
      }
      const preview = o.preview
        ? await previewPng(frameTile(rgb, pad, keptBox(pad, 0, kept)), o.saveLevels.map((l) => samplers.get(l)!.tensor)) : null;
      const extractMs = performance.now() - t0;
      slots.releaseExtracting();
      const frameLevels = levels;
      const write = async () => {
        signal?.throwIfAborted();
        const t1 = performance.now();
        const scaled = ev.original !== null && (ev.original.width !== ev.rgb.width || ev.original.height !== ev.rgb.height);
        const meta = {
          writer: WRITER, layout: LAYOUT, source: ev.item.source, frame: ev.frame, width: ev.rgb.width, height: ev.rgb.height,
          original: scaled ? ev.original : null, maxSide: o.maxSide, padded: { width: pw, height: ph }, crop, cropped: o.crop,
          levels: o.levels, savedLevels: o.saveLevels, dtype: o.dtype, format: o.format,
          model: { file: modelFile, sha256 }, version: packageVersion, device: fx.device,
        };
        const { files, meta: full } = await outputFiles(frameLevels, preview, meta, o,
          (level, k) => emit({ ...ref, type: 'writing', level, index: k + 1, of: o.saveLevels.length }));
        const { bytes, syncError } = await writeUnit(ev.dir, files, { source: ev.item.source, frame: ev.frame !== null, signal, fsync: ctx.fsync, meta: full });
        written.set(ev.item, (written.get(ev.item) ?? 0) + 1);
        const ms = { decode: ev.decodeMs, extract: extractMs, write: performance.now() - t1 };
        summary.written++;
        summary.bytes += bytes;
        summary.largestBytes = Math.max(summary.largestBytes, bytes);
        summary.ms.decode += ms.decode;
        summary.ms.extract += ms.extract;
        summary.ms.write += ms.write;
        emit({ ...ref, type: 'written', dir: ev.dir, bytes, ms, meta: full, ...(syncError ? { syncError } : {}) });
      };
      await limits.write(write);
    } catch (err) {
      if (!signal?.aborted) fail(ref, err);
    } finally {
      levels?.release?.();
      slots.release();
    }
  }

  let seq = 0;
  let aborted: unknown;
  try {
    for await (const ev of source) {
      const ref: FrameRef = { seq: seq++, item: ev.item, frame: ev.frame };
      if (ev.kind === 'skipped') {
        summary.skipped++;
        emit({ ...ref, type: 'skipped', dir: ev.dir });
        continue;
      }
      if (ev.kind === 'failed') {
        if (ev.frame === null && ev.item.kind === 'video' && (ev.error as { code?: string }).code === 'ERR_FILM_DAMAGED_INPUT') {
          await Promise.all(running); // its frames decoded before the damage: say how many are written
          const n = written.get(ev.item) ?? 0;
          ev.error.message += `; ${n} frame(s) written, which are complete; it is not (a resume decodes it again)`;
        }
        written.delete(ev.item);
        fail(ref, ev.error);
        continue;
      }
      const { width, height } = ev.rgb;
      const scaled = ev.original !== null && (ev.original.width !== width || ev.original.height !== height);
      emit({ ...ref, type: 'decoded', width, height, original: ev.original, scaled, ...(ev.redo ? { redo: ev.redo } : {}) });
      // a frame holds slots in proportion to its pixels: the frames in memory add up to about one large frame
      const weight = Math.min(capacity, Math.max(1, Math.ceil((width * height * capacity) / large)));
      const slots = await limits.admit(weight, signal); // both slots, or none and a rejection
      const task = process(ref, ev, slots); // owns the slots from here
      running.add(task);
      void task.finally(() => running.delete(task));
      if (ctx.sequential) await task;
    }
  } catch (err) {
    aborted = err;
  }
  await Promise.all(running);
  if (aborted !== undefined) throw aborted;
  signal?.throwIfAborted();
  summary.seconds = (performance.now() - started) / 1000;
  summary.framesPerSecond = summary.seconds > 0 ? summary.written / summary.seconds : 0;
  return summary;
}

function sourceOptions(ctx: BatchContext) {
  return {
    out: ctx.output.out, output: ctx.output, modelFile: path.resolve(ctx.modelFile ?? defaultModelPath), frames: ctx.frames ?? DEFAULT_FRAMES,
    skipExisting: ctx.skipExisting ?? false, signal: ctx.signal,
  };
}

/**
 * Processes one input end to end: a still image, or every frame taken of a video or animated image.
 * Each frame's output appears complete or not at all. Decode, extract and write failures are in the
 * summary's `failed` (a video that cannot be opened is one failure with frame null); an abort
 * through ctx.signal rejects with its reason, leaving only complete outputs.
 */
export async function processInput(item: InputItem, ctx: BatchContext): Promise<BatchSummary> {
  checkOutputName(item.name);
  return runFrames(framesOf(item, sourceOptions(ctx)), ctx);
}

/** Processes many inputs as one pipeline (the next input is decoded while the last is extracted). */
export async function runBatch(items: readonly InputItem[], ctx: BatchContext): Promise<BatchSummary> {
  items.forEach((item, i) => checkOutputName(item.name, `items[${i}].name`));
  const clash = nameClash(items.map((item) => item.name));
  if (clash) {
    throw withCode(new RangeError(`Expected distinct output names, none the folder of another, but received ${JSON.stringify(clash[0])} ` +
      `and ${JSON.stringify(clash[1])} (expandInputs gives such names)`), 'ERR_INVALID_ARG_VALUE');
  }
  return runFrames(framesOfAll(items, sourceOptions(ctx)), ctx);
}
