// The plan of each output before any pixel is decoded: where it goes (names.ts), and whether it is
// written, skipped (--skip-existing and our complete output is there) or fails (something that is
// not ours is there: left alone). Leftovers of killed runs beside it are removed first. The decoder
// (frames.ts) asks before each frame; the writer (output.ts) places what the plan said to write.
import * as path from 'node:path';

import type { InputItem } from './inputs';
import type { SourceEvent, SourceOptions } from './frames';
import { unitDir } from './names';
import { inspectUnit, inspectVideoFolder, OutputExistsError, type UnitState } from './ownership';
import { inTheWay } from './place';
import { removeAbandonedTemps } from './temp-files';

/** What is at an output path that cannot be looked at: a file in the way above it (ENOTDIR), or another error. */
async function failure(dir: string, err: Error): Promise<UnitState> {
  const error = (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? await inTheWay(dir, err) : err;
  if (error instanceof OutputExistsError) return { state: 'foreign', error };
  throw error;
}

/**
 * What to do with one frame before it is decoded: 'write' it, or the event that settles it: skipped
 * (--skip-existing and our complete output of this source is there) or failed (something that is
 * not ours is there; it is left alone). Leftovers of killed runs beside it are removed first.
 */
export async function planFrame(item: InputItem, frame: number | null, dir: string, o: SourceOptions): Promise<SourceEvent | 'write'> {
  await removeAbandonedTemps(path.dirname(dir));
  const state = await inspectUnit(dir, item.source).catch((err: Error) => failure(dir, err));
  if (state.state === 'foreign') return { kind: 'failed', item, frame, error: state.error };
  if (o.skipExisting && state.state === 'ours' && state.complete) return { kind: 'skipped', item, frame, dir };
  return 'write';
}

/** For a video or animation: a failure when its frames' folder is there and not ours; leftovers beside it removed. */
export async function planVideoFolder(item: InputItem, o: SourceOptions): Promise<SourceEvent | null> {
  const dir = unitDir(o.out, item, null);
  await removeAbandonedTemps(path.dirname(dir));
  const state = await inspectVideoFolder(dir, item.source).catch((err: Error) => failure(dir, err));
  return state.state === 'foreign' ? { kind: 'failed', item, frame: null, error: state.error } : null;
}
