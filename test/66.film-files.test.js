'use strict';
// The FILM files people have: batch_dt [n, 1] (the PyTorch port since v1.0.2, Google's FILM, our
// models/export.py --interpolator) and [n, 1, 1, 1] (older files), found at load and checked against
// the same files run by Python; files that run with neither; failures inside a file's own code.
const assert = require('node:assert/strict');

const { Interpolator, FeatureExtractor } = require('..');
const { models, relativeError, randomTensor } = require('./fixtures');
const { interpolatorSuite } = require('./helpers');

const TOLERANCE = 1e-5;

function assertClose(actual, expected, what) {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const err = relativeError(actual.data, expected.data);
  assert.ok(err <= TOLERANCE, `${what}: relative error ${err} > ${TOLERANCE}`);
}

describe('FILM files: batch_dt conventions, our export, failures', function () {
  const { cases, load } = interpolatorSuite();

  describe('info.dtShape: the batch_dt shape found at load', () => {
    for (const [what, file, shape] of [
      ["the port's convention", () => models.tinyFilm, '[n, 1]'],
      ['the older convention', () => models.tinyFilmOld, '[n, 1, 1, 1]'],
      ['export.py --interpolator', () => models.exported, '[n, 1]'],
      ['a file that takes either ([n, 1] is tried first)', () => models.interpolator, '[n, 1]'],
    ]) {
      it(`${what}: ${shape}`, async () => {
        assert.equal((await load(file())).info.dtShape, shape);
      });
    }

    it('a file whose forward runs with neither fails at load, in one line naming both shapes', async () => {
      await assert.rejects(Interpolator.load(models.dtFlat, { device: 'cpu' }), (err) => {
        assert.equal(err.code, 'ERR_FILM_MODEL_FORMAT');
        assert.ok(err.message.includes(models.dtFlat));
        assert.match(err.message, /fails on two 64x64 pairs with either batch_dt shape \(\[n, 1\]: returned shape \[2, 2, 3, 64, 64\]; \[n, 1, 1, 1\]: returned shape/);
        assert.ok(!err.message.includes('\n'), err.message);
        return true;
      });
    });
  });

  describe('equal to the same file run by Python (1e-5), odd sizes, batches, recursion', () => {
    for (const name of ['tiny-rec2-b2-67x101', 'tinyOld-rec2-b2-67x101', 'exported-rec2-b2-75x93']) {
      it(`${name}: by recursion (the padding zeroed between steps)`, async () => {
        const c = cases[name];
        const frames = await (await load(c.model)).interpolate(c.in0, c.in1, { recursions: c.recursions });
        assert.equal(frames.length, 2 ** c.recursions - 1);
        frames.forEach((f, i) => assertClose(f, c.frames[i], `${name} frame ${i + 1}`));
      });
    }

    for (const name of ['tinyOld-b2-45x77', 'exported-133x70']) {
      it(`${name}: at a list of times`, async () => {
        const c = cases[name];
        const frames = await (await load(c.model)).interpolate(c.in0, c.in1, { time: c.times });
        frames.forEach((f, i) => assertClose(f, c.frames[i], `${name} t=${c.times[i]}`));
      });
    }

    it('the same weights in either convention give the same frames', async () => {
      const a = randomTensor([2, 3, 50, 70], 31);
      const b = randomTensor([2, 3, 50, 70], 32);
      const [oldFrames, newFrames] = await Promise.all([models.tinyFilmOld, models.tinyFilm].map(
        async (file) => (await load(file)).interpolate(a, b, { time: [0.3, 0.8] })));
      // Two programs (the dt broadcast differs): on libtorch 2.6 the profiling executor specialises
      // each to the shapes it first saw (the load's probe), and the last float digit may differ.
      newFrames.forEach((f, i) => {
        assert.deepEqual(f.shape, oldFrames[i].shape);
        const worst = f.data.reduce((m, v, k) => Math.max(m, Math.abs(v - oldFrames[i].data[k])), 0);
        assert.ok(worst <= 1e-6, `frame ${i}: max abs difference ${worst}`);
      });
    });
  });

  describe('failures inside a file\'s TorchScript code', () => {
    it('one line naming the file and the likely cause; the whole trace on err.cause', async () => {
      const film = await load(models.fixedSize); // loads: the probe runs at 64x64
      assert.equal(film.info.dtShape, '[n, 1]');
      const a = randomTensor([1, 3, 100, 70], 33);
      await assert.rejects(film.interpolate(a, a), (err) => {
        assert.equal(err.constructor, Error);
        assert.equal(err.code, 'ERR_FILM_RUNTIME');
        assert.ok(!err.message.includes('\n'), err.message);
        assert.ok(err.message.startsWith(`'${models.fixedSize}' failed interpolating [1, 3, 128, 128] (padded) frames at t = 0.5: `), err.message);
        assert.match(err.message, /The size of tensor a \(128\) must match the size of tensor b \(64\)/);
        assert.match(err.message, /likely cause: its code expects inputs of another shape/);
        assert.ok(err.cause instanceof Error);
        assert.match(err.cause.message, /Traceback of TorchScript/);
        assert.match(err.cause.message, /self\.offset/);
        return true;
      });
      // it still runs what it can
      assert.deepEqual((await film.interpolate(randomTensor([1, 3, 64, 64], 34), randomTensor([1, 3, 64, 64], 35))).shape, [1, 3, 64, 64]);
    });

    it('the same for extract on the TorchScript engine', async () => {
      // its forward is not FILM's network, so 'auto' runs it with TorchScript
      const fx = await FeatureExtractor.load(models.fixedSizeExtractor, { device: 'cpu' });
      try {
        assert.equal(fx.info.engine, 'torchscript');
        await assert.rejects(fx.extract(randomTensor([1, 3, 100, 70], 36), { levels: 3 }), (err) => {
          assert.equal(err.code, 'ERR_FILM_RUNTIME');
          assert.ok(!err.message.includes('\n'), err.message);
          assert.ok(err.message.startsWith(`'${models.fixedSizeExtractor}' failed extracting features of a [1, 3, 100, 70] pyramid: `), err.message);
          assert.match(err.message, /likely cause: its code expects inputs of another shape/);
          assert.match(err.cause.message, /Traceback of TorchScript[\s\S]*self\.offset/);
          return true;
        });
      } finally {
        fx.dispose();
      }
    });
  });

  describe('load() with no path', () => {
    it('says how to make or get an interpolator', async () => {
      await assert.rejects(Interpolator.load(), (err) => {
        assert.ok(err instanceof TypeError);
        assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
        assert.match(err.message, /extractor only/);
        assert.match(err.message, /models\/export\.py --interpolator/);
        assert.match(err.message, /dajes\/frame-interpolation-pytorch\/releases/);
        return true;
      });
      await assert.rejects(Interpolator.load(42), /Expected a string for modelPath/);
    });
  });
});
