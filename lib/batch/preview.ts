// A preview PNG of an image's features: each level's channels projected to RGB by PCA, tiled.
import sharp = require('sharp');

import type { NativeOutput } from '../native';
import type { CropBox, Tensor4 } from '../types';

const MAX_SAMPLES = 1024; // pixels the PCA is fitted on: plenty for 3 components, fast for 960 channels
const ITERATIONS = 15;
const MAX_TILE = 512; // longest side of a tile; bigger frames are shown smaller
const GAP = 4;

interface Rgb {
  data: Uint8Array | Uint8ClampedArray; // interleaved RGB
  width: number;
  height: number;
}

/** Pixel indices spread over the frame without lining up with rows (golden-ratio sequence). */
function samplePixels(count: number): Uint32Array {
  const n = Math.min(count, MAX_SAMPLES);
  const out = new Uint32Array(n);
  for (let k = 0; k < n; k++) out[k] = n === count ? k : Math.floor(((k * 0.6180339887498949) % 1) * count);
  return out;
}

/**
 * Top 3 principal directions of the sampled pixels' channel vectors (x is channel-major, centred:
 * x[c * n + s]), by subspace iteration with the 3 axes fused into each pass over x.
 * Axes past the channel count stay zero.
 */
function principalAxes(x: Float32Array, channels: number, n: number): Float64Array[] {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
  const axes = [0, 1, 2].map(() => Float64Array.from({ length: channels }, rand));
  const [y0, y1, y2] = [0, 1, 2].map(() => new Float64Array(n));
  for (let it = 0; it < ITERATIONS; it++) {
    const [v0, v1, v2] = axes;
    y0.fill(0), y1.fill(0), y2.fill(0);
    for (let c = 0; c < channels; c++) { // y = X v
      const a = v0[c], b = v1[c], d = v2[c];
      for (let s = 0, o = c * n; s < n; s++) {
        const xv = x[o + s];
        y0[s] += xv * a, y1[s] += xv * b, y2[s] += xv * d;
      }
    }
    for (let c = 0; c < channels; c++) { // v = X^T y
      let a = 0, b = 0, d = 0;
      for (let s = 0, o = c * n; s < n; s++) {
        const xv = x[o + s];
        a += xv * y0[s], b += xv * y1[s], d += xv * y2[s];
      }
      v0[c] = a, v1[c] = b, v2[c] = d;
    }
    axes.forEach((v, j) => { // Gram-Schmidt
      for (let i = 0; i < j; i++) {
        const dot = v.reduce((sum, a, c) => sum + a * axes[i][c], 0);
        v.forEach((a, c) => (v[c] = a - dot * axes[i][c]));
      }
      const norm = j < channels ? Math.hypot(...v) : 0;
      v.forEach((a, c) => (v[c] = norm ? a / norm : 0));
    });
  }
  // Signs are arbitrary; fix them so the same features always get the same colours.
  for (const v of axes) {
    const big = v.reduce((best, a, c) => (Math.abs(a) > Math.abs(v[best]) ? c : best), 0);
    if (v[big] < 0) v.forEach((a, c) => (v[c] = -a));
  }
  return axes;
}

/** Batch item 0 of a feature level as RGB: its first 3 principal components, each stretched to 0..255. */
export function pcaToRgb(feature: Tensor4): Rgb {
  const [, channels, height, width] = feature.shape;
  const plane = height * width;
  const f = feature.data;
  const picks = samplePixels(plane);
  const n = picks.length;
  const mean = new Float64Array(channels);
  const x = new Float32Array(channels * n);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let s = 0; s < n; s++) sum += f[c * plane + picks[s]];
    mean[c] = sum / n;
    for (let s = 0; s < n; s++) x[c * n + s] = f[c * plane + picks[s]] - mean[c];
  }
  const [v0, v1, v2] = principalAxes(x, channels, n);
  const proj = [0, 1, 2].map(() => new Float32Array(plane));
  const [p0, p1, p2] = proj;
  for (let c = 0; c < channels; c++) {
    const a = v0[c], b = v1[c], d = v2[c], m = mean[c];
    for (let p = 0, o = c * plane; p < plane; p++) {
      const xv = f[o + p] - m;
      p0[p] += xv * a, p1[p] += xv * b, p2[p] += xv * d;
    }
  }
  const data = new Uint8ClampedArray(plane * 3); // clamps what falls outside the percentiles
  proj.forEach((pj, j) => {
    // 1st..99th percentile of the samples, so a few extreme pixels do not wash the rest out
    const sorted = Float32Array.from(picks, (p) => pj[p]).sort();
    const lo = sorted[Math.floor(0.01 * (n - 1))];
    const hi = sorted[Math.ceil(0.99 * (n - 1))];
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let p = 0; p < plane; p++) data[p * 3 + j] = scale ? (pj[p] - lo) * scale : 128;
  });
  return { data, width, height };
}

