// The one temporary-name scheme of everything film-features writes, and writing a file so that it
// appears whole or not at all and never replaces a file film-features did not write.
// Temporary names: `.<final name>.partial-<host>-<pid>-<n>[.ext]` beside the final name (`.old-`
// for our output moved aside while it is replaced). A later run on this host removes those whose
// process is gone.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const host = os.hostname().replace(/[^\w.-]/g, '_');
let counter = 0;

/** `<host>-<pid>-<n>`, unique to this write on this host. */
export const atomicTag = (): string => `${host}-${process.pid}-${++counter}`;

/** `.<base>.partial-<tag><ext>` in `dir`. */
export const partialName = (dir: string, base: string, tag: string, ext = ''): string => path.join(dir, `.${base}.partial-${tag}${ext}`);

/** Something is at an output path that film-features did not write (or may not replace). */
export class OutputExistsError extends Error {
  readonly code = 'ERR_FILM_OUTPUT_EXISTS';

  /** `why` says what is there, e.g. "is a regular file, not a film-features output". */
  constructor(readonly path: string, readonly why: string) {
    super(`${path} ${why}: not replaced (remove it or choose another output)`);
    this.name = 'OutputExistsError';
  }
}

/** Folders already cleaned by this process: bounded, so a worker that runs for weeks does not grow. */
export const STALE_CACHE_LIMIT = 256;
const cleaned = new Set<string>();
export const staleCacheSize = (): number => cleaned.size;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const stale = new RegExp(`^\\..+\\.(partial|old)-${host.replace(/\./g, '\\.')}-(\\d+)-\\d+(\\.\\w+)?$`);

/** Removes the temporary files and folders that runs on this host left in `parent` when they were killed. */
export async function removeStale(parent: string): Promise<void> {
  if (cleaned.has(parent)) return;
  cleaned.add(parent);
  if (cleaned.size > STALE_CACHE_LIMIT) cleaned.delete(cleaned.values().next().value!);
  for (const name of await fs.readdir(parent).catch(() => [] as string[])) {
    const m = stale.exec(name);
    if (m && Number(m[2]) !== process.pid && !alive(Number(m[2]))) await fs.rm(path.join(parent, name), { recursive: true, force: true });
  }
}

export interface WriteOptions {
  signal?: AbortSignal;
  /** Flush each file, and its folder, to the disk before it is renamed into place. */
  fsync?: boolean;
}

/** Writes chunks to a new file (it must not exist); returns the bytes written. */
export async function writeChunks(file: string, chunks: Iterable<Uint8Array>, options: WriteOptions = {}): Promise<number> {
  const handle = await fs.open(file, 'wx');
  let bytes = 0;
  try {
    for (const chunk of chunks) {
      options.signal?.throwIfAborted();
      await handle.writeFile(chunk);
      bytes += chunk.byteLength;
    }
    if (options.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  return bytes;
}

/** fsync on a folder: makes the names in it (a rename into it) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface FileOptions extends WriteOptions {
  /** Whether an existing regular file at the target is one film-features wrote (then it is replaced). */
  ours: (file: string) => Promise<boolean>;
}

/**
 * Moves the finished temporary file `temp` to `file`: where nothing is there, without replacing
 * anything that appears meanwhile (a hard link, then the temporary name goes); over a file only
 * when `ours` says film-features wrote it; anything else throws OutputExistsError. `temp` is gone after.
 */
export async function placeFile(temp: string, file: string, options: FileOptions): Promise<void> {
  try {
    try {
      await fs.link(temp, file);
      if (options.fsync) await fsyncDir(path.dirname(file));
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    }
    const stat = await fs.lstat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (stat && !stat.isFile()) throw new OutputExistsError(file, `is ${stat.isSymbolicLink() ? 'a symbolic link' : 'a folder'}`);
    if (stat && !(await options.ours(file))) throw new OutputExistsError(file, 'is a file film-features did not write');
    await fs.rename(temp, file);
    if (options.fsync) await fsyncDir(path.dirname(file));
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/** Writes a whole file atomically through a temporary name beside it, replacing only a file of ours (see placeFile). */
export async function writeFileAtomic(file: string, chunks: Iterable<Uint8Array>, options: FileOptions): Promise<number> {
  const temp = partialName(path.dirname(file), path.basename(file), atomicTag());
  await removeStale(path.dirname(file));
  let bytes: number;
  try {
    bytes = await writeChunks(temp, chunks, options);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await placeFile(temp, file, options);
  return bytes;
}
