import { native } from './native';

export { FeatureExtractor, defaultModelPath } from './feature-extractor';
export { buildPyramid, padToMultiple, cropLevel } from './pyramid';
export { imageToTensor } from './image';
export { Interpolator } from './interpolator';
export type { InterpolateOptions, InterpolatorInfo, Frames, Interpolated, RecursionPadding } from './interpolator';
export type { Tensor4, TensorNHWC, Layout, RgbImage, RawImage, ImageInput, Device, LoadOptions, InterpolatorLoadOptions, Precision, ExtractOptions, ModelInfo, CropBox, Counters, CacheOptions, CacheStats } from './types';
export type { FilmErrorCode } from './errors';

// Load the addon now: where no binary loads, require('film-features') throws the fix right away.
native();
