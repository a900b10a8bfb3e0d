// Compiled by test/55.inputs.test.js with tsc --strict: what people pass to extract() type-checks
// without casts.
import sharp from 'sharp';
import { FeatureExtractor, type Tensor4, type TensorNHWC } from 'film-features';

export async function all(fx: FeatureExtractor, file: string): Promise<Tensor4[][]> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  const imageData = { data: new Uint8ClampedArray(4 * 6), width: 3, height: 2 };
  const controller = new AbortController();
  return Promise.all([
    fx.extract({ data, info }),
    fx.extract({ data, width: info.width, height: info.height, channels: info.channels }),
    fx.extract(imageData, { levels: 1, signal: controller.signal }),
    fx.extract({ data: Buffer.alloc(12), width: 2, height: 2 }),
  ]);
}

// layout: 'nhwc' gives channels-last levels, typed as such; the default and 'nchw' give Tensor4.
export async function layouts(fx: FeatureExtractor, image: Tensor4): Promise<[TensorNHWC[], Tensor4[], Tensor4[], TensorNHWC[]]> {
  return Promise.all([
    fx.extract(image, { layout: 'nhwc' }),
    fx.extract(image, { layout: 'nchw', levels: 3 }),
    fx.extractPyramid([image]),
    fx.extractPyramid([image], { layout: 'nhwc' }),
  ]);
}
