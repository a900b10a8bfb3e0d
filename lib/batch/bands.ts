// Large frames are extracted in horizontal bands, so memory holds the output plus one band's
// work instead of every float32 level and the network's activations for the whole frame.
//
// Exact, not approximate: each band is a frame run (lib/frame-plan.ts) over rows of the frame's own
// pyramid with a halo of rows above and below, wider than the receptive field of the levels taken
// from it, at offsets that keep every 2x2 pooling grid aligned with the whole frame's. Native code
// pools only the band's rows of level 0 (aligned, they give the band's rows of every level), runs,
// and keeps only the rows that belong to the band, cut to the crop box and converted: rows inside
// the band see the same inputs as in a whole-frame run; the halo rows, which saw the band's zero
// padding, are dropped. (Values agree to float rounding, ~1e-7: convolution kernels may sum in
// another order for another height.)
//
// Output level i is the concatenation of stage j of the sub-tree on pyramid level i-j (j < S), so
// levels below S need pyramid level 0, and level i >= S needs only levels i-S+1 and up: those
// come from a run on the smaller pyramid starting there (a quarter of the pixels per level up).
import type { FeatureExtractor } from '../feature-extractor';
import { firstKeptRow, framePlan, runFrame, type Padding } from '../frame-plan';
import { native, type NativeInput, type NativeOutput } from '../native';
import type { CropBox, Tensor4 } from '../types';
import { checkTensor4 } from '../validate';
import { LevelBuffer } from './encode';
import type { Dtype } from './batch-options';

/** Pixels of the base pyramid level per band (plus its halo). */
export const BAND_PIXELS = 750_000;

/**
 * How far (in pixels of the run's base level) a cut edge reaches into output level r of a run:
 * the two 3x3 convolutions of stage j reach 2 pixels at its scale 2^j, plus a pixel of the scale
 * before for each 2x2 pooling: R_0 = 2, R_j = 2^(j+1) + R_(j-1) + 2^(j-1); level r takes stage j
 * from pyramid level r - j, a scale 2^(r-j) coarser.
 */
export function reach(r: number, subLevels: number): number {
  const stage = [2];
  for (let j = 1; j < subLevels; j++) stage.push(2 ** (j + 1) + stage[j - 1] + 2 ** (j - 1));
  let most = 0;
  for (let j = 0; j <= Math.min(r, subLevels - 1); j++) most = Math.max(most, stage[j] * 2 ** (r - j));
  return most;
}

/** One run over pyramid levels base..top, giving saved levels `levels` (base <= each <= top). */
interface Run {
  base: number;
  top: number;
  levels: number[];
}

/** Saved levels grouped by the lowest pyramid level they need. */
export function planRuns(saveLevels: readonly number[], subLevels: number): Run[] {
  const runs = new Map<number, Run>();
  for (const level of saveLevels) {
    const base = Math.max(0, level - subLevels + 1);
    const run = runs.get(base) ?? { base, top: level, levels: [] };
    run.top = Math.max(run.top, level);
    run.levels.push(level);
    runs.set(base, run);
  }
  return [...runs.values()].sort((a, b) => a.base - b.base);
}

export interface BandProgress {
  band: number;
  of: number;
}

/** Kept rows of a band's level: [n, c, k, box width] (float16 bits or float32), the first being level row `first`. */
export type BandRows = (level: number, rows: NativeOutput, first: number) => void;

/**
 * Extracts `saveLevels` of a padded frame (height and width multiples of 2^(levels-1)) in bands,
 * each level cut to `crop` (if given) and converted to `dtype`. onRows sees each band's kept rows.
 */
export async function extractInBands(fx: FeatureExtractor, padded: Tensor4, saveLevels: readonly number[], crop: CropBox | null,
  dtype: Dtype, onBand?: (p: BandProgress) => void, signal?: AbortSignal, bandPixels = BAND_PIXELS, onRows?: BandRows): Promise<Map<number, LevelBuffer>> {
  const t = checkTensor4(padded, 'padded');
  const [, , height, width] = t.shape;
  return extractFrameInBands(fx, t, { height, width, top: 0, left: 0 }, saveLevels, crop, dtype, onBand, signal, bandPixels, onRows);
}

/** The same for a frame as decoded (8-bit interleaved, or float planar) and its padding. */
export async function extractFrameInBands(fx: FeatureExtractor, image: NativeInput, pad: Padding, saveLevels: readonly number[],
  crop: CropBox | null, dtype: Dtype, onBand?: (p: BandProgress) => void, signal?: AbortSignal, bandPixels = BAND_PIXELS,
  onRows?: BandRows): Promise<Map<number, LevelBuffer>> {
  const subLevels = fx.info.subLevels;
  const runs = planRuns(saveLevels, subLevels);
  const plans = runs.map((run) => {
    const [h, w] = [pad.height >> run.base, pad.width >> run.base];
    const align = 2 ** (run.top - run.base); // keeps the pooling grids of levels base..top aligned
    const halo = Math.ceil(reach(run.top - run.base, subLevels) / align) * align;
    const band = Math.max(align, Math.round(bandPixels / w / align) * align);
    const starts: number[] = [];
    for (let y = 0; y < h; y += band) starts.push(y);
    return { run, h, halo, band, starts };
  });
  // output level i has C * (2^(min(i, S-1) + 1) - 1) channels: stages 0..min(i, S-1) concatenated
  const channels = (level: number) => fx.info.channels * (2 ** (Math.min(level, subLevels - 1) + 1) - 1);
  const buffers = new Map<number, LevelBuffer>();
  for (const level of saveLevels) {
    buffers.set(level, new LevelBuffer([image.shape[0], channels(level), pad.height >> level, pad.width >> level], crop, level, dtype));
  }
  const total = plans.reduce((sum, p) => sum + p.starts.length, 0);
  let done = 0;
  for (const { run, h, halo, band, starts } of plans) {
    for (const y0 of starts) {
      signal?.throwIfAborted();
      onBand?.({ band: ++done, of: total });
      const y1 = Math.min(h, y0 + band);
      const plan = framePlan(pad, run.levels, crop, dtype === 'float16',
        { base: run.base, from: Math.max(0, y0 - halo), to: Math.min(h, y1 + halo), ownFrom: y0, ownTo: y1 });
      const out = await fx[runFrame](image, plan, signal);
      run.levels.forEach((level, i) => {
        if (out[i].shape[1] !== channels(level)) throw new Error(`level ${level} has ${out[i].shape[1]} channels, expected ${channels(level)}`);
        const first = firstKeptRow(plan, i);
        buffers.get(level)!.putRows(out[i], first);
        onRows?.(level, out[i], first);
      });
      // Bands of different heights (the last one, other runs) need blocks of other sizes: the cache
      // is emptied when nothing runs (not under other jobs' runs, and off this thread), else it
      // keeps every size it has seen, up to its cap.
      native().releaseWhenIdle();
      // The band's outputs are the extractor's memory, freed when collected: collect now if node
      // runs with --expose-gc, rather than when V8 next gets round to it.
      (globalThis as { gc?: () => void }).gc?.();
    }
  }
  return buffers;
}
