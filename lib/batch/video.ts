// Video frames from Debian's ffmpeg, spawned, with raw RGB piped out: PPM frames, each a short
// header giving its size (so rotation and size changes need no probing) and then the RGB bytes.
import { ffmpegCommand, ffprobeJson, spawnTool } from './ffmpeg';

export { ffmpegCommand, ffprobeCommand, FfmpegMissingError } from './ffmpeg';

export interface RgbFrame {
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
}

/** A video that ends before the frames it states, or whose decoding reported errors. */
export class DamagedInputError extends Error {
  readonly code = 'ERR_FILM_DAMAGED_INPUT';

  constructor(readonly file: string, readonly framesDecoded: number, why: string) {
    super(`${file} is damaged or truncated: ${why}`);
    this.name = 'DamagedInputError';
  }
}

/**
 * The frames the file's first video stream says it lasts: its duration (after any edit list) times
 * its average frame rate, with the duration from the stream (MP4, MOV; not the container's, which
 * audio may make longer), or undefined where there is none (Matroska, MPEG-TS: damage there shows
 * as decode errors). Not the header's sample count: an edit list may skip some of those.
 */
async function statedLength(file: string): Promise<{ seconds: number; fps: number; frames: number } | undefined> {
  try {
    const json = await ffprobeJson<{ streams?: { duration?: string; avg_frame_rate?: string }[] }>(file,
      ['-select_streams', 'v:0', '-show_entries', 'stream=duration,avg_frame_rate']);
    const s = json.streams?.[0];
    const seconds = Number(s?.duration);
    const [n, d] = (s?.avg_frame_rate ?? '').split('/').map(Number);
    const fps = d ? n / d : NaN;
    return seconds > 0 && fps > 0 ? { seconds, fps, frames: Math.round(seconds * fps) } : undefined;
  } catch {
    return undefined; // no ffprobe, or it cannot tell: the decode errors still tell
  }
}

/** Reads PPM (P6, maxval 255) frames from a byte stream, each copied into a Buffer of its own. */
class PpmReader {
  #chunks: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** The next complete frame, or undefined until more bytes arrive. */
  next(): RgbFrame | undefined {
    if (this.#length < 16) return undefined;
    const head = this.#peek(Math.min(this.#length, 64)).toString('latin1');
    const m = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(head);
    if (!m) {
      if (head.length < 64) return undefined;
      throw new Error('ffmpeg sent something that is not a PPM frame');
    }
    if (m[3] !== '255') throw new Error(`ffmpeg sent a PPM frame with maxval ${m[3]}, not 255`);
    const width = Number(m[1]);
    const height = Number(m[2]);
    const size = width * height * 3;
    if (this.#length < m[0].length + size) return undefined;
    this.#skip(m[0].length);
    return { data: this.#take(size), width, height, channels: 3 };
  }

  get pending(): number {
    return this.#length;
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0].length >= n) return this.#chunks[0].subarray(0, n);
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined.subarray(0, n);
  }

  #skip(n: number): void {
    this.#take(n);
  }

  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      const count = Math.min(n - filled, chunk.length);
      chunk.copy(out, filled, 0, count);
      filled += count;
      if (count === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(count);
    }
    this.#length -= n;
    return out;
  }
}

export interface VideoOptions {
  /** Scale frames down to fit maxSide x maxSide (0: never). */
  maxSide?: number;
  /** Stop decoding after this many frames. */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * Every frame of the file's first video stream, in decode order, as RGB; frame i is the i-th
 * yielded. Stops ffmpeg when the loop ends early. Throws FfmpegMissingError where there is no
 * ffmpeg, and DamagedInputError after the last frame when ffmpeg reported decode errors or gave
 * clearly fewer frames than the stream's duration says (the frames yielded are as ffmpeg decoded them).
 */
export async function* videoFrames(file: string, options: VideoOptions = {}): AsyncGenerator<RgbFrame> {
  const { maxSide = 0, limit, signal } = options;
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0:v:0', '-fps_mode', 'passthrough'];
  if (limit !== undefined) args.push('-frames:v', String(limit));
  if (maxSide > 0) {
    args.push('-vf', `scale=w='min(iw,${maxSide})':h='min(ih,${maxSide})':force_original_aspect_ratio=decrease:flags=area`);
  }
  args.push('-f', 'image2pipe', '-c:v', 'ppm', '-pix_fmt', 'rgb24', 'pipe:1');
  const { child, exited, stderr, said: lastSaid } = spawnTool(ffmpegCommand(), args, { stdin: 'ignore', stdout: 'pipe' });
  const stated = statedLength(file);
  const kill = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', kill, { once: true });
  const reader = new PpmReader();
  let finished = false;
  let count = 0;
  try {
    for await (const chunk of child.stdout!) {
      reader.push(chunk as Buffer);
      for (let frame = reader.next(); frame; frame = reader.next()) {
        count++;
        yield frame;
      }
    }
    const code = await exited;
    signal?.throwIfAborted();
    if (code !== 0) throw new Error(`ffmpeg could not decode ${file} (exit ${code})${lastSaid() ? `: ${lastSaid()}` : ''}`);
    if (reader.pending > 0) throw new Error(`ffmpeg stopped in the middle of a frame of ${file}`);
    finished = true;
    const said = stderr().trim().split('\n').filter((l) => l.trim());
    const length = await stated;
    const want = length && Math.min(length.frames, limit ?? Infinity);
    // a little slack for rounding and variable frame rates: a cut file misses far more (and ffmpeg says so)
    if (length && want && count < want - Math.max(2, Math.ceil(want * 0.02))) {
      throw new DamagedInputError(file, count, `it lasts ${length.seconds} s at ${Number(length.fps.toFixed(3))} fps, about ` +
        `${length.frames} frames, but ffmpeg decoded ${count}${said.length ? ` (ffmpeg: ${said.at(-1)!.trim()})` : ''}`);
    }
    if (said.length > 0) {
      throw new DamagedInputError(file, count, `ffmpeg reported ${said.length} decode error(s) in ${count} frames, the last: ${said.at(-1)!.trim()}`);
    }
  } finally {
    signal?.removeEventListener('abort', kill);
    if (!finished) {
      kill();
      await exited.catch(() => {});
    }
  }
}
