export { FeatureExtractor, defaultModelPath } from './feature-extractor';
export { buildPyramid, padToMultiple, cropLevel } from './pyramid';
export { imageToTensor } from './image';
export { Interpolator } from './interpolator';
export type { InterpolateOptions, InterpolatorInfo, Frames, Interpolated } from './interpolator';
export type { Tensor4, RgbImage, RawImage, ImageInput, Device, LoadOptions, ExtractOptions, ModelInfo, CropBox, Counters } from './types';
export type { FilmErrorCode } from './errors';
