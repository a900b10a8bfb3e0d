// The fleet commands: enqueue (jobs into a BullMQ queue on Redis), worker (runs them), status.
import { Command, InvalidArgumentError } from 'commander';

import { expandInputs, type OutputOptions } from '../batch';
import { FeatureExtractor } from '../feature-extractor';
import { DEFAULT_QUEUE, parseQueueName, parseRedisUrl, probeRedis, redactUrl } from '../fleet/connection';
import { enqueueJobs } from '../fleet/enqueue';
import { checkJobData, type FleetJobData } from '../fleet/job-data';
import { confineJob, resolveRoots, type Roots } from '../fleet/roots';
import { formatStatus, queueStatus } from '../fleet/status';
import { FleetWorker } from '../fleet/worker';
import type { Device } from '../types';
import type { Register } from './main';
import { loadModel } from './model';
import {
  addFrameOptions, addInputOptions, addOutputOptions, checked, device, fail, frameOptionsFrom, integer, outputOptionsFrom, reason, usageMessage,
  type CliOutputFlags,
} from './flags';

function seconds(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`is not a number of seconds from ${min} to ${max}`);
    }
    return n;
  };
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function addRootOptions(cmd: Command, required: boolean): Command {
  const need = required ? 'required' : 'optional: jobs are then checked against it before they are added';
  return cmd
    .option('--out-root <dir>', `a folder job outputs may be written under (repeatable; ${need})`, collect)
    .option('--input-root <dir>', `a folder job inputs may be read from (repeatable; ${need})`, collect);
}

interface RootFlags {
  outRoot?: string[];
  inputRoot?: string[];
}

/** The roots given, resolved; null (after saying why) when one is not an existing folder. */
async function rootsFrom(flags: RootFlags): Promise<Roots | null> {
  try {
    return { out: await resolveRoots(flags.outRoot ?? [], '--out-root'), input: await resolveRoots(flags.inputRoot ?? [], '--input-root') };
  } catch (err) {
    console.error(`error: ${reason(err)}`);
    return null;
  }
}

function addRedisOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--redis <url>', 'the Redis holding the queue: redis://[user:password@]HOST:PORT[/DB] (rediss:// for TLS)',
      checked((v) => parseRedisUrl(v)))
    .option('--queue <name>', 'queue name', checked((v) => parseQueueName(v)), DEFAULT_QUEUE);
}

interface RedisFlags {
  redis: string;
  queue: string;
}

interface EnqueueFlags extends RedisFlags, CliOutputFlags, RootFlags {
  recursive: boolean;
  fromList?: string;
  every: number;
  frames?: { start: number; end?: number };
  attempts: number;
  backoff: number;
}

async function enqueue(inputs: string[], flags: EnqueueFlags, cmd: Command): Promise<number> {
  let output: OutputOptions;
  try {
    output = outputOptionsFrom(flags); // out made absolute here: workers on other machines see the same path
  } catch (err) {
    console.error(`error: ${usageMessage(err, cmd)}`);
    return 2;
  }
  if (inputs.length === 0 && flags.fromList === undefined) {
    console.error('error: no inputs: name files or folders, or give --from-list');
    return 2;
  }
  const roots = await rootsFrom(flags);
  if (!roots) return 2;
  const frames = frameOptionsFrom(flags);
  const { items, skipped } = await expandInputs(inputs, { recursive: flags.recursive, fromList: flags.fromList });
  for (const s of skipped) fail(`${s.missing ? '' : 'skipped '}${s.path}: ${s.reason}`);
  let refused = 0;
  const jobs: FleetJobData[] = [];
  // The worker's own checks, here too, so that a mistake fails at the producer: a safe output name
  // and absolute paths always; the roots when given.
  for (const item of items) {
    try {
      const job = checkJobData({ item, output, frames });
      if (roots.out.length > 0 || roots.input.length > 0) {
        await confineJob(job, { out: roots.out.length > 0 ? roots.out : ['/'], input: roots.input.length > 0 ? roots.input : ['/'] });
      }
      jobs.push(job);
    } catch (err) {
      fail(`not added: ${item.source}: ${reason(err)}`);
      refused++;
    }
  }
  const missing = skipped.filter((s) => s.missing).length + refused;
  if (jobs.length === 0) return 1;
  try {
    const added = await enqueueJobs(flags.redis, flags.queue, jobs, { attempts: flags.attempts, backoffMs: Math.round(flags.backoff * 1000) });
    console.log(`added ${added} job${added === 1 ? '' : 's'} to queue ${flags.queue} at ${redactUrl(flags.redis)}; outputs go to ${output.out}`);
  } catch (err) {
    fail(`cannot add jobs to queue ${flags.queue} at ${redactUrl(flags.redis)}: ${reason(err)}`);
    return 1;
  }
  return missing > 0 ? 1 : 0;
}

interface WorkerFlags extends RedisFlags, RootFlags {
  concurrency: number;
  lockSeconds: number;
  model?: string;
  device: Device;
  threads: number;
}

