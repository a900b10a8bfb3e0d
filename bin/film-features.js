#!/usr/bin/env node
require('../dist/cli/main').main(process.argv).then((code) => { process.exitCode = code; });
