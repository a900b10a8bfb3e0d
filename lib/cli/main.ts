// The film-features command line. Each command registers itself from its own file.
import { Command, CommanderError } from 'commander';

import { registerExtract } from './extract';
import { registerFleetCommands } from './fleet';
import { setupCommand } from './setup';

/** A command's file exports one of these; it adds its command to the program. */
export type Register = (program: Command, setExitCode: (code: number) => void) => void;

const commands: Register[] = [
  registerExtract,
  (program, setExitCode) => program.addCommand(setupCommand(setExitCode)),
  registerFleetCommands,
];

/** Runs the CLI on process.argv-style arguments; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('film-features')
    .description("FILM's cascaded feature extractor over libtorch")
    .version((require('../../package.json') as { version: string }).version)
    .exitOverride() // throw instead of exiting, so usage errors map to exit code 2 here
    .showHelpAfterError('(run with --help for usage)');
  for (const register of commands) register(program, (c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return code;
}
