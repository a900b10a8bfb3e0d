'use strict';
// interpolate(a, b, { recursions, recursionPadding }): 'zeros' (the default: each middle frame cropped
// and padded with zeros again, as Google's FILM does) and 'prediction' (the padded, clamped
// prediction fed back as it is, as the PyTorch port's inference.py does), on every CPU engine of the
// build (the core build: the fused engine only), against the same files run by Python with each
// scheme (test/reference_interpolate.py), on sizes that need padding; and bad values.
const assert = require('node:assert/strict');

const { Interpolator } = require('..');
const { native, RUN_RECURSION_PREDICTION } = require('../dist/native');
const { models, randomTensor, cpuEngines } = require('./fixtures');
const { interpolatorSuite, loadNativeInterpolator, assertClose, assertBytesClose } = require('./helpers');


const maxAbs = (x, y) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);


/** A reference case's [n, h, w, 3] bytes as one RgbImage per pair. */
function images(bytes) {
  const [n, h, w] = bytes.shape;
  const size = h * w * 3;
  return Array.from({ length: n }, (_, i) => ({ data: bytes.data.subarray(i * size, (i + 1) * size), width: w, height: h, channels: 3 }));
}

describe('Interpolator: recursionPadding', function () {
  const { cases } = interpolatorSuite();
  const loaded = new Map();
  after(() => loaded.forEach((film) => film.dispose()));
  const load = async (file, engine) => {
    const key = `${file} ${engine}`;
    if (!loaded.has(key)) loaded.set(key, await Interpolator.load(file, { device: 'cpu', threads: 2, engine }));
    const film = loaded.get(key);
    assert.equal(film.info.engine, engine);
    return film;
  };

  for (const engine of cpuEngines()) {
    describe(`engine '${engine}'`, () => {
      it("'prediction' equals inference.py's scheme run by Python (pad once, predict, clamp, feed the padded frame back): 75x93, a batch of two, recursions 2", async () => {
        const c = cases['exported-rec2-b2-75x93-prediction'];
        const film = await load(c.model, engine);
        const frames = await film.interpolate(c.in0, c.in1, { recursions: 2, recursionPadding: 'prediction' });
        assert.equal(frames.length, 3);
        frames.forEach((f, i) => assertClose(f, c.frames[i], `frame ${i + 1}/4`));
        // and it is another recipe than 'zeros' (the same pairs): the quarter frames differ, the middle frame does not
        const zeros = cases['exported-rec2-b2-75x93'];
        assert.deepEqual(Array.from(zeros.in0.data.subarray(0, 16)), Array.from(c.in0.data.subarray(0, 16)));
        for (const i of [0, 2]) {
          const apart = maxAbs(c.frames[i].data, zeros.frames[i].data);
          assert.ok(apart > 1e-3, `frame ${i + 1}: the two references are only ${apart} apart, so this test tells nothing`);
        }
        assert.ok(maxAbs(c.frames[1].data, zeros.frames[1].data) <= 1e-6, 'middle frame');
      });

      it("'prediction' with 8-bit pixels in and out: 133x70, recursions 2", async () => {
        const c = cases['exported-rec2-bytes-133x70-prediction'];
        const film = await load(c.model, engine);
        const floats = await film.interpolate(c.in0, c.in1, { recursions: 2, recursionPadding: 'prediction' });
        floats.forEach((f, i) => assertClose(f, c.frames[i], `float frame ${i + 1}/4`));
        const [a] = images(c.bytes0);
        const [b] = images(c.bytes1);
        const bytes = await film.interpolate(a, b, { recursions: 2, recursionPadding: 'prediction' });
        bytes.forEach((f, i) => assertBytesClose(f.data, c.frameBytes[i].data, `8-bit frame ${i + 1}/4`));
      });

      it("'zeros', said or not, is unchanged: equal to FILM's recursion run by Python", async () => {
        const c = cases['exported-rec2-b2-75x93'];
        const film = await load(c.model, engine);
        const said = await film.interpolate(c.in0, c.in1, { recursions: 2, recursionPadding: 'zeros' });
        const unsaid = await film.interpolate(c.in0, c.in1, { recursions: 2 });
        said.forEach((f, i) => {
          assertClose(f, c.frames[i], `frame ${i + 1}/4`);
          assert.deepEqual(f.data, unsaid[i].data, `frame ${i + 1}/4: 'zeros' is the default`);
        });
      });

      it('where no padding is needed, both give the same frames', async () => {
        const film = await load(models.exported, engine);
        const a = randomTensor([1, 3, 64, 128], 41);
        const b = randomTensor([1, 3, 64, 128], 42);
        const [zeros, prediction] = await Promise.all(['zeros', 'prediction'].map(
          (recursionPadding) => film.interpolate(a, b, { recursions: 2, recursionPadding })));
        zeros.forEach((f, i) => assert.deepEqual(f.data, prediction[i].data, `frame ${i + 1}/4`));
      });
    });
  }

  it("'prediction' on the file's own TorchScript where the engine cannot run it (tiny FILM, 61x64, recursions 3)", async function () {
    if (native().build === 'core') {
      console.log('      (skipped: the core build runs no TorchScript; test/core/core-build.test.js checks that it says so)');
      this.skip();
    }
    const c = cases['tiny-rec3-61x64-prediction'];
    const film = await Interpolator.load(c.model, { device: 'cpu', threads: 2 });
    try {
      assert.equal(film.info.engine, 'torchscript');
      const frames = await film.interpolate(c.in0, c.in1, { recursions: 3, recursionPadding: 'prediction' });
      assert.equal(frames.length, 7);
      frames.forEach((f, i) => assertClose(f, c.frames[i], `frame ${i + 1}/8`));
      const zeros = cases['tiny-rec3-61x64'];
      assert.ok(maxAbs(c.frames[0].data, zeros.frames[0].data) > 1e-4, 'the two references are too close to tell the schemes apart');
    } finally {
      film.dispose();
    }
  });

  describe('bad values', () => {
    const a = randomTensor([1, 3, 30, 40], 6);
    const b = randomTensor([1, 3, 30, 40], 7);
    const file = () => models.exported;

    it("anything but 'zeros' or 'prediction': RangeError for another string, TypeError for another type", async () => {
      const film = await load(file(), cpuEngines()[0]);
      for (const value of ['Zeros', 'none', '', 'reflect']) {
        await assert.rejects(film.interpolate(a, b, { recursions: 1, recursionPadding: value }), (err) => {
          assert.ok(err instanceof RangeError);
          assert.equal(err.code, 'ERR_OUT_OF_RANGE');
          assert.match(err.message, /Expected 'zeros' or 'prediction' for options\.recursionPadding/);
          return true;
        });
      }
      for (const value of [0, true, null, ['zeros'], {}]) {
        await assert.rejects(film.interpolate(a, b, { recursions: 1, recursionPadding: value }),
          { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      }
    });

    it('without recursions (with time, or alone): TypeError, as time with recursions is', async () => {
      const film = await load(file(), cpuEngines()[0]);
      for (const options of [{ time: 0.5, recursionPadding: 'prediction' }, { time: [0.25, 0.5], recursionPadding: 'zeros' },
        { recursionPadding: 'prediction' }]) {
        await assert.rejects(film.interpolate(a, b, options), {
          name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: 'options.recursionPadding applies only with options.recursions',
        });
      }
      // undefined is no option at all
      assert.equal((await film.interpolate(a, b, { time: 0.5, recursionPadding: undefined })).shape[2], 30);
    });

    it('the binding refuses the flag without recursions', async () => {
      const handle = await loadNativeInterpolator(file(), 'cpu', 1, false);
      try {
        assert.throws(() => handle.run([a], [b], [0.5], 0, 1, RUN_RECURSION_PREDICTION),
          { name: 'RangeError', message: /recursion padding flag takes recursions > 0/ });
        assert.equal((await handle.run([a], [b], [], 1, 1, RUN_RECURSION_PREDICTION).promise).length, 1);
      } finally {
        handle.dispose();
      }
    });
  });
});
