// The film-features command line. Each command registers itself from its own file.
import type { Command } from 'commander';

import { registerExtract } from './extract';
import { registerFleetCommands } from './fleet';
import { registerInterpolate } from './interpolate';
import { newProgram, runProgram } from './program';
import { setupCommand } from './setup';

/** A command's file exports one of these; it adds its command to the program. */
export type Register = (program: Command, setExitCode: (code: number) => void) => void;

const commands: Register[] = [
  registerExtract,
  (program, setExitCode) => program.addCommand(setupCommand(setExitCode)),
  registerFleetCommands,
  registerInterpolate,
];

/** Runs the CLI on process.argv-style arguments; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = newProgram('film-features')
    .description("FILM's cascaded feature extractor over libtorch")
    .version((require('../../package.json') as { version: string }).version)
    .showHelpAfterError('(run with --help for usage)');
  for (const register of commands) register(program, (c) => (code = c));
  return runProgram(program, argv, () => code);
}
