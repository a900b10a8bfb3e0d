// A fleet worker: takes jobs from the queue and runs each through the batch pipeline. The model and
// the pipeline's bounds are shared by the worker's concurrent jobs, so N jobs at once hold no more
// memory than one. The extract runs on native threads, so the event loop stays free to renew
// BullMQ's job locks however long a job takes. A job reads and writes only inside the worker's roots.
import * as os from 'node:os';

import { UnrecoverableError, Worker, type Job } from 'bullmq';

import { PipelineLimits } from '../batch';
import type { FeatureExtractor } from '../feature-extractor';
import { workerConnection } from './connection';
import { checkJobData, type FleetJobData } from './job-data';
import { PermanentError, processJob, type JobResult } from './process-job';
import { confineJob, type Roots } from './roots';

export interface FleetWorkerOptions {
  redisUrl: string;
  queueName: string;
  /** The file the extractor was loaded from (default: the shipped model); recorded in meta.json. */
  modelFile?: string;
  /** Jobs run at once in this process; they share one pipeline's bounds. */
  concurrency: number;
  /** Real paths of the folders jobs may write under and read from (roots.ts resolveRoots). */
  roots: Roots;
  /** A job whose lock is not renewed for this long is taken to have stalled and runs again elsewhere. */
  lockSeconds: number;
  /** One line per event: job started, done, failed; connection errors. */
  log: (line: string) => void;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Takes jobs from start() on. `close()` lets the current jobs finish and takes no new ones. */
export class FleetWorker {
  readonly name = `${os.hostname()}:${process.pid}`;
  readonly #worker: Worker<FleetJobData, JobResult>;
  readonly #fx: FeatureExtractor;
  readonly #modelFile?: string;
  readonly #roots: Roots;
  readonly #limits = new PipelineLimits();

  constructor(fx: FeatureExtractor, opts: FleetWorkerOptions) {
    if (opts.roots.out.length === 0 || opts.roots.input.length === 0) {
      throw new RangeError('A fleet worker needs at least one output root and one input root');
    }
    this.#fx = fx;
    this.#modelFile = opts.modelFile;
    this.#roots = opts.roots;
    const lockDuration = Math.round(opts.lockSeconds * 1000);
    this.#worker = new Worker<FleetJobData, JobResult>(opts.queueName, (job, _token, signal) => this.#process(job, signal), {
      connection: workerConnection(opts.redisUrl),
      name: this.name,
      concurrency: opts.concurrency,
      lockDuration,
      // A dead worker's lock expires within one lock period; the next stalled check (by any worker)
      // then puts its jobs back: between half and two lock periods after it died.
      stalledInterval: lockDuration,
      autorun: false,
    });
    const log = opts.log;
    const source = (job: Job<FleetJobData>): string => String(job.data?.item?.source);
    this.#worker.on('active', (job) => log(`job ${job.id} started (attempt ${job.attemptsMade + 1} of ${job.opts.attempts ?? 1}): ${source(job)}`));
    this.#worker.on('completed', (job, r) => {
      const took = seconds((job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now()));
      const what = r.written === 0 && r.skipped > 0 ? 'already had its output' : `done, ${r.written} frame(s) written${r.skipped ? `, ${r.skipped} already there` : ''}`;
      log(`job ${job.id} ${what} in ${took}: ${source(job)} -> ${r.output}`);
    });
    this.#worker.on('failed', (job, err) => {
      if (!job) return log(`a job failed: ${reason(err)}`);
      const retry = job.attemptsMade < (job.opts.attempts ?? 1) && !(err instanceof UnrecoverableError);
      log(`job ${job.id} failed${retry ? ', will retry' : ''}: ${reason(err)}`);
    });
    let lastError = '';
    this.#worker.on('error', (err) => { // connection trouble repeats while Redis is away: say it once
      if (reason(err) !== lastError) log(`queue error: ${(lastError = reason(err))}`);
    });
  }

  /** Resolves once the worker is connected; it then runs until close(). */
  async start(): Promise<void> {
    void this.#worker.run().catch(() => {}); // failures surface as 'error' events
    await this.#worker.waitUntilReady();
  }

  /** Finishes the jobs in flight, takes no new ones, disconnects. */
  close(): Promise<void> {
    return this.#worker.close();
  }

  /** Asks the jobs in flight to stop (they fail this attempt and are retried later). */
  cancelAll(why: string): void {
    this.#worker.cancelAllJobs(why);
  }

  async #process(job: Job<FleetJobData, JobResult>, signal?: AbortSignal): Promise<JobResult> {
    let data: FleetJobData;
    try {
      // Bad data or paths outside the roots are refused before anything is touched, for good.
      data = await confineJob(checkJobData(job.data), this.#roots);
    } catch (err) {
      throw new UnrecoverableError(reason(err));
    }
    try {
      return await processJob(this.#fx, data, {
        modelFile: this.#modelFile,
        signal,
        limits: this.#limits,
        // fire and forget: a lost progress update is harmless, a blocked job is not
        onProgress: (percent) => void job.updateProgress(percent).catch(() => {}),
      });
    } catch (err) {
      // BullMQ would retry any other error; a file that cannot be read or decoded never gets better.
      if (err instanceof PermanentError) throw new UnrecoverableError(reason(err));
      // (the abort reason is cancelAll's string)
      if (signal?.aborted) throw new Error(`cancelled: ${reason(signal.reason)}; complete outputs are kept`);
      throw err;
    }
  }
}

