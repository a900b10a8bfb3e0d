// The raw binding: loaded once through node-gyp-build, typed here and nowhere else public.
import * as path from 'node:path';

export interface NativeLevel {
  data: Float32Array;
  shape: number[];
}

export interface NativeOutput extends NativeLevel {
  /** The output tensor's data pointer: equal to dataAddress(data) unless the output was copied. */
  tensorAddress: bigint;
}

export interface NativeInfo {
  source: 'extractor' | 'interpolator';
  channels: number;
  subLevels: number;
  dtype: 'float32' | 'float16';
  optimized: boolean;
  engine: 'onednn' | 'torchscript';
  isa?: string;
}

export interface NativeExtractor {
  /** null once disposed */
  readonly device: string | null;
  readonly info: NativeInfo | null;
  /**
   * levels > pyramid.length: the missing coarse levels are pooled on the model's device.
   * threads: CPU intra-op threads for this run; 0 or absent: the model's.
   */
  run(pyramid: NativeLevel[], copyOutputs: boolean, levels?: number, threads?: number): Promise<NativeOutput[]>;
  dispose(): void;
}

export interface Binding {
  load(path: string, device: string, threads: number, half: boolean, engine: string): Promise<NativeExtractor>;
  readonly cudaCompiledIn: boolean;
  /** Built with the fused oneDNN CPU engine (engine: 'onednn'). */
  readonly onednnCompiledIn: boolean;
  cudaDeviceCount(): number;
  /** Frees cached CPU blocks and cached GPU memory; returns the CPU bytes freed. */
  releaseCachedMemory(): number;
  /** Address of a typed array's first element; tests use it to prove zero copy. */
  dataAddress(array: ArrayBufferView): bigint;
  readonly torchVersion: string;
}

export const packageRoot = path.resolve(__dirname, '..');

let binding: Binding | undefined;

export function native(): Binding {
  if (binding) return binding;
  try {
    // FILM_FEATURES_ADDON names a specific build (the AddressSanitizer one, say).
    const explicit = process.env.FILM_FEATURES_ADDON;
    binding = (explicit ? require(path.resolve(explicit)) : require('node-gyp-build')(packageRoot)) as Binding;
  } catch (cause) {
    const message = (cause as Error).message ?? String(cause);
    const hint = /lib(torch|c10)[^ ]*\.so/.test(message)
      ? 'libtorch is missing at run time. Install it (Debian/Ubuntu: apt-get install libtorch-dev) ' +
        'or rebuild against yours with LIBTORCH=/path/to/libtorch npm rebuild film-features.'
      : 'The native addon did not load. Rebuild it with npm rebuild film-features.';
    throw new Error(`film-features: ${hint}\n  cause: ${message}`, { cause });
  }
  return binding;
}
