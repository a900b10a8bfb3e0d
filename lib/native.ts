// The raw binding: loaded once (the first binary that loads, scripts/addon-candidates.js), typed here and nowhere else public.
import * as path from 'node:path';

/** An input level for run(): float data planar [n, 3, h, w]; 8-bit data interleaved, shape [n, c, h, w]. */
export interface NativeInput {
  data: Float32Array | Uint8Array | Uint8ClampedArray;
  shape: [n: number, c: number, h: number, w: number];
}

export interface NativeOutput {
  /** Float32Array; Uint16Array (float16 bits) from a frame plan with half */
  data: Float32Array | Uint16Array;
  shape: number[];
  /** Only with RUN_WITH_ADDRESSES (a test hook): the output tensor's data pointer. */
  tensorAddress?: bigint;
}

export interface NativeInfo {
  source: 'extractor' | 'interpolator';
  channels: number;
  subLevels: number;
  dtype: 'float32' | 'float16';
  optimized: boolean;
  engine: 'onednn' | 'torchscript';
  precision: 'fp32' | 'bf16';
  isa?: string;
  onednn?: string;
  weights: string;
}

/** A queued run: its result, and a way to drop it (queued: at once; running: its result). */
export interface NativeJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

/** run() flags */
export const RUN_COPY_OUTPUTS = 1;
export const RUN_WITH_ADDRESSES = 2;

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
   * levels are pooled natively. threads: CPU intra-op threads wanted; 0: the model's.
   */
  run(inputs: NativeInput[], levels?: number, threads?: number, flags?: number, plan?: FramePlan): NativeJob<NativeOutput[]>;
  dispose(): void;
}

/** run() flag of the interpolator: frames as 8-bit interleaved RGB [n, h, w, 3] */
export const RUN_BYTES = 4;

export interface NativeInterpolator {
  /** null once disposed */
  readonly device: string | null;
  readonly info: { dtype: 'float32' | 'float16'; optimized: boolean; dtShape: '[n, 1]' | '[n, 1, 1, 1]' } | null;
  /**
   * Copies the inputs (each list stacked into one batch), then runs on the addon's executor: one
   * frame per time, or with recursions = k > 0 the 2^k - 1 frames at i / 2^k.
   */
  run(a: NativeInput[], b: NativeInput[], times: number[], recursions: number, threads?: number,
    flags?: number): NativeJob<{ data: Float32Array | Uint8Array; shape: number[]; tensorAddress?: bigint }[]>;
  dispose(): void;
}

export interface NativeCounters {
  cores: number;
  queued: number;
  running: number;
  threads: number;
  peakThreads: number;
  observedThreads: number;
  peakObservedThreads: number;
  completed: number;
}

export interface Binding {
  load(path: string, device: string, threads: number, half: boolean, engine: string, precision: string): Promise<NativeExtractor>;
  loadInterpolator(path: string, device: string, threads: number, half: boolean): Promise<NativeInterpolator>;
  readonly cudaCompiledIn: boolean;
  /** Built with the fused oneDNN CPU engine (engine: 'onednn'). */
  readonly onednnCompiledIn: boolean;
  cudaDeviceCount(): number;
  /** Frees cached CPU blocks and cached GPU memory; returns the CPU bytes freed. */
  releaseCachedMemory(): number;
  /** A box of a float32 level as float16 bits (half) or float32, on this thread (native/frame_run.h). */
  encodeLevel(data: Float32Array, shape: number[], box: number[], half: boolean): Float32Array | Uint16Array;
  /** Address of a typed array's first element; tests use it to prove zero copy. */
  dataAddress(array: ArrayBufferView): bigint;
  /** Schedules a release of cached and freed memory for when no run is in flight (idle_release.h). */
  releaseWhenIdle(): void;
  /** The CPU block cache: its cap (0: off), the bytes it holds now, the idle releases run so far, and whether the build has it. */
  cpuCache(): { limit: number; cached: number; idleReleases: number; compiledIn: boolean };
  /** Main thread's process 'exit': drops queued work and waits for running work (see lib/exit.ts). */
  shutdownForExit(): void;
  /** The executor's process-wide counters. */
  counters(): NativeCounters;
  readonly torchVersion: string;
  /** cuDNN's process-wide benchmark mode (cudnn_settings.h). */
  setCudnnBenchmark(enabled: boolean): void;
  cudnnBenchmark(): boolean;
}

export const packageRoot = path.resolve(__dirname, '..');

let binding: Binding | undefined;

/** Which addon binary loaded: a local build, a prebuild (one per libtorch), or FILM_FEATURES_ADDON's. */
export interface AddonBuild {
  file: string;
  kind: 'build' | 'prebuild' | 'explicit';
}
let build: AddonBuild | undefined;

/** The addon binary this process loaded (loading it if need be), and the libtorch it runs. */
export function addonBuild(): AddonBuild & { libtorch: string } {
  const b = native();
  return { ...(build as AddonBuild), libtorch: b.torchVersion };
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
      build = { file: path.resolve(explicit), kind: 'explicit' };
    } else {
      // build/Release, then one prebuild per libtorch (Debian 12's 1.13, Debian 13's 2.6): the first that loads
      const { loadFirst } = require(path.join(packageRoot, 'scripts', 'addon-candidates.js'));
      const found = loadFirst(packageRoot);
      binding = found.binding as Binding;
      build = { file: found.file, kind: found.kind };
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