/**
 * The part of an interleaved frame (3 or 4 channels) a preview shows: `box` of the frame padded
 * with zeros to height x width, the frame's top-left at (top, left).
 */
export function frameTile(frame: { data: Uint8Array; width: number; height: number; channels: number },
  pad: { height: number; width: number; top: number; left: number }, box: CropBox): Rgb {
  const data = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const fy = box.top + y - pad.top;
    if (fy < 0 || fy >= frame.height) continue;
    for (let x = 0; x < box.width; x++) {
      const fx = box.left + x - pad.left;
      if (fx < 0 || fx >= frame.width) continue;
      const s = (fy * frame.width + fx) * frame.channels;
      data.set(frame.data.subarray(s, s + 3), (y * box.width + x) * 3);
    }
  }
  return { data, width: box.width, height: box.height };
}

let halfToFloat: Float32Array | undefined;

/** float16 bits -> float32, by a table made on first use. */
function halfTable(): Float32Array {
  if (halfToFloat) return halfToFloat;
  halfToFloat = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const e = (h >> 10) & 31;
    const m = h & 1023;
    const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
    halfToFloat[h] = h & 0x8000 ? -v : v;
  }
  return halfToFloat;
}

/** The size a frame of h x w is shown at in a preview tile. */
export function tileSize(h: number, w: number): { height: number; width: number } {
  const scale = Math.min(1, MAX_TILE / Math.max(h, w));
  return { height: Math.max(1, Math.round(h * scale)), width: Math.max(1, Math.round(w * scale)) };
}

/**
 * A level of `height` x `width` sampled (nearest neighbour) at most at the tile size, filled from
 * bands of rows as they are extracted: a preview of a frame too large to hold its levels in float32.
 */
export class PreviewSampler {
  readonly tensor: Tensor4;
  readonly #rows: Int32Array; // the level row each tile row samples
  readonly #cols: Int32Array;

  constructor(channels: number, readonly height: number, readonly width: number) {
    const size = tileSize(height, width);
    this.#rows = Int32Array.from({ length: size.height }, (_, y) => Math.floor((y * height) / size.height));
    this.#cols = Int32Array.from({ length: size.width }, (_, x) => Math.floor((x * width) / size.width));
    this.tensor = { data: new Float32Array(channels * size.height * size.width), shape: [1, channels, size.height, size.width] };
  }

  /** Takes rows [n, c, k, width] (float32, or float16 bits), the first being row `first` (batch item 0). */
  putRows(rows: Pick<NativeOutput, 'data' | 'shape'>, first: number): void {
    const [, c, k, bw] = rows.shape;
    const [, , th, tw] = this.tensor.shape;
    const out = this.tensor.data;
    const src = rows.data;
    const table = src instanceof Uint16Array ? halfTable() : null;
    this.#rows.forEach((sy, ty) => {
      if (sy < first || sy >= first + k) return;
      for (let ch = 0; ch < c; ch++) {
        const from = (ch * k + sy - first) * bw;
        const dst = (ch * th + ty) * tw;
        for (let tx = 0; tx < tw; tx++) out[dst + tx] = table ? table[src[from + this.#cols[tx]]] : src[from + this.#cols[tx]];
      }
    });
  }
}

/**
 * A PNG of the input (the part written: padded, or cropped; frameTile), then each feature level in
 * PCA colours, all at the input's size (nearest neighbour), in a grid read left to right, top to
 * bottom. Levels sampled at the tile size (PreviewSampler) give the same picture as full-size ones.
 */
export async function previewPng(image: Rgb, features: Tensor4[]): Promise<Buffer> {
  const tiles = [image, ...features.map(pcaToRgb)];
  const { height: h, width: w } = image;
  const { height: th, width: tw } = tileSize(h, w);
  const cols = tiles.length <= 3 ? tiles.length : Math.ceil(tiles.length / 2);
  const rows = Math.ceil(tiles.length / cols);
  const width = cols * tw + (cols + 1) * GAP;
  const height = rows * th + (rows + 1) * GAP;
  const canvas = new Uint8Array(width * height * 3).fill(40);
  tiles.forEach((tile, i) => {
    const left = GAP + (i % cols) * (tw + GAP);
    const top = GAP + Math.floor(i / cols) * (th + GAP);
    for (let y = 0; y < th; y++) {
      const sy = Math.floor((y * tile.height) / th);
      for (let x = 0; x < tw; x++) {
        const s = (sy * tile.width + Math.floor((x * tile.width) / tw)) * 3;
        canvas.set(tile.data.subarray(s, s + 3), ((top + y) * width + left + x) * 3);
      }
    }
  });
  return sharp(canvas, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
