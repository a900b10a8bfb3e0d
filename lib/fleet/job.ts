// What a fleet job carries: where to read, where to write and how. Never pixels: Redis keeps
// every job's data in memory, several times over.
import type { JobsOptions } from 'bullmq';

export const JOB_NAME = 'extract';

export interface FleetJobData {
  /** Absolute path every worker can read (a shared mount). */
  input: string;
  /** Absolute output folder for this input, chosen at enqueue time so names never collide. */
  output: string;
  /** The batch output options, as JSON. */
  options: Record<string, unknown>;
}

export interface RetryOptions {
  /** Tries in all, first one included. */
  attempts: number;
  /** Wait before the second try; doubled before each next one. */
  backoffMs: number;
}

export function jobOptions({ attempts, backoffMs }: RetryOptions): JobsOptions {
  return { attempts, backoff: { type: 'exponential', delay: backoffMs } };
}

/** The job's data, checked: a queue may hold jobs some other producer added. */
export function checkJobData(data: unknown): FleetJobData {
  const d = data as Partial<FleetJobData> | null;
  if (d === null || typeof d !== 'object' || typeof d.input !== 'string' || typeof d.output !== 'string' ||
      d.options === null || typeof d.options !== 'object') {
    throw new TypeError(`Expected job data { input, output, options } but received ${JSON.stringify(data)}`);
  }
  return d as FleetJobData;
}
