// The one placement rule: how a finished temporary (temp-files.ts) becomes the output at its final
// path. Every writer goes through it: the batch's unit and video folders, interpolate's PNGs,
// slowmo's videos, the native writer's fast path (the same no-replace rename) and the JS one.
//
// 1. Into a free place with renameat2(RENAME_NOREPLACE): never over anything, not even an empty
//    folder that appeared meanwhile.
// 2. Otherwise only over our own output (ownership.ts), by RENAME_EXCHANGE: the two names swap
//    atomically, then what was swapped out is looked at again before anything is deleted. If it
//    is not ours (the user saved a file into it meanwhile), it is swapped back; files the user
//    saved into our new output during that instant are moved back beside theirs.
// 3. Nothing is ever deleted recursively: of a replaced output only the files its meta.json lists
//    are unlinked, and a folder is removed only when that leaves it empty. Anything left is kept,
//    under a visible name, and reported.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { native } from '../native';
import { inspectUnit, OutputExistsError, readOwnMeta, whyNotOurFile } from './ownership';

/** What a placed output is, for step 2 and 3: why what is at a path is not ours ('' when it is), and our own files in it. */
export interface Owner {
  whyNot(p: string): Promise<string>;
  /** For a folder: the names of our files in the folder at `p` (its meta.json's list); null for a file. */
  ownFiles(p: string): Promise<string[] | null>;
}

/** A unit folder of `source`'s (any source when null). */
export const unitOwner = (source: string | null): Owner => ({
  whyNot: async (p) => {
    const s = await inspectUnit(p, source);
    return s.state === 'ours' ? '' : s.state === 'absent' ? 'is gone' : s.error.why;
  },
  ownFiles: async (p) => (await readOwnMeta(p))?.files ?? [],
});

/** A file whose mark `mark` reads (ownership.ts's whyNotOurFile). */
export const fileOwner = (mark: (file: string) => Promise<string | null>): Owner => ({
  whyNot: (p) => whyNotOurFile(p, mark),
  ownFiles: async () => null,
});

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? '';

/** mkdir -p, saying which path is in the way when a file is: the one maker of missing folders. */
export async function makeFolders(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    if (code(err) !== 'EEXIST' && code(err) !== 'ENOTDIR') throw err;
    throw await inTheWay(dir, err as Error);
  }
}

/** The error for a failed mkdir or open under `dir`: names the path above it that is not a folder, else `err` itself. */
export async function inTheWay(dir: string, err: Error): Promise<Error> {
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const stat = await fs.lstat(p).catch(() => null);
    if (stat && !stat.isDirectory()) return new OutputExistsError(p, `${stat.isSymbolicLink() ? 'is a symbolic link' : 'is a file'}, where a folder is needed`);
    if (p === path.dirname(p)) return err;
  }
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

/** Step 1: renames into a free place only; false when something is there. */
export async function renameIntoFreePlace(temp: string, target: string): Promise<boolean> {
  try {
    if (await native().rename(temp, target, 'noreplace')) return true;
  } catch (err) {
    if (['EEXIST', 'ENOTEMPTY', 'EISDIR', 'ENOTDIR'].includes(code(err))) return false;
    throw err;
  }
  // A file system without renameat2's flags (some network ones): a hard link never replaces; a
  // folder is renamed only where nothing is (the one check-then-rename left, on such file systems).
  const stat = await fs.lstat(temp);
  if (stat.isFile()) {
    try {
      await fs.link(temp, target);
    } catch (err) {
      if (code(err) === 'EEXIST') return false;
      throw err;
    }
    await fs.unlink(temp);
    return true;
  }
  if (await fs.lstat(target).then(() => true, () => false)) return false;
  await fs.rename(temp, target);
  return true;
}

export interface Placed {
  /** Set when the output is in place but a flush of its folder failed: it may not survive a power cut. */
  syncError?: Error;
}

/** After a rename into `target`'s folder: flushes the folder when asked; a failure is reported, not thrown (the output is in place). */
export async function flushPlaced(target: string, fsync: boolean): Promise<Placed> {
  if (!fsync) return {};
  try {
    await fsyncDir(path.dirname(target));
    return {};
  } catch (err) {
    return { syncError: err as Error };
  }
}

/**
 * Moves the finished temporary `temp` to `target` by the placement rule (the top of this file).
 * Throws OutputExistsError, leaving what is there as it was, when something that is not ours is
 * there; `temp` is then removed if it was ever seen at `target`, else left to the caller.
 * `freeTried`: step 1 was just tried (the native writer's placeAt) and found something there.
 */
export async function place(temp: string, target: string, owner: Owner, fsync = false, freeTried = false): Promise<Placed> {
  if (!freeTried && (await renameIntoFreePlace(temp, target))) return flushPlaced(target, fsync);
  const why = await owner.whyNot(target);
  if (why) throw new OutputExistsError(target, why);
  if (!(await native().rename(temp, target, 'exchange'))) {
    throw new OutputExistsError(target, 'is an output of ours, but this file system cannot replace it atomically (remove it first)');
  }
  try {
    const after = await owner.whyNot(temp); // what was swapped out, looked at again
    if (after) {
      await native().rename(temp, target, 'exchange');
      await moveBackStrays(temp, target, owner);
      await removeOwnOutput(temp, owner, target); // it stood at target: strays left in it are kept
      throw new OutputExistsError(target, after);
    }
    const placed = await flushPlaced(target, fsync);
    await removeOwnOutput(temp, owner, target);
    return placed;
  } catch (err) {
    // What is at temp was seen at target: never left where the cleanup of temporaries would delete it.
    if (!(err instanceof OutputExistsError)) await fs.access(temp).then(() => keepVisible(temp, target), () => {});
    throw err;
  }
}

/** Files the user saved into our folder `ours` while it stood at `target` go back into their folder, now at `target` again. */
async function moveBackStrays(ours: string, target: string, owner: Owner): Promise<void> {
  const own = await owner.ownFiles(ours);
  if (own === null) return;
  const mine = new Set(own);
  for (const name of await fs.readdir(ours)) {
    if (mine.has(name)) continue;
    await native().rename(path.join(ours, name), path.join(target, name), 'noreplace').catch(() => {}); // else kept below
  }
}

/**
 * Removes our output at `p` (a temporary name): a file, or a folder's own files (its meta.json's
 * list) and then the folder if that leaves it empty. Anything else in it is kept: the folder is
 * renamed to a visible name beside `target`, and a warning says where.
 */
export async function removeOwnOutput(p: string, owner: Owner, target: string): Promise<void> {
  const own = await owner.ownFiles(p).catch(() => []);
  if (own === null) {
    await fs.rm(p, { force: true });
    return;
  }
  for (const name of own) await fs.rm(path.join(p, name), { force: true });
  try {
    await fs.rmdir(p);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    if (code(err) !== 'ENOTEMPTY' && code(err) !== 'EEXIST') throw err;
    const kept = await keepVisible(p, target);
    process.emitWarning(`${target}: files that are not film-features' were found in the output it replaced; they are kept in ${kept}`,
      { code: 'FILM_FEATURES_KEPT' });
  }
}

async function keepVisible(p: string, target: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = `${target}.kept-${n}`;
    try {
      if (await native().rename(p, name, 'noreplace')) return name;
    } catch (err) {
      if (code(err) === 'EEXIST' || code(err) === 'ENOTEMPTY') continue;
      throw err;
    }
    return p; // no such rename here: it stays where it is
  }
}
