// The plan of each output before any pixel is decoded: where it goes (names.ts), and whether it is
// written, skipped (--skip-existing and our complete output is there) or fails (something that is
// not ours is there: left alone). Leftovers of killed runs beside it are removed first. The decoder
// (frames.ts) asks before each frame; the writer (output.ts) places what the plan said to write.
import * as path from 'node:path';

import type { InputItem } from './inputs';
import type { SourceEvent, SourceOptions } from './frames';
import { unitDir } from './names';
import { sha256File } from './digest';
import { inspectUnit, inspectVideoFolder, readOwnMeta } from './ownership';
import { inTheWay } from './place';
import { removeAbandonedTemps } from './temp-files';

/**
 * What is at an output path that cannot be looked at: a file in the way above it (ENOTDIR), or
 * the error (a link loop, an I/O error): either way that output fails, not the run.
 */
async function failure(dir: string, err: Error): Promise<{ state: 'foreign'; error: Error }> {
  return { state: 'foreign', error: (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? await inTheWay(dir, err) : err };
}

/** A frame to write; `redo`: our complete output is there, made with other options (what differs). */
export interface Write {
  kind: 'write';
  redo?: string;
}

/** How an output was made, as its meta.json records it, against what a run asks; each with the flag that sets it. */
async function madeWith(fields: Record<string, unknown>, o: SourceOptions): Promise<string | undefined> {
  const out = o.output;
  const files = Array.isArray(fields.files) ? fields.files : [];
  const model = (fields.model ?? {}) as { sha256?: unknown };
  const sha256 = await sha256File(o.modelFile);
  const pairs: [string, unknown, unknown][] = [
    ['--dtype', fields.dtype, out.dtype], ['--levels', fields.levels, out.levels], ['--save-levels', fields.savedLevels, out.saveLevels],
    ['--crop', fields.cropped, out.crop], ['--format', fields.format, out.format], ['--max-side', fields.maxSide, out.maxSide],
    ['--preview', files.includes('preview.png'), out.preview],
    ['--model', model.sha256, sha256],
  ];
  const show = (flag: string, v: unknown): string =>
    flag === '--model' ? (typeof v === 'string' ? `sha256 ${v.slice(0, 12)}…` : 'unknown')
      : typeof v === 'boolean' ? (v ? 'on' : 'off') : Array.isArray(v) ? v.join(',') : String(v);
  const differ = pairs.filter(([, had, want]) => JSON.stringify(had) !== JSON.stringify(want))
    .map(([flag, had, want]) => `${flag} ${show(flag, had)} (asked: ${show(flag, want)})`);
  return differ.length > 0 ? differ.join(', ') : undefined;
}

/**
 * What to do with one frame before it is decoded: write it, or the event that settles it: skipped
 * (skipExisting, and our complete output of this source, made with the same options, is there) or
 * failed (something that is not ours is there; it is left alone). Leftovers of killed runs beside
 * it are removed first.
 */
export async function planFrame(item: InputItem, frame: number | null, dir: string, o: SourceOptions): Promise<SourceEvent | Write> {
  await removeAbandonedTemps(path.dirname(dir));
  const state = await inspectUnit(dir, item.source).catch((err: Error) => failure(dir, err));
  if (state.state === 'foreign') return { kind: 'failed', item, frame, error: state.error };
  if (!o.skipExisting || state.state !== 'ours' || !state.complete) return { kind: 'write' };
  const meta = await readOwnMeta(dir);
  const redo = meta ? await madeWith(meta.fields, o) : 'its meta.json could not be read';
  return redo ? { kind: 'write', redo } : { kind: 'skipped', item, frame, dir };
}

/** For a video or animation: a failure when its frames' folder is there and not ours; leftovers beside it removed. */
export async function planVideoFolder(item: InputItem, o: SourceOptions): Promise<SourceEvent | null> {
  const dir = unitDir(o.out, item, null);
  await removeAbandonedTemps(path.dirname(dir));
  const state = await inspectVideoFolder(dir, item.source).catch((err: Error) => failure(dir, err));
  return state.state === 'foreign' ? { kind: 'failed', item, frame: null, error: state.error } : null;
}
