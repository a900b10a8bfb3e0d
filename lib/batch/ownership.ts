// How film-features knows an output is its own, the one rule behind every replace: only our own
// output is ever replaced or removed. An output is ours when it carries our mark (a folder's
// meta.json, a PNG's text chunk, a video's comment tag) AND the mark names the output's own
// identity: its inode and birth time, which a copy, a re-encode or a folder copied with our
// meta.json does not have. A move (rename) keeps them: a moved output stays ours.
import type { BigIntStats } from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { isFrameName } from './names';
import { parseTempName } from './temp-files';

/** meta.json's `writer`: how an output folder is known to be film-features' own. */
export const WRITER = 'film-features' as const;
/** meta.json's `layout`: the version of this folder layout (2: meta.json names the folder's identity). */
export const LAYOUT = 2;

/** Something is at an output path that film-features did not write (or may not replace). */
export class OutputExistsError extends Error {
  readonly code = 'ERR_FILM_OUTPUT_EXISTS';

  /** `why` says what is there, e.g. "is a regular file, not a film-features output". */
  constructor(readonly path: string, readonly why: string) {
    super(`${path} ${why}: not replaced (remove it or choose another output)`);
    this.name = 'OutputExistsError';
  }
}

/** The identity of a file or folder: `<inode>.<birth time in ns>` (0 where the file system keeps none). */
export const identityOf = (stat: BigIntStats): string => `${stat.ino}.${stat.birthtimeNs}`;

/** The identity of what is at `p` (not following a link). */
export const identityAt = async (p: string): Promise<string> => identityOf(await fs.lstat(p, { bigint: true }));

/** The text of a file's mark (a PNG's "Software" chunk, a video's comment): our name and the file's identity. */
export const fileMark = (identity: string): string => `${WRITER} ${identity}`;

/** Why what is at `file` is not a file of ours ('' when it is), given the mark it carries (null: none). */
export async function whyNotOurFile(file: string, mark: (file: string) => Promise<string | null>): Promise<string> {
  const stat = await lstat(file);
  if (!stat) return 'is gone';
  if (!stat.isFile()) return `${what(stat)}, not a file film-features wrote`;
  const found = await mark(file).catch(() => null);
  if (found === WRITER) return 'was written by an earlier film-features, whose files cannot be told from copies (remove it to write it anew)';
  if (found === null || !found.startsWith(`${WRITER} `)) return 'is a file film-features did not write';
  if (found !== fileMark(identityOf(stat))) return 'is a copy of a film-features output (its mark names another file)';
  return '';
}

async function lstat(p: string): Promise<BigIntStats | null> {
  try {
    return await fs.lstat(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function what(stat: BigIntStats): string {
  return stat.isSymbolicLink() ? 'is a symbolic link' : stat.isFile() ? 'is a regular file' : stat.isDirectory() ? 'is a folder' : 'is not a folder';
}

/** What our meta.json says of its folder: the input, the frame, the files. */
export interface OwnMeta {
  source: string;
  frame: number | null;
  files: string[];
  identity: string;
  /** The whole of it, as read. */
  fields: Record<string, unknown>;
}

/** meta.json's text: 2-space JSON, with short arrays and flat objects on one line each. */
export function metaJson(meta: object): string {
  return `${JSON.stringify(meta, null, 2).replace(/\[[\d,\s]+\]|\{[^{}[\]]*\}/g, (x) => JSON.stringify(JSON.parse(x)))}\n`;
}

/** Our meta.json in `dir`, or null (none, not ours, or an older layout). */
export async function readOwnMeta(dir: string): Promise<(OwnMeta & { layout: number }) | null> {
  const file = path.join(dir, 'meta.json');
  const stat = await lstat(file);
  if (!stat?.isFile() || stat.size > 1n << 20n) return null;
  try {
    const m = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    if (m.writer !== WRITER || typeof m.source !== 'string' || !Array.isArray(m.files)) return null;
    if (!m.files.every((f) => typeof f === 'string' && f !== '' && !f.includes('/') && f !== '.' && f !== '..')) return null;
    return {
      source: m.source, frame: typeof m.frame === 'number' ? m.frame : null, files: m.files as string[],
      identity: typeof m.identity === 'string' ? m.identity : '', layout: typeof m.layout === 'number' ? m.layout : 0, fields: m,
    };
  } catch {
    return null;
  }
}

/** What is at an output folder: nothing, our output (complete when every file it lists is there), or something else. */
export type UnitState =
  | { state: 'absent' }
  | { state: 'ours'; complete: boolean }
  | { state: 'foreign'; error: OutputExistsError };

const foreign = (dir: string, why: string): UnitState => ({ state: 'foreign', error: new OutputExistsError(dir, why) });

/**
 * What is at `dir`, the output folder of one still or frame of `source` (any source when null).
 * Ours means: a real folder (not a link) whose meta.json we wrote, for this source, naming this
 * folder's identity, and nothing in it but the files that meta.json lists.
 */
export async function inspectUnit(dir: string, source: string | null): Promise<UnitState> {
  const stat = await lstat(dir);
  if (!stat) return { state: 'absent' };
  if (!stat.isDirectory()) return foreign(dir, `${what(stat)}, not a film-features output`);
  const meta = await readOwnMeta(dir);
  if (!meta) return foreign(dir, 'is a folder that is not a film-features output (no meta.json written by film-features)');
  if (meta.layout !== LAYOUT) return foreign(dir, `was written by an earlier film-features (layout ${meta.layout}), whose outputs cannot be told from copies`);
  if (meta.identity !== identityOf(stat)) return foreign(dir, 'is a copy of a film-features output (its meta.json names another folder)');
  if (source !== null && meta.source !== source) return foreign(dir, `holds the output of another input (${meta.source})`);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const listed = new Set(meta.files);
  const others = entries.filter((e) => !listed.has(e.name) || !e.isFile()).map((e) => e.name);
  if (others.length > 0) return foreign(dir, `holds files film-features did not write (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''})`);
  return { state: 'ours', complete: entries.length === listed.size };
}

/**
 * What is at `dir`, the folder of a video's (or animation's) frames: ours when it is a real folder
 * holding only frame folders of ours from `source` (and our temporary names). An empty folder is
 * not ours: we never leave one (the folder appears with its first frame).
 */
export async function inspectVideoFolder(dir: string, source: string): Promise<UnitState> {
  const stat = await lstat(dir);
  if (!stat) return { state: 'absent' };
  if (!stat.isDirectory()) return foreign(dir, `${what(stat)}, not a film-features output`);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  let frames = 0;
  for (const e of entries) {
    if (parseTempName(e.name)) continue;
    if (!isFrameName(e.name) || !e.isDirectory()) return foreign(dir, `holds ${e.name}, which film-features did not write`);
    const s = await inspectUnit(path.join(dir, e.name), source);
    if (s.state === 'foreign') return foreign(dir, `holds ${e.name}, which ${s.error.why}`);
    frames++;
  }
  if (frames === 0) return foreign(dir, 'is a folder film-features did not make (it holds no frames of ours)');
  return { state: 'ours', complete: true };
}

/** @deprecated the name of inspectVideoFolder before 0.2. */
export const inspectFrames = inspectVideoFolder;

/** Whether a complete output of ours is at `dir` (a still's or a frame's folder), from any source. */
export async function unitComplete(dir: string): Promise<boolean> {
  const s = await inspectUnit(dir, null).catch(() => null);
  return s?.state === 'ours' && s.complete;
}
