#!/usr/bin/env node
'use strict';
// Part of `npm pack` (prepack), after the full prebuilds: the core prebuild, the addon built without
// libtorch (CMake -DFILM_CORE=ON: oneDNN's engine only), which the loader tries last
// (scripts/addon-candidates.js), so that require('film-features') works where no libtorch does.
//   1. cmake-js builds it into build-core/ (incremental, as the full build's build/);
//   2. it must link no libtorch and export build: 'core';
//   3. stripped, it becomes prebuilds/linux-x64/film-features.core.glibc.node, and its runtime
//      (libdnnl.so.2, libgomp.so.1, libOpenCL.so.1) is copied into film-features.core.libs/ beside
//      it (scripts/bundle-runtime.js);
//   4. every file must need at most glibc 2.34 and gcc 11's C++ runtime (scripts/check-symbols.js).
// It is built on Debian 12 (glibc 2.36, gcc 12, oneDNN 2.6.3), here or, on another release, in a
// Debian 12 root made by .ci/debian-root.sh.
//
// FILM_PREBUILD_CORE: 'require' (default: any failure fails npm pack), 'skip'.
// FILM_CHECK_SYMBOLS=warn: a failed symbol check only warns (development; never for a release).
// With --in-root it is the part that runs inside the root (the checkout mounted at /src).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const prebuilds = path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`);
const say = (m) => console.error(`film-features: ${m}`);

function codename() {
  try {
    return /^VERSION_CODENAME=(\w+)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Builds, checks and bundles the core here; returns an exit code. */
function buildHere(out) {
  const { needed } = require('./elf');
  const { bundleRuntime, CORE_NAME } = require('./bundle-runtime');
  const { check, elfFiles } = require('./check-symbols');
  // The build's chatter goes to stderr: `npm pack --json` prints its report on stdout.
  if (!/\bFILM_CORE\b/.test(fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8'))) {
    say('CMakeLists.txt has no FILM_CORE option: this checkout cannot build the core');
    return 1;
  }
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const b = spawnSync(process.execPath, [cmakeJs, 'build', '--directory', root, '--out', out,
    '--parallel', String(os.availableParallelism()), '--CDFILM_CORE=ON'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (b.status !== 0) {
    say('the core build failed (see above)');
    return 1;
  }
  const built = path.join(out, 'Release', 'film_features.node');
  const torch = needed(built).filter((s) => /^lib(torch|c10)/.test(s));
  if (torch.length > 0) {
    say(`not a core build: ${built} links ${torch.join(', ')} (is FILM_CORE in CMakeLists.txt?)`);
    return 1;
  }
  fs.mkdirSync(prebuilds, { recursive: true });
  const dest = path.join(prebuilds, CORE_NAME);
  const staged = `${dest}.staging-${process.pid}`;
  const s = spawnSync('strip', ['--strip-all', '-o', staged, built], { stdio: ['ignore', 2, 2] });
  if (s.status !== 0) {
    fs.rmSync(staged, { force: true });
    say('strip failed');
    return 1;
  }
  fs.renameSync(staged, dest);
  const r = bundleRuntime(dest, { log: say });
  const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  say(`core prebuild: ${path.relative(root, dest)} ${mib(r.addon.bytes)}; ${r.libraries.map((l) => `${l.soname} ${mib(l.bytes)}`).join(', ')}`);
  // loads (from its bundle) and is the core
  const probe = spawnSync(process.execPath, ['-e', `const b = require(${JSON.stringify(dest)});
    if (b.build !== 'core') { console.error('build is ' + b.build); process.exit(1); }`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    say(`${path.relative(root, dest)} does not load as the core: ${probe.stderr.trim()}`);
    return 1;
  }
  const bad = check(elfFiles([dest, r.dir])).filter((f) => f.problems.length > 0);
  for (const f of bad) say(`${path.relative(root, f.file)}:\n  ${f.problems.join('\n  ')}`);
  if (bad.length > 0) {
    say('the core prebuild needs a newer system than glibc 2.34 / gcc 11 (scripts/check-symbols.js)');
    // FILM_CHECK_SYMBOLS=warn: development only (to try the rest of the pipeline); never in a release
    if (process.env.FILM_CHECK_SYMBOLS === 'warn') say('FILM_CHECK_SYMBOLS=warn: going on anyway; this tarball must not be published');
    else return 1;
  }
  return 0;
}

function main() {
  const mode = process.env.FILM_PREBUILD_CORE || 'require';
  if (mode === 'skip') return 0;
  if (codename() === 'bookworm') return buildHere(path.join(root, 'build-core'));
  // Elsewhere (Debian 13, say), in a Debian 12 root, so that it links Debian 12's glibc and oneDNN.
  const script = path.join(root, '.ci', 'debian-root.sh');
  if (!fs.existsSync(script) || process.getuid?.() !== 0) {
    say(`the core prebuild is built on Debian 12 (this is ${codename() ?? 'not Debian'}), in a root that needs root and .ci/debian-root.sh`);
    return 1;
  }
  if (spawnSync(script, ['make', 'bookworm'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) return 1;
  const env = { ...process.env, FILM_ROOT_SRC: root };
  for (const v of ['CMAKE_CXX_COMPILER_LAUNCHER', 'LIBTORCH', 'Torch_DIR', 'CCACHE_DIR', 'CCACHE_BASEDIR']) delete env[v];
  const r = spawnSync(script, ['exec', 'bookworm', 'node', '/src/scripts/prebuild-core.js', '--in-root'], { stdio: ['ignore', 2, 2], env });
  return r.status ?? 1;
}

if (process.argv.includes('--in-root')) process.exitCode = buildHere('/build/prebuild-core');
else process.exitCode = main();
