// Frame runs, the batch pipeline's one pixel path: the frame's pixels as decoded (8-bit) go to the
// binding with a plan, and native code converts, pads, pools, extracts, cuts each kept level to its
// box and converts it to float16, off the main thread (native/frame_run.h). Plans are computed and
// checked here; the binding re-checks only what keeps its reads and writes in bounds.
import type { FramePlan } from './native';
import { levelBox } from './pyramid';
import type { CropBox } from './types';

export type { FramePlan };

/** The padded frame: its size, and where the image sits in it (pyramid.ts paddedSize). */
export interface Padding {
  height: number;
  width: number;
  top: number;
  left: number;
}

/** FeatureExtractor's frame run (internal: the batch pipeline's, not part of the public API). */
export const runFrame: unique symbol = Symbol('film-features.runFrame');
/** The same, with the kept levels held natively for the writer (native().writeFiles). */
export const runFrameHeld: unique symbol = Symbol('film-features.runFrameHeld');

/** The box kept of `level`: the crop box on it, or the whole level. */
export function keptBox(pad: Padding, level: number, crop: CropBox | null): CropBox {
  const [h, w] = [pad.height >> level, pad.width >> level];
  return crop ? levelBox(crop, level, h, w) : { top: 0, left: 0, height: h, width: w };
}

/**
 * A plan for rows [from, to) of pyramid level `base` (a band with its halo; the whole level by
 * default), keeping `keep`'s rows under [ownFrom, ownTo), each cut to keptBox.
 */
export function framePlan(pad: Padding, keep: readonly number[], crop: CropBox | null, half: boolean,
  band?: { base: number; from: number; to: number; ownFrom: number; ownTo: number }): FramePlan {
  const b = band ?? { base: 0, from: 0, to: pad.height, ownFrom: 0, ownTo: pad.height };
  return {
    pad: [pad.height, pad.width, pad.top, pad.left],
    base: b.base,
    rows: [b.from, b.to],
    own: [b.ownFrom, b.ownTo],
    keep: [...keep],
    boxes: keep.map((level) => {
      const box = keptBox(pad, level, crop);
      return [box.top, box.left, box.height, box.width];
    }),
    half,
  };
}

/** The first row (in the whole level) of what a plan keeps of keep[i], as native computes it. */
export function firstKeptRow(plan: FramePlan, i: number): number {
  return Math.max(plan.own[0] >> (plan.keep[i] - plan.base), plan.boxes[i][0]);
}
