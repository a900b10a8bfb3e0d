#!/usr/bin/env node
'use strict';
// `setup` runs on its own: it is what fixes an addon that does not load, which the rest needs.
let cli;
try {
  cli = require(process.argv[2] === 'setup' ? '../dist/cli/setup' : '../dist/cli/main');
} catch (err) {
  console.error(err.message); // no binary loads: the message says to run `npx film-features setup`
  process.exit(1);
}
cli.main(process.argv).then((code) => { process.exitCode = code; });
