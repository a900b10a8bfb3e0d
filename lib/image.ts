// Interleaved 8-bit pixels -> planar float tensors, as a standalone utility (extract() converts
// natively, off the main thread, with the same rounding).
import type { RgbImage, Tensor4 } from './types';
import { checkRgbImage } from './validate';

/** [1, 3, height, width] floats in [0, 1]; alpha, if any, is dropped. */
export function imageToTensor(image: RgbImage): Tensor4 {
  const { data, width, height, channels } = checkRgbImage(image, 'image');
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0, s = 0; p < plane; p++, s += channels) {
    out[p] = data[s] / 255;
    out[plane + p] = data[s + 1] / 255;
    out[2 * plane + p] = data[s + 2] / 255;
  }
  return { data: out, shape: [1, 3, height, width] };
}
