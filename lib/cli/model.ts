// Loading the model named by --model (or the shipped one) with --device and --threads, the same
// way in every command that runs one (extract, worker, interpolate, slowmo).
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { addonBuild } from '../native';

import type { Device, Engine } from '../types';
import { explain, fail } from './flags';

export interface ModelFlags {
  model?: string;
  device: Device;
  threads: number;
  /** interpolate and slowmo's --engine; extract takes FILM_FEATURES_ENGINE */
  engine?: Engine;
  verbose?: boolean;
}

/**
 * `load(file, { device, threads })`, where `load` is FeatureExtractor.load or Interpolator.load; on
 * failure says why (a missing file by name, a model's error with its cause under --verbose) and
 * resolves to null. Prints the line `describe` makes (if given), with the time taken.
 */
export async function loadModel<M>(flags: ModelFlags, load: (file: string | undefined, options: { device: Device; threads: number; engine?: Engine }) => Promise<M>,
  describe?: (model: M) => string): Promise<M | null> {
  const t = performance.now();
  let model: M;
  try {
    if (flags.model !== undefined) await fs.access(flags.model); // a plain "not found" rather than libtorch's words
    model = await load(flags.model, { device: flags.device, threads: flags.threads, ...(flags.engine ? { engine: flags.engine } : {}) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'ENOENT' ? `model file not found: ${flags.model}` : explain(err, flags.verbose ?? false));
    return null;
  }
  if (describe) console.log(`${describe(model)}, loaded in ${(performance.now() - t).toFixed(0)} ms${shadowNote()}`);
  return model;
}

/** Where a local build is loaded in place of a prebuild that would load: "; addon: ..." saying so. */
export function shadowNote(): string {
  const build = addonBuild();
  if (build.shadows.length === 0) return '';
  const names = build.shadows.map((f) => path.basename(f)).join(', ');
  return `; addon: the local build ${build.file} (libtorch ${build.libtorch}), used in place of the prebuild ${names} ` +
    `(delete ${path.dirname(path.dirname(build.file))} to use the prebuild)`;
}
