'use strict';
// When libtorch is missing at run time, loading the addon fails with an Error that says what to do.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

describe('loader', () => {
  it('turns a missing libtorch into an Error that says how to install it or set LIBTORCH', function () {
    if (spawnSync('cc', ['--version']).status !== 0) {
      console.log('    (skipped: no C compiler to make an addon that needs a missing libtorch)');
      this.skip();
    }
    // An addon that needs a libtorch library which is then taken away.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'film-loader-'));
    try {
      fs.writeFileSync(path.join(dir, 'stub.c'), 'int torch_stub(void) { return 1; }\n');
      fs.writeFileSync(path.join(dir, 'addon.c'), 'int torch_stub(void);\nint uses_torch(void) { return torch_stub(); }\n');
      const cc = (args) => assert.equal(spawnSync('cc', args, { cwd: dir }).status, 0, `cc ${args.join(' ')}`);
      cc(['-shared', '-fPIC', '-o', 'libtorch_gone.so', 'stub.c']);
      cc(['-shared', '-fPIC', '-o', 'film_features.node', 'addon.c', '-L.', '-ltorch_gone']);
      fs.rmSync(path.join(dir, 'libtorch_gone.so'));
      const script = `try { require(${JSON.stringify(path.resolve(__dirname, '..'))}).FeatureExtractor.devices() }
        catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })) }`;
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, FILM_FEATURES_ADDON: path.join(dir, 'film_features.node') }, encoding: 'utf8',
      });
      const err = JSON.parse(r.stdout);
      assert.equal(err.name, 'Error');
      assert.match(err.message, /libtorch is missing at run time/);
      assert.match(err.message, /apt-get install libtorch-dev/);
      assert.match(err.message, /LIBTORCH=/);
      assert.match(err.message, /libtorch_gone\.so/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
