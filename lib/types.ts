/** A dense float32 tensor in NCHW order, contiguous. */
export interface Tensor4 {
  data: Float32Array;
  shape: [n: number, c: number, h: number, w: number];
}

/** Interleaved 8-bit RGB or RGBA pixels, such as ImageData or sharp's raw output. Alpha is dropped. */
export interface RgbImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 3 | 4;
}

export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadOptions {
  /** 'auto' (default) picks CUDA when this libtorch has it and a GPU is present, else CPU. */
  device?: Device;
  /** CPU intra-op threads; 0 (default) means every core this process may use. */
  threads?: number;
  /** fp16 weights and activations; CUDA only. Outputs stay float32. */
  half?: boolean;
  /**
   * Micro-batching: extract() calls with the same image size, levels and options that arrive
   * within this many ms of the first run as one batch, and each gets its slice of the outputs
   * (views of one buffer). 0 turns it off. Default: 2 on CUDA, 0 on the CPU, where batching
   * does not pay (bench/microbatch.js).
   */
  batchWindowMs?: number;
  /** The most images (sum of N) in one micro-batch; default 8. */
  maxBatch?: number;
}

export interface ExtractOptions {
  /** Pyramid levels; defaults to 7, or fewer when the image is too small for 7. */
  levels?: number;
  /**
   * Build the pyramid on the model's device from level 0 alone, sending 1/4 fewer bytes.
   * Defaults to true on CUDA and false on the CPU, where the TypeScript pyramid is used.
   */
  pyramidOnDevice?: boolean;
}

/** What a loaded file holds, read from its weights. */
export interface ModelInfo {
  source: 'extractor' | 'interpolator';
  channels: number;
  subLevels: number;
  dtype: 'float32' | 'float16';
  /** Frozen and optimized for inference at load (CPU). */
  optimized: boolean;
}

/** Where a padded frame's original pixels sit, in level-0 coordinates. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}
