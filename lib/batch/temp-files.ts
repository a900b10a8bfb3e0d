// The one temporary-name scheme of everything film-features writes, and the one cleanup of what
// killed runs left. A file or folder is written under `.<final name>.partial~<space>~<pid>~<n>[.ext]`
// beside its final name, then placed (place.ts).
//
// `<space>` names the process's PID namespace on this boot (the kernel's boot id and the
// namespace's inode), so a pid is only ever judged where it means something: two containers with
// one host name and their own PID namespaces, or two hosts sharing a disk, never remove each
// other's temporaries while they are written. Whatever another space left is removed only once it
// has not changed for a day.
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { MAX_NAME_BYTES } from './names';

function processSpace(): string {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/-/g, '').slice(0, 8);
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    if (/^[0-9a-f]{8}$/.test(boot) && ns) return `${boot}${ns}`;
  } catch {
    // no /proc (not Linux): the space is unknown, and no temporary is judged by its pid
  }
  return 'x';
}

const space = processSpace();
let counter = 0;

/** Temporaries of another PID namespace, boot or host are removed once untouched this long. */
export const ABANDONED_AFTER_MS = 24 * 3600 * 1000;

/** A base name short enough that the temporary name fits in 255 bytes (long ones: a prefix and a hash). */
function fitBase(base: string, room: number): string {
  if (Buffer.byteLength(base) <= room) return base;
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 12);
  let prefix = Buffer.from(base).subarray(0, room - hash.length - 1).toString('utf8');
  prefix = prefix.replace(/\uFFFD$/, ''); // a character cut in two
  return `${prefix}~${hash}`;
}

/**
 * A new temporary name standing for `<dir>/<base>`, unique to this write: `.<base>.partial~<space>~<pid>~<n><ext>`
 * (ext: a suffix a tool needs, such as ffmpeg's container).
 */
export function tempPath(dir: string, base: string, ext = ''): string {
  const tail = `.partial~${space}~${process.pid}~${++counter}${ext}`;
  return path.join(dir, `.${fitBase(base, MAX_NAME_BYTES - 1 - Buffer.byteLength(tail))}${tail}`);
}

const TEMP = /^\.(.+)\.partial~([0-9a-fx]+)~(\d+)~\d+(\.\w+)?$/;
// film-features 0.1's names: `.<base>.partial-<host>-<pid>-<n>` and `.<base>.old-<host>-<pid>-<n>`
const TEMP_0_1 = /^\.(.+)\.(?:partial|old)-[\w.-]+-\d+-\d+(\.\w+)?$/;

export interface TempName {
  /** The final name it stands for (shortened where it was long). */
  base: string;
  /** The PID namespace on this boot that wrote it; null for 0.1's names, whose writer cannot be told. */
  space: string | null;
  pid: number;
}

/** What a temporary name of ours stands for and who wrote it; null for any other name. */
export function parseTempName(name: string): TempName | null {
  const m = TEMP.exec(name);
  if (m) return { base: m[1], space: m[2], pid: Number(m[3]) };
  const old = TEMP_0_1.exec(name);
  return old ? { base: old[1], space: null, pid: 0 } : null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the temporary `name` in `dir` was left by a writer that is gone. */
async function abandoned(dir: string, temp: TempName, name: string): Promise<boolean> {
  if (temp.space === space && space !== 'x') return temp.pid !== process.pid && !alive(temp.pid);
  const stat = await fs.lstat(path.join(dir, name)).catch(() => null);
  return stat !== null && Date.now() - stat.mtimeMs > ABANDONED_AFTER_MS;
}

/** Folders already cleaned by this process: bounded, so a worker that runs for weeks does not grow. */
export const CLEANED_CACHE_LIMIT = 256;
const cleaned = new Set<string>();
export const cleanedCacheSize = (): number => cleaned.size;

/**
 * Removes the temporaries in `dir` whose writer is gone (see the top of this file); once per
 * folder and process, unless `again`. Everything else in `dir` is left as it is.
 */
export async function removeAbandonedTemps(dir: string, again = false): Promise<void> {
  if (cleaned.has(dir) && !again) return;
  cleaned.add(dir);
  if (cleaned.size > CLEANED_CACHE_LIMIT) cleaned.delete(cleaned.values().next().value!);
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const temp = parseTempName(name);
    if (temp && (await abandoned(dir, temp, name))) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  }
}
