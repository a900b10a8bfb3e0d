// The batch's outputs: one folder per still image or frame (a "unit"), its files written into a
// temporary folder (temp-files.ts) whose identity its meta.json records (ownership.ts), then placed
// by the one placement rule (place.ts). A video's frames go into a folder that appears with the
// first frame, so an empty one is never left.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { identityOf, inspectVideoFolder, LAYOUT, metaJson, WRITER } from './ownership';
import { flushPlaced, fsyncDir, inTheWay, makeFolders, place, renameIntoFreePlace, unitOwner, type Placed } from './place';
import { removeAbandonedTemps, tempPath } from './temp-files';
import { writeNewFiles, type NewFile, type WriteOptions } from './write';

/** One file of a unit: its name in the unit's folder and what it is written from. */
export type OutputFile = NewFile;

export interface UnitOptions extends WriteOptions {
  /** The input the files are from: an existing output is replaced only when it is our output of the same one. */
  source: string;
  /** `dir` is a frame's folder inside a video's folder (which is then checked, or made with this frame). */
  frame: boolean;
  /** meta.json's fields; writeUnit adds the ownership fields (writer, layout, identity). It must list 'meta.json' in `files`. */
  meta: { files: string[] };
}

export interface UnitWritten extends Placed {
  bytes: number;
}

/** Creates `out` and writes and removes a file in it; throws an Error saying why it cannot be written. */
export async function checkWritable(out: string): Promise<void> {
  const probe = tempPath(out, 'film-features-probe'); // our temporary name: the cleanup knows it
  try {
    await makeFolders(out);
    await fs.writeFile(probe, '', { flag: 'wx' }); // never over a file of that name
    await fs.rm(probe);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot write to the output folder ${out}: ${e.code ?? ''} ${e.message.replace(/^\w+: /, '')}`.replace(/  +/g, ' '));
  }
}

/** Video folders checked as ours in this process, by path and source, with the inode they had (a bounded cache). */
const videoFoldersChecked = new Map<string, bigint>();

/** Throws OutputExistsError unless `dir` is absent or a video folder of ours from `source`; true when it exists. */
async function checkVideoFolder(dir: string, source: string): Promise<boolean> {
  const stat = await fs.lstat(dir, { bigint: true }).catch(() => null);
  const key = `${dir}\0${source}`;
  if (stat && stat.isDirectory() && videoFoldersChecked.get(key) === stat.ino) return true;
  const state = await inspectVideoFolder(dir, source);
  if (state.state === 'foreign') throw state.error;
  if (state.state === 'absent') return false;
  videoFoldersChecked.delete(key);
  videoFoldersChecked.set(key, stat!.ino);
  if (videoFoldersChecked.size > 64) videoFoldersChecked.delete(videoFoldersChecked.keys().next().value!);
  return true;
}

/** Makes the folder `temp` (and missing folders above it); returns its identity. */
async function makeUnitFolder(temp: string): Promise<string> {
  try {
    await fs.mkdir(temp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw await inTheWay(path.dirname(temp), err as Error);
    if (code !== 'ENOENT') throw err;
    await makeFolders(path.dirname(temp));
    await fs.mkdir(temp);
  }
  return identityOf(await fs.lstat(temp, { bigint: true }));
}

/** Writes a unit's files and its meta.json into the new folder `temp`; with placeAt, placed there when it is free. */
async function writeUnitFolder(temp: string, files: readonly OutputFile[], options: UnitOptions, placeAt?: string) {
  const identity = await makeUnitFolder(temp);
  const meta = Buffer.from(metaJson({ ...options.meta, writer: WRITER, layout: LAYOUT, identity }));
  return writeNewFiles(temp, [...files, { name: 'meta.json', chunks: [meta] }], false, { signal: options.signal, fsync: options.fsync, placeAt });
}

/**
 * Writes a unit's `files` and its meta.json into `dir` atomically: into a temporary folder beside
 * it, then placed by the placement rule (place.ts): an existing `dir` is replaced only when it is
 * our output of the same source holding only our files; anything else there throws
 * OutputExistsError (code ERR_FILM_OUTPUT_EXISTS) and is left as it was. A video's first frame
 * makes the video's folder with it. Returns the bytes written, and a failed flush after the output
 * was placed (complete, but maybe not durable) as syncError.
 */
export async function writeUnit(dir: string, files: readonly OutputFile[], options: UnitOptions): Promise<UnitWritten> {
  if (!options.meta.files.includes('meta.json')) throw new Error("writeUnit: meta.files must list 'meta.json'");
  const { source, fsync = false } = options;
  const parent = path.dirname(dir);
  if (options.frame && !(await checkVideoFolder(parent, source))) return writeFirstFrame(dir, files, options);
  await removeAbandonedTemps(parent);
  const temp = tempPath(parent, path.basename(dir));
  try {
    // The write task places the unit at once where nothing is at dir (one wake-up less); else place() decides.
    const { bytes, placed, syncError } = await writeUnitFolder(temp, files, options, dir);
    return { bytes, ...(placed ? { syncError } : await place(temp, dir, unitOwner(source), fsync, true)) };
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true }).catch(() => {}); // never seen at dir: wholly ours
    throw err;
  }
}

/** A video's folder does not exist: it is written whole, holding this frame, and renamed into place. */
async function writeFirstFrame(dir: string, files: readonly OutputFile[], options: UnitOptions): Promise<UnitWritten> {
  const { source, fsync = false } = options;
  const video = path.dirname(dir);
  const top = path.dirname(video);
  await makeFolders(top);
  await removeAbandonedTemps(top);
  const temp = tempPath(top, path.basename(video));
  await fs.mkdir(temp);
  try {
    const frame = path.join(temp, path.basename(dir));
    const { bytes } = await writeUnitFolder(frame, files, options);
    if (fsync) await fsyncDir(temp);
    if (await renameIntoFreePlace(temp, video)) return { bytes, ...(await flushPlaced(video, fsync)) };
    await checkVideoFolder(video, source); // made meanwhile: ours, or this throws
    return { bytes, ...(await place(frame, dir, unitOwner(source), fsync)) };
  } finally {
    await fs.rm(temp, { recursive: true, force: true }).catch(() => {});
  }
}
