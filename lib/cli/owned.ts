// The marks of interpolate's PNGs and slowmo's videos: a PNG tEXt chunk "Software" and a container
// comment, each holding ownership.ts's fileMark (our name and the file's own identity), so that a
// later run replaces our file and nothing else: not a copy, not a re-encode that kept the comment.
import { promises as fs } from 'node:fs';
import * as zlib from 'node:zlib';

import { ffprobeJson } from '../batch/ffmpeg';
import { fileMark } from '../batch/ownership';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const KEYWORD = 'Software\0';

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** The PNG with a tEXt chunk "Software" = fileMark(identity) right after its header chunk. */
export function markPng(png: Buffer, identity: string): Buffer {
  if (!png.subarray(0, 8).equals(SIGNATURE) || png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG');
  const end = 8 + 12 + png.readUInt32BE(8); // after IHDR
  return Buffer.concat([png.subarray(0, end), chunk('tEXt', Buffer.from(`${KEYWORD}${fileMark(identity)}`, 'latin1')), png.subarray(end)]);
}

/** The text of the "Software" chunk right after a PNG's header (as markPng writes it, CRC checked); null if none. */
export async function pngMark(file: string): Promise<string | null> {
  const handle = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(8 + 25 + 12 + 256);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead < 8 + 25 + 12 || !head.subarray(0, 8).equals(SIGNATURE)) return null;
    const length = head.readUInt32BE(33);
    if (head.toString('latin1', 37, 41) !== 'tEXt' || length > 256 || 8 + 25 + 12 + length > bytesRead) return null;
    const data = head.subarray(41, 41 + length);
    if (head.readUInt32BE(41 + length) !== zlib.crc32(head.subarray(37, 41 + length))) return null;
    const text = data.toString('latin1');
    return text.startsWith(KEYWORD) ? text.slice(KEYWORD.length) : null;
  } finally {
    await handle.close();
  }
}

/** ffmpeg arguments that put the mark of the file with this identity in the container's comment tag. */
export const videoMarkArgs = (identity: string): string[] => ['-metadata', `comment=${fileMark(identity)}`];

/** The container's comment tag as ffprobe reads it; null if none, or not a video ffprobe reads. */
export async function videoMark(file: string): Promise<string | null> {
  const json = await ffprobeJson<{ format?: { tags?: { comment?: string } } }>(file, ['-show_entries', 'format_tags=comment'])
    .catch(() => null);
  return json?.format?.tags?.comment ?? null;
}
