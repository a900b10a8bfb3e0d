// A feature level as the bytes written: cut back to the frame (--crop) and/or converted to float16.
// The batch pipeline gets its levels cut and converted by native frame runs (lib/frame-plan.ts);
// encodeLevel and LevelBuffer.put are the same native cut (native/frame_run.cc) for float32 levels
// in hand. float32 without a crop is the tensor's own memory.
import { native, type NativeOutput } from '../native';
import { levelBox } from '../pyramid';
import type { CropBox, Tensor4 } from '../types';
import type { Dtype } from './batch-options';

export interface EncodedLevel {
  /** Little-endian (this machine's order) element bytes, C order. */
  bytes: Uint8Array;
  shape: [number, number, number, number];
  dtype: Dtype;
}

const bytesOf = (data: Float32Array | Uint16Array) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

/**
 * Encodes one level; `crop` null writes the padded level as it is. float32 -> float16 rounds to
 * nearest even, as numpy's astype (overflow gives +-Infinity; NaN stays NaN).
 */
export function encodeLevel(feature: Tensor4, crop: CropBox | null, level: number, dtype: Dtype): EncodedLevel {
  const [n, c, h, w] = feature.shape;
  const box = crop ? levelBox(crop, level, h, w) : { top: 0, left: 0, height: h, width: w };
  const data = native().encodeLevel(feature.data, [n, c, h, w], [box.top, box.left, box.height, box.width], dtype === 'float16');
  return { bytes: bytesOf(data), shape: [n, c, box.height, box.width], dtype };
}

/**
 * A level's output buffer filled band by band (see bands.ts): rows of the level's box arrive in
 * pieces, already cut and converted, so only the output is kept.
 */
export class LevelBuffer {
  readonly shape: EncodedLevel['shape'];
  /** The part of the level kept (the crop box, or the whole level). */
  readonly box: CropBox;
  readonly #data: Uint16Array | Float32Array;

  /** `full`: the level's padded shape; `crop` null keeps every row and column. */
  constructor(full: readonly number[], crop: CropBox | null, readonly level: number, readonly dtype: Dtype) {
    const [n, c, h, w] = full;
    this.box = crop ? levelBox(crop, level, h, w) : { top: 0, left: 0, height: h, width: w };
    this.shape = [n, c, this.box.height, this.box.width];
    const count = n * c * this.box.height * this.box.width;
    this.#data = dtype === 'float16' ? new Uint16Array(count) : new Float32Array(count);
  }

  /** Takes rows of the box [n, c, k, box width] as a frame run gives them, the first being level row `first`. */
  putRows(rows: Pick<NativeOutput, 'data' | 'shape'>, first: number): void {
    const [n, c, k, bw] = rows.shape;
    const [, , bh] = this.shape;
    if (n * c !== this.shape[0] * this.shape[1] || bw !== this.box.width || first < this.box.top || first + k > this.box.top + bh ||
      (rows.data instanceof Uint16Array) !== (this.#data instanceof Uint16Array)) {
      throw new RangeError(`rows [${rows.shape}] from ${first} do not fit level ${this.level}'s box`);
    }
    const plane = k * bw;
    if (plane === 0) return;
    for (let p = 0; p < n * c; p++) this.#data.set(rows.data.subarray(p * plane, (p + 1) * plane), (p * bh + first - this.box.top) * bw);
  }

  /** Takes rows [from, to) of a float32 `band` (level rows first .. first + band height), cut and converted. */
  put(band: Tensor4, first: number, from: number, to: number): void {
    const lo = Math.max(from, this.box.top);
    const hi = Math.min(to, this.box.top + this.box.height);
    if (hi <= lo) return;
    const [n, c] = band.shape;
    const data = native().encodeLevel(band.data, band.shape, [lo - first, this.box.left, hi - lo, this.box.width], this.dtype === 'float16');
    this.putRows({ data, shape: [n, c, hi - lo, this.box.width] }, lo);
  }

  encoded(): EncodedLevel {
    return { bytes: bytesOf(this.#data), shape: this.shape, dtype: this.dtype };
  }
}
