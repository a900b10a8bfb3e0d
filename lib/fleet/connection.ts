// Where the fleet's queue lives: a Redis URL and a queue name, checked before BullMQ sees them.
import type { ConnectionOptions } from 'bullmq';
import Redis from 'ioredis';

import { withProblem } from '../batch/batch-options';

export const DEFAULT_QUEUE = 'film-features';
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/; // BullMQ forbids ':' (its key separator)

/** A redis:// or rediss:// URL with a host; throws a RangeError naming `name` otherwise. */
export function parseRedisUrl(value: string, name = '--redis'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw withProblem(new RangeError(`Expected a URL such as redis://HOST:6379 for ${name} but received ${JSON.stringify(value)}`),
      name, value, 'is not a URL such as redis://HOST:6379');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw withProblem(new RangeError(`Expected a redis:// or rediss:// URL for ${name} but received ${JSON.stringify(value)}`),
      name, value, 'is not a redis:// or rediss:// URL');
  }
  if (url.hostname === '') {
    throw withProblem(new RangeError(`Expected a host in the URL for ${name}: ${JSON.stringify(value)}`), name, value, 'names no host');
  }
  if (!/^(\/\d{0,2})?$/.test(url.pathname)) {
    throw withProblem(new RangeError(`Expected a database number (redis://HOST:PORT/N) for ${name} but received ${JSON.stringify(value)}`),
      name, value, 'has a path that is not a database number (redis://HOST:PORT/N)');
  }
  return value;
}

/** Letters, digits, '.', '_' and '-', at most 100; throws a RangeError otherwise. */
export function parseQueueName(value: string, name = '--queue'): string {
  if (!QUEUE_NAME.test(value)) {
    throw withProblem(
      new RangeError(`Expected a queue name of letters, digits, '.', '_' or '-' (at most 100) for ${name} but received ${JSON.stringify(value)}`),
      name, value, "is not a queue name: letters, digits, '.', '_' or '-', at most 100");
  }
  return value;
}

/** The URL as it may be printed: any password is masked. */
export function redactUrl(value: string): string {
  const url = new URL(value);
  if (url.password !== '') url.password = '***';
  return url.toString().replace(/\/$/, '');
}

/** How long reaching Redis may take before a command gives up: a Redis on the network answers in milliseconds. */
export const PROBE_MS = 1000;

/**
 * Connects to the Redis at `url` and PINGs it, all within `ms`; resolves when it answers, throws an
 * Error saying why otherwise: nothing listens there (ECONNREFUSED), no such host (ENOTFOUND), no
 * answer in time (a firewall dropping packets, or something that is not Redis), or the server's own
 * refusal (WRONGPASS, NOAUTH). Every command runs it first, so none waits in BullMQ's retries.
 */
export async function probeRedis(url: string, ms = PROBE_MS): Promise<void> {
  const { host, port } = new URL(url);
  const where = `${host.replace(/:\d+$/, '')}:${port || 6379}`;
  const client = new Redis(url, {
    lazyConnect: true, connectTimeout: ms, commandTimeout: ms, maxRetriesPerRequest: 0, enableOfflineQueue: false, disconnectTimeout: 50,
    retryStrategy: () => null, // one try: this is the question whether Redis is there at all
  });
  let first: Error | undefined; // the socket's own error; connect() then rejects with "Connection is closed"
  client.on('error', (err: Error) => (first ??= err));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from ${where} within ${ms / 1000} s (ETIMEDOUT)`)), ms);
  });
  try {
    await Promise.race([client.connect().then(() => client.ping()), late]);
  } catch (err) {
    const e = (first ?? err) as NodeJS.ErrnoException;
    if (e.code === 'ECONNREFUSED') throw new Error(`nothing listens at ${where} (connect ECONNREFUSED)`);
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') throw new Error(`host ${JSON.stringify(new URL(url).hostname)} not found (${e.code})`);
    if (/timed? ?out/i.test(e.message)) throw new Error(`no answer from ${where} within ${ms / 1000} s (ETIMEDOUT)`);
    throw e;
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/**
 * For commands that ask once (enqueue, status): an unreachable Redis fails the call within about
 * a second instead of being retried forever.
 */
export function clientConnection(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: 1, retryStrategy: (times: number) => (times > 3 ? null : 200) };
}

/** For workers: reconnect forever (BullMQ's default), so a Redis restart does not end the fleet. */
export function workerConnection(url: string): ConnectionOptions {
  return { url };
}
