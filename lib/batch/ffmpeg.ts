// Running Debian's ffmpeg and ffprobe: which binaries, spawning them, and reading what they say on
// stderr. Decoding (video.ts), encoding (cli/video-out.ts) and probing all go through here.
import { spawn, type ChildProcess } from 'node:child_process';

/** The ffmpeg that is run: FILM_FEATURES_FFMPEG, or `ffmpeg` on PATH. */
export const ffmpegCommand = (): string => process.env.FILM_FEATURES_FFMPEG || 'ffmpeg';

/** The ffprobe that is run: FILM_FEATURES_FFPROBE, or `ffprobe` on PATH. */
export const ffprobeCommand = (): string => process.env.FILM_FEATURES_FFPROBE || 'ffprobe';

export class FfmpegMissingError extends Error {
  constructor(command: string, what = 'video input needs ffmpeg, and ') {
    super(`${what}'${command}' was not found: install it with apt-get install ffmpeg`);
    this.name = 'FfmpegMissingError';
  }
}

/** A running ffmpeg or ffprobe. */
export interface Tool {
  child: ChildProcess;
  /** Resolves to the exit code (null when killed by a signal); rejects when it could not start (FfmpegMissingError for ENOENT). */
  exited: Promise<number | null>;
  /** The last 4000 characters it wrote on stderr so far. */
  stderr(): string;
  /** Its last two stderr lines, joined: what a one-line error message quotes. */
  said(): string;
}

/**
 * Spawns `command` with stdin and stdout as given and stderr read into a bounded tail. `missing`
 * words the error where the binary is not there.
 */
export function spawnTool(command: string, args: string[], stdio: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore' },
  missing?: string): Tool {
  const child = spawn(command, args, { stdio: [stdio.stdin, stdio.stdout, 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new FfmpegMissingError(command, missing) : err));
    child.on('close', (code, signal) => resolve(signal ? null : code));
  });
  exited.catch(() => {}); // callers await it; an early spawn error is not unhandled meanwhile
  return { child, exited, stderr: () => stderr, said: () => stderr.trim().split('\n').slice(-2).join(' / ') };
}

/** Runs `command` to the end; resolves to its stdout, rejects with its last stderr lines (or exit code). */
export async function runTool(command: string, args: string[]): Promise<string> {
  const tool = spawnTool(command, args, { stdin: 'ignore', stdout: 'pipe' }, '');
  let out = '';
  tool.child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await tool.exited;
  if (code !== 0) throw new Error(tool.said() || `${command} exited with ${code}`);
  return out;
}

/** ffprobe's JSON (`-of json`) for `file` with these arguments; rejects where ffprobe fails or is missing. */
export async function ffprobeJson<T>(file: string, args: string[]): Promise<T> {
  return JSON.parse(await runTool(ffprobeCommand(), ['-v', 'error', ...args, '-of', 'json', file])) as T;
}
