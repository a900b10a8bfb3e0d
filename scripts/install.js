#!/usr/bin/env node
'use strict';
// npm's install step. Uses a matching prebuild or an existing build when one loads; otherwise
// finds libtorch (LIBTORCH / Torch_DIR, a Python torch, the system; see cmake/locate-torch.cmake),
// installs Debian's libtorch-dev when none is found and apt is usable, and compiles with cmake-js.
//   --force   compile even if a binary loads (npm run build)
// FILM_ASAN=1 builds an AddressSanitizer binary into build-asan/ instead (npm run test:asan).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');
const devCheckout = fs.existsSync(path.join(root, 'test'));

function log(message) {
  console.error(`film-features: ${message}`);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  return r.status === 0;
}

function quiet(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout || ''}${r.stderr || ''}`.trim() };
}

function has(cmd) {
  return quiet('sh', ['-c', `command -v ${cmd}`]).ok;
}

function binaryLoads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

function locateTorch() {
  const r = quiet('cmake', ['-P', path.join(root, 'cmake', 'locate-torch.cmake')]);
  return r.ok ? r.out.replace(/^-- /, '') : null;
}

function pythonTorch() {
  return ['python3', '/usr/bin/python3'].some((py) => quiet(py, ['-c', 'import torch']).ok);
}

// What the checkout's tests and benches need beyond the build: the float64 reference (python3-torch),
// oneDNN's headers for the fused CPU path, a real Redis for the fleet, ffmpeg for video.
function missingTestPackages() {
  const missing = [];
  if (!pythonTorch()) missing.push('python3-torch');
  if (!fs.existsSync('/usr/include/dnnl.hpp') && !fs.existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) missing.push('libdnnl-dev');
  if (!has('redis-server')) missing.push('redis-server');
  if (!has('ffmpeg')) missing.push('ffmpeg');
  return missing;
}

function aptUsable() {
  return process.platform === 'linux' && has('apt-get') && typeof process.getuid === 'function' && process.getuid() === 0;
}

function aptInstall(packages) {
  log(`installing Debian packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Reuse the package lists when they are there; refresh them once if the install fails.
  if (run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env })) return true;
  return run('apt-get', ['update', '-q'], { env }) &&
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env });
}

function main() {
  if (!force && binaryLoads()) {
    log('using the existing binary (prebuilds/ or build/)');
    return 0;
  }
  const missing = [];
  if (!has('cmake')) missing.push('cmake');
  if (!has('c++')) missing.push('g++');
  let torch = has('cmake') ? locateTorch() : null;
  if (!torch) missing.push('libtorch-dev');
  if (devCheckout) missing.push(...missingTestPackages());
  if (missing.length > 0) {
    if (!aptUsable()) {
      log(`missing: ${missing.join(', ')}.`);
      log('Install them (Debian/Ubuntu: sudo apt-get install ' + missing.join(' ') + '),');
      log('or point LIBTORCH at an unpacked libtorch (or Torch_DIR at its TorchConfig.cmake folder), then run npm install again.');
      if (missing.includes('libtorch-dev') || missing.includes('cmake') || missing.includes('g++')) return 1;
    } else if (!aptInstall(missing)) {
      log(`apt-get could not install ${missing.join(' ')}; install them by hand, or set LIBTORCH.`);
      return 1;
    }
    if (!force && binaryLoads()) {
      log('using the existing binary (prebuilds/ or build/), now that its libraries are installed');
      return 0;
    }
    torch = locateTorch();
    if (!torch) {
      log('libtorch is still not found; set LIBTORCH or Torch_DIR.');
      return 1;
    }
  }
  log(torch);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const asan = process.env.FILM_ASAN === '1';
  const args = [cmakeJs, 'build', '--directory', root, '--out', path.join(root, asan ? 'build-asan' : 'build'),
    '--parallel', String(os.availableParallelism())];
  if (asan) args.push('--CDFILM_ASAN=ON');
  if (!run(process.execPath, args)) {
    log('the native build failed (see above).');
    return 1;
  }
  return 0;
}

process.exitCode = main();
