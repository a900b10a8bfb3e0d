import { native } from './native';

export { FeatureExtractor, defaultModelPath } from './feature-extractor';
export { buildPyramid, padToMultiple, cropLevel } from './pyramid';
export { imageToTensor } from './image';
export type { Tensor4, RgbImage, Device, LoadOptions, ExtractOptions, ModelInfo, CropBox } from './types';

// Load the addon now: where no binary loads, require('film-features') throws the fix right away.
native();
