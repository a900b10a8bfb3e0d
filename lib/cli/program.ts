// Running a commander program the way every film-features command line does: usage errors exit 2
// and name the flag and the value typed. Imports nothing of the package (setup runs without the addon).
import { Command, CommanderError } from 'commander';

// commander's own wording for a value its parser or choices refused
const INVALID = /^error: option '(?:-\w, )?(--[\w-]+)[^']*' argument '([^]*)' is invalid\. ([^]*?)\s*$/;

/**
 * commander's "option '--levels <n>' argument '0' is invalid. is not an integer from 1 to 10"
 * as "--levels: '0' is not an integer from 1 to 10"; other messages as they are.
 */
export function flagMessage(text: string): string {
  const m = INVALID.exec(text);
  if (!m) return text;
  const problem = m[3].replace(/^Allowed choices are (.*)\.$/, 'is not one of $1');
  const value = m[2].replace(/(\/\/[^:@/]*:)[^@/]*@/, '$1***@'); // a URL's password is never printed
  return `error: ${m[1]}: '${value}' ${problem}\n`;
}

/** A new program (or command) that throws instead of exiting and says bad values the way flagMessage does. */
export function newProgram(name: string): Command {
  return new Command(name)
    .exitOverride() // throw instead of exiting, so usage errors map to exit code 2 here
    .configureOutput({ outputError: (text, write) => write(flagMessage(text)) });
}

/** Parses argv and runs the command; resolves to the exit code it set (code()), or 2 for bad usage. */
export async function runProgram(program: Command, argv: string[], code: () => number): Promise<number> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return code();
}

/** The exit status of a command that a SIGINT or SIGTERM stopped (128 + SIGINT, as shells say an interrupt). */
export const INTERRUPTED = 130;

/**
 * The user's request to stop: `signal` fires on the first SIGINT or SIGTERM until dispose() (a
 * second one then ends the process as it would without us). Only this makes a command's failure
 * an interrupt (exit INTERRUPTED); any other error is a failure like the rest.
 */
export class Interrupt {
  readonly #controller = new AbortController();
  readonly signal: AbortSignal = this.#controller.signal;
  #by?: NodeJS.Signals;
  readonly #on = (by: NodeJS.Signals): void => {
    this.#by ??= by;
    this.#controller.abort(new Error(`interrupted (${by})`));
  };

  constructor() {
    process.once('SIGINT', this.#on);
    process.once('SIGTERM', this.#on);
  }

  /** The signal that asked the command to stop, if one did. */
  get by(): NodeJS.Signals | undefined {
    return this.#by;
  }

  dispose(): void {
    process.removeListener('SIGINT', this.#on);
    process.removeListener('SIGTERM', this.#on);
  }
}
