// Input expansion: files, folders (optionally recursive) and path lists -> items to process, plus
// what was skipped and why. Each item gets its output name here, so it is the same on every run.
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

import sharp = require('sharp');

export type InputKind = 'image' | 'video';

export interface InputItem {
  /** Absolute path. */
  source: string;
  /** 'video' is decoded by ffmpeg; 'image' by sharp (an animated one gives every page). */
  kind: InputKind;
  /** Output name, relative to --out with '/' separators: the file name without its extension,
   * under its folder's sub-path for files found by scanning; made safe and unique (assignNames). */
  name: string;
}

export interface Skipped {
  path: string;
  reason: string;
  /** A named input (or the list) that gave nothing: missing, unreadable, an empty folder. Files a
   * folder scan passed over are not. */
  missing: boolean;
}

export interface ExpandOptions {
  recursive?: boolean;
  /** A file with one path per line, or '-' for standard input; relative paths are taken from the cwd. */
  fromList?: string;
  /** Where '-' reads from (default process.stdin). */
  stdin?: NodeJS.ReadableStream;
}

/**
 * A file or folder name as one part of an output name, visible and never a path: '/', '\\' and NUL
 * become '_'; an empty part is '_'; a part starting with '.' gets '_' in front ('.' -> '_.',
 * '..' -> '_..', '.png' -> '_.png').
 */
export function safePart(part: string): string {
  const p = part.replace(/[/\\\0]/g, '_');
  return p === '' ? '_' : p.startsWith('.') ? `_${p}` : p;
}

/**
 * Unique output names for the given parts, in order. Names are compared without case (and in NFC),
 * for file systems that do; no name may equal another, nor be the folder of another (x and x/y).
 * First every name that fits as it is keeps it, in input order; then each of the others gets '-2',
 * '-3', ... on its first part that is in the way, the lowest that is free. The same inputs in the
 * same order always get the same names (a --skip-existing resume finds them).
 */
export function assignNames(wanted: readonly string[][]): string[] {
  const key = (parts: readonly string[]): string => parts.join('/').normalize('NFC').toLowerCase();
  const leaves = new Set<string>(); // names given
  const folders = new Set<string>(); // their parent folders
  const blocked = (parts: readonly string[], j: number): boolean => {
    const k = key(parts.slice(0, j + 1));
    return j === parts.length - 1 ? leaves.has(k) || folders.has(k) : leaves.has(k);
  };
  const take = (parts: readonly string[]): string => {
    leaves.add(key(parts));
    for (let j = 1; j < parts.length; j++) folders.add(key(parts.slice(0, j)));
    return parts.join('/');
  };
  const names: (string | undefined)[] = wanted.map((parts) => (parts.some((_, j) => blocked(parts, j)) ? undefined : take(parts)));
  return names.map((name, i) => {
    if (name !== undefined) return name;
    const parts = [...wanted[i]];
    for (let j = 0; j < parts.length; j++) {
      const base = parts[j];
      for (let n = 2; blocked(parts, j); n++) parts[j] = `${base}-${n}`;
    }
    return take(parts);
  });
}

/** Two of the names that clash (equal without case, or one the folder of the other), or undefined. */
export function nameClash(names: readonly string[]): [string, string] | undefined {
  const key = (name: string): string => name.normalize('NFC').toLowerCase();
  const leaves = new Map<string, string>();
  const folders = new Map<string, string>();
  for (const name of names) {
    const parts = name.split('/');
    const other = leaves.get(key(name)) ?? folders.get(key(name)) ??
      parts.slice(1).map((_, j) => leaves.get(key(parts.slice(0, j + 1).join('/')))).find((n) => n !== undefined);
    if (other !== undefined) return [other, name];
    leaves.set(key(name), name);
    for (let j = 1; j < parts.length; j++) folders.set(key(parts.slice(0, j).join('/')), name);
  }
  return undefined;
}

/** Container formats ffmpeg decodes that people keep video in. */
export const VIDEO_SUFFIXES: ReadonlySet<string> = new Set([
  '.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts', '.wmv', '.flv', '.3gp', '.ogv', '.y4m',
]);

let imageSuffixCache: Map<string, string> | undefined;

/** File suffixes sharp reads from files in this build, each with its format name (from sharp.format). */
export function imageSuffixes(): ReadonlyMap<string, string> {
  if (!imageSuffixCache) {
    imageSuffixCache = new Map();
    for (const [name, format] of Object.entries(sharp.format)) {
      const input = format.input as { file: boolean; fileSuffix?: string[] };
      if (input.file) for (const suffix of input.fileSuffix ?? []) imageSuffixCache.set(suffix.toLowerCase(), name);
    }
  }
  return imageSuffixCache;
}

