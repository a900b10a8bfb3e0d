// The raw binding: loaded once (the first binary that loads, scripts/addon-candidates.js), typed here and nowhere else public.
import * as path from 'node:path';

import type { InterpolatorInfo } from './interpolator';
import type { Counters, ModelInfo } from './types';

/** An input level for run(): float data planar [n, 3, h, w]; 8-bit data interleaved, shape [n, c, h, w]. */
export interface NativeInput {
  data: Float32Array | Uint8Array | Uint8ClampedArray;
  shape: [n: number, c: number, h: number, w: number];
}

export interface NativeOutput {
  /** Float32Array; Uint16Array (float16 bits) from a frame plan with half */
  data: Float32Array | Uint16Array;
  shape: number[];
}

/** FILM's extractor weights for load(): stages[j] = its two convolutions, float32 OIHW. */
export interface NativeWeights {
  source: 'extractor' | 'interpolator';
  format: 'torchscript' | 'torch.save' | 'safetensors';
  dtype: 'float32' | 'float16' | 'bfloat16';
  /** export.py's record of where the weights came from, or 'unknown' */
  origin: string;
  channels: number;
  stages: Array<[{ weight: Float32Array; bias: Float32Array }, { weight: Float32Array; bias: Float32Array }]>;
}

/** What a loaded file holds; FeatureExtractor adds which build runs it. */
export type NativeInfo = Omit<ModelInfo, 'build'>;

/** A queued run: its result, and a way to drop it (queued: at once; running: its result). */
export interface NativeJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

/** run() flag: outputs copied into V8-owned buffers (Electron's path) instead of zero-copy. */
export const RUN_COPY_OUTPUTS = 1;
/** run() flag of the extractor: outputs held natively, for writeFiles (native/file_writer.h). */
export const RUN_HOLD_OUTPUTS = 8;
/** run() flag of the extractor: levels [N, H, W, C] (ExtractOptions.layout 'nhwc'). */
export const RUN_NHWC_OUTPUTS = 16;

/** Outputs held natively: each one's shape, and an opaque handle for writeFiles and releaseLevels. */
export interface HeldOutputs {
  shapes: number[][];
  levels: object;
}

/**
 * A frame run (native/frame_run.h; made and checked by lib/frame-plan.ts): the one image is
 * padded to pad [height, width] with its top-left at [top, left], rows [from, to) of pyramid level
 * `base` are run (levels base..keep's last), and kept level keep[i] comes back as its rows under
 * `own` (rows of level base) cut to boxes[i] [top, left, height, width], float16 bits if half.
 */
export interface FramePlan {
  pad: [height: number, width: number, top: number, left: number];
  base: number;
  rows: [from: number, to: number];
  own: [from: number, to: number];
  keep: number[];
  boxes: [top: number, left: number, height: number, width: number][];
  half: boolean;
}

export interface NativeExtractor {
  /** null once disposed */
  readonly device: string | null;
  readonly info: NativeInfo | null;
  /**
   * Copies the inputs, then runs on the addon's executor. levels > inputs.length: the missing coarse
   * levels are pooled natively. threads: CPU intra-op threads wanted; 0: the model's. With
   * RUN_HOLD_OUTPUTS the outputs stay native until written (writeFiles).
   */
  run(inputs: NativeInput[], levels: number, threads: number, flags: typeof RUN_HOLD_OUTPUTS, plan?: FramePlan): NativeJob<HeldOutputs>;
  run(inputs: NativeInput[], levels?: number, threads?: number, flags?: number, plan?: FramePlan): NativeJob<NativeOutput[]>;
  dispose(): void;
}

/** run() flag of the interpolator: frames as 8-bit interleaved RGB [n, h, w, 3] */
export const RUN_BYTES = 4;
/**
 * run() flag of the interpolator (recursions > 0 only): each step feeds back the padded, clamped
 * prediction as it is (InterpolateOptions.recursionPadding 'prediction') instead of the frame with
 * its padding set to zeros again ('zeros').
 */
export const RUN_RECURSION_PREDICTION = 32;

