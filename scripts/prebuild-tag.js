#!/usr/bin/env node
'use strict';
// After prebuildify: names the prebuild it made after the libtorch it links
// (film-features.glibc.node -> film-features.torch1_13.glibc.node), so that the tarball can hold one
// prebuild per Debian release and the loader (scripts/addon-candidates.js) tries each.
// The core prebuild (film-features.core.glibc.node, scripts/prebuild-core.js) links no libtorch and
// keeps its name.
//   prebuild-tag.js [DIR]   DIR: the prebuilds folder (default prebuilds/<platform>-<arch>)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { needed } = require('./elf');

const dir = process.argv[2] || path.join(__dirname, '..', 'prebuilds', `${os.platform()}-${os.arch()}`);
for (const f of fs.readdirSync(dir)) {
  if (!f.endsWith('.node') || /\.torch\d+_\d+\./.test(f) || /\.core\./.test(f)) continue;
  const file = path.join(dir, f);
  const torch = needed(file).map((s) => /^libtorch_cpu\.so\.(\d+)\.(\d+)/.exec(s)).find(Boolean);
  if (!torch) {
    console.error(`film-features: ${file} links no versioned libtorch_cpu.so.X.Y; left untagged`);
    continue;
  }
  const tagged = path.join(dir, f.replace(/^([^.]+)\./, `$1.torch${torch[1]}_${torch[2]}.`));
  fs.renameSync(file, tagged);
  console.error(`film-features: prebuild for libtorch ${torch[1]}.${torch[2]}: ${path.relative(process.cwd(), tagged)}`);
}
