'use strict';
// The core build (no libtorch), as scripts/test-core.sh runs the suite against it
// (FILM_FEATURES_ADDON=build-core/...): it says which build it is, and what only libtorch runs
// fails with one code that says how to get libtorch.
const assert = require('node:assert/strict');
const { FeatureExtractor, Interpolator } = require('../..');
const { native } = require('../../dist/native');
const { models, interpolateReference, relativeError } = require('../fixtures');

describe('the core build', () => {
  it('is the core build, and links no libtorch', async () => {
    assert.equal(native().build, 'core');
    assert.equal(native().torchVersion, undefined);
    const fx = await FeatureExtractor.load(undefined, { device: 'auto' });
    assert.equal(fx.device, 'cpu');
    assert.equal(fx.info.build.variant, 'core');
    assert.equal(fx.info.build.libtorch, null);
    assert.equal(fx.info.engine, 'onednn');
    assert.equal(fx.info.codeRun, false);
    assert.deepEqual(FeatureExtractor.devices(), ['cpu']);
    fx.dispose();
  });

  const needsLibtorch = (what) => (err) => {
    assert.equal(err.code, 'ERR_FILM_NEEDS_LIBTORCH');
    assert.ok(err.message.startsWith(what), err.message);
    assert.match(err.message, /apt-get install libtorch-dev/);
    assert.match(err.message, /npx film-features setup --libtorch PATH/);
    return true;
  };
  for (const device of ['cuda', 'cuda:1']) {
    it(`device '${device}': ERR_FILM_NEEDS_LIBTORCH`, async () => {
      await assert.rejects(FeatureExtractor.load(models.default, { device }), needsLibtorch(`device '${device}'`));
    });
  }
  it("engine 'torchscript': ERR_FILM_NEEDS_LIBTORCH", async () => {
    await assert.rejects(FeatureExtractor.load(models.default, { engine: 'torchscript' }), needsLibtorch("engine 'torchscript'"));
  });
  it("Interpolator.load of a file in FILM's layout runs it on the fused engine, its code not run; the same frames as the full build's TorchScript (test 65's reference)", async () => {
    const it = await Interpolator.load(models.exported, { device: 'cpu' });
    assert.equal(it.info.engine, 'onednn');
    assert.equal(it.info.codeRun, false);
    assert.equal(it.info.dtShape, null);
    const c = interpolateReference().find((x) => x.name === 'exported-133x70');
    const frames = await it.interpolate(c.in0, c.in1, { time: c.times });
    frames.forEach((f, i) => assert.ok(relativeError(f.data, c.frames[i].data) <= 1e-4, `frame ${i}: ${relativeError(f.data, c.frames[i].data)}`));
    it.dispose();
  });
  it("Interpolator.load of a file the engine cannot run (not FILM's layout), engine 'torchscript', CUDA: ERR_FILM_NEEDS_LIBTORCH", async () => {
    await assert.rejects(Interpolator.load(models.tinyFilm), needsLibtorch('this interpolator (the fused engine cannot run it'));
    await assert.rejects(Interpolator.load(models.exported, { engine: 'torchscript' }), needsLibtorch("engine 'torchscript'"));
    await assert.rejects(Interpolator.load(models.exported, { device: 'cuda' }), needsLibtorch("device 'cuda'"));
  });
  it('a hostile file is refused by our reader with a code, and the process goes on', async () => {
    await assert.rejects(FeatureExtractor.load(__filename), (err) => err.code === 'ERR_FILM_MODEL_FORMAT');
  });
});
