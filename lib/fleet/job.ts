// What a fleet job carries: which input, where its outputs go and how they are written. Paths and
// options only, never pixels: Redis keeps every job's data in memory, several times over.
import type { JobsOptions } from 'bullmq';

import { resolveFrameOptions, resolveOutputOptions, type FrameOptions, type InputItem, type OutputOptions } from '../batch';

export const JOB_NAME = 'extract';

export interface FleetJobData {
  /** The input: an absolute path every worker can read (a shared mount), its kind and output name. */
  item: InputItem;
  /** Output options; `out` is absolute, on storage every worker can write. */
  output: OutputOptions;
  /** Which frames of a video or animated image. */
  frames: FrameOptions;
}

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts: number;
  /** Wait before the second try; doubled before each next one. */
  backoffMs: number;
}

export function jobOptions({ attempts, backoffMs }: RetryOptions): JobsOptions {
  return { attempts, backoff: { type: 'exponential', delay: backoffMs } };
}

/**
 * The job's data, checked as any input is: a queue may hold jobs that another producer (or another
 * version) added. Throws TypeError/RangeError naming the field.
 */
export function checkJobData(data: unknown): FleetJobData {
  const d = (data ?? {}) as Partial<Record<keyof FleetJobData, unknown>>;
  const item = d.item as Partial<InputItem> | undefined;
  if (typeof item !== 'object' || item === null || typeof item.source !== 'string' || !item.source.startsWith('/') ||
      (item.kind !== 'image' && item.kind !== 'video') || typeof item.name !== 'string' || item.name === '' ||
      item.name.split('/').some((part) => part === '..' || part === '')) {
    throw new TypeError(`Expected job data item { source: an absolute path, kind: 'image' or 'video', name } but received ${JSON.stringify(item)}`);
  }
  return {
    item: { source: item.source, kind: item.kind, name: item.name },
    output: resolveOutputOptions(d.output),
    frames: resolveFrameOptions(d.frames),
  };
}
