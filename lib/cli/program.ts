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
