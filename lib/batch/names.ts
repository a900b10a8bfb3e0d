// Output names: where each input's (and each frame's) output goes under --out. A name comes from
// an input's file name or a job, never a path: checkOutputName is the one rule, and unitDir the
// one place a name becomes a path.
import * as path from 'node:path';

import { withCode } from '../errors';
import type { InputItem } from './inputs';

/** The name of each frame's folder inside its input's folder: the frame index in 6 digits. */
export const frameName = (index: number): string => String(index).padStart(6, '0');
const FRAME = /^\d{6}$/;
/** Whether `name` is a frame folder's name (6 digits). */
export const isFrameName = (name: string): boolean => FRAME.test(name);

/** The longest output name part, in UTF-8 bytes: a file name's limit (255). */
export const MAX_NAME_BYTES = 255;

/**
 * Checks an output name: '/'-separated parts, none empty, none starting with '.' (so never '.' or
 * '..', and never hidden), no '\' or NUL, none longer than 255 bytes. Returns it; throws a
 * TypeError with code ERR_INVALID_ARG_VALUE. expandInputs only makes such names; this guards
 * names from elsewhere (a fleet job, the API).
 */
export function checkOutputName(name: unknown, what = 'item.name'): string {
  const ok = typeof name === 'string' && name !== '' &&
    name.split('/').every((part) => part !== '' && !part.startsWith('.') && !/[\\\0]/.test(part) &&
      Buffer.byteLength(part) <= MAX_NAME_BYTES);
  if (!ok) {
    throw withCode(new TypeError(`Expected ${what} to be an output name ('/'-separated parts, none empty or starting ` +
      `with '.', no '\\' or NUL, at most ${MAX_NAME_BYTES} bytes each) but received ${JSON.stringify(name)}`), 'ERR_INVALID_ARG_VALUE');
  }
  return name as string;
}

/** `<out>/<name>/` for a still image, `<out>/<name>/<frame, 6 digits>/` for a frame of a video or animation. */
export function unitDir(out: string, item: Pick<InputItem, 'name'>, frame: number | null): string {
  const dir = path.join(out, ...checkOutputName(item.name).split('/'));
  return frame === null ? dir : path.join(dir, frameName(frame));
}
