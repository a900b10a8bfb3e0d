// Where each frame's outputs go, and writing them so that nothing half-written looks complete:
// a frame's files are written into a hidden temporary folder that is renamed into place at the end.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { InputItem } from './inputs';

/** The name of each frame's folder inside its input's folder: the frame index in 6 digits. */
export const frameName = (index: number): string => String(index).padStart(6, '0');

/** `<out>/<name>/` for a still image, `<out>/<name>/<frame, 6 digits>/` for a frame of a video or animation. */
export function unitDir(out: string, item: Pick<InputItem, 'name'>, frame: number | null): string {
  const dir = path.join(out, ...item.name.split('/'));
  return frame === null ? dir : path.join(dir, frameName(frame));
}

/** Whether a complete output is there: its folder has meta.json (folders appear only complete). */
export async function unitComplete(dir: string): Promise<boolean> {
  try {
    return (await fs.stat(path.join(dir, 'meta.json'))).isFile();
  } catch {
    return false;
  }
}

/** Creates `out` and writes and removes a file in it; throws an Error saying why it cannot be written. */
export async function checkWritable(out: string): Promise<void> {
  const probe = path.join(out, `.film-features-probe-${process.pid}`);
  try {
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(probe, '');
    await fs.rm(probe);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot write to the output folder ${out}: ${e.code ?? ''} ${e.message.replace(/^\w+: /, '')}`.replace(/  +/g, ' '));
  }
}

const host = os.hostname().replace(/[^\w.-]/g, '_');
let counter = 0;
const cleaned = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary folders that runs on this host left behind when they were killed (once per folder). */
async function removeStale(parent: string): Promise<void> {
  if (cleaned.has(parent)) return;
  cleaned.add(parent);
  const mine = new RegExp(`^\\..+\\.(partial|old)-${host.replace(/\./g, '\\.')}-(\\d+)-\\d+$`);
  for (const name of await fs.readdir(parent).catch(() => [] as string[])) {
    const m = mine.exec(name);
    if (m && !alive(Number(m[2]))) await fs.rm(path.join(parent, name), { recursive: true, force: true });
  }
}

export interface OutputFile {
  name: string;
  /** Written in order, each from its own memory; a generator can make them one at a time. */
  chunks: Iterable<Uint8Array>;
}

/**
 * Writes `files` into `dir` atomically: into `.<dir name>.partial-<host>-<pid>-<n>` beside it, then
 * renamed to `dir`. An existing `dir` is replaced (moved aside, then removed). Returns the bytes written.
 */
export async function writeUnit(dir: string, files: readonly OutputFile[], signal?: AbortSignal): Promise<number> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  await fs.mkdir(parent, { recursive: true });
  await removeStale(parent);
  const tag = `${host}-${process.pid}-${++counter}`;
  const temp = path.join(parent, `.${base}.partial-${tag}`);
  await fs.mkdir(temp);
  let bytes = 0;
  try {
    for (const file of files) {
      signal?.throwIfAborted();
      const handle = await fs.open(path.join(temp, file.name), 'w');
      try {
        for (const chunk of file.chunks) {
          await handle.writeFile(chunk);
          bytes += chunk.byteLength;
        }
      } finally {
        await handle.close();
      }
    }
    signal?.throwIfAborted();
    try {
      await fs.rename(temp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'ENOTDIR') throw err;
      const old = path.join(parent, `.${base}.old-${tag}`);
      await fs.rename(dir, old);
      await fs.rename(temp, dir);
      await fs.rm(old, { recursive: true, force: true });
    }
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true });
    throw err;
  }
  return bytes;
}

const digests = new Map<string, Promise<string>>();

/** The sha256 of a file, hex; computed once per path and size/mtime in this process. */
export async function sha256File(file: string): Promise<string> {
  const stat = await fs.stat(file);
  const key = `${file}\0${stat.size}\0${stat.mtimeMs}`;
  let digest = digests.get(key);
  if (!digest) {
    digest = new Promise<string>((resolve, reject) => {
      const hash = createHash('sha256');
      createReadStream(file).on('data', (d) => hash.update(d)).on('error', reject).on('end', () => resolve(hash.digest('hex')));
    });
    digests.set(key, digest);
    digest.catch(() => digests.delete(key));
  }
  return digest;
}
