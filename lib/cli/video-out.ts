// Writing video with Debian's ffmpeg: raw RGB frames piped in, H.264 out, under a temporary name
// that is renamed to the target only once ffmpeg has finished cleanly. And ffprobe's frame rate.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { fileOwner, place } from '../batch/place';
import { newTempFile } from '../batch/write';
import { ffmpegCommand, ffprobeJson, spawnTool, type Tool } from '../batch/ffmpeg';
import { videoMark, videoMarkArgs } from './owned';

type Streams = { streams?: { avg_frame_rate?: string; r_frame_rate?: string; nb_frames?: string; nb_read_packets?: string }[] };

/** The first video stream's frame rate (as ffmpeg writes it, e.g. "30000/1001") and frame count when known. */
export async function probeFrameRate(file: string): Promise<{ fps: number; text: string; frames?: number }> {
  await fs.access(file);
  let json: Streams;
  try {
    json = await ffprobeJson<Streams>(file, ['-select_streams', 'v:0', '-show_entries', 'stream=avg_frame_rate,r_frame_rate,nb_frames']);
  } catch (err) {
    throw new Error(`cannot read ${file} as a video: ${(err as Error).message}`);
  }
  const stream = json.streams?.[0];
  if (!stream) throw new Error(`${file} has no video stream`);
  const value = (text?: string): number => {
    const [n, d] = (text ?? '').split('/').map(Number);
    return d ? n / d : n;
  };
  const text = [stream.avg_frame_rate, stream.r_frame_rate].find((r) => value(r) > 0);
  if (!text) throw new Error(`${file}: ffprobe gives no frame rate`);
  let frames = Number(stream.nb_frames);
  if (!(frames > 0)) {
    // Matroska and others keep no count: count packets (demuxing only, no decoding).
    const counted = await ffprobeJson<Streams>(file, ['-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets'])
      .catch((): Streams => ({}));
    frames = Number(counted.streams?.[0]?.nb_read_packets);
  }
  return { fps: value(text), text, frames: frames > 0 ? frames : undefined };
}

export interface RawFrame {
  data: Uint8Array;
  info: { width: number; height: number; channels: number };
}

export interface EncodeOptions {
  /** Frame rate, as a number or a fraction ("30000/1001"). */
  fps: string;
  /** H.264 constant rate factor. */
  crf: number;
  signal?: AbortSignal;
}

/** yuv420p where both sides are even (plays everywhere); yuv444p (H.264 High 4:4:4) where one is odd. */
export type PixelFormat = 'yuv420p' | 'yuv444p';

/**
 * Runs produce, which calls write(frame) for every frame in order (RGB, all of one size; write
 * waits while ffmpeg catches up, so memory stays bounded). The video has the frames' size. The
 * file appears at out only when produce and ffmpeg both succeed, and replaces only a video of ours
 * (ownership.ts); on any failure nothing is left behind. Resolves to the pixel format written.
 */
export async function encodeVideo(out: string, options: EncodeOptions,
  produce: (write: (frame: RawFrame) => Promise<void>) => Promise<void>): Promise<PixelFormat> {
  const ext = path.extname(out) || '.mp4';
  // made first, so that its identity goes into the comment; ffmpeg writes into it (the suffix tells it the container)
  const { temp: partial, identity } = await newTempFile(out, ext);
  let tool: Tool | undefined;
  let exited: Promise<number | null> | undefined;
  let size = '';
  let failure: Error | undefined;

  let pixelFormat: PixelFormat = 'yuv420p';
  const start = (width: number, height: number) => {
    size = `${width}x${height}`;
    // 4:2:0 halves the chroma both ways, so it needs even sides; an odd side gets 4:4:4 rather
    // than a size other than the input's.
    pixelFormat = width % 2 === 0 && height % 2 === 0 ? 'yuv420p' : 'yuv444p';
    tool = spawnTool(ffmpegCommand(), ['-hide_banner', '-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', size,
      '-framerate', options.fps, '-i', 'pipe:0', '-c:v', 'libx264', '-crf', String(options.crf), '-pix_fmt', pixelFormat,
      ...videoMarkArgs(identity), '-movflags', '+faststart', '-y', partial], { stdin: 'pipe', stdout: 'ignore' }, '');
    tool.child.stdin!.on('error', () => {}); // EPIPE when ffmpeg fails; its exit code tells why
    exited = tool.exited.catch((err: Error) => {
      failure = err;
      return null;
    });
  };
  const ffmpegError = (code: number | null) =>
    failure ?? new Error(`ffmpeg could not encode ${out} (exit ${code})${tool?.said() ? `: ${tool.said()}` : ''}`);

  const write = async (frame: RawFrame): Promise<void> => {
    const { width, height, channels } = frame.info;
    if (channels !== 3) throw new Error(`frames must be RGB, not ${channels} channels`);
    if (!tool) start(width, height);
    else if (`${width}x${height}` !== size) throw new Error(`frame is ${width}x${height}, the video is ${size}`);
    const child = tool!.child;
    if (child.exitCode !== null || failure) throw ffmpegError(child.exitCode);
    const stdin = child.stdin!;
    if (!stdin.write(frame.data)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off('drain', done);
          child.off('close', done);
          resolve();
        };
        stdin.on('drain', done);
        child.on('close', done);
      });
    }
  };

  try {
    await produce(write);
    if (!tool) throw new Error('no frames to write');
    options.signal?.throwIfAborted();
    tool.child.stdin!.end();
    const code = await exited!;
    if (code !== 0) throw ffmpegError(code);
    await place(partial, out, fileOwner(videoMark));
    return pixelFormat;
  } catch (err) {
    if (tool && tool.child.exitCode === null) tool.child.kill('SIGKILL');
    await exited;
    await fs.rm(partial, { force: true });
    throw err;
  }
}
