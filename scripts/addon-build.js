'use strict';
// Building the addon from source, shared by the install step (scripts/install.js) and
// `film-features setup` (lib/cli/setup.ts): what is missing, where libtorch is, apt, cmake-js.
// Plain JavaScript: the install step runs before TypeScript is compiled.
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function log(message) {
  console.error(`film-features: ${message}`);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  return r.status === 0;
}

function quiet(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env });
  return { ok: r.status === 0, out: `${r.stdout || ''}${r.stderr || ''}`.trim() };
}

function has(cmd) {
  return quiet('sh', ['-c', `command -v ${cmd}`]).ok;
}

/** True when a binary here loads (build/ first, then a prebuild per libtorch; scripts/addon-candidates.js). */
function binaryLoads() {
  const candidates = JSON.stringify(path.join(__dirname, 'addon-candidates.js'));
  const r = spawnSync(process.execPath, ['-e', `require(${candidates}).loadFirst(${JSON.stringify(root)})`],
    { cwd: root, stdio: 'ignore' });
  return r.status === 0;
}

/**
 * libtorch's CMake package folder as cmake/locate-torch.cmake finds it (LIBTORCH, Torch_DIR, a
 * Python torch, the system), e.g. '/usr/lib/x86_64-linux-gnu/cmake/Torch (from system)'; null
 * when none is found. A LIBTORCH that holds no libtorch throws with cmake's reason.
 */
function locateTorch(env = process.env) {
  const r = quiet('cmake', ['-P', path.join(root, 'cmake', 'locate-torch.cmake')], env);
  if (r.ok) return r.out.replace(/^-- libtorch: /, '');
  if (/holds no TorchConfig\.cmake/.test(r.out)) throw new Error(r.out.replace(/^CMake Error[^\n]*\n\s*/, '').trim());
  return null;
}

/** Debian packages the build lacks: cmake, g++, libtorch-dev. */
function missingBuildTools(env = process.env) {
  const missing = [];
  if (!has('cmake')) missing.push('cmake');
  if (!has('c++')) missing.push('g++');
  if (!has('cmake') || !locateTorch(env)) missing.push('libtorch-dev');
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

/** Compiles with cmake-js into `out` (incremental: an up-to-date tree is only relinked). */
function build({ out = path.join(root, 'build'), env = process.env, cmakeArgs = [] } = {}) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'build', '--directory', root, '--out', out, '--parallel', String(os.availableParallelism()), ...cmakeArgs];
  return run(process.execPath, args, { env });
}

module.exports = { root, log, run, has, binaryLoads, locateTorch, missingBuildTools, aptUsable, aptInstall, build };
