// Adds jobs to the queue, many per round trip.
import { Queue } from 'bullmq';

import { clientConnection, probeRedis } from './connection';
import { JOB_NAME, jobOptions, type FleetJobData, type RetryOptions } from './job-data';

const CHUNK = 500; // jobs per addBulk call: one MULTI each, so a large batch does not hold Redis up

/** Adds one job per entry; resolves to the number added. */
export async function enqueueJobs(redisUrl: string, queueName: string, jobs: FleetJobData[], retry: RetryOptions): Promise<number> {
  await probeRedis(redisUrl); // fails within a second where Redis is not there, instead of in BullMQ's retries
  const queue = new Queue<FleetJobData>(queueName, { connection: clientConnection(redisUrl) });
  queue.on('error', () => {}); // the awaited calls below reject with the same error
  const opts = jobOptions(retry);
  let added = 0;
  try {
    for (let i = 0; i < jobs.length; i += CHUNK) {
      const chunk = jobs.slice(i, i + CHUNK).map((data) => ({ name: JOB_NAME, data, opts }));
      added += (await queue.addBulk(chunk)).length;
    }
  } finally {
    await queue.close().catch(() => {});
  }
  return added;
}
