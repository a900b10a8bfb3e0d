// How interpolate's PNGs and slowmo's videos are known to be film-features' own, so that a later
// run replaces them and nothing else: a PNG tEXt chunk "Software" and a container comment.
import { promises as fs } from 'node:fs';
import * as zlib from 'node:zlib';

import { ffprobeJson } from '../batch/ffmpeg';

/** The text of the PNG "Software" chunk and of the video's comment tag. */
export const MARK = 'film-features';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** The PNG with a tEXt chunk "Software" = MARK right after its header chunk. */
export function markPng(png: Buffer): Buffer {
  if (!png.subarray(0, 8).equals(SIGNATURE) || png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG');
  const end = 8 + 12 + png.readUInt32BE(8); // after IHDR
  return Buffer.concat([png.subarray(0, end), chunk('tEXt', Buffer.from(`Software\0${MARK}`, 'latin1')), png.subarray(end)]);
}

/** Whether the file is a PNG whose chunk after the header is our mark (as markPng writes it). */
export async function isOurPng(file: string): Promise<boolean> {
  const handle = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(8 + 25 + 12 + 9 + MARK.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead < head.length || !head.subarray(0, 8).equals(SIGNATURE)) return false;
    return head.subarray(33).equals(chunk('tEXt', Buffer.from(`Software\0${MARK}`, 'latin1')));
  } finally {
    await handle.close();
  }
}

/** ffmpeg arguments that put the mark in the container's comment tag. */
export const videoMarkArgs = (): string[] => ['-metadata', `comment=${MARK}`];

/** Whether ffprobe reads our mark as the file's comment tag. */
export async function isOurVideo(file: string): Promise<boolean> {
  const json = await ffprobeJson<{ format?: { tags?: { comment?: string } } }>(file, ['-show_entries', 'format_tags=comment'])
    .catch(() => null); // not a video ffprobe reads (or no ffprobe): not ours
  return json?.format?.tags?.comment === MARK;
}
