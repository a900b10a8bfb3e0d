// Where each frame's outputs go, and writing them so that nothing half-written looks complete and
// nothing film-features did not write is replaced: a frame's files are written into a hidden
// temporary folder that is renamed into place at the end, over an earlier output only when that
// one is ours (meta.json says writer "film-features"), from the same source, and holds only our files.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';

import { withCode } from '../errors';
import type { InputItem } from './inputs';
import { atomicTag, fsyncDir, type NewFile, oldName, OutputExistsError, parseTempName, partialName, removeStale, writeNewFiles, type WriteOptions } from './atomic';

export { OutputExistsError, removeStale, staleCacheSize, STALE_CACHE_LIMIT } from './atomic';

/** meta.json's `writer`: how an output folder is known to be film-features' own. */
export const WRITER = 'film-features' as const;
/** meta.json's `layout`: the version of this folder layout. */
export const LAYOUT = 1;

/** The name of each frame's folder inside its input's folder: the frame index in 6 digits. */
export const frameName = (index: number): string => String(index).padStart(6, '0');
const FRAME = /^\d{6}$/;
/** Whether `name` is a frame folder's name (6 digits). */
export const isFrameName = (name: string): boolean => FRAME.test(name);
/** Whether `name` is a frame folder's temporary name (atomic.ts's scheme). */
const isFrameTemp = (name: string): boolean => isFrameName(parseTempName(name)?.base ?? '');

/**
 * Checks an output name: '/'-separated parts, none empty, none starting with '.' (so never '.' or
 * '..', and never hidden), no '\' or NUL. Returns it; throws a TypeError with code
 * ERR_INVALID_ARG_VALUE. expandInputs only makes such names; this guards names from elsewhere.
 */
export function checkOutputName(name: unknown, what = 'item.name'): string {
  const ok = typeof name === 'string' && name !== '' &&
    name.split('/').every((part) => part !== '' && !part.startsWith('.') && !/[\\\0]/.test(part));
  if (!ok) {
    throw withCode(new TypeError(`Expected ${what} to be an output name ('/'-separated parts, none empty or starting ` +
      `with '.', no '\\' or NUL) but received ${JSON.stringify(name)}`), 'ERR_INVALID_ARG_VALUE');
  }
  return name as string;
}

/** `<out>/<name>/` for a still image, `<out>/<name>/<frame, 6 digits>/` for a frame of a video or animation. */
export function unitDir(out: string, item: Pick<InputItem, 'name'>, frame: number | null): string {
  const dir = path.join(out, ...checkOutputName(item.name).split('/'));
  return frame === null ? dir : path.join(dir, frameName(frame));
}

interface OwnMeta {
  source: string;
  frame: number | null;
  files: string[];
}

/** What is at an output folder: nothing, our output (complete when every file it lists is there), or something else. */
export type UnitState =
  | { state: 'absent' }
  | { state: 'ours'; complete: boolean }
  | { state: 'foreign'; error: OutputExistsError };

const foreign = (dir: string, why: string): UnitState => ({ state: 'foreign', error: new OutputExistsError(dir, why) });

async function lstat(p: string) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function what(stat: NonNullable<Awaited<ReturnType<typeof lstat>>>): string {
  return stat.isSymbolicLink() ? 'is a symbolic link' : stat.isFile() ? 'is a regular file' : 'is not a folder';
}

async function readOwnMeta(dir: string): Promise<OwnMeta | null> {
  const file = path.join(dir, 'meta.json');
  const stat = await lstat(file);
  if (!stat?.isFile() || stat.size > 1 << 20) return null;
  try {
    const m = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    if (m.writer !== WRITER || m.layout !== LAYOUT || typeof m.source !== 'string' || !Array.isArray(m.files)) return null;
    if (!m.files.every((f) => typeof f === 'string')) return null;
    return { source: m.source, frame: typeof m.frame === 'number' ? m.frame : null, files: m.files as string[] };
  } catch {
    return null;
  }
}

