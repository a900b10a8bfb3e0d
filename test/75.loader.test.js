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
