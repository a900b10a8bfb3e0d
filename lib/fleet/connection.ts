// Where the fleet's queue lives: a Redis URL and a queue name, checked before BullMQ sees them.
import type { ConnectionOptions } from 'bullmq';

export const DEFAULT_QUEUE = 'film-features';
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/; // BullMQ forbids ':' (its key separator)

/** A redis:// or rediss:// URL with a host; throws a RangeError naming `name` otherwise. */
export function parseRedisUrl(value: string, name = '--redis'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RangeError(`Expected a URL such as redis://HOST:6379 for ${name} but received ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new RangeError(`Expected a redis:// or rediss:// URL for ${name} but received ${JSON.stringify(value)}`);
  }
  if (url.hostname === '') throw new RangeError(`Expected a host in the URL for ${name}: ${JSON.stringify(value)}`);
  if (!/^(\/\d{0,2})?$/.test(url.pathname)) {
    throw new RangeError(`Expected a database number (redis://HOST:PORT/N) for ${name} but received ${JSON.stringify(value)}`);
  }
  return value;
}

/** Letters, digits, '.', '_' and '-', at most 100; throws a RangeError otherwise. */
export function parseQueueName(value: string, name = '--queue'): string {
  if (!QUEUE_NAME.test(value)) {
    throw new RangeError(`Expected a queue name of letters, digits, '.', '_' or '-' (at most 100) for ${name} but received ${JSON.stringify(value)}`);
  }
  return value;
}

/** The URL as it may be printed: any password is masked. */
export function redactUrl(value: string): string {
  const url = new URL(value);
  if (url.password !== '') url.password = '***';
  return url.toString().replace(/\/$/, '');
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
