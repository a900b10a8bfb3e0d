// What a queue holds: counts per state, the jobs running now and why failed jobs failed.
import { Queue } from 'bullmq';

import { clientConnection, probeRedis } from './connection';
import type { FleetJobData } from './job-data';
import type { JobProgress } from './process-job';

export interface FailedJob {
  id: string;
  input: string;
  reason: string;
  attempts: number;
  finishedAt: string | null;
}

export interface ActiveJob {
  id: string;
  input: string;
  /** Percent for a still image; frames done so far for a video or animated image. */
  progress: JobProgress;
  worker: string | null;
}

export interface QueueStatus {
  queue: string;
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  delayed: number;
  /** Connected workers, or null where Redis refuses CLIENT LIST (some managed services). */
  workers: number | null;
  activeJobs: ActiveJob[];
  /** The most recent failures first, at most `failedLimit`. */
  failures: FailedJob[];
}

export async function queueStatus(redisUrl: string, queueName: string, failedLimit = 20): Promise<QueueStatus> {
  await probeRedis(redisUrl); // fails within a second where Redis is not there, instead of in BullMQ's retries
  const queue = new Queue<FleetJobData>(queueName, { connection: clientConnection(redisUrl) });
  queue.on('error', () => {}); // the awaited calls below reject with the same error
  try {
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed');
    const [active, failed] = await Promise.all([
      queue.getActive(0, 99),
      failedLimit > 0 ? queue.getFailed(0, failedLimit - 1) : Promise.resolve([]),
    ]);
    const workers = await queue.getWorkersCount().catch(() => null);
    return {
      queue: queueName,
      waiting: counts.waiting + counts.prioritized,
      active: counts.active,
      completed: counts.completed,
      failed: counts.failed,
      delayed: counts.delayed,
      workers,
      activeJobs: active.filter(Boolean).map((job) => ({
        id: String(job.id),
        input: String(job.data?.item?.source),
        progress: typeof job.progress === 'number' || (typeof job.progress === 'object' && job.progress !== null) ? job.progress as JobProgress : 0,
        worker: job.processedBy ?? null,
      })),
      failures: failed.filter(Boolean).map((job) => ({
        id: String(job.id),
        input: String(job.data?.item?.source),
        reason: job.failedReason,
        attempts: job.attemptsMade,
        finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
      })),
    };
  } finally {
    await queue.close().catch(() => {});
  }
}

/** The status as lines for a terminal. */
export function formatStatus(s: QueueStatus): string {
  const lines = [
    `queue ${s.queue}: ${s.waiting} waiting, ${s.active} active, ${s.completed} completed, ${s.failed} failed, ${s.delayed} delayed` +
      (s.workers === null ? '' : `; ${s.workers} worker${s.workers === 1 ? '' : 's'} connected`),
  ];
  for (const job of s.activeJobs) {
    const done = typeof job.progress === 'number' ? `${job.progress}%` : `${job.progress.frames} frames`;
    lines.push(`  running ${job.id}: ${job.input} (${done})${job.worker ? ` on ${job.worker}` : ''}`);
  }
  if (s.failures.length > 0) {
    lines.push(s.failures.length < s.failed ? `latest ${s.failures.length} failures:` : 'failures:');
    for (const f of s.failures) {
      lines.push(`  job ${f.id}: ${f.reason} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'})`);
    }
  }
  return lines.join('\n');
}
