'use strict';
// Bad calls get a clear error of the right class; the process lives and the next valid call is right.
const assert = require('node:assert/strict');
const { FeatureExtractor, buildPyramid } = require('..');
const { native } = require('../dist/native');
const { models, randomTensor } = require('./fixtures');
const { loadNative } = require('./helpers');

describe('bad input', () => {
  let fx;
  let baseline;
  const image = randomTensor([1, 3, 24, 40], 5);
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    baseline = await fx.extract(image, { levels: 3 });
  });
  after(() => fx.dispose());
  afterEach(async () => {
    const again = await fx.extract(image, { levels: 3 });
    again.forEach((level, i) => assert.deepEqual(level.data, baseline[i].data));
  });

  const shape = [1, 3, 24, 40];
  const n = 3 * 24 * 40;
  const tensors = {
    'data length != product of shape': [{ data: new Float32Array(n - 1), shape }, RangeError, /has 2879 elements but .* needs 2880/],
    'a Float64Array': [{ data: new Float64Array(n), shape }, TypeError, /Expected a Float32Array for image.data but received Float64Array/],
    'a plain Array': [{ data: Array.from({ length: n }, () => 0), shape }, TypeError, /Expected a Float32Array for image.data/],
    'rank 3': [{ data: new Float32Array(n), shape: [3, 24, 40] }, RangeError, /Expected 4 dimensions/],
    'rank 5': [{ data: new Float32Array(n), shape: [1, 1, 3, 24, 40] }, RangeError, /Expected 4 dimensions/],
    '4 channels': [{ data: new Float32Array(4 * 24 * 40), shape: [1, 4, 24, 40] }, RangeError, /Expected 3 channels for image.shape\[1\]/],
    'a zero dimension': [{ data: new Float32Array(0), shape: [1, 3, 0, 40] }, RangeError, /image.shape\[2\]/],
    'a negative dimension': [{ data: new Float32Array(n), shape: [1, 3, -24, -40] }, RangeError, /image.shape\[2\]/],
    'a fractional dimension': [{ data: new Float32Array(n), shape: [1, 3, 24.5, 40] }, RangeError, /image.shape\[2\]/],
    'a NaN dimension': [{ data: new Float32Array(n), shape: [1, 3, NaN, 40] }, RangeError, /image.shape\[2\]/],
    'a string dimension': [{ data: new Float32Array(n), shape: [1, 3, '24', 40] }, TypeError, /image.shape\[2\]/],
    'sizes whose product overflows': [{ data: new Float32Array(n), shape: [2 ** 20, 3, 2 ** 20, 2 ** 20] }, RangeError, /at most/],
    'not an object': [42, TypeError, /Expected a Tensor4/],
    'null': [null, TypeError, /Expected a Tensor4/],
  };
  for (const [name, [input, cls, pattern]] of Object.entries(tensors)) {
    it(`image: ${name}`, async () => {
      await assert.rejects(fx.extract(input), (err) => {
        assert.equal(err.constructor, cls);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }

  it('image: a detached ArrayBuffer', async () => {
    const t = randomTensor(shape, 6);
    structuredClone(t.data.buffer, { transfer: [t.data.buffer] });
    await assert.rejects(fx.extract(t), (err) => err instanceof TypeError && /detached/.test(err.message));
  });

  it('levels < 1, fractional, or more than the image allows', async () => {
    for (const levels of [0, -1, 2.5, NaN, 6]) { // 24 >> 5 = 0
      await assert.rejects(fx.extract(image, { levels }), (err) => err instanceof RangeError && /options.levels/.test(err.message));
    }
    await assert.rejects(fx.extract(image, { levels: '3' }), TypeError);
    await assert.rejects(fx.extract(image, 3), (err) => err instanceof TypeError && /options/.test(err.message));
  });

  describe('bad pyramids', () => {
    const pyramid = () => buildPyramid(randomTensor([2, 3, 16, 16], 7), 3);
    it('an empty list', () => assert.rejects(fx.extractPyramid([]), RangeError));
    it('not a list', () => assert.rejects(fx.extractPyramid(randomTensor(shape)), TypeError));
    it('mismatched batch', async () => {
      const p = pyramid();
      p[1] = randomTensor([1, 3, 8, 8]);
      await assert.rejects(fx.extractPyramid(p), /pyramid\[1\] has batch 1 but pyramid\[0\] has 2/);
    });
    it("sizes that don't halve", async () => {
      const p = pyramid();
      p[2] = randomTensor([2, 3, 3, 4]);
      await assert.rejects(fx.extractPyramid(p), (err) => err instanceof RangeError && /pyramid\[2\] is 3x4; half of pyramid\[1\] \(8x8\) is 4x4/.test(err.message));
    });
    it('a bad level', () => assert.rejects(fx.extractPyramid([randomTensor([1, 3, 8, 8]), { data: new Float32Array(3), shape: [1, 3, 4, 4] }]), /pyramid\[1\].data has 3 elements/));
  });

  describe('bad load options', () => {
    const cases = {
      "device 'tpu'": [{ device: 'tpu' }, RangeError, /options.device/],
      'device 7': [{ device: 7 }, TypeError, /options.device/],
      'threads -1': [{ threads: -1 }, RangeError, /options.threads/],
      'threads 1.5': [{ threads: 1.5 }, RangeError, /options.threads/],
      "threads '2'": [{ threads: '2' }, TypeError, /options.threads/],
      "half 'yes'": [{ half: 'yes' }, TypeError, /options.half/],
      'half on the CPU': [{ device: 'cpu', half: true }, RangeError, /half: true needs a CUDA device/],
      'options not an object': ['cpu', TypeError, /options/],
    };
    for (const [name, [options, cls, pattern]] of Object.entries(cases)) {
      it(name, async () => {
        await assert.rejects(FeatureExtractor.load(models.default, options), (err) => {
          assert.equal(err.constructor, cls);
          assert.match(err.message, pattern);
          return true;
        });
      });
    }
    it('a model path that is not a string', () => assert.rejects(FeatureExtractor.load(42), TypeError));
    it('errors carry the caller\'s stack', async () => {
      const err = await FeatureExtractor.load('/nonexistent/model.pt', { device: 'cpu' }).catch((e) => e);
      assert.match(err.stack, /50\.bad-input\.test\.js/);
    });
  });

  describe('CUDA where there is none', function () {
    before(function () {
      if (FeatureExtractor.devices().length > 1) {
        console.log('    (skipped: this machine has CUDA)');
        this.skip();
      }
    });
    for (const device of ['cuda', 'cuda:7']) {
      it(`device '${device}'`, async () => {
        await assert.rejects(FeatureExtractor.load(models.default, { device }), (err) => {
          assert.equal(err.constructor, Error);
          assert.ok(err.message.includes(`device '${device}'`), err.message);
          return true;
        });
      });
    }
  });

  describe('the binding re-checks what TypeScript checked', () => {
    let handle;
    before(async () => {
      handle = await loadNative(models.default, 'cpu', 1, false);
    });
    after(() => handle.dispose());
    const level = (over) => ({ data: new Float32Array(3 * 8 * 8), shape: [1, 3, 8, 8], ...over });
    const cases = {
      'no arguments': [[], TypeError],
      'pyramid not an array': [[{}, false], TypeError],
      'empty pyramid': [[[], false], RangeError],
      'level not an object': [[[1], false], TypeError],
      'Float64Array data': [[[level({ data: new Float64Array(192) })], false], TypeError],
      'short data': [[[level({ data: new Float32Array(10) })], false], RangeError],
      'rank 3': [[[level({ shape: [3, 8, 8] })], false], RangeError],
      '2 channels': [[[level({ shape: [1, 2, 8, 12] })], false], RangeError],
      'NaN dimension': [[[level({ shape: [1, 3, NaN, 8] })], false], RangeError],
      'huge dimensions': [[[level({ shape: [2 ** 30, 3, 2 ** 30, 2 ** 30] })], false], RangeError],
    };
    for (const [name, [args, cls]] of Object.entries(cases)) {
      it(name, () => assert.throws(() => handle.run(...args), cls));
    }
    it('load with wrong argument types', () => assert.throws(() => native().load(1, 2, 3, 4), TypeError));

    // frame plans (native/frame_run.cc) are made by lib/frame-plan.ts; the binding still refuses any that would read or write out of bounds
    const pixels = { data: new Uint8Array(3 * 10 * 12), shape: [1, 3, 10, 12] };
    const plan = (over) => ({ pad: [64, 64, 3, 4], base: 0, rows: [0, 64], own: [0, 64], keep: [0, 2], boxes: [[0, 0, 64, 64], [0, 0, 16, 16]], half: true, ...over });
    const plans = {
      'pad smaller than the image': plan({ pad: [8, 64, 0, 0] }),
      'the image past the padded frame': plan({ pad: [64, 64, 60, 0] }),
      'rows past the level': plan({ rows: [0, 65] }),
      'own rows outside the run\'s rows': plan({ rows: [0, 32], own: [0, 40] }),
      'rows off the pooling grid': plan({ rows: [2, 64], own: [2, 64] }),
      'too few rows for the top level': plan({ rows: [0, 2], own: [0, 2] }),
      'keep not ascending': plan({ keep: [2, 0] }),
      'keep past the coarsest level': plan({ keep: [7], boxes: [[0, 0, 1, 1]] }),
      'a box past its level': plan({ boxes: [[0, 0, 64, 64], [8, 8, 9, 8]] }),
      'fewer boxes than levels': plan({ boxes: [[0, 0, 64, 64]] }),
      'half not a boolean': plan({ half: 1 }),
      'a frame plan with two inputs': null,
    };
    for (const [name, p] of Object.entries(plans)) {
      it(`frame plan: ${name}`, () => assert.throws(() => handle.run(p ? [pixels] : [pixels, pixels], 3, 1, 0, p ?? plan()), RangeError));
    }
    it('encodeLevel: a box outside the level, data not matching the shape', () => {
      const data = new Float32Array(2 * 4 * 4);
      assert.throws(() => native().encodeLevel(data, [1, 2, 4, 4], [3, 0, 2, 4], true), RangeError);
      assert.throws(() => native().encodeLevel(data, [1, 2, 4, 5], [0, 0, 1, 1], true), RangeError);
      assert.throws(() => native().encodeLevel(new Uint16Array(32), [1, 2, 4, 4], [0, 0, 1, 1], true), TypeError);
    });
    it('a NativeExtractor cannot be constructed from JS', () => {
      assert.throws(() => new handle.constructor(), TypeError);
    });
  });
});
