// What a user reads when sharp cannot decode an image file: the file, the cause in plain words
// (with sharp's own, its empty detail dropped), and what to do next.
//
// libvips keeps one error buffer per process: decodes that fail at the same time can read each
// other's detail, or none ("Input file has corrupt header: " with nothing after it; "Warning
// treated as error" for a truncated PNG). So the cause is told from the words sharp adds itself,
// and callers that decode a few files for one result (interpolate's two) decode them one at a time.

/** sharp's message, its repeated lines merged and a dangling "...: " dropped. */
function sharpWords(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter(Boolean))];
  return lines.join('; ').replace(/:\s*$/, '');
}

/**
 * Why sharp could not decode an image, and what to do, without the file's name (for a message that
 * names it already): "the image data is truncated or damaged (sharp: ...); copy, download or
 * export the file again".
 */
export function imageDecodeProblem(err: unknown): string {
  const words = sharpWords(err);
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT' || /^Input file is missing/.test(words)) return 'no such file; check the path';
  if (/unsupported image format/i.test(words)) {
    return `not an image sharp can read here (sharp: ${words}); convert it to PNG or JPEG, ` +
      'or check that the path names the image and not a folder or another file';
  }
  const damaged = /corrupt header|end of stream|premature end|truncated|failOn|treated as error|read error|bad |invalid|damaged|crc/i;
  if (damaged.test(words) || words === '') {
    return `the image data is truncated or damaged (sharp: ${words || 'no detail'}); copy, download or export the file again`;
  }
  return `cannot be decoded (sharp: ${words}); check that it opens in an image viewer, or export it again`;
}

/**
 * "FILE: cause (sharp: ...); next step" for an image sharp failed to open or decode. `file` is
 * printed as given; `role` names it among several inputs ("the second input").
 */
export function undecodableImage(file: string, err: unknown, role?: string): string {
  return `${role ? `${role}, ${file}` : file}: ${imageDecodeProblem(err)}`;
}