/**
 * What is at `dir`, the output folder of one still or frame of `source`. Ours means: a real folder
 * (not a link) with a meta.json we wrote, for this source, and nothing in it but the files that
 * meta.json lists.
 */
export async function inspectUnit(dir: string, source: string): Promise<UnitState> {
  const stat = await lstat(dir);
  if (!stat) return { state: 'absent' };
  if (!stat.isDirectory()) return foreign(dir, `${what(stat)}, not a film-features output`);
  const meta = await readOwnMeta(dir);
  if (!meta) return foreign(dir, 'is a folder that is not a film-features output (no meta.json written by film-features)');
  if (meta.source !== source) return foreign(dir, `holds the output of another input (${meta.source})`);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const listed = new Set(meta.files);
  const others = entries.filter((e) => !listed.has(e.name) || !e.isFile()).map((e) => e.name);
  if (others.length > 0) return foreign(dir, `holds files film-features did not write (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''})`);
  return { state: 'ours', complete: entries.length === listed.size };
}

/**
 * What is at `dir`, the folder of a video's (or animation's) frames: ours when it is a real folder
 * holding only frame folders of ours from `source` (and our temporary folders). An empty folder is
 * not ours: we never leave one (the folder appears with its first frame).
 */
export async function inspectFrames(dir: string, source: string): Promise<UnitState> {
  const stat = await lstat(dir);
  if (!stat) return { state: 'absent' };
  if (!stat.isDirectory()) return foreign(dir, `${what(stat)}, not a film-features output`);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  let frames = 0;
  for (const e of entries) {
    if (isFrameTemp(e.name)) continue;
    if (!FRAME.test(e.name) || !e.isDirectory()) return foreign(dir, `holds ${e.name}, which film-features did not write`);
    const s = await inspectUnit(path.join(dir, e.name), source);
    if (s.state === 'foreign') return foreign(dir, `holds ${e.name}, which ${s.error.why}`);
    frames++;
  }
  if (frames === 0) return foreign(dir, 'is a folder film-features did not make (it holds no frames of ours)');
  return { state: 'ours', complete: true };
}

/** Whether a complete output of ours is at `dir` (a still's or a frame's folder), from any source. */
export async function unitComplete(dir: string): Promise<boolean> {
  const meta = await readOwnMeta(dir).catch(() => null);
  if (!meta) return false;
  const s = await inspectUnit(dir, meta.source);
  return s.state === 'ours' && s.complete;
}