export interface NativeInterpolator {
  /** null once disposed */
  readonly device: string | null;
  readonly info: InterpolatorInfo | null;
  /**
   * Copies the inputs (each list stacked into one batch), then runs on the addon's executor: one
   * frame per time, or with recursions = k > 0 the 2^k - 1 frames at i / 2^k. flags: RUN_COPY_OUTPUTS,
   * RUN_BYTES, RUN_RECURSION_PREDICTION.
   */
  run(a: NativeInput[], b: NativeInput[], times: number[], recursions: number, threads?: number,
    flags?: number): NativeJob<{ data: Float32Array | Uint8Array; shape: number[] }[]>;
  dispose(): void;
}

/** The CPU block cache, in bytes (native/controls.cc). */
export interface NativeCacheState {
  /** The most it keeps; 0: off. */
  limit: number;
  /** Held for reuse now, and the most ever held. */
  cached: number;
  high: number;
  /** The limit the process started with: FILM_FEATURES_CPU_CACHE_MB, else a quarter of RAM or the cgroup limit, at most 8 GiB. */
  initialLimit: number;
  /** False where this libtorch's allocator interface is not one the cache is built for: no cache at all. */
  compiledIn: boolean;
}

/**
 * The package's own test hooks (native/internal_hooks.h), in one internal export: not part of the
 * API, and absent from the public types.
 */
export interface InternalHooks {
  /** Address of a typed array's first element (proves zero copy against tensorAddress). */
  dataAddress(array: ArrayBufferView): bigint;
  /** How many idle releases (releaseWhenIdle) have run in this process. */
  idleReleases(): number;
  /** The default cache limit were the cgroup file system mounted at cgroupRoot. */
  defaultCacheLimit(cgroupRoot: string): number;
  /** run() flag: each output carries its tensor's data pointer as tensorAddress. */
  readonly RUN_WITH_ADDRESSES: number;
}

export interface Binding {
  /** 'full': libtorch linked (TorchScript, CUDA, the Interpolator); 'core': the oneDNN engine alone. */
  readonly build: 'full' | 'core';
  /** weights: FILM's extractor as lib/model-file read it; the addon runs them (and, in the full build, may load the file's TorchScript). */
  load(path: string, device: string, threads: number, half: boolean, engine: string, precision: string,
    weights: NativeWeights): Promise<NativeExtractor>;
  /** weights: a whole FILM's tensors as lib/model-file read them (float32), and its pyramid depth. */
  loadInterpolator(path: string, device: string, threads: number, half: boolean, engine: string, weights: {
    format: string; dtype: string; levels: number; tensors: Record<string, { data: Float32Array; shape: number[] }>;
  }, precision: string): Promise<NativeInterpolator>;
  readonly cudaCompiledIn: boolean;
  /** Built with the fused oneDNN CPU engine (engine: 'onednn'). */
  readonly onednnCompiledIn: boolean;
  cudaDeviceCount(): number;
  /** Frees cached CPU blocks and cached GPU memory; returns the CPU bytes freed. */
  releaseCachedMemory(): number;
  /** A box of a float32 level as float16 bits (half) or float32, on this thread (native/frame_run.h). */
  encodeLevel(data: Float32Array, shape: number[], box: number[], half: boolean): Float32Array | Uint16Array;
  /**
   * Off the JS thread: makes dir (makeDir), creates each file (none may exist) and writes its parts
   * in order: a Uint8Array (copied now), or the index of a held output (written from native
   * memory, then freed; once each). fsync flushes each file and then dir. With placeAt, dir is then
   * renamed to it only where nothing at all is there (placed: whether it was; syncError: the
   * message of a failed flush of its folder after it was placed).
   */
  writeFiles(dir: string, makeDir: boolean, files: { name: string; parts: (Uint8Array | number)[] }[], levels: object | null,
    fsync: boolean, placeAt?: string): Promise<{ bytes: number; placed: boolean; syncError?: string }>;
  /**
   * renameat2 on the I/O thread: 'noreplace' renames only into a free place (EEXIST otherwise),
   * 'exchange' swaps the two atomically. False where the file system has no such rename.
   */
  rename(from: string, to: string, mode: 'noreplace' | 'exchange'): Promise<boolean>;
  /** Frees the held outputs not yet given to writeFiles. */
  releaseLevels(levels: object): void;
  /** Schedules a release of cached and freed memory for when no run is in flight (idle_release.h). */
  releaseWhenIdle(): void;
  /**
   * The CPU block cache; with limitBytes, sets its limit first (0 also frees, at once, every cached
   * block, the C heap's free pages and cached GPU memory).
   */
  cache(limitBytes?: number): NativeCacheState;
  /** The cores the executor shares out; with n, sets them first (0: the default). */
  concurrency(n?: number): number;
  /** Main thread's process 'exit': drops queued work and waits for running work (see lib/exit.ts). */
  shutdownForExit(): void;
  /** The executor's process-wide counters. */
  counters(): Counters;
  /** The libtorch it links; absent in the core build. */
  readonly torchVersion?: string;
  /** cuDNN's process-wide benchmark mode (cudnn_settings.h). */
  setCudnnBenchmark(enabled: boolean): void;
  cudnnBenchmark(): boolean;
  /** Tests only. */
  readonly _internal: InternalHooks;
}

