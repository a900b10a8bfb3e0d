// A feature level as the bytes written: cut back to the frame (--crop) and/or converted to
// float16, in one pass over the floats. float32 without a crop is the tensor's own memory.
import type { CropBox, Tensor4 } from '../types';
import type { Dtype } from './options';

export interface EncodedLevel {
  /** Little-endian (this machine's order) element bytes, C order. */
  bytes: Uint8Array;
  shape: [number, number, number, number];
  dtype: Dtype;
}

/** The crop box on level `level`: scaled by 2^-level (floored), at least 1 pixel, inside the level. */
export function levelBox(crop: CropBox, level: number, height: number, width: number): CropBox {
  const top = Math.min(crop.top >> level, height - 1);
  const left = Math.min(crop.left >> level, width - 1);
  return {
    top,
    left,
    height: Math.min(Math.max(crop.height >> level, 1), height - top),
    width: Math.min(Math.max(crop.width >> level, 1), width - left),
  };
}

/** A float32 below half's smallest normal (bits `a`, sign cleared) as a subnormal half, rounded to nearest even. */
function subnormalHalf(a: number): number {
  if (a < 0x33000000) return 0; // below half of the smallest subnormal
  const m = (a & 0x7fffff) | 0x800000;
  const shift = 126 - (a >>> 23); // m * 2^(e-23) / 2^-24 = m / 2^shift
  const q = m >>> shift;
  const rem = m - q * 2 ** shift;
  const half = 2 ** (shift - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

/**
 * float32 -> IEEE half, rounding to nearest even (as numpy's astype); overflow gives +-Infinity,
 * NaN stays NaN. Works on the bits through an Int32Array view (a Uint32Array would make V8 box
 * values >= 2^31), count elements from src[from] to dst[to].
 */
export function toHalf(src: Int32Array, from: number, dst: Uint16Array, to: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const x = src[from + i];
    const a = x & 0x7fffffff;
    let h: number;
    if (a < 0x38800000) h = subnormalHalf(a);
    // normal: rebias the exponent by 112 << 23, round the 13 dropped bits to nearest even
    else if (a < 0x47800000) h = (a - 0x37fff001 + ((a >> 13) & 1)) >> 13;
    else h = a > 0x7f800000 ? 0x7e00 : 0x7c00; // NaN, or too big: Infinity
    dst[to + i] = ((x >>> 16) & 0x8000) | h;
  }
}

/** Encodes one level; `crop` null writes the padded level as it is. */
export function encodeLevel(feature: Tensor4, crop: CropBox | null, level: number, dtype: Dtype): EncodedLevel {
  const [n, c, h, w] = feature.shape;
  const box = crop ? levelBox(crop, level, h, w) : { top: 0, left: 0, height: h, width: w };
  const whole = box.height === h && box.width === w;
  const shape: EncodedLevel['shape'] = [n, c, box.height, box.width];
  const src = feature.data;
  if (dtype === 'float32' && whole) {
    return { bytes: new Uint8Array(src.buffer, src.byteOffset, src.byteLength), shape, dtype };
  }
  const planes = n * c;
  const count = planes * box.height * box.width;
  if (dtype === 'float32') {
    const out = new Float32Array(count);
    for (let p = 0, o = 0; p < planes; p++) {
      for (let y = 0; y < box.height; y++, o += box.width) {
        const from = (p * h + box.top + y) * w + box.left;
        out.set(src.subarray(from, from + box.width), o);
      }
    }
    return { bytes: new Uint8Array(out.buffer), shape, dtype };
  }
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(count);
  if (whole) {
    toHalf(bits, 0, out, 0, count);
  } else {
    for (let p = 0, o = 0; p < planes; p++) {
      for (let y = 0; y < box.height; y++, o += box.width) toHalf(bits, (p * h + box.top + y) * w + box.left, out, o, box.width);
    }
  }
  return { bytes: new Uint8Array(out.buffer), shape, dtype };
}

/**
 * A level's output buffer filled band by band (see bands.ts): rows of the full level arrive in
 * pieces and are cut to the crop box and converted as they come, so only the output is kept.
 */
export class LevelBuffer {
  readonly shape: EncodedLevel['shape'];
  readonly #box: CropBox;
  readonly #half: Uint16Array | null;
  readonly #single: Float32Array | null;

  /** `full`: the level's padded shape; `crop` null keeps every row and column. */
  constructor(full: readonly number[], crop: CropBox | null, readonly level: number, readonly dtype: Dtype) {
    const [n, c, h, w] = full;
    this.#box = crop ? levelBox(crop, level, h, w) : { top: 0, left: 0, height: h, width: w };
    this.shape = [n, c, this.#box.height, this.#box.width];
    const count = n * c * this.#box.height * this.#box.width;
    this.#half = dtype === 'float16' ? new Uint16Array(count) : null;
    this.#single = dtype === 'float32' ? new Float32Array(count) : null;
  }

  /** Takes rows [from, to) of `band` (level rows first .. first + band height) into the buffer. */
  put(band: Tensor4, first: number, from: number, to: number): void {
    const [n, c, bh, w] = band.shape;
    const box = this.#box;
    const lo = Math.max(from, box.top);
    const hi = Math.min(to, box.top + box.height);
    const bits = new Int32Array(band.data.buffer, band.data.byteOffset, band.data.length);
    for (let p = 0; p < n * c; p++) {
      for (let y = lo; y < hi; y++) {
        const src = (p * bh + y - first) * w + box.left;
        const dst = (p * box.height + y - box.top) * box.width;
        if (this.#half) toHalf(bits, src, this.#half, dst, box.width);
        else this.#single!.set(band.data.subarray(src, src + box.width), dst);
      }
    }
  }

  encoded(): EncodedLevel {
    const data = this.#half ?? this.#single!;
    return { bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), shape: this.shape, dtype: this.dtype };
  }
}
