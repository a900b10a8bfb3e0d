// What extract() accepts, read once into the form the binding takes: {data, shape} with shape
// [n, c, h, w]; float data is planar (NCHW), 8-bit data interleaved (NHWC). Each property of the
// caller's object is read exactly once, and the binding gets only what was read; it copies the
// pixels before the call returns, so nothing the caller does later can reach a run.
import type { NativeInput } from './native';
import type { ImageInput } from './types';
import { checkPixels, checkRgbImage, checkTensor4, isPlainObject, typeError } from './validate';

export function readImage(image: ImageInput | unknown, name: string): NativeInput {
  if (!isPlainObject(image)) throw typeError('a Tensor4, an RgbImage or sharp\'s {data, info}', name, image);
  const keys = image as Record<string, unknown>;
  if ('shape' in keys) {
    const t = checkTensor4(image, name);
    return { data: t.data, shape: t.shape };
  }
  if ('info' in keys) {
    const { data, info } = keys;
    if (!isPlainObject(info)) throw typeError('sharp\'s info {width, height, channels}', `${name}.info`, info);
    const { width, height, channels } = info;
    const p = checkPixels(data, width, height, channels, name, `${name}.info.channels`);
    return { data: p.data, shape: [1, p.channels, p.height, p.width] };
  }
  const p = checkRgbImage(image, name);
  return { data: p.data, shape: [1, p.channels, p.height, p.width] };
}
