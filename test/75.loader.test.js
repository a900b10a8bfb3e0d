'use strict';
// Where no addon loads (libtorch missing at run time, no binary at all), require('film-features')
// throws an Error that names the one command that fixes it.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { requireHere, needs } = require('./helpers');

describe('loader', () => {
  it('turns a missing libtorch into an Error, at require, that names `npx film-features setup`', () => {
    requireHere(needs.cc()); // to make an addon that needs a missing libtorch
    // An addon that needs a libtorch library which is then taken away.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'film-loader-'));
    try {
      fs.writeFileSync(path.join(dir, 'stub.c'), 'int torch_stub(void) { return 1; }\n');
      fs.writeFileSync(path.join(dir, 'addon.c'), 'int torch_stub(void);\nint uses_torch(void) { return torch_stub(); }\n');
      const cc = (args) => assert.equal(spawnSync('cc', args, { cwd: dir }).status, 0, `cc ${args.join(' ')}`);
      cc(['-shared', '-fPIC', '-o', 'libtorch_gone.so', 'stub.c']);
      cc(['-shared', '-fPIC', '-o', 'film_features.node', 'addon.c', '-L.', '-ltorch_gone']);
      fs.rmSync(path.join(dir, 'libtorch_gone.so'));
      const script = `try { require(${JSON.stringify(path.resolve(__dirname, '..'))}); console.log('{}') }
        catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })) }`;
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, FILM_FEATURES_ADDON: path.join(dir, 'film_features.node') }, encoding: 'utf8',
      });
      const err = JSON.parse(r.stdout);
      assert.equal(err.name, 'Error');
      assert.match(err.message, /cannot find libtorch at run time/);
      assert.match(err.message, /Run `npx film-features setup`/);
      assert.match(err.message, /--install-deps/);
      assert.match(err.message, /cause: .*libtorch_gone\.so/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // The order the loader tries (scripts/addon-candidates.js): a local build, the full prebuilds
  // (newest libtorch first), the core prebuild last; where no full one loads, the core does.
  describe('candidates: the core prebuild last, chosen where no full prebuild loads', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'film-candidates-'));
    const prebuilds = path.join(dir, 'prebuilds', `${os.platform()}-${os.arch()}`);
    const { candidates, loadFirst } = require('../scripts/addon-candidates');
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    // A Node-API addon that exports { build }, linking libtorch_gone.so (then deleted) unless core.
    function stubAddon(file, build, { needsGone = build !== 'core' } = {}) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const src = path.join(dir, 'addon.c');
      fs.writeFileSync(src, `#include <node_api.h>
        ${needsGone ? 'int torch_stub(void);' : ''}
        static napi_value Init(napi_env env, napi_value exports) {
          napi_value v;
          napi_create_string_utf8(env, "${build}", NAPI_AUTO_LENGTH, &v);
          napi_set_named_property(env, exports, "build", v);
          ${needsGone ? 'napi_create_int32(env, torch_stub(), &v); napi_set_named_property(env, exports, "stub", v);' : ''}
          return exports;
        }
        NAPI_MODULE(stub, Init)\n`);
      const include = path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include');
      const args = ['-shared', '-fPIC', `-I${include}`, '-o', file, src];
      if (needsGone) args.push(`-L${dir}`, '-ltorch_gone');
      const r = spawnSync('cc', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `cc ${args.join(' ')}: ${r.stderr}`);
    }

    before(() => {
      requireHere(needs.cc());
      fs.writeFileSync(path.join(dir, 'stub.c'), 'int torch_stub(void) { return 1; }\n');
      assert.equal(spawnSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'libtorch_gone.so'), path.join(dir, 'stub.c')]).status, 0);
      stubAddon(path.join(prebuilds, 'film-features.core.glibc.node'), 'core');
      stubAddon(path.join(prebuilds, 'film-features.torch1_13.glibc.node'), 'full 1.13');
      stubAddon(path.join(prebuilds, 'film-features.torch2_6.glibc.node'), 'full 2.6');
      stubAddon(path.join(prebuilds, 'film-features.torch2_6.musl.node'), 'musl');
      fs.rmSync(path.join(dir, 'libtorch_gone.so')); // libtorch is not there: no full prebuild loads
    });

    it('orders a local build, the full prebuilds newest libtorch first, then the core', () => {
      stubAddon(path.join(dir, 'build', 'Release', 'film_features.node'), 'build', { needsGone: false });
      try {
        const order = candidates(dir).map((c) => `${c.kind} ${path.basename(c.file)}${c.core ? ' core' : ''}`);
        assert.deepEqual(order, ['build film_features.node', 'prebuild film-features.torch2_6.glibc.node',
          'prebuild film-features.torch1_13.glibc.node', 'prebuild film-features.core.glibc.node core']);
        const env = { ...process.env, PREBUILDS_ONLY: '1' };
        const r = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(require.resolve('../scripts/addon-candidates'))})
          .candidates(${JSON.stringify(dir)}).map((c) => c.kind)))`], { encoding: 'utf8', env });
        assert.deepEqual(JSON.parse(r.stdout), ['prebuild', 'prebuild', 'prebuild'], 'PREBUILDS_ONLY leaves out build/Release');
        // the local build loads first where it loads
        assert.equal(loadFirst(dir).binding.build, 'build');
      } finally {
        fs.rmSync(path.join(dir, 'build'), { recursive: true, force: true });
      }
    });

    it('where libtorch cannot be loaded, loads the core and says why each full prebuild did not', () => {
      // in a child: a failed dlopen is not cached, but a loaded stub would be
      const r = spawnSync(process.execPath, ['-e', `
        const found = require(${JSON.stringify(require.resolve('../scripts/addon-candidates'))}).loadFirst(${JSON.stringify(dir)});
        console.log(JSON.stringify({ build: found.binding.build, kind: found.kind, core: found.core, file: found.file, skipped: found.skipped }));`],
      { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const found = JSON.parse(r.stdout);
      assert.equal(found.build, 'core');
      assert.equal(found.kind, 'prebuild');
      assert.equal(found.core, true);
      assert.equal(found.file, path.join(prebuilds, 'film-features.core.glibc.node'));
      assert.equal(found.skipped.length, 2);
      assert.match(found.skipped[0], /^prebuilds\/linux-x64\/film-features\.torch2_6\.glibc\.node: .*libtorch_gone\.so/);
      assert.match(found.skipped[1], /^prebuilds\/linux-x64\/film-features\.torch1_13\.glibc\.node: .*libtorch_gone\.so/);
    });

    it('where the core fails too, the error names every candidate', () => {
      const core = path.join(prebuilds, 'film-features.core.glibc.node');
      const saved = fs.readFileSync(core);
      fs.writeFileSync(core, 'not an ELF file');
      try {
        assert.throws(() => loadFirst(dir, (f) => require(f)),
          /torch2_6\.glibc\.node: .*libtorch_gone.*; .*torch1_13\.glibc\.node: .*; prebuilds\/linux-x64\/film-features\.core\.glibc\.node: /);
      } finally {
        fs.writeFileSync(core, saved);
      }
    });
  });

  describe('a package with no binary (no prebuilds/, no build/)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'film-nobinary-'));
    const root = path.resolve(__dirname, '..');
    before(() => {
      for (const f of ['dist', 'bin', 'scripts', 'package.json']) fs.cpSync(path.join(root, f), path.join(dir, f), { recursive: true });
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const env = { ...process.env };
    delete env.FILM_FEATURES_ADDON;

    it('require throws an Error naming `npx film-features setup`', () => {
      const r = spawnSync(process.execPath, ['-e', `try { require(${JSON.stringify(dir)}) } catch (e) { console.log(e.message) }`],
        { encoding: 'utf8', env });
      assert.match(r.stdout, /^film-features: no native addon loads on this machine\. Run `npx film-features setup`/);
      assert.match(r.stdout, /cause: No native build was found/);
    });

    it('the CLI says the same without a stack trace, and `setup --help` still works', () => {
      const bin = path.join(dir, 'bin', 'film-features.js');
      // a real image: the CLI checks its inputs before it loads the addon
      const image = path.join(root, 'models', 'sample.png');
      const extract = spawnSync(process.execPath, [bin, 'extract', image, '--out', path.join(dir, 'out')], { encoding: 'utf8', env });
      assert.equal(extract.status, 1);
      assert.match(extract.stderr, /Run `npx film-features setup`/);
      assert.doesNotMatch(extract.stderr, /\n\s+at /);
      const help = spawnSync(process.execPath, [bin, 'setup', '--help'], { encoding: 'utf8', env });
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /--install-deps/);
      assert.match(help.stdout, /--libtorch <path>/);
      assert.match(help.stdout, /--bundle/);
    });
  });
});
