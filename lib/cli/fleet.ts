// The fleet commands: enqueue (jobs into a BullMQ queue on Redis), worker (runs them), status.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { Command, InvalidArgumentError } from 'commander';

import { FeatureExtractor } from '../feature-extractor';
import type { Device } from '../types';
import { DEFAULT_QUEUE, parseQueueName, parseRedisUrl, redactUrl } from '../fleet/connection';
import { enqueueJobs } from '../fleet/enqueue';
import type { FleetJobData } from '../fleet/job';
import { formatStatus, queueStatus } from '../fleet/status';
import { FleetWorker } from '../fleet/worker';

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const fail = (message: string): void => console.error(`film-features: ${message}`);

/** Commander's parser for a checked value: the RangeError's message becomes the usage error. */
function arg<T>(parse: (value: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(reason(err));
    }
  };
}

function integer(min: number, max: number) {
  return arg((value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || n < min || n > max) throw new RangeError(`Expected an integer from ${min} to ${max}.`);
    return n;
  });
}

function decimal(min: number, max: number) {
  return arg((value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new RangeError(`Expected a number from ${min} to ${max}.`);
    return n;
  });
}

const redisOption = (cmd: Command): Command => cmd
  .requiredOption('--redis <url>', 'the Redis holding the queue: redis://[user:password@]HOST:PORT[/DB], or rediss:// for TLS', arg(parseRedisUrl))
  .option('--queue <name>', 'queue name', arg(parseQueueName), DEFAULT_QUEUE);

interface RedisOpts {
  redis: string;
  queue: string;
}

interface EnqueueOpts extends RedisOpts {
  out: string;
  levels: number;
  attempts: number;
  backoffSeconds: number;
}

async function enqueue(inputs: string[], opts: EnqueueOpts): Promise<number> {
  const jobs: FleetJobData[] = [];
  for (const input of inputs) {
    const file = path.resolve(input);
    try {
      await fs.access(file);
    } catch (err) {
      fail(`${input}: ${reason(err)}`);
      return 1;
    }
    jobs.push({ input: file, output: path.resolve(opts.out, path.basename(file, path.extname(file))), options: { levels: opts.levels } });
  }
  try {
    const added = await enqueueJobs(opts.redis, opts.queue, jobs, { attempts: opts.attempts, backoffMs: opts.backoffSeconds * 1000 });
    console.log(`added ${added} job${added === 1 ? '' : 's'} to queue ${opts.queue} at ${redactUrl(opts.redis)}`);
    return 0;
  } catch (err) {
    fail(`cannot add jobs to ${redactUrl(opts.redis)}: ${reason(err)}`);
    return 1;
  }
}

interface WorkerOpts extends RedisOpts {
  concurrency: number;
  lockSeconds: number;
  model?: string;
  device: Device;
  threads: number;
}

async function worker(opts: WorkerOpts): Promise<number> {
  const log = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);
  try {
    await queueStatus(opts.redis, opts.queue, 0); // an unreachable Redis ends the worker here, not in endless retries
  } catch (err) {
    fail(`cannot reach ${redactUrl(opts.redis)}: ${reason(err)}`);
    return 1;
  }
  let fx: FeatureExtractor;
  try {
    fx = await FeatureExtractor.load(opts.model, { device: opts.device, threads: opts.threads });
  } catch (err) {
    fail(reason(err));
    return 1;
  }
  const w = new FleetWorker(fx, { redisUrl: opts.redis, queueName: opts.queue, concurrency: opts.concurrency, lockSeconds: opts.lockSeconds, log });
  // First signal: finish the jobs in flight, take no new ones, exit 0. Second: cancel them (they
  // fail this attempt and are retried by the fleet).
  const stopped = new Promise<string>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (++signals === 1) resolve(signal);
      else w.cancelAll(`${signal} received twice`);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await w.start();
  log(`worker ${w.name} on queue ${opts.queue} at ${redactUrl(opts.redis)}: ${opts.concurrency} at a time, ${fx.device}, lock ${opts.lockSeconds} s`);
  const signal = await stopped;
  log(`${signal}: finishing the jobs in flight, taking no new ones`);
  await w.close();
  fx.dispose();
  log('worker stopped');
  return 0;
}

async function status(opts: RedisOpts & { json?: boolean; failed: number }): Promise<number> {
  try {
    const s = await queueStatus(opts.redis, opts.queue, opts.failed);
    console.log(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    return 0;
  } catch (err) {
    fail(`cannot read queue ${opts.queue} at ${redactUrl(opts.redis)}: ${reason(err)}`);
    return 1;
  }
}

/** Adds enqueue, worker and status to the program; `setCode` receives each command's exit code. */
export function registerFleetCommands(program: Command, setCode: (code: number) => void): void {
  redisOption(program.command('enqueue'))
    .description('Adds one job per image to a BullMQ queue on Redis; workers on any machine run them')
    .argument('<inputs...>', 'image files; paths are stored absolute, so workers must see the same paths (a shared mount)')
    .option('--out <dir>', 'output folder, on storage every worker can write', 'film-features-out')
    .option('--levels <n>', 'pyramid levels', integer(1, 10), 7)
    .option('--attempts <n>', 'tries per job; after a failure the next try waits --backoff-seconds, doubled each time', integer(1, 100), 3)
    .option('--backoff-seconds <s>', 'wait before the second try', decimal(0, 86400), 5)
    .action(async (inputs: string[], opts: EnqueueOpts) => setCode(await enqueue(inputs, opts)));

  redisOption(program.command('worker'))
    .description('Runs the queue\'s jobs until SIGTERM or SIGINT; then finishes its current jobs and exits 0')
    .option('--concurrency <n>', 'jobs at once in this process (they share the model and the cores)', integer(1, 64), 1)
    .option('--lock-seconds <s>', 'a job whose worker stops renewing its lock this long is run again by another worker', decimal(0.5, 3600), 30)
    .option('--model <path>', 'TorchScript extractor (default: the model shipped in models/)')
    .option('--device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", 'auto')
    .option('--threads <n>', 'CPU threads; 0 = every core', integer(0, 1024), 0)
    .action(async (opts: WorkerOpts) => setCode(await worker(opts)));

  redisOption(program.command('status'))
    .description('Prints the queue\'s counts, the jobs running and the latest failures with their reasons')
    .option('--json', 'one JSON object: numeric waiting, active, completed, failed, delayed; activeJobs, failures')
    .option('--failed <n>', 'latest failures to list', integer(0, 10000), 20)
    .action(async (opts: RedisOpts & { json?: boolean; failed: number }) => setCode(await status(opts)));
}
