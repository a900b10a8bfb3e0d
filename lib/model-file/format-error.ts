// The one error the readers throw about a file's content. The path is added once, by index.ts,
// so that every message names the file without each parser having to know it.

export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFormatError';
  }
}

/** Throws a ModelFormatError unless `ok`: the readers' single way of refusing input. */
export function check(ok: boolean, message: string | (() => string)): asserts ok {
  if (!ok) throw new ModelFormatError(typeof message === 'function' ? message() : message);
}

/** A value as a short, one-line quote for messages (names and opcodes from the file are untrusted). */
export function quote(value: string, max = 80): string {
  const text = value.length > max ? `${value.slice(0, max)}...` : value;
  return JSON.stringify(text);
}
