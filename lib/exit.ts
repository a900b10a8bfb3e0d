// process.exit() with runs in flight: exit() would tear down libtorch and oneDNN under the
// addon's executor threads. On the main thread's 'exit' event the addon drops queued work and waits
// for running work first (a worker_thread's exit leaves the process-wide executor alone).
import { isMainThread } from 'node:worker_threads';

import { native } from './native';

let installed = false;

export function installExitHook(): void {
  if (installed || !isMainThread) return;
  installed = true;
  const binding = native(); // throws here, in the caller, when there is no addon; never at exit
  process.on('exit', () => binding.shutdownForExit());
}
