// The one temporary-name scheme of everything film-features writes, and writing a file so that it
// appears whole or not at all and never replaces a file film-features did not write.
// Temporary names: `.<final name>.partial-<host>-<pid>-<n>[.ext]` beside the final name (`.old-`
// for our output moved aside while it is replaced). A later run on this host removes those whose
// process is gone.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { native } from '../native';

const host = os.hostname().replace(/[^\w.-]/g, '_');
let counter = 0;

/** `<host>-<pid>-<n>`, unique to this write on this host. */
export const atomicTag = (): string => `${host}-${process.pid}-${++counter}`;

/** A file or folder being written (`partial`), or our output moved aside while it is replaced (`old`). */
export type TempKind = 'partial' | 'old';

/** `.<base>.<kind>-<tag><ext>` in `dir`: the temporary name standing for `<dir>/<base>`. */
export const tempName = (dir: string, base: string, kind: TempKind, tag: string, ext = ''): string =>
  path.join(dir, `.${base}.${kind}-${tag}${ext}`);

/** `.<base>.partial-<tag><ext>` in `dir`. */
export const partialName = (dir: string, base: string, tag: string, ext = ''): string => tempName(dir, base, 'partial', tag, ext);

/** `.<base>.old-<tag>` in `dir`. */
export const oldName = (dir: string, base: string, tag: string): string => tempName(dir, base, 'old', tag);

const TEMP = /^\.(.+)\.(partial|old)-([\w.-]+)-(\d+)-\d+(\.\w+)?$/;

/** What a temporary name of ours stands for (the final name, `base`) and who wrote it; null for any other name. */
export function parseTempName(name: string): { base: string; kind: TempKind; host: string; pid: number } | null {
  const m = TEMP.exec(name);
  return m ? { base: m[1], kind: m[2] as TempKind, host: m[3], pid: Number(m[4]) } : null;
}

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

/**
 * Removes the temporary names in `parent` that `which` picks (given what each stands for and who
 * wrote it): the one cleanup of the one scheme, for removeStale and for a fleet job's leftovers.
 */
export async function removeTemps(parent: string, which: (temp: NonNullable<ReturnType<typeof parseTempName>>) => boolean): Promise<void> {
  for (const name of await fs.readdir(parent).catch(() => [] as string[])) {
    const temp = parseTempName(name);
    if (temp && which(temp)) await fs.rm(path.join(parent, name), { recursive: true, force: true });
  }
}

/** Removes the temporary files and folders that runs on this host left in `parent` when they were killed. */
export async function removeStale(parent: string): Promise<void> {
  if (cleaned.has(parent)) return;
  cleaned.add(parent);
  if (cleaned.size > STALE_CACHE_LIMIT) cleaned.delete(cleaned.values().next().value!);
  await removeTemps(parent, (t) => t.host === host && t.pid !== process.pid && !alive(t.pid));
}

export interface WriteOptions {
  signal?: AbortSignal;
  /** Flush each file, and its folder, to the disk before it is renamed into place. */
  fsync?: boolean;
}

/** A level a frame run holds natively (native/file_writer.h): written from native memory, once. */
export interface HeldChunk {
  readonly levels: object;
  readonly index: number;
}

/** What a file is written from: bytes in hand, or a held level. */
export type Chunk = Uint8Array | HeldChunk;

export interface NewFile {
  name: string;
  /** Written in order, each from its own memory; a generator can make them one at a time. */
  chunks: Iterable<Chunk>;
}

export interface NewFilesOptions extends WriteOptions {
  /** Then rename the folder to this path, only where nothing at all is there (else `placed` is false). */
  placeAt?: string;
}

/**
 * Writes new files (none may exist) into `dir`, made first when `makeDir` (it must not exist;
 * missing folders above it too), in one task off the main thread: bytes in hand are copied now,
 * held levels are written from native memory and freed (with no held level and more than
 * COPY_LIMIT bytes in hand, JS writes them from their own memory). With fsync each file, then the
 * folder, is flushed to the disk. Returns the bytes written, and whether the folder was renamed to
 * `placeAt`; on failure, what was written is left for the caller to remove.
 */
export async function writeNewFiles(dir: string, files: readonly NewFile[], makeDir: boolean,
  options: NewFilesOptions = {}): Promise<{ bytes: number; placed: boolean }> {
  options.signal?.throwIfAborted();
  let levels: object | null = null;
  const specs = files.map(({ name, chunks }) => ({
    name,
    parts: Array.from(chunks, (chunk) => {
      if (chunk instanceof Uint8Array) return chunk;
      if (levels !== null && levels !== chunk.levels) throw new Error('writeNewFiles takes the held levels of one frame run');
      levels = chunk.levels;
      return chunk.index;
    }),
  }));
  if (levels === null && specs.some(({ parts }) => parts.some((part) => (part as Uint8Array).byteLength > COPY_LIMIT))) {
    return { bytes: await writeFromJs(dir, specs as { name: string; parts: Uint8Array[] }[], makeDir, options), placed: false };
  }
  const done = await native().writeFiles(dir, makeDir, specs, levels, options.fsync ?? false, options.placeAt);
  if (!done.placed) options.signal?.throwIfAborted(); // a placed output is complete: it stays
  return done;
}

/**
 * Bytes in hand above this are written from their own memory by JS (a large frame's levels in
 * bands, levels kept for a preview): the native task would copy them on the main thread first.
 */
const COPY_LIMIT = 1 << 20;

async function writeFromJs(dir: string, files: { name: string; parts: Uint8Array[] }[], makeDir: boolean, options: WriteOptions): Promise<number> {
  if (makeDir) {
    await fs.mkdir(path.dirname(dir), { recursive: true }); // as the native task does
    await fs.mkdir(dir);
  }
  let bytes = 0;
  for (const { name, parts } of files) {
    options.signal?.throwIfAborted();
    const handle = await fs.open(path.join(dir, name), 'wx');
    try {
      for (const part of parts) {
        await handle.writeFile(part);
        bytes += part.byteLength;
      }
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }
  if (options.fsync) await fsyncDir(dir);
  options.signal?.throwIfAborted();
  return bytes;
}

/** Writes chunks, in order, to a new file (it must not exist); returns the bytes written. */
export async function writeChunks(file: string, chunks: Iterable<Chunk>, options: WriteOptions = {}): Promise<number> {
  return (await writeNewFiles(path.dirname(file), [{ name: path.basename(file), chunks }], false, options)).bytes;
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
export async function writeFileAtomic(file: string, chunks: Iterable<Chunk>, options: FileOptions): Promise<number> {
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
