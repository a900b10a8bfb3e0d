/** A dense float32 tensor in NCHW order, contiguous. */
export interface Tensor4 {
  data: Float32Array;
  shape: [n: number, c: number, h: number, w: number];
}

/** A dense float32 tensor in NHWC order (channels last), contiguous: extract()'s levels with layout 'nhwc'. */
export interface TensorNHWC {
  data: Float32Array;
  shape: [n: number, h: number, w: number, c: number];
}

/** The order of the output levels' dimensions. */
export type Layout = 'nchw' | 'nhwc';

/**
 * Interleaved 8-bit pixels: ImageData, sharp's raw output, a decoded PNG. A Node Buffer works.
 * channels defaults to data.length / (width * height); 3 (RGB) and 4 (RGBA, alpha dropped) are
 * accepted. The type takes sharp's `info.channels` (1 | 2 | 3 | 4) as it is; 1 and 2 are rejected at
 * run time (convert grey images with sharp's .toColourspace('srgb')).
 */
export interface RgbImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels?: 1 | 2 | 3 | 4;
}

/** sharp's `toBuffer({ resolveWithObject: true })` result, passed as it comes. */
export interface RawImage {
  data: Uint8Array;
  info: { width: number; height: number; channels: 1 | 2 | 3 | 4 };
}

/** What extract() takes: float NCHW tensors (values in [0, 1]), 8-bit pixels, or sharp's output. */
export type ImageInput = Tensor4 | RgbImage | RawImage;

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
  /**
   * What the CPU convolutions compute in: 'fp32' (default) or 'bf16', opt in: weights rounded to
   * bfloat16 once at load, activations in bfloat16, sums in float32, outputs float32. Runs on the
   * oneDNN engine where its instruction set has bf16 (avx512_core_bf16, avx512_core_amx); elsewhere
   * load rejects with code ERR_FILM_PRECISION. Results differ from fp32 by about 1% (README, "Precision").
   */
  precision?: Precision;
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

export type Engine = 'auto' | 'onednn' | 'torchscript';

/**
 * Options of Interpolator.load. engine: 'auto' runs the whole network on the fused oneDNN engine on
 * the CPU where it can (every build), else the file's TorchScript (libtorch); 'torchscript' forces
 * libtorch (to compare), 'onednn' the engine. Micro-batching and precision do not apply.
 */
/**
 * precision 'bf16' on the Interpolator: the fused engine's products in bfloat16 (Winograd's tiles and
 * weights, the direct convolutions' inputs and weights; float32 sums), where the CPU's oneDNN ISA has
 * bf16; frames differ from fp32 by about 1e-3 (README, "Frame interpolation").
 */
export type InterpolatorLoadOptions = Pick<LoadOptions, 'device' | 'threads' | 'half' | 'engine' | 'precision'>;

export type Precision = 'fp32' | 'bf16';

export interface ExtractOptions {
  /** Pyramid levels; defaults to 7, or fewer when the image is too small for 7. */
  levels?: number;
  /**
   * true (default): the pyramid is built natively, off the main thread, from level 0.
   * false: it is built with buildPyramid on the main thread first (float input only).
   */
  pyramidOnDevice?: boolean;
  /**
   * The output levels' layout: 'nchw' (default) [N, C, H, W], or 'nhwc' [N, H, W, C], channels
   * last, still zero-copy. The oneDNN engine computes in channels-last, so 'nhwc' skips the
   * transposition into NCHW; the TorchScript engine and CUDA transpose instead.
   */
  layout?: Layout;
  /** Aborts the call: a queued run rejects at once with an AbortError; a running one is discarded. */
  signal?: AbortSignal;
}

/** What a loaded file holds, read from its weights. */
export interface ModelInfo {
  source: 'extractor' | 'interpolator';
  /**
   * How the file was read: its format ('torchscript', 'torch.save' state_dict or 'safetensors'),
   * always by film-features' own reader, which runs nothing in it.
   */
  format: 'torchscript' | 'torch.save' | 'safetensors';
  /**
   * Whether the file's TorchScript code was run: false where only its weights were read (the
   * oneDNN engine; always in the core build); true where libtorch loaded it (engine 'torchscript',
   * CUDA, or the full build checking the engine against the file's own forward at load).
   */
  codeRun: boolean;
  channels: number;
  subLevels: number;
  /** The weights' dtype in the file; they run in float32 (or bf16) on the CPU. */
  dtype: 'float32' | 'float16' | 'bfloat16';
  /** Prepared for fast inference at load: the oneDNN engine, or a frozen, optimized TorchScript graph. */
  optimized: boolean;
  /** What runs it: 'onednn' (CPU only) or 'torchscript'. */
  engine: 'onednn' | 'torchscript';
  /** What the convolutions compute in: 'fp32', or 'bf16' when loaded with precision: 'bf16'. */
  precision: Precision;
  /** The instruction set oneDNN's kernels use here, e.g. 'avx2' or 'avx512_core'; oneDNN only. */
  isa?: string;
  /**
   * The addon binary running it: `build/Release` (compiled here), a prebuild (one per libtorch:
   * Debian 12's 1.13, Debian 13's 2.6, then the libtorch-free core; the first that loads) or
   * FILM_FEATURES_ADDON's, which build it is, and the libtorch version it was built against. `shadows`: where a local build is loaded, the prebuilds
   * it is used instead of (the package's prebuilds for this libtorch, which would load without it;
   * `npx film-features setup --force` makes such a build, and deleting the package's `build/`
   * goes back to the prebuild); empty otherwise.
   */
  build: {
    file: string;
    kind: 'build' | 'prebuild' | 'explicit';
    /** 'full' (libtorch: also TorchScript, CUDA and the Interpolator) or 'core' (the oneDNN engine, no libtorch). */
    variant: 'full' | 'core';
    /** The libtorch it links; null for the core build. */
    libtorch: string | null;
    shadows: readonly string[];
    /** Why each binary tried before this one did not load: where the core runs, why the full prebuilds did not (libtorch missing, ...). */
    skipped: readonly string[];
  };
  /** The version of the oneDNN library running it (the one libtorch loads), e.g. '2.6.3'; oneDNN only. */
  onednn?: string;
  /**
   * Where the weights came from, as models/export.py records it in the file: 'random, seed 0' for
   * the shipped (untrained) model, 'from film_net_fp32.pt' for copied ones; 'unknown' otherwise.
   */
  weights: string;
}

/** Where a padded frame's original pixels sit, in level-0 coordinates. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** What FeatureExtractor.cache() reports, in MB as sharp.cache() does. */
export interface CacheStats {
  memory: {
    /** Held now by the CPU block cache for reuse. */
    current: number;
    /** The most it has held. */
    high: number;
    /** Its limit; 0: caching is off. */
    max: number;
  };
}

/** FeatureExtractor.cache()'s argument: true restores the default, false is { memory: 0 }. */
export type CacheOptions = boolean | { memory?: number };

/** The addon's process-wide admission counters (see FeatureExtractor.counters()). */
export interface Counters {
  /** Cores the executor shares out: the most intra-op threads granted at once, process-wide. */
  cores: number;
  /** Runs and loads waiting for cores. */
  queued: number;
  /** Runs and loads executing. */
  running: number;
  /** Threads granted to running work now, and the most ever granted at once. */
  threads: number;
  peakThreads: number;
  /** The OpenMP team sizes running work's threads report, summed; and the most at once. */
  observedThreads: number;
  peakObservedThreads: number;
  /** Runs and loads finished (or dropped when aborted) since the process started. */
  completed: number;
}
