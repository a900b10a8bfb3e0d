// One fleet job through the batch pipeline (lib/batch), the same one `extract` runs. Frames whose
// complete output exists are left alone, so a job that runs again (its worker was killed, or it is
// retried) writes each frame exactly once.
import * as path from 'node:path';

import { processInput, unitDir, type PipelineLimits } from '../batch';
import { removeAbandonedTemps } from '../batch/temp-files';
import type { FeatureExtractor } from '../feature-extractor';
import type { FleetJobData } from './job-data';

export interface JobResult {
  /** The input's output folder. */
  output: string;
  /** Frames written by this run (a still image is one frame). */
  written: number;
  /** Frames whose complete output was already there. */
  skipped: number;
  bytes: number;
}

/** Numbers for a still image or an animated one with a known page count; frames so far for a video. */
export type JobProgress = number | { frames: number };

export interface JobRunOptions {
  /** The file the extractor was loaded from; recorded in meta.json. */
  modelFile?: string;
  signal?: AbortSignal;
  /** Bounds shared with the worker's other jobs (default: the job's own). */
  limits?: PipelineLimits;
  onProgress?: (progress: JobProgress) => void;
}

/** A failure another try cannot fix: the input is missing, or is not an image or video that decodes. */
export class PermanentError extends Error {}

/**
 * Removes the temporaries an earlier run of this job left (its worker was killed mid-write), by
 * the one rule of temp-files.ts: only those whose writer is gone. (A job's lock can lapse while
 * its old worker still writes; a retry on another host must not delete that worker's files.)
 */
async function removeAbandonedOf(job: FleetJobData): Promise<void> {
  const dir = unitDir(job.output.out, job.item, null);
  // a still's folder (or a video's, made with its first frame) beside it; a frame's inside the video's folder
  await removeAbandonedTemps(path.dirname(dir), true);
  await removeAbandonedTemps(dir, true);
}

const frameLabel = (frame: number | null): string => (frame === null ? '' : `frame ${frame}: `);

export async function processJob(fx: FeatureExtractor, job: FleetJobData, opts: JobRunOptions = {}): Promise<JobResult> {
  const progress = opts.onProgress ?? (() => {});
  await removeAbandonedOf(job);
  const decoded = new Set<number>(); // frames that decoded: a later failure is in extract or write
  const failures: { frame: number | null; error: Error; decoded: boolean }[] = [];
  let done = 0;
  const summary = await processInput(job.item, {
    extractor: fx,
    modelFile: opts.modelFile,
    output: job.output,
    frames: job.frames,
    skipExisting: true,
    signal: opts.signal,
    limits: opts.limits,
    onEvent: (ev) => {
      const still = ev.frame === null;
      switch (ev.type) {
        case 'decoded':
          decoded.add(ev.seq);
          if (still) progress(10);
          break;
        case 'writing':
          if (still) progress(20 + Math.round((75 * (ev.index - 1)) / ev.of));
          break;
        case 'failed':
        case 'written':
        case 'skipped':
          if (ev.type === 'failed') failures.push({ frame: ev.frame, error: ev.error, decoded: decoded.has(ev.seq) });
          done++;
          progress(still ? 100 : { frames: done });
          break;
      }
    },
  });
  if (failures.length > 0) {
    const first = failures[0];
    const what = failures.length === 1 && first.frame === null ? '' : `${failures.length} frame(s) failed; first `;
    const message = `${job.item.source}: ${what}${frameLabel(first.frame)}${first.error.message}`;
    // Decode failures do not get better on a retry; extract and write failures (memory, a full or
    // flaky disk, something in the output's way that its owner may move) may, and a retry redoes
    // only the frames that are missing.
    const retryable = (f: (typeof failures)[number]) => f.decoded || (f.error as NodeJS.ErrnoException).code === 'ERR_FILM_OUTPUT_EXISTS';
    throw failures.some(retryable) ? new Error(message) : new PermanentError(message);
  }
  return { output: unitDir(job.output.out, job.item, null), written: summary.written, skipped: summary.skipped, bytes: summary.bytes };
}