function suffixOf(file: string): string {
  const lower = file.toLowerCase();
  // multi-part suffixes first (.svg.gz)
  for (const suffix of imageSuffixes().keys()) if (suffix.split('.').length > 2 && lower.endsWith(suffix)) return suffix;
  return path.extname(lower);
}

function kindOf(file: string): InputKind | undefined {
  const suffix = suffixOf(file);
  if (imageSuffixes().has(suffix)) return 'image';
  if (VIDEO_SUFFIXES.has(suffix)) return 'video';
  return undefined;
}

function stripSuffix(file: string): string {
  const suffix = suffixOf(file);
  return suffix ? file.slice(0, file.length - suffix.length) : file;
}

const byName = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

/** Files under `dir` (relative paths), in name order with numbers ordered; folders first-level only unless recursive. */
async function scan(dir: string, recursive: boolean, skipped: Skipped[], rel = ''): Promise<string[]> {
  const entries = (await fs.readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) => byName(a.name, b.name));
  const files: string[] = [];
  let folders = 0;
  for (const entry of entries) {
    const relPath = path.join(rel, entry.name);
    if (entry.name.startsWith('.')) continue; // hidden files, and our own partial outputs
    if (entry.isDirectory()) {
      if (recursive) files.push(...(await scan(dir, recursive, skipped, relPath)));
      else folders++;
    } else if (kindOf(entry.name)) {
      files.push(relPath);
    } else {
      const suffix = suffixOf(entry.name);
      skipped.push({
        path: path.join(dir, relPath),
        reason: suffix ? `${suffix} is not an image format sharp reads here nor a video format` : 'no file extension',
        missing: false,
      });
    }
  }
  if (folders > 0) skipped.push({ path: path.join(dir, rel), reason: `${folders} sub-folder(s) not scanned (use -r to recurse)`, missing: false });
  return files;
}

async function readList(file: string, stdin: NodeJS.ReadableStream): Promise<string[]> {
  const stream = file === '-' ? stdin : createReadStream(file, 'utf8');
  const lines: string[] = [];
  for await (const line of readline.createInterface({ input: stream, crlfDelay: Infinity })) {
    const trimmed = line.trim();
    if (trimmed && !trimmed.startsWith('#')) lines.push(trimmed);
  }
  return lines;
}

/**
 * Expands command-line inputs into items. Named files are taken whatever their suffix (sharp says
 * if it cannot read one) unless the suffix is a video's; folders give the files whose suffix sharp
 * or ffmpeg reads, the rest are listed in `skipped` with the reason. Never throws for a bad input:
 * a missing path is a skipped entry too.
 */
export async function expandInputs(inputs: readonly string[], options: ExpandOptions = {}): Promise<{ items: InputItem[]; skipped: Skipped[] }> {
  const skipped: Skipped[] = [];
  const paths = [...inputs];
  if (options.fromList !== undefined) {
    try {
      paths.push(...(await readList(options.fromList, options.stdin ?? process.stdin)));
    } catch (err) {
      skipped.push({ path: options.fromList, reason: `cannot read the list: ${(err as Error).message}`, missing: true });
    }
  }
  const found: { source: string; name: string }[] = [];
  for (const input of paths) {
    const source = path.resolve(input);
    let stat;
    try {
      stat = await fs.stat(source);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      skipped.push({ path: input, reason: code === 'ENOENT' ? 'no such file or folder' : (err as Error).message, missing: true });
      continue;
    }
    if (!stat.isDirectory()) {
      found.push({ source, name: path.basename(stripSuffix(source)) });
      continue;
    }
    try {
      const files = await scan(source, options.recursive ?? false, skipped);
      if (files.length === 0) skipped.push({ path: input, reason: 'no image or video files in this folder', missing: true });
      for (const rel of files) found.push({ source: path.join(source, rel), name: stripSuffix(rel).split(path.sep).join('/') });
    } catch (err) {
      skipped.push({ path: input, reason: (err as Error).message, missing: true });
    }
  }
  const names = assignNames(found.map(({ name }) => name.split('/').map(safePart)));
  const items = found.map(({ source }, i) => ({ source, kind: kindOf(source) === 'video' ? 'video' as const : 'image' as const, name: names[i] }));
  return { items, skipped };
}
