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