export const packageRoot = path.resolve(__dirname, '..');

let binding: Binding | undefined;

/** Which addon binary loaded: a local build, a prebuild (one per libtorch), or FILM_FEATURES_ADDON's. */
export interface AddonBuild {
  file: string;
  kind: 'build' | 'prebuild' | 'explicit';
  /** Why each binary tried before this one did not load ('prebuilds/...: libtorch_cpu.so.1.13: cannot open ...'). */
  skipped: string[];
}
let build: AddonBuild | undefined;

/**
 * The prebuilds a local build (build/Release) is loaded in place of: those for this platform that
 * link the same libtorch (major.minor, from their name) or name none, and so would load without it.
 */
export function shadowedPrebuilds(loaded: AddonBuild, torchVersion: string | undefined): string[] {
  if (loaded.kind !== 'build') return [];
  const { candidates, torchTag } = require(path.join(packageRoot, 'scripts', 'addon-candidates.js')) as {
    candidates(root: string): { file: string; kind: string }[];
    torchTag(file: string): [number, number] | null;
  };
  const core = (file: string) => path.basename(file).includes('.core.');
  // A core build (no libtorch) shadows the core prebuild; a full one, those of its libtorch.
  if (torchVersion === undefined) return candidates(packageRoot).filter((c) => c.kind === 'prebuild' && core(c.file)).map((c) => c.file);
  const [major, minor] = torchVersion.split('.').map(Number);
  return candidates(packageRoot).filter((c) => {
    if (c.kind !== 'prebuild' || core(c.file)) return false;
    const tag = torchTag(path.basename(c.file));
    return tag === null || (tag[0] === major && tag[1] === minor);
  }).map((c) => c.file);
}

/**
 * The addon binary this process loaded (loading it if need be), the libtorch it runs, and the
 * prebuilds a local build shadows (see shadowedPrebuilds).
 */
export function addonBuild(): AddonBuild & { variant: 'full' | 'core'; libtorch: string | null; shadows: string[] } {
  const b = native();
  const loaded = build as AddonBuild;
  return { ...loaded, variant: b.build, libtorch: b.torchVersion ?? null, shadows: shadowedPrebuilds(loaded, b.torchVersion) };
}

/** The binding if it has been loaded, without trying to load it. */
export function loadedNative(): Binding | undefined {
  return binding;
}

export function native(): Binding {
  if (binding) return binding;
  try {
    // FILM_FEATURES_ADDON names a specific build (the AddressSanitizer one, say).
    const explicit = process.env.FILM_FEATURES_ADDON;
    if (explicit) {
      binding = require(path.resolve(explicit)) as Binding;
      build = { file: path.resolve(explicit), kind: 'explicit', skipped: [] };
    } else {
      // build/Release, then one prebuild per libtorch (Debian 12's 1.13, Debian 13's 2.6): the first that loads
      const { loadFirst } = require(path.join(packageRoot, 'scripts', 'addon-candidates.js'));
      const found = loadFirst(packageRoot);
      binding = found.binding as Binding;
      build = { file: found.file, kind: found.kind, skipped: found.skipped ?? [] };
    }
  } catch (cause) {
    const message = (cause as Error).message ?? String(cause);
    const why = /lib(torch|c10)[^ ]*\.so/.test(message)
      ? 'the native addon cannot find libtorch at run time'
      : 'no native addon loads on this machine';
    throw new Error(`film-features: ${why}. Run \`npx film-features setup\` to build it here ` +
      '(add --install-deps to apt-get install libtorch-dev, --libtorch PATH for an unpacked libtorch, ' +
      '--bundle to make it self-contained).' + `\n  cause: ${message}`, { cause });
  }
  return binding;
}
