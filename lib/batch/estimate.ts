// What a batch will write, estimated before it starts from each input's header (sharp's metadata,
// ffprobe's stream) and the options: so that a run that cannot fit on the disk is refused at once,
// not hours in.
import { promises as fs } from 'node:fs';

import sharp = require('sharp');

import { paddedSize, levelBox } from '../pyramid';
import type { FrameOptions, OutputOptions } from './batch-options';
import { ffprobeJson } from './ffmpeg';
import type { InputItem } from './inputs';

/** The extractor's shape: base channels and sub-levels (FeatureExtractor.info). */
export interface ExtractorShape {
  channels: number;
  subLevels: number;
}

export interface Estimate {
  /** Bytes all the outputs will take. */
  bytes: number;
  frames: number;
  /** Inputs whose size or frame count could not be read (counted as nothing). */
  unknown: number;
}

const META_BYTES = 2048; // meta.json, and a level file's header

/** Channels of level `l`: the cascade concatenates sub-level j's C * 2^j channels for j = 0..min(l, S-1). */
const levelChannels = (l: number, m: ExtractorShape): number => m.channels * (2 ** (Math.min(l, m.subLevels - 1) + 1) - 1);

/** The bytes one frame of width x height (before --max-side) writes. */
export function frameBytes(width: number, height: number, o: OutputOptions, m: ExtractorShape): number {
  const scale = o.maxSide > 0 ? Math.min(1, o.maxSide / Math.max(width, height)) : 1;
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const padded = paddedSize(h, w, 2 ** (o.levels - 1));
  let bytes = META_BYTES;
  for (const l of o.saveLevels) {
    const [lh, lw] = [padded.height >> l, padded.width >> l];
    const box = o.crop ? levelBox(padded.crop, l, lh, lw) : { height: lh, width: lw };
    bytes += levelChannels(l, m) * box.height * box.width * (o.dtype === 'float16' ? 2 : 4) + META_BYTES;
  }
  if (o.preview) bytes += w * h * 3 * (1 + o.saveLevels.length); // at most about raw RGB per tile
  return bytes;
}

/** Frames taken of `count` (null: unknown, taken as 1), by the frame options. */
function taken(count: number, f: FrameOptions): number {
  const end = Math.min(count, f.end ?? count);
  return end > f.start ? Math.ceil((end - f.start) / f.every) : 0;
}

async function sizeOf(item: InputItem): Promise<{ width: number; height: number; frames: number } | null> {
  if (item.kind === 'video') {
    type Probe = { streams?: { width?: number; height?: number; nb_frames?: string; avg_frame_rate?: string }[]; format?: { duration?: string } };
    const p = await ffprobeJson<Probe>(item.source, ['-select_streams', 'v:0', '-show_entries', 'stream=width,height,nb_frames,avg_frame_rate:format=duration']);
    const s = p.streams?.[0];
    if (!s?.width || !s.height) return null;
    let frames = Number(s.nb_frames);
    if (!Number.isFinite(frames) || frames <= 0) {
      const [n, d] = (s.avg_frame_rate ?? '').split('/').map(Number);
      frames = Math.ceil(Number(p.format?.duration) * (n / (d || 1)));
    }
    return Number.isFinite(frames) && frames > 0 ? { width: s.width, height: s.height, frames } : null;
  }
  const m = await sharp(item.source).metadata();
  const height = m.pages && m.pages > 1 ? (m.pageHeight ?? m.height) : m.height;
  return m.width && height ? { width: m.width, height, frames: m.pages ?? 1 } : null;
}

/**
 * Estimates what `items` will write with these options, reading each input's header (8 at a time).
 * `done`: how many of an item's frames are already written and will be skipped (a resume).
 */
export async function estimateOutput(items: readonly InputItem[], o: OutputOptions, f: FrameOptions, m: ExtractorShape,
  done: (item: InputItem) => Promise<number> = async () => 0): Promise<Estimate> {
  const estimate: Estimate = { bytes: 0, frames: 0, unknown: 0 };
  let next = 0;
  const work = async () => {
    for (let i = next++; i < items.length; i = next++) {
      const size = await sizeOf(items[i]).catch(() => null);
      if (!size) {
        estimate.unknown++;
        continue;
      }
      const frames = Math.max(0, (items[i].kind === 'video' || size.frames > 1 ? taken(size.frames, f) : 1) - (await done(items[i])));
      estimate.frames += frames;
      estimate.bytes += frames * frameBytes(size.width, size.height, o, m);
    }
  };
  await Promise.all(Array.from({ length: 8 }, work));
  return estimate;
}

/** Bytes free to this user on the file system of `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await fs.statfs(dir);
  return s.bavail * s.bsize;
}
