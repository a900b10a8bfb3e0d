// Writing new files: a folder's files in one native task on the I/O thread (levels from native
// memory), or by JS from their own memory, and a single file of ours (interpolate's PNGs). Nothing
// here replaces anything: files are created new (O_EXCL), and place.ts puts them in place.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { native } from '../native';
import { identityOf } from './ownership';
import { fileOwner, flushPlaced, fsyncDir, makeFolders, place, renameIntoFreePlace, type Placed } from './place';
import { removeAbandonedTemps, tempPath } from './temp-files';

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

export interface FilesWritten extends Placed {
  bytes: number;
  /** Whether the folder was renamed to placeAt (the placement rule's first step, done in the same task). */
  placed: boolean;
}

/**
 * Writes new files (none may exist) into `dir`, made first when `makeDir` (it must not exist;
 * missing folders above it are made here, by makeFolders), in one task off the main thread: bytes in hand are copied now,
 * held levels are written from native memory and freed (with no held level and more than
 * COPY_LIMIT bytes in hand, JS writes them from their own memory). With fsync each file, then the
 * folder, is flushed to the disk. On failure, what was written is left for the caller to remove.
 */
export async function writeNewFiles(dir: string, files: readonly NewFile[], makeDir: boolean,
  options: NewFilesOptions = {}): Promise<FilesWritten> {
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
  if (makeDir) await makeFolders(path.dirname(dir));
  if (levels === null && specs.some(({ parts }) => parts.some((part) => (part as Uint8Array).byteLength > COPY_LIMIT))) {
    const bytes = await writeFromJs(dir, specs as { name: string; parts: Uint8Array[] }[], makeDir, options);
    // the placement rule's first step, as the native task takes it
    const placed = options.placeAt !== undefined && (await renameIntoFreePlace(dir, options.placeAt));
    return { bytes, placed, ...(placed ? await flushPlaced(options.placeAt!, options.fsync ?? false) : {}) };
  }
  const done = await native().writeFiles(dir, makeDir, specs, levels, options.fsync ?? false, options.placeAt);
  if (!done.placed) options.signal?.throwIfAborted(); // a placed output is complete: it stays
  return { bytes: done.bytes, placed: done.placed, ...(done.syncError ? { syncError: new Error(done.syncError) } : {}) };
}

/**
 * Bytes in hand above this are written from their own memory by JS (a large frame's levels in
 * bands, levels kept for a preview): the native task would copy them on the main thread first.
 */
const COPY_LIMIT = 1 << 20;

async function writeFromJs(dir: string, files: { name: string; parts: Uint8Array[] }[], makeDir: boolean, options: WriteOptions): Promise<number> {
  if (makeDir) await fs.mkdir(dir);
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

/** A new, empty temporary file standing for `file` (made with its folders), and its identity (ownership.ts). */
export async function newTempFile(file: string, ext = ''): Promise<{ temp: string; identity: string }> {
  const dir = path.dirname(path.resolve(file));
  await makeFolders(dir);
  await removeAbandonedTemps(dir);
  const temp = tempPath(dir, path.basename(file), ext);
  const handle = await fs.open(temp, 'wx');
  try {
    return { temp, identity: identityOf(await handle.stat({ bigint: true })) };
  } finally {
    await handle.close();
  }
}

export interface OwnFileOptions extends WriteOptions {
  /** Reads the mark a file of ours carries (ownership.ts's fileMark), or null; an existing file is replaced only when it is ours. */
  mark: (file: string) => Promise<string | null>;
}

/**
 * Writes a whole file of ours: into a new temporary file whose identity `content` marks it with,
 * then placed by the placement rule (a file that is not ours stays, and this throws
 * OutputExistsError). Returns the bytes written.
 */
export async function writeOwnFile(file: string, content: (identity: string) => Uint8Array[], options: OwnFileOptions): Promise<number> {
  const { temp, identity } = await newTempFile(file);
  try {
    let bytes = 0;
    const handle = await fs.open(temp, 'r+');
    try {
      for (const part of content(identity)) {
        options.signal?.throwIfAborted();
        await handle.writeFile(part);
        bytes += part.byteLength;
      }
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    const { syncError } = await place(temp, file, fileOwner(options.mark), options.fsync);
    if (syncError) process.emitWarning(`${file} is written, but flushing its folder failed: ${syncError.message}`, { code: 'FILM_FEATURES_FSYNC' });
    return bytes;
  } finally {
    await fs.rm(temp, { force: true });
  }
}
