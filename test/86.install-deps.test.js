'use strict';
// Who may run apt: the install step only in this repository's own checkout; installed as a dependency
// it never does, and `film-features setup` only with --install-deps. Tested where libtorch cannot be
// found (a mount namespace masks its CMake package and the Python torch) and apt-get is replaced by
// a recorder that notes its arguments and fails, so nothing is really installed.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { root } = require('./fixtures');
const { requireHere, needs } = require('./helpers');

const TORCH_CMAKE = '/usr/lib/x86_64-linux-gnu/cmake/Torch';
const PYTHON_TORCH = '/usr/lib/python3/dist-packages/torch';

describe('install step and setup: apt only when asked', function () {
  this.timeout(120000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-apt-'));
  const record = path.join(tmp, 'apt-get.log');
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let aptGet;

  before(() => {
    aptGet = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).stdout.trim();
    requireHere(needs.root(), needs.unshare(),
      [aptGet, 'apt-get (the command it guards)', 'a Debian or Ubuntu machine, as CI is'],
      [fs.existsSync(TORCH_CMAKE), `the system libtorch at ${TORCH_CMAKE} (this test masks it)`,
        'apt-get install libtorch-dev (npm install in this checkout does)']);
    fs.mkdirSync(path.join(tmp, 'empty'));
    fs.writeFileSync(path.join(tmp, 'apt-get'), `#!/bin/sh\necho "$@" >> ${record}\nexit 1\n`, { mode: 0o755 });
    // The package as npm installs it (no test/, under node_modules) and as a checkout (test/ there).
    for (const dir of [path.join(tmp, 'app', 'node_modules', 'film-features'), path.join(tmp, 'checkout')]) {
      for (const f of ['dist', 'bin', 'scripts', 'cmake', 'native', 'CMakeLists.txt', 'package.json']) {
        fs.cpSync(path.join(root, f), path.join(dir, f), { recursive: true });
      }
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    }
    fs.mkdirSync(path.join(tmp, 'checkout', 'test'));
  });

  // Runs `args` with libtorch unfindable and apt-get recorded; returns { status, stderr, apt }.
  function masked(cwd, args) {
    fs.rmSync(record, { force: true });
    const mounts = [[path.join(tmp, 'empty'), TORCH_CMAKE], [path.join(tmp, 'apt-get'), aptGet]];
    if (fs.existsSync(PYTHON_TORCH)) mounts.push([path.join(tmp, 'empty'), PYTHON_TORCH]);
    const script = `${mounts.map(([a, b]) => `mount --bind ${a} ${b}`).join(' && ')} && exec "$@"`;
    const env = { ...process.env };
    for (const v of ['LIBTORCH', 'Torch_DIR', 'FILM_FEATURES_ADDON']) delete env[v];
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, ...args],
      { cwd, encoding: 'utf8', env });
    return { status: r.status, stderr: r.stderr, apt: fs.existsSync(record) ? fs.readFileSync(record, 'utf8') : '' };
  }

  it('as a dependency: no apt, exit 0 (the user\'s npm install goes on), and it names `npx film-features setup`', () => {
    const r = masked(path.join(tmp, 'app', 'node_modules', 'film-features'), ['scripts/install.js']);
    assert.equal(r.apt, '', 'apt-get was not run');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /building one needs: libtorch-dev/);
    assert.match(r.stderr, /npx film-features setup/);
  });

  it('in the repository\'s checkout: installs what the build and the tests need with apt', () => {
    const r = masked(path.join(tmp, 'checkout'), ['scripts/install.js']);
    assert.match(r.apt, /^install .*\blibtorch-dev\b/m);
    assert.equal(r.status, 1, 'the recorder fails, so the install step fails and says so');
    assert.match(r.stderr, /apt-get could not install/);
  });

  it('setup without --install-deps: says what is missing and how, runs no apt, exits 1', () => {
    const r = masked(path.join(tmp, 'app'), ['node_modules/film-features/bin/film-features.js', 'setup']);
    assert.equal(r.apt, '');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing: libtorch-dev/);
    assert.match(r.stderr, /--install-deps/);
  });

  it('setup --install-deps: asks apt for libtorch-dev', () => {
    const r = masked(path.join(tmp, 'app'), ['node_modules/film-features/bin/film-features.js', 'setup', '--install-deps']);
    assert.match(r.apt, /^install .*\blibtorch-dev\b/m);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /apt-get could not install libtorch-dev/);
  });

  it('setup --libtorch with a folder that holds no libtorch: an error naming it, no apt', () => {
    const r = masked(path.join(tmp, 'app'),
      ['node_modules/film-features/bin/film-features.js', 'setup', '--libtorch', tmp, '--install-deps']);
    assert.equal(r.apt, '');
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`LIBTORCH=${tmp} holds no TorchConfig\\.cmake`));
  });
});
