#!/usr/bin/env node
'use strict';
// prebuildify knows only node-gyp; it runs this in its place (PREBUILD_NODE_GYP). The node-gyp
// arguments it passes (rebuild --target=... --arch=...) are for the host Node, which Node-API makes
// irrelevant, so this builds with cmake-js into build/Release, where prebuildify picks it up.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const r = spawnSync(process.execPath, [path.join(__dirname, 'install.js'), '--force'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
