#!/usr/bin/env node
'use strict';
// Makes an addon self-contained: copies the shared libraries it loads (ldd's closure: libtorch,
// c10, oneDNN and what they link) next to it and sets RUNPATH=$ORIGIN on the addon and on every
// copy (RUNPATH does not carry over to a library's own dependencies, so each copy needs it).
// Left out: glibc, the C/C++ runtime every system has, and the GL dispatch libraries that must
// match the machine's driver. Needs patchelf (Debian: apt-get install patchelf).
//   node scripts/bundle.js ADDON.node     (film-features setup --bundle runs it on its build)
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { closure } = require('./elf');

const SYSTEM = /^(linux-vdso|ld-linux[^.]*|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale|libstdc\+\+|libgcc_s|libGL|libGLX|libEGL|libGLdispatch|libOpenGL)\.so(\.|$)/;

function patchelf(args) {
  const r = spawnSync('patchelf', args, { encoding: 'utf8' });
  if (r.error) throw new Error('patchelf is needed for --bundle (Debian/Ubuntu: apt-get install patchelf)');
  if (r.status !== 0) throw new Error(`patchelf ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/** Bundles `addon`'s libraries into its folder; returns { libraries: [soname], bytes } (addon included). */
function bundle(addon, { log = () => {} } = {}) {
  const dir = path.dirname(path.resolve(addon));
  const libs = Object.entries(closure(addon)).filter(([soname]) => !SYSTEM.test(soname));
  patchelf(['--version']); // missing: fail before copying anything
  let bytes = 0;
  libs.forEach(([soname, file], i) => {
    const dest = path.join(dir, soname);
    // A fresh file each time (never rewritten in place: a process may have the old one mapped).
    const staged = `${dest}.staging-${process.pid}`;
    fs.copyFileSync(fs.realpathSync(file), staged);
    fs.chmodSync(staged, 0o755);
    patchelf(['--set-rpath', '$ORIGIN', staged]);
    fs.renameSync(staged, dest);
    bytes += fs.statSync(dest).size;
    if ((i + 1) % 50 === 0 || i + 1 === libs.length) log(`bundled ${i + 1}/${libs.length} libraries`);
  });
  const staged = `${addon}.staging-${process.pid}`;
  fs.copyFileSync(addon, staged);
  patchelf(['--set-rpath', '$ORIGIN', staged]);
  fs.renameSync(staged, addon);
  bytes += fs.statSync(addon).size;
  return { libraries: libs.map(([soname]) => soname), bytes };
}

module.exports = { bundle, SYSTEM };

if (require.main === module) {
  const addon = process.argv[2];
  if (!addon) {
    console.error('usage: node scripts/bundle.js ADDON.node');
    process.exit(2);
  }
  try {
    const { libraries, bytes } = bundle(addon, { log: (m) => console.error(m) });
    console.log(`${addon}: ${libraries.length} libraries bundled, ${(bytes / 2 ** 20).toFixed(0)} MiB in all`);
  } catch (err) {
    console.error(`film-features: ${err.message}`);
    process.exit(1);
  }
}
