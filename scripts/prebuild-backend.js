#!/usr/bin/env node
'use strict';
// prebuildify knows only node-gyp; it runs this in its place (PREBUILD_NODE_GYP). The node-gyp
// arguments it passes (rebuild --target=... --arch=...) are for the host Node, which Node-API makes
// irrelevant, so this builds with cmake-js into build/Release, where prebuildify picks it up.
//
// The build is incremental (cmake-js build, not rebuild): an up-to-date build/ is only relinked, so
// `npm pack` after `npm install` does not compile twice, and the build tree decides what is stale.
// prebuildify then strips and moves build/Release/film_features.node; the copy made here gives it
// a fresh inode, so a process that has the old file loaded is not disturbed.
//
// A prebuild must run on machines that have the system libtorch (Debian/Ubuntu libtorch-dev), so
// this refuses a build whose RUNPATH names a folder other than $ORIGIN (a pip torch, LIBTORCH=...).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { runpath } = require('./elf');

const root = path.resolve(__dirname, '..');
const release = path.join(root, 'build', 'Release');
const addon = path.join(release, 'film_features.node');

// prebuildify ships every .so it finds next to the addon: drop what `setup --bundle` copied there
// (hundreds of MiB of libtorch and its dependencies) so that they stay out of the tarball.
const bundled = fs.existsSync(release) ? fs.readdirSync(release).filter((f) => /\.so(\.|$)/.test(f)) : [];
if (bundled.length > 0) console.error(`film-features: removing ${bundled.length} bundled libraries from build/Release: a prebuild links the system's`);
for (const f of bundled) fs.rmSync(path.join(release, f));
// and the core's runtime that `setup --bundle` (the core bundle) put there
fs.rmSync(path.join(release, 'film-features.core.libs'), { recursive: true, force: true });

// The build's chatter goes to stderr: `npm pack --json` prints its report on stdout.
const r = spawnSync(process.execPath, [path.join(__dirname, 'install.js'), '--force'], { stdio: ['inherit', 2, 2] });
if (r.status !== 0) process.exit(r.status ?? 1);

const paths = runpath(addon);
if (paths.some((p) => p !== '$ORIGIN')) {
  console.error(`film-features: not a prebuild: ${addon} has RUNPATH ${paths.join(':')}; ` +
    'prebuilds link the system libtorch (apt-get install libtorch-dev), found with LIBTORCH and Torch_DIR unset.');
  process.exit(1);
}
const staged = `${addon}.staging-${process.pid}`;
fs.copyFileSync(addon, staged);
fs.renameSync(staged, addon);
