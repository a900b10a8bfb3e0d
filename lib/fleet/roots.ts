// The folders a worker's jobs may read from and write to. A job names its paths; where they lead is
// decided by the file system, so each is resolved (symlinks followed) and must land inside a root.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { unitDir } from '../batch';
import type { FleetJobData } from './job-data';

export interface Roots {
  /** Real paths of the folders outputs may be written under. */
  out: readonly string[];
  /** Real paths of the folders inputs may be read from. */
  input: readonly string[];
}

/** A job that would write or read outside the roots; never retried. */
export class OutsideRootsError extends Error {}

/** The real paths of `dirs` (each an existing folder); throws an Error naming `flag` otherwise. */
export async function resolveRoots(dirs: readonly string[], flag: string): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs) {
    let real: string;
    try {
      real = await fs.realpath(path.resolve(dir));
      if (!(await fs.stat(real)).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    } catch (err) {
      throw new Error(`${flag} ${dir}: ${(err as NodeJS.ErrnoException).code ?? ''} expected an existing folder`.replace(/  +/g, ' '));
    }
    if (!out.includes(real)) out.push(real);
  }
  return out;
}

/**
 * Where `p` (absolute, normalized) leads: the real path of its nearest existing ancestor with the
 * rest of `p` appended, for a path that does not exist yet.
 */
export async function realpathOrAncestor(p: string): Promise<string> {
  const rest: string[] = [];
  let current = p;
  for (;;) {
    try {
      return path.join(await fs.realpath(current), ...rest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw err;
      rest.unshift(path.basename(current));
      current = parent;
    }
  }
}

const within = (real: string, root: string): boolean => real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
const list = (roots: readonly string[]): string => roots.join(', ');

/**
 * The job with its output folder and source replaced by the real paths they lead to, after checking
 * that the output folder `<out>/<name>` lies strictly inside an output root and the source inside an
 * input root. Throws OutsideRootsError saying which and why.
 */
export async function confineJob(job: FleetJobData, roots: Roots): Promise<FleetJobData> {
  const dir = unitDir(job.output.out, job.item, null);
  const realDir = await realpathOrAncestor(dir);
  if (!roots.out.some((root) => within(realDir, root))) {
    const leads = realDir === dir ? '' : ` (it leads to ${realDir})`;
    throw new OutsideRootsError(`refused: the output folder ${dir}${leads} is not inside an output root of this worker (${list(roots.out)})`);
  }
  let source: string;
  try {
    source = await fs.realpath(job.item.source);
  } catch (err) {
    throw new OutsideRootsError(`refused: the source ${job.item.source} cannot be resolved: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!roots.input.some((root) => within(source, root))) {
    const leads = source === job.item.source ? '' : ` (it leads to ${source})`;
    throw new OutsideRootsError(`refused: the source ${job.item.source}${leads} is not inside an input root of this worker (${list(roots.input)})`);
  }
  const out = await realpathOrAncestor(job.output.out);
  return { ...job, item: { ...job.item, source }, output: { ...job.output, out } };
}
