// The batch pipeline as a library: expand inputs, check output options, process inputs end to end.
export { assignNames, expandInputs, imageSuffixes, nameClash, safePart, VIDEO_SUFFIXES } from './inputs';
export type { ExpandOptions, InputItem, InputKind, Skipped } from './inputs';
export {
  DEFAULT_FRAMES, DTYPES, FORMATS, isOptionProblem, MAX_LEVELS, parseFrameRange, parseSaveLevels, resolveFrameOptions, resolveOutputOptions,
  takesFrame,
} from './batch-options';
export type { Dtype, FrameOptions, OptionProblem, OutputFormat, OutputOptions } from './batch-options';
export { checkOutputName, frameName, isFrameName, unitDir } from './names';
export { inspectFrames, inspectUnit, inspectVideoFolder, LAYOUT, OutputExistsError, unitComplete, WRITER } from './ownership';
export type { UnitState } from './ownership';
export { checkWritable } from './output';
export { sha256File } from './digest';
export { LARGE_FRAME_PIXELS, packageVersion, PipelineLimits, processInput, runBatch, runFrames } from './pipeline';
export type { BatchContext, BatchEvent, BatchSummary, FrameMeta } from './pipeline';
export { decodeImage, framesOf } from './frames';
export { encodeLevel, LevelBuffer } from './encode';
export { BAND_PIXELS, extractInBands, planRuns, reach } from './bands';
export { DamagedInputError, FfmpegMissingError, videoFrames } from './video';
