// The image pyramid FILM feeds its extractor, and FILM's padding and crop box, as utilities: the
// batch pipeline and extract() pool natively (native/tensor_io.cc, native/frame_run.cc) and share
// only paddedSize and levelBox, the one place the padding and the crop box per level are computed.
import type { CropBox, Tensor4 } from './types';
import { checkInteger, checkLevels, checkTensor4, rangeError } from './validate';

/** 2x2 average pooling with stride 2; odd sizes floor, like F.avg_pool2d(x, 2, 2). */
export function avgPool2x2(input: Tensor4): Tensor4 {
  const [n, c, h, w] = input.shape;
  const oh = Math.floor(h / 2);
  const ow = Math.floor(w / 2);
  const src = input.data;
  const out = new Float32Array(n * c * oh * ow);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let y = 0; y < oh; y++) {
      let top = base + 2 * y * w;
      let bottom = top + w;
      for (let x = 0; x < ow; x++, top += 2, bottom += 2) {
        out[o++] = (src[top] + src[top + 1] + src[bottom] + src[bottom + 1]) * 0.25;
      }
    }
  }
  return { data: out, shape: [n, c, oh, ow] };
}

/**
 * FILM's image pyramid: `levels` tensors, finest first, as a utility (for extractPyramid() and
 * pyramidOnDevice: false): no hot path uses it, and nothing depends on it matching native pooling
 * bit for bit. Level 0 is `image` itself (not copied);
 * each next level halves the previous one by 2x2 average pooling, flooring odd sizes.
 */
export function buildPyramid(image: Tensor4, levels: number): Tensor4[] {
  checkTensor4(image, 'image');
  const [, , h, w] = image.shape;
  checkLevels(levels, 'levels', h, w);
  const pyramid = [image];
  for (let i = 1; i < levels; i++) pyramid.push(avgPool2x2(pyramid[i - 1]));
  return pyramid;
}

/**
 * Pads with zeros to a multiple of `multiple` in height and width, as FILM does (2^(levels-1),
 * so 64 for 7 levels): the padding is split evenly, top and left taking the smaller half.
 * Returns the padded tensor and where the original sits in it.
 */
export function padToMultiple(image: Tensor4, multiple: number): { tensor: Tensor4; crop: CropBox } {
  checkTensor4(image, 'image');
  checkInteger(multiple, 'multiple', 1);
  const [n, c, h, w] = image.shape;
  const { height: ph, width: pw, crop } = paddedSize(h, w, multiple);
  const { top, left } = crop;
  if (ph === h && pw === w) return { tensor: image, crop };
  const out = new Float32Array(n * c * ph * pw);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < h; y++) {
      const from = (plane * h + y) * w;
      out.set(image.data.subarray(from, from + w), (plane * ph + y + top) * pw + left);
    }
  }
  return { tensor: { data: out, shape: [n, c, ph, pw] }, crop };
}

/** The padded size of an h x w image (multiples of `multiple`) and where the image sits in it. */
export function paddedSize(h: number, w: number, multiple: number): { height: number; width: number; crop: CropBox } {
  const height = Math.ceil(h / multiple) * multiple;
  const width = Math.ceil(w / multiple) * multiple;
  return { height, width, crop: { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w } };
}

/**
 * The crop box on a level of height x width: scaled by 2^-level (floored), at least 1 pixel, cut at
 * the level's edges; a box that starts outside the level is an error.
 */
export function levelBox(crop: CropBox, level: number, height: number, width: number): CropBox {
  const top = crop.top >> level;
  const left = crop.left >> level;
  const box = {
    top, left, height: Math.min(Math.max(crop.height >> level, 1), height - top), width: Math.min(Math.max(crop.width >> level, 1), width - left),
  };
  if (box.height <= 0 || box.width <= 0) throw rangeError('a crop box inside the feature', 'crop', crop);
  return box;
}

/** The part of a feature level that covers the crop box (levelBox). */
export function cropLevel(feature: Tensor4, crop: CropBox, level: number): Tensor4 {
  checkTensor4(feature, 'feature', true);
  checkInteger(level, 'level', 0, 30);
  const [n, c, h, w] = feature.shape;
  const { top, left, height: ch, width: cw } = levelBox(crop, level, h, w);
  const out = new Float32Array(n * c * ch * cw);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < ch; y++) {
      const from = (plane * h + y + top) * w + left;
      out.set(feature.data.subarray(from, from + cw), (plane * ch + y) * cw);
    }
  }
  return { data: out, shape: [n, c, ch, cw] };
}