async function worker(flags: WorkerFlags): Promise<number> {
  const log = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);
  const where = `queue ${flags.queue} at ${redactUrl(flags.redis)}`;
  if (!flags.outRoot?.length || !flags.inputRoot?.length) {
    console.error('error: a worker needs --out-root DIR (where jobs may write) and --input-root DIR (what jobs may read), ' +
      'each repeatable: whoever can write to the queue chooses the paths, and the roots bound them');
    return 2;
  }
  const roots = await rootsFrom(flags);
  if (!roots) return 2;
  try {
    await probeRedis(flags.redis); // an unreachable Redis ends the worker here, not in endless retries
  } catch (err) {
    fail(`cannot reach ${where}: ${reason(err)}`);
    return 1;
  }
  const fx = await loadModel(flags, (file, options) => FeatureExtractor.load(file, options));
  if (!fx) return 1;
  const w = new FleetWorker(fx, {
    redisUrl: flags.redis, queueName: flags.queue, modelFile: flags.model, concurrency: flags.concurrency, lockSeconds: flags.lockSeconds,
    roots, log,
  });
  // First signal: finish the jobs in flight, take no new ones, exit 0. A second one cancels them:
  // each fails this attempt, leaves only complete outputs, and is retried by the fleet.
  let signals = 0;
  let onSignal!: (signal: NodeJS.Signals) => void;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      if (++signals === 1) resolve(signal);
      else w.cancelAll(`${signal} received twice`);
    };
  });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await w.start();
    log(`worker ${w.name} on ${where}: ${flags.concurrency} job(s) at a time on ${fx.device}, lock ${flags.lockSeconds} s; ` +
      `writes under ${roots.out.join(', ')}; reads under ${roots.input.join(', ')}`);
    const signal = await stopped;
    log(`${signal}: finishing the jobs in flight, taking no new ones`);
    await w.close();
    log('worker stopped');
    return 0;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    fx.dispose();
  }
}

interface StatusFlags extends RedisFlags {
  json?: boolean;
  failed: number;
}

async function status(flags: StatusFlags): Promise<number> {
  try {
    const s = await queueStatus(flags.redis, flags.queue, flags.failed);
    console.log(flags.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    return 0;
  } catch (err) {
    fail(`cannot read queue ${flags.queue} at ${redactUrl(flags.redis)}: ${reason(err)}`);
    return 1;
  }
}

export const registerFleetCommands: Register = (program, setExitCode) => {
  let enq = addRedisOptions(program.command('enqueue'))
    .description('Adds one job per image or video to a BullMQ queue on Redis, for workers on any machine')
    .argument('[inputs...]', 'image or video files, or folders of them; stored as absolute paths, so workers must see ' +
      'the same paths (a shared mount)');
  enq = addRootOptions(addInputOptions(addFrameOptions(addOutputOptions(enq))), false);
  enq.option('--attempts <n>', 'tries per job; each retry waits twice as long as the one before', integer(1, 100), 3)
    .option('--backoff <seconds>', 'wait before the first retry', seconds(0, 86400), 5)
    .addHelpText('after', '\n--out must be on storage every worker can write. Exit status: 0 when every input was added;\n' +
      '1 when an input was missing or refused (the others are added) or Redis could not be reached; 2 for bad usage.\n' +
      'Every job is checked as a worker checks it: a safe output name, absolute paths, and, given --out-root or\n' +
      '--input-root, its output folder and source inside them.')
    .action(async (inputs: string[], flags: EnqueueFlags, cmd: Command) => setExitCode(await enqueue(inputs, flags, cmd)));

  addRootOptions(addRedisOptions(program.command('worker')), true)
    .description('Runs the queue\'s jobs until SIGTERM or SIGINT, then finishes the jobs in flight and exits 0')
    .option('--concurrency <n>', 'jobs at once in this process (they share the model, the cores and one pipeline\'s memory bound)',
      integer(1, 64), 1)
    .option('--lock-seconds <s>', 'a job whose worker stops renewing its lock for this long is run again by another worker',
      seconds(0.1, 3600), 30)
    .option('--model <path>', 'TorchScript extractor (default: the model shipped in models/)')
    .option('--device <device>', "'auto', 'cpu', 'cuda' or 'cuda:N'", device, 'auto' as Device)
    .option('--threads <n>', 'CPU threads; 0 = every core', integer(0, 1024), 0)
    .addHelpText('after', '\nA job whose output folder or source (symlinks followed) is outside the roots fails at once and is\n' +
      'not retried. A second SIGTERM or SIGINT cancels the jobs in flight; they are retried. Outputs appear\n' +
      'complete or not at all, and frames already written are not written again.')
    .action(async (flags: WorkerFlags) => setExitCode(await worker(flags)));

  addRedisOptions(program.command('status'))
    .description('Prints the queue\'s counts, the jobs running and the latest failures with their reasons')
    .option('--json', 'one JSON object: numeric waiting, active, completed, failed, delayed; activeJobs; failures')
    .option('--failed <n>', 'latest failures to list', integer(0, 10000), 20)
    .action(async (flags: StatusFlags) => setExitCode(await status(flags)));
};
