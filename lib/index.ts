export { FeatureExtractor, defaultModelPath } from './feature-extractor';
export { buildPyramid, padToMultiple, cropLevel } from './pyramid';
export { imageToTensor } from './image';
export { Interpolator } from './interpolator';
export type { Frame, SharpRaw, InterpolateOptions, InterpolatorInfo } from './interpolator';
export type { Tensor4, RgbImage, Device, LoadOptions, ExtractOptions, ModelInfo, CropBox } from './types';
