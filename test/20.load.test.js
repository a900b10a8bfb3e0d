'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { models } = require('./fixtures');

describe('FeatureExtractor.load', () => {
  it('loads the shipped model with no path, on the CPU here, and reports what it holds', async () => {
    const fx = await FeatureExtractor.load();
    try {
      assert.equal(fx.device, FeatureExtractor.devices().includes('cuda:0') ? 'cuda:0' : 'cpu');
      const { engine, isa, onednn: onednnVersion, build, ...info } = fx.info;
      assert.match(build.kind, /^(build|prebuild|explicit)$/);
      assert.ok(require('node:fs').existsSync(build.file), build.file);
      const binding = require('../dist/native').native();
      assert.equal(build.variant, binding.build);
      assert.equal(build.libtorch, binding.torchVersion ?? null);
      const { codeRun, ...rest } = info;
      assert.deepEqual(rest, { source: 'extractor', format: 'torchscript', channels: 64, subLevels: 4, dtype: 'float32', optimized: fx.device === 'cpu', precision: 'fp32', weights: 'random, seed 0' });
      // the file's code runs only where libtorch loads it: the full build checks the engine against its forward
      assert.equal(codeRun, binding.build === 'full');
      // on the CPU, the oneDNN engine wherever the addon has it (see test/32.engine)
      const onednn = fx.device === 'cpu' && require('../dist/native').native().onednnCompiledIn;
      const forced = ['onednn', 'torchscript'].includes(process.env.FILM_FEATURES_ENGINE) && process.env.FILM_FEATURES_ENGINE;
      assert.equal(engine, fx.device !== 'cpu' ? 'torchscript' : forced || (onednn ? 'onednn' : 'torchscript'));
      assert.equal(typeof isa, engine === 'onednn' ? 'string' : 'undefined');
      assert.match(String(onednnVersion), engine === 'onednn' ? /^[23]\.\d+\.\d+$/ : /^undefined$/);
    } finally {
      fx.dispose();
    }
  });

  it('reads width and depth from the weights of a non-default model', async function () {
    const fx = await FeatureExtractor.load(models.small, { device: 'cpu', threads: 1 });
    assert.equal(fx.info.channels, 16);
    assert.equal(fx.info.subLevels, 3);
    assert.equal(fx.info.weights, 'random, seed 1');
    fx.dispose();
  });

  it('lists usable devices, cpu first', () => {
    const devices = FeatureExtractor.devices();
    assert.equal(devices[0], 'cpu');
    devices.slice(1).forEach((d, i) => assert.equal(d, `cuda:${i}`));
  });

  describe('bad files reject with an Error naming the file', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-load-'));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const file = (name, bytes) => {
      const p = path.join(tmp, name);
      fs.writeFileSync(p, bytes);
      return p;
    };
    const cases = {
      missing: () => path.join(tmp, 'nope.pt'),
      directory: () => tmp,
      'zero bytes': () => file('empty.pt', Buffer.alloc(0)),
      'random bytes': () => file('random.pt', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251))),
      'a zip that is not TorchScript': () => file('plain.zip', Buffer.from(
        '504b0506000000000000000000000000000000000000', 'hex')),
    };
    for (const [name, make] of Object.entries(cases)) {
      it(name, async () => {
        const p = make();
        await assert.rejects(FeatureExtractor.load(p, { device: 'cpu' }), (err) => {
          assert.equal(err.constructor, Error);
          assert.ok(err.message.includes(p), err.message);
          return true;
        });
      });
    }
  });
});
