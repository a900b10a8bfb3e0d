// Errors with a Node-style `code`, and the caller's stack on errors from native work.

/** Codes this package sets on its errors (err.code), besides Node's ERR_INVALID_ARG_* / ERR_OUT_OF_RANGE. */
export type FilmErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_FILM_DISPOSED'
  | 'ERR_FILM_MODEL_FILE'
  | 'ERR_FILM_MODEL_FORMAT'
  | 'ERR_FILM_DEVICE'
  | 'ERR_FILM_OUT_OF_MEMORY'
  | 'ERR_FILM_RUNTIME'
  | 'ERR_FILM_OUTPUT_EXISTS'
  | 'ERR_FILM_DAMAGED_INPUT'
  | 'ABORT_ERR';

export function withCode<E extends Error>(error: E, code: FilmErrorCode): E & { code: FilmErrorCode } {
  return Object.assign(error, { code });
}

export function disposedError(what = 'FeatureExtractor'): Error {
  return withCode(new Error(`This ${what} has been disposed`), 'ERR_FILM_DISPOSED');
}

/** Like Node's own: name 'AbortError', code 'ABORT_ERR', the signal's reason as cause. */
export function abortError(reason: unknown): Error {
  const error = withCode(new Error('The operation was aborted', { cause: reason }), 'ABORT_ERR');
  error.name = 'AbortError';
  return error;
}

/**
 * Runs a native call, and gives any error it rejects with the caller's stack: native errors are
 * created on the main thread after the work, with no user frames of their own.
 */
export async function withCallerStack<T>(call: () => Promise<T>): Promise<T> {
  const site = new Error();
  try {
    return await call();
  } catch (err) {
    if (err instanceof Error && site.stack) {
      const frames = site.stack.slice(site.stack.indexOf('\n'));
      err.stack = `${err.name}: ${err.message}${frames}`;
    }
    throw err;
  }
}
