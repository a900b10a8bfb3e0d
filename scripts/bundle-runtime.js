#!/usr/bin/env node
'use strict';
// Makes the core addon (the libtorch-free build: oneDNN, libgomp, the C++ runtime, glibc) load on a
// machine that has none of its libraries: copies each library it loads (ldd's closure: libdnnl.so.2,
// libgomp.so.1, libOpenCL.so.1, ...) but glibc's and the C/C++ runtime's (scripts/check-symbols.js
// SYSTEM) into a folder, under its SONAME, from the real file (symlinks resolved), stripped of what
// it does not need to load (strip --strip-unneeded), with RUNPATH $ORIGIN; the addon gets RUNPATH
// $ORIGIN/<folder> (or $ORIGIN when the libraries sit next to it).
//
// The prebuild's libraries go in a folder of their own (prebuilds/linux-x64/film-features.core.libs/),
// not next to it: the full prebuilds in prebuilds/linux-x64/ have RUNPATH $ORIGIN too, and link
// libdnnl and libgomp directly, so a copy beside them would be loaded in place of the system's
// (Debian 13's libtorch 2.6 with Debian 12's libgomp, say).
//   node scripts/bundle-runtime.js DIR            DIR/film-features.core.glibc.node, libraries in
//                                                 DIR/film-features.core.libs/ (the prebuild)
//   node scripts/bundle-runtime.js ADDON.node [--here]   that addon; --here: libraries next to it
//                                                 (setup --bundle's build/Release)
// Needs patchelf, strip (binutils) and ldd, and the libraries installed here (Debian: libdnnl2).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { closure } = require('./elf');
const { SYSTEM } = require('./check-symbols');

const CORE_NAME = 'film-features.core.glibc.node';
const CORE_LIBS = 'film-features.core.libs';

function tool(cmd, args, why) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} is needed ${why} (${r.error.code === 'ENOENT' ? 'not installed' : r.error.message})`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}
const patchelf = (args) => tool('patchelf', args, 'to bundle the runtime (Debian/Ubuntu: apt-get install patchelf)');
const strip = (args) => tool('strip', args, 'to bundle the runtime (Debian/Ubuntu: apt-get install binutils)');

/** The libraries `addon` loads that a bundle must carry: [[soname, real file]], sorted by soname. */
function runtimeLibraries(addon) {
  return Object.entries(closure(addon))
    .filter(([soname]) => !SYSTEM.test(soname) && !/^linux-vdso/.test(soname))
    .map(([soname, file]) => [soname, fs.realpathSync(file)])
    .sort(([a], [b]) => a.localeCompare(b));
}

/** Writes `file` through a staged copy and a rename (a process may have the old one mapped). */
function replace(dest, make) {
  const staged = `${dest}.staging-${process.pid}`;
  try {
    make(staged);
    fs.renameSync(staged, dest);
  } finally {
    fs.rmSync(staged, { force: true });
  }
}

/**
 * Bundles the runtime of `addon`: into `path.dirname(addon)/libdir` (libdir '' : next to it).
 * Returns { addon: { file, bytes }, libraries: [{ soname, from, file, bytes, unstripped }], bytes }.
 * Libraries of an earlier bundle in a separate libdir that are no longer needed are removed.
 */
function bundleRuntime(addon, { libdir = CORE_LIBS, stripLibs = true, log = () => {} } = {}) {
  addon = path.resolve(addon);
  const dir = libdir ? path.join(path.dirname(addon), libdir) : path.dirname(addon);
  patchelf(['--version']); // missing: fail before copying anything
  const libs = runtimeLibraries(addon);
  fs.mkdirSync(dir, { recursive: true });
  const out = [];
  for (const [soname, from] of libs) {
    const dest = path.join(dir, soname);
    replace(dest, (staged) => {
      fs.copyFileSync(from, staged);
      fs.chmodSync(staged, 0o755);
      if (stripLibs) strip(['--strip-unneeded', staged]);
      patchelf(['--set-rpath', '$ORIGIN', staged]);
    });
    const bytes = fs.statSync(dest).size;
    out.push({ soname, from, file: dest, bytes, unstripped: fs.statSync(from).size });
    log(`bundled ${soname} (${(bytes / 2 ** 20).toFixed(1)} MiB) from ${from}`);
  }
  if (libdir) {
    // a library an earlier addon needed and this one does not
    const keep = new Set(libs.map(([soname]) => soname));
    for (const f of fs.readdirSync(dir)) if (!keep.has(f)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
  replace(addon, (staged) => {
    fs.copyFileSync(addon, staged);
    patchelf(['--set-rpath', libdir ? `$ORIGIN/${libdir}` : '$ORIGIN', staged]);
  });
  const addonBytes = fs.statSync(addon).size;
  return {
    addon: { file: addon, bytes: addonBytes },
    dir,
    libraries: out,
    bytes: addonBytes + out.reduce((n, l) => n + l.bytes, 0),
  };
}

module.exports = { bundleRuntime, runtimeLibraries, CORE_NAME, CORE_LIBS };

if (require.main === module) {
  const args = process.argv.slice(2);
  const target = args.find((a) => !a.startsWith('--'));
  if (!target) {
    console.error('usage: node scripts/bundle-runtime.js DIR | ADDON.node [--here]');
    process.exit(2);
  }
  try {
    const isDir = fs.statSync(target).isDirectory();
    const addon = isDir ? path.join(target, CORE_NAME) : target;
    if (!fs.existsSync(addon)) throw new Error(`${addon} does not exist (build the core first: node scripts/prebuild-core.js)`);
    const r = bundleRuntime(addon, { libdir: args.includes('--here') ? '' : CORE_LIBS, log: (m) => console.error(m) });
    const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    console.log(`${r.addon.file}: ${mib(r.addon.bytes)}, RUNPATH ${args.includes('--here') ? '$ORIGIN' : `$ORIGIN/${CORE_LIBS}`}`);
    for (const l of r.libraries) console.log(`  ${path.relative(process.cwd(), l.file)}: ${mib(l.bytes)} (${mib(l.unstripped)} before strip)`);
    console.log(`${r.libraries.length} libraries, ${mib(r.bytes)} in all`);
  } catch (err) {
    console.error(`film-features: ${err.message}`);
    process.exit(1);
  }
}
