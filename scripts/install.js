#!/usr/bin/env node
'use strict';
// The checkout's set-up step: `npm install` in this repository runs it (package.json's `preprepare`,
// then `postprepare` compiles the TypeScript). npm runs preprepare and postprepare only for the
// project it is run in, never for a dependency, so the published package declares no install or
// prepare script: npm 12 has nothing to ask approval for, and the prebuild needs no script.
// Uses a binary that loads (prebuilds/ or build/); otherwise finds libtorch
// (LIBTORCH / Torch_DIR, a Python torch, the system; see cmake/locate-torch.cmake) and compiles
// with cmake-js; where there is no libtorch, it compiles the core build (oneDNN alone).
//   --force   compile even if a binary loads (npm run build)
// FILM_ASAN=1 builds an AddressSanitizer binary into build-asan/ instead (npm run test:asan).
//
// apt-get runs only in this repository's own checkout (npm install on a fresh clone sets up the
// machine, test tools included). Installed as a dependency, the package never installs system
// packages: where nothing loads and nothing can be built, this says how to fix it and leaves the
// user's npm install alone; `npx film-features setup` does the rest when the user asks for it.
const fs = require('node:fs');
const path = require('node:path');
const { root, log, has, binaryLoads, locateTorch, missingBuildTools, aptUsable, aptInstall, build } = require('./addon-build');

const force = process.argv.includes('--force');
const devCheckout = fs.existsSync(path.join(root, 'test')) && !root.split(path.sep).includes('node_modules');

function pythonTorch() {
  const { spawnSync } = require('node:child_process');
  return ['python3', '/usr/bin/python3'].some((py) => spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

// What the checkout's tests and benches need beyond the build (the tests fail, never skip, without
// it; test/helpers.js requireHere): the float64 reference (python3-torch, python3-numpy), oneDNN's
// headers for the fused CPU path, a real Redis for the fleet and openssl for its TLS test, ffmpeg for
// video, patchelf for the self-contained bundle (80, 84), unshare (util-linux) for the mount
// namespaces of 84 and 86, strace to see --fsync's calls (76), a C compiler for 75's stub addon.
function missingTestPackages() {
  const missing = [];
  if (!pythonTorch()) missing.push('python3-torch', 'python3-numpy');
  if (!fs.existsSync('/usr/include/dnnl.hpp') && !fs.existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) missing.push('libdnnl-dev');
  const tools = { 'redis-server': 'redis-server', openssl: 'openssl', ffmpeg: 'ffmpeg', ffprobe: 'ffmpeg', patchelf: 'patchelf',
    unshare: 'util-linux', strace: 'strace', cc: 'gcc' };
  for (const [tool, pkg] of Object.entries(tools)) if (!has(tool) && !missing.includes(pkg)) missing.push(pkg);
  return missing;
}

function main() {
  if (!force && binaryLoads()) {
    log('using the existing binary (prebuilds/ or build/)');
    // The checkout's test tools are installed even where nothing needs building (.ci/run, a re-run).
    const tests = devCheckout ? missingTestPackages() : [];
    if (tests.length > 0 && !(aptUsable() && aptInstall(tests))) {
      log(`the tests need: ${tests.join(' ')} (Debian/Ubuntu: sudo apt-get install ${tests.join(' ')})`);
    }
    return 0;
  }
  const buildTools = missingBuildTools();
  const missing = devCheckout ? [...buildTools, ...missingTestPackages()] : buildTools;
  if (missing.length > 0) {
    if (devCheckout && aptUsable()) {
      // Where the system packages no libtorch (Ubuntu 24.04, ...), the rest is still installed and
      // the core build (the oneDNN engine, no libtorch) is made below.
      const withoutTorch = missing.filter((p) => p !== 'libtorch-dev' && p !== 'python3-torch');
      if (!aptInstall(missing) && !(missing.includes('libtorch-dev') && aptInstall(withoutTorch))) {
        log(`apt-get could not install ${missing.join(' ')}; install them by hand, or set LIBTORCH.`);
        return 1;
      }
    } else if (!devCheckout) {
      log(`no prebuilt binary loads here, and building one needs: ${buildTools.join(', ')}.`);
      log('Run `npx film-features setup` (add --install-deps to let it apt-get install libtorch-dev,');
      log('or --libtorch PATH to use an unpacked libtorch). Nothing was installed.');
      return 0; // the require error says the same; the user's npm install goes on
    } else {
      log(`missing: ${missing.join(', ')}.`);
      log(`Install them (Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}),`);
      log('or point LIBTORCH at an unpacked libtorch (or Torch_DIR at its TorchConfig.cmake folder), then run npm install again.');
      // without libtorch, the core still builds (below) where cmake, g++ and oneDNN are there
      if (buildTools.some((t) => t !== 'libtorch-dev')) return 1;
    }
    if (!force && binaryLoads()) {
      log('using the existing binary (prebuilds/ or build/), now that its libraries are installed');
      return 0;
    }
  }
  const torch = locateTorch();
  const asan = process.env.FILM_ASAN === '1';
  const cmakeArgs = asan ? ['--CDFILM_ASAN=ON'] : [];
  if (torch) {
    log(`libtorch: ${torch}`);
  } else if (fs.existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) {
    log('libtorch is not found: building the core (the oneDNN engine alone: no CUDA, no TorchScript engine, ' +
      'no Interpolator). Set LIBTORCH or Torch_DIR for the full build.');
    cmakeArgs.push('--CDFILM_CORE=ON');
  } else {
    log('neither libtorch nor oneDNN (libdnnl-dev) is found; set LIBTORCH or Torch_DIR, or install libdnnl-dev for the core build.');
    return 1;
  }
  if (!build({ out: path.join(root, asan ? 'build-asan' : 'build'), cmakeArgs })) {
    log('the native build failed (see above).');
    return 1;
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  log(err.message);
  process.exitCode = 1;
}
