// Running native jobs: flags, and waiting with an AbortSignal. Shared by every class that runs native work.
import { abortError } from './errors';
import { RUN_COPY_OUTPUTS, type NativeJob } from './native';
import { typeError } from './validate';

let flags: number | undefined;

/**
 * run() flags every run takes: FILM_FEATURES_COPY_OUTPUTS=1 forces copied outputs (Electron's
 * path). Read once, at the first run.
 */
export function runFlags(): number {
  flags ??= process.env.FILM_FEATURES_COPY_OUTPUTS === '1' ? RUN_COPY_OUTPUTS : 0;
  return flags;
}

/** undefined, or an AbortSignal that has not fired yet (one that has throws its AbortError now). */
export function checkSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw typeError('an AbortSignal', name, value);
  if (value.aborted) throw abortError(value.reason);
  return value;
}

/** The job's result; when signal fires first, the job is cancelled and this rejects with an AbortError. */
export async function settle<T>(job: NativeJob<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return job.promise;
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      job.cancel();
      reject(abortError(signal.reason));
    };
  });
  job.promise.catch(() => {}); // settles after an abort too; nobody waits for it then
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([job.promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
