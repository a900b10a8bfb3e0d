// What a fleet job carries: which input, where its outputs go and how they are written. Paths and
// options only, never pixels: Redis keeps every job's data in memory, several times over.
import * as path from 'node:path';

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

const MAX_SEGMENT_BYTES = 255; // NAME_MAX on Linux and macOS

/**
 * Why `name` is not a safe output name, or null when it is: '/'-separated segments, each non-empty,
 * not '.' or '..', not starting with '.' (hidden, and our temporary folders start so), at most 255
 * bytes, with no NUL or backslash. So `<out>/<name>` is always strictly inside `out`.
 */
export function unsafeNameReason(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return 'it is not a non-empty string';
  if (name.includes('\0')) return 'it contains a NUL byte';
  if (name.includes('\\')) return 'it contains a backslash';
  if (name.startsWith('/')) return 'it is an absolute path';
  for (const part of name.split('/')) {
    if (part === '') return "it has an empty segment ('//' or a trailing '/')";
    if (part === '.' || part === '..') return `it has a '${part}' segment`;
    if (part.startsWith('.')) return `its segment ${JSON.stringify(part)} starts with '.'`;
    if (Buffer.byteLength(part) > MAX_SEGMENT_BYTES) return `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return null;
}

function absolutePath(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw new TypeError(`Expected an absolute path without NUL bytes for job data ${field} but received ${JSON.stringify(value)}`);
  }
  if (!path.isAbsolute(value)) {
    throw new RangeError(`Expected an absolute path for job data ${field} but received the relative ${JSON.stringify(value)}: ` +
      'a worker never resolves a job\'s paths against its own working directory');
  }
  return path.normalize(value);
}

/**
 * The job's data, checked as any input is: a queue may hold jobs that another producer (or another
 * version, or anyone who can write to Redis) added. Throws TypeError/RangeError naming the field.
 * Where the paths lead is checked against the worker's roots separately (roots.ts).
 */
export function checkJobData(data: unknown): FleetJobData {
  const d = (data ?? {}) as Partial<Record<keyof FleetJobData, unknown>>;
  const item = d.item as Partial<InputItem> | undefined;
  if (typeof item !== 'object' || item === null || typeof item.source !== 'string' ||
      (item.kind !== 'image' && item.kind !== 'video') || typeof item.name !== 'string') {
    throw new TypeError(`Expected job data item { source: an absolute path, kind: 'image' or 'video', name } but received ${JSON.stringify(item)}`);
  }
  const source = absolutePath(item.source, 'item.source');
  const unsafe = unsafeNameReason(item.name);
  if (unsafe) throw new RangeError(`Expected a safe relative output name for job data item.name but received ${JSON.stringify(item.name)}: ${unsafe}`);
  const output = d.output as { out?: unknown } | undefined;
  absolutePath(typeof output === 'object' && output !== null ? output.out : undefined, 'output.out');
  return {
    item: { source, kind: item.kind, name: item.name },
    output: resolveOutputOptions(d.output),
    frames: resolveFrameOptions(d.frames),
  };
}
