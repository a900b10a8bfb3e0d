#!/usr/bin/env node
'use strict';
// Part of `npm pack` (prepack), after this machine's prebuild: builds the prebuild for the other
// Debian release (12 bookworm: libtorch 1.13 <-> 13 trixie: libtorch 2.6) inside a root made by
// .ci/debian-root.sh (cached outside the clone; the first one takes 5-15 minutes), from this very
// checkout (mounted at /src), into a build folder kept in the root, so a second pack only relinks.
//
// FILM_PREBUILD_OTHER: 'auto' (default: build it when this is root on Linux with debootstrap or a
// cached root, else warn that the tarball has this release's prebuild only), 'require' (fail
// instead; CI and releases), 'skip'.
// With --in-root it is the part that runs inside the root.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const prebuilds = path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`);
const say = (m) => console.error(`film-features: ${m}`);

function inRoot() {
  const { build } = require('./addon-build');
  const { runpath } = require('./elf');
  const out = '/build/prebuild';
  if (!build({ out })) process.exit(1);
  const addon = path.join(out, 'Release', 'film_features.node');
  const paths = runpath(addon);
  if (paths.some((p) => p !== '$ORIGIN')) {
    say(`not a prebuild: RUNPATH ${paths.join(':')}`);
    process.exit(1);
  }
  const staged = path.join(prebuilds, 'film-features.glibc.node');
  fs.mkdirSync(prebuilds, { recursive: true });
  const r = spawnSync('strip', ['--strip-all', '-o', staged, addon], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(1);
  // named after its libtorch, as this machine's
  require('node:child_process').execFileSync(process.execPath, [path.join(__dirname, 'prebuild-tag.js'), prebuilds], { stdio: 'inherit' });
}

function codename() {
  try {
    return /^VERSION_CODENAME=(\w+)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

function main() {
  const mode = process.env.FILM_PREBUILD_OTHER || 'auto';
  if (mode === 'skip') return 0;
  const other = { bookworm: 'trixie', trixie: 'bookworm' }[codename()];
  const script = path.join(root, '.ci', 'debian-root.sh');
  const sh = (args, opts = {}) => spawnSync(script, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
  let why = null;
  if (!other) why = `this is not Debian 12 or 13 (${codename() ?? 'no /etc/os-release'})`;
  else if (!fs.existsSync(script)) why = 'no .ci/debian-root.sh (not a checkout)';
  else if (process.getuid?.() !== 0) why = 'making a Debian root needs root';
  else if (spawnSync('sh', ['-c', 'command -v debootstrap']).status !== 0 &&
    !fs.existsSync(path.join(sh(['path', other]).stdout.trim(), '.complete'))) why = 'debootstrap is missing (apt-get install debootstrap)';
  if (why) {
    if (mode === 'require') {
      say(`cannot build the ${other ?? 'other release'}'s prebuild: ${why}`);
      return 1;
    }
    say(`warning: the tarball holds this release's prebuild only: ${why}`);
    return 0;
  }
  const t = Date.now();
  if (sh(['make', other]).status !== 0) return 1;
  say(`building the prebuild for Debian ${other} in its root`);
  // The root's own toolchain and libtorch: nothing of this machine's build setup goes in.
  const env = { ...process.env, FILM_ROOT_SRC: root };
  for (const v of ['CMAKE_CXX_COMPILER_LAUNCHER', 'LIBTORCH', 'Torch_DIR', 'CCACHE_DIR', 'CCACHE_BASEDIR']) delete env[v];
  const r = spawnSync(script, ['exec', other, 'node', '/src/scripts/prebuild-other.js', '--in-root'],
    { stdio: ['ignore', 2, 2], env });
  if (r.status !== 0) return r.status ?? 1;
  say(`${other}'s prebuild made in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  return 0;
}

if (process.argv.includes('--in-root')) inRoot();
else process.exitCode = main();
