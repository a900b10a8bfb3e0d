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
   * What runs the model on the CPU: 'onednn' (fused oneDNN primitives, where the addon was built
   * with oneDNN), 'torchscript' (libtorch's optimized graph), or 'auto' (default: oneDNN where it
   * is built in and reproduces the file's forward). FILM_FEATURES_ENGINE sets the default.
   */
  engine?: Engine;
}

export type Engine = 'auto' | 'onednn' | 'torchscript';

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
  /** Prepared for fast inference at load: the oneDNN engine, or a frozen, optimized TorchScript graph. */
  optimized: boolean;
  /** What runs it: 'onednn' (CPU only) or 'torchscript'. */
  engine: 'onednn' | 'torchscript';
  /** The instruction set oneDNN's kernels use here, e.g. 'avx2' or 'avx512_core'; oneDNN only. */
  isa?: string;
}

/** Where a padded frame's original pixels sit, in level-0 coordinates. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}