/** Creates `out` and writes and removes a file in it; throws an Error saying why it cannot be written. */
export async function checkWritable(out: string): Promise<void> {
  const probe = partialName(out, 'film-features-probe', atomicTag()); // our temporary name: removeStale knows it
  try {
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(probe, '', { flag: 'wx' }); // never over a file of that name
    await fs.rm(probe);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot write to the output folder ${out}: ${e.code ?? ''} ${e.message.replace(/^\w+: /, '')}`.replace(/  +/g, ' '));
  }
}

/** mkdir -p, saying which path is in the way when a file is. */
async function makeFolder(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new OutputExistsError(dir, 'or a folder above it is not a folder');
    throw err;
  }
}

/** One file of a unit: its name in the unit's folder and what it is written from. */
export type OutputFile = NewFile;

export interface UnitOptions extends WriteOptions {
  /** The input the files are from: an existing output is replaced only when it is from the same one. */
  source: string;
  /** `dir` is a frame's folder inside a video's folder (which is then checked, or made with this frame). */
  frame: boolean;
}

const inTheWay = (err: unknown): boolean => ['ENOTEMPTY', 'EEXIST', 'ENOTDIR', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

/** Renames `temp` to `dir`: into a free place, or over our own output of `source` (whose files go). */
async function place(temp: string, dir: string, source: string, tag: string, fsync: boolean): Promise<void> {
  let state = await inspectUnit(dir, source);
  if (state.state === 'absent') {
    try {
      await fs.rename(temp, dir);
      if (fsync) await fsyncDir(path.dirname(dir));
      return;
    } catch (err) {
      if (!inTheWay(err)) throw err;
      state = await inspectUnit(dir, source); // something appeared meanwhile
    }
  }
  if (state.state === 'foreign') throw state.error;
  const old = oldName(path.dirname(dir), path.basename(dir), tag);
  await fs.rename(dir, old);
  try {
    await fs.rename(temp, dir);
  } catch (err) {
    await fs.rename(old, dir).catch(() => {});
    throw err;
  }
  if (fsync) await fsyncDir(path.dirname(dir));
  await fs.rm(old, { recursive: true, force: true });
}

/** Video folders checked as ours in this process, by path and source, with the inode they had (a bounded cache). */
const framesChecked = new Map<string, number>();

/** Throws OutputExistsError unless `dir` is absent or a video folder of ours from `source`; true when it exists. */
async function checkFramesFolder(dir: string, source: string): Promise<boolean> {
  const stat = await lstat(dir);
  const key = `${dir}\0${source}`;
  if (stat && stat.isDirectory() && framesChecked.get(key) === stat.ino) return true;
  const state = await inspectFrames(dir, source);
  if (state.state === 'foreign') throw state.error;
  if (state.state === 'absent') return false;
  framesChecked.delete(key);
  framesChecked.set(key, stat!.ino);
  if (framesChecked.size > 64) framesChecked.delete(framesChecked.keys().next().value!);
  return true;
}

/**
 * Writes `files` into `dir` atomically: into `.<dir name>.partial-<host>-<pid>-<n>` beside it,
 * then renamed to `dir`. An existing `dir` is replaced only when it is our output of the same
 * source with only our files in it; anything else there throws OutputExistsError
 * (code ERR_FILM_OUTPUT_EXISTS) and is left as it was. A video's first frame makes the video's
 * folder with it (so an empty one is never left). Returns the bytes written.
 */
export async function writeUnit(dir: string, files: readonly OutputFile[], options: UnitOptions): Promise<number> {
  const { source, signal, fsync = false } = options;
  const tag = atomicTag();
  const parent = path.dirname(dir);
  if (options.frame && !(await checkFramesFolder(parent, source))) {
    // the video's folder does not exist: write it whole, holding this frame, and rename it into place
    const top = path.dirname(parent);
    await makeFolder(top);
    await removeStale(top);
    const temp = partialName(top, path.basename(parent), tag);
    await fs.mkdir(temp);
    try {
      const { bytes } = await writeNewFiles(path.join(temp, path.basename(dir)), files, true, { signal, fsync });
      if (fsync) await fsyncDir(temp);
      try {
        await fs.rename(temp, parent);
        if (fsync) await fsyncDir(top);
        return bytes;
      } catch (err) {
        if (!inTheWay(err)) throw err;
        await checkFramesFolder(parent, source); // made meanwhile: ours, or this throws
        await place(path.join(temp, path.basename(dir)), dir, source, tag, fsync);
        return bytes;
      }
    } finally {
      await fs.rm(temp, { recursive: true, force: true });
    }
  }
  await removeStale(parent);
  const temp = partialName(parent, path.basename(dir), tag);
  try {
    // The write task makes missing folders above (one wake-up a photo less than a mkdir -p here);
    // the unit is placed at once where nothing is at dir, else place() looks at what is there.
    const { bytes, placed } = await writeNewFiles(temp, files, true, { signal, fsync, placeAt: dir }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOTDIR' || err.code === 'EEXIST') throw new OutputExistsError(parent, 'or a folder above it is not a folder');
      throw err;
    });
    if (!placed) await place(temp, dir, source, tag, fsync);
    return bytes;
  } catch (err) {
    // (where a file blocks the path, there is no temporary to remove: the error that says so wins)
    await fs.rm(temp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
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
