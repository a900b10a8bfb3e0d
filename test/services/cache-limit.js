'use strict';
// Child script: prints the CPU block cache's limit as the addon computed it.
const { native } = require('../../dist/native');
process.stdout.write(JSON.stringify(native().cpuCache()));
