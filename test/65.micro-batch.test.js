'use strict';
// Micro-batching: concurrent extract() calls of one kind run as one batch (their outputs are views
// of one buffer) and give the numbers unbatched runs give.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { setTimeout: sleep } = require('node:timers/promises');
const { FeatureExtractor } = require('..');
const { models, randomTensor, relativeError, root } = require('./fixtures');

function maxError(actual, expected) {
  assert.equal(actual.length, expected.length);
  return Math.max(...actual.map((level, i) => {
    assert.deepEqual(level.shape, expected[i].shape);
    return relativeError(level.data, expected[i].data);
  }));
}

// Calls whose outputs are views of one ArrayBuffer ran as one batch.
function batchSizes(results) {
  const byBuffer = new Map();
  for (const out of results) byBuffer.set(out[0].data.buffer, (byBuffer.get(out[0].data.buffer) || 0) + out[0].shape[0]);
  return [...byBuffer.values()];
}

describe('micro-batching', () => {
  let plain;
  let batched;
  before(async () => {
    plain = await FeatureExtractor.load(models.default, { device: 'cpu', batchWindowMs: 0 });
    batched = await FeatureExtractor.load(models.default, { device: 'cpu', batchWindowMs: 50, maxBatch: 4 });
  });
  after(() => {
    plain?.dispose();
    batched?.dispose();
  });

  it('joins concurrent calls up to maxBatch, and each result equals its unbatched run within 1e-6', async () => {
    const images = Array.from({ length: 6 }, (_, i) => randomTensor([1, 3, 48, 80], 300 + i));
    const expected = [];
    for (const image of images) expected.push(await plain.extract(image, { levels: 5 }));
    const results = await Promise.all(images.map((image) => batched.extract(image, { levels: 5 })));
    assert.deepEqual(batchSizes(results).sort(), [2, 4]);
    results.forEach((out, i) => {
      assert.equal(out[0].shape[0], 1);
      const err = maxError(out, expected[i]);
      assert.ok(err < 1e-6, `image ${i}: relative error ${err}`);
    });
  });

  it('joins inputs of several images with single ones, in order', async () => {
    const pair = randomTensor([2, 3, 40, 40], 310);
    const single = randomTensor([1, 3, 40, 40], 311);
    const [a, b] = await Promise.all([batched.extract(pair, { levels: 4 }), batched.extract(single, { levels: 4 })]);
    assert.deepEqual(batchSizes([a, b]), [3]);
    assert.deepEqual(a[0].shape.slice(0, 1), [2]);
    assert.ok(maxError(a, await plain.extract(pair, { levels: 4 })) < 1e-6);
    assert.ok(maxError(b, await plain.extract(single, { levels: 4 })) < 1e-6);
  });

  it('keeps different sizes, levels and pyramid options apart', async () => {
    const image = randomTensor([1, 3, 40, 40], 320);
    const results = await Promise.all([
      batched.extract(image, { levels: 4 }),
      batched.extract(randomTensor([1, 3, 40, 48], 321), { levels: 4 }),
      batched.extract(image, { levels: 3 }),
      batched.extract(image, { levels: 4, pyramidOnDevice: false }),
    ]);
    assert.deepEqual(batchSizes(results), [1, 1, 1, 1]);
    assert.ok(maxError(results[3], results[0]) < 1e-6);
  });

  it('runs a call alone when no other arrives within the window, and inputs of maxBatch images at once', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', batchWindowMs: 5, maxBatch: 2 });
    const image = randomTensor([1, 3, 32, 32], 330);
    const first = fx.extract(image, { levels: 3 });
    await sleep(100);
    const second = fx.extract(image, { levels: 3 });
    const big = fx.extract(randomTensor([2, 3, 32, 32], 331), { levels: 3 });
    const results = await Promise.all([first, second, big]);
    assert.deepEqual(batchSizes(results), [1, 1, 2]);
    fx.dispose();
  });

  it('copies each image when extract() returns: changing it afterwards changes nothing', async () => {
    const images = [randomTensor([1, 3, 32, 48], 350), randomTensor([1, 3, 32, 48], 351)];
    const expected = [];
    for (const image of images) expected.push(await plain.extract(image, { levels: 3 }));
    const calls = images.map((image) => batched.extract(image, { levels: 3 }));
    images.forEach((image) => image.data.fill(0)); // still inside the window
    const results = await Promise.all(calls);
    assert.deepEqual(batchSizes(results), [2]);
    results.forEach((out, i) => assert.ok(maxError(out, expected[i]) < 1e-6));
  });

  it('joins 8-bit images with 8-bit images of the same channels only', async () => {
    const rgb = (seed, channels) => {
      const t = randomTensor([1, 1, 1, 32 * 40 * channels], seed);
      return { data: Uint8Array.from(t.data, (v) => Math.floor(v * 256)), width: 40, height: 32, channels };
    };
    const inputs = [rgb(360, 3), rgb(361, 3), rgb(362, 4), randomTensor([1, 3, 32, 40], 363)];
    const results = await Promise.all(inputs.map((image) => batched.extract(image, { levels: 3 })));
    assert.deepEqual(batchSizes(results).sort(), [1, 1, 2]);
    for (let i = 0; i < inputs.length; i++) {
      assert.ok(maxError(results[i], await plain.extract(inputs[i], { levels: 3 })) < 1e-6, `input ${i}`);
    }
  });

  it('an aborted call rejects at once with an AbortError and leaves its batch', async () => {
    const images = Array.from({ length: 3 }, (_, i) => randomTensor([1, 3, 32, 32], 370 + i));
    const controller = new AbortController();
    const calls = images.map((image, i) => batched.extract(image, { levels: 3, signal: i === 1 ? controller.signal : undefined }));
    controller.abort();
    await assert.rejects(calls[1], (err) => err.name === 'AbortError' && err.code === 'ABORT_ERR');
    const kept = await Promise.all([calls[0], calls[2]]);
    assert.deepEqual(batchSizes(kept), [2]);
    assert.ok(maxError(kept[1], await plain.extract(images[2], { levels: 3 })) < 1e-6);
  });

  it('is off on the CPU by default: concurrent calls run on their own', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    const images = Array.from({ length: 3 }, (_, i) => randomTensor([1, 3, 32, 32], 340 + i));
    assert.deepEqual(batchSizes(await Promise.all(images.map((im) => fx.extract(im, { levels: 3 })))), [1, 1, 1]);
    fx.dispose();
  });

  it('rejects every call of a batch whose run fails, each with its own error', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', batchWindowMs: 50 });
    const calls = [1, 2, 3].map((seed) => fx.extract(randomTensor([1, 3, 32, 32], seed), { levels: 3 }));
    fx.dispose(); // inside the window: the batch runs on a disposed model
    const settled = await Promise.allSettled(calls);
    for (const s of settled) {
      assert.equal(s.status, 'rejected');
      assert.equal(s.reason.code, 'ERR_FILM_DISPOSED');
    }
    assert.notEqual(settled[0].reason, settled[1].reason);
  });

  it('checks batchWindowMs and maxBatch', async () => {
    const bad = [
      [{ batchWindowMs: -1 }, RangeError, /options\.batchWindowMs/],
      [{ batchWindowMs: 1001 }, RangeError, /options\.batchWindowMs/],
      [{ batchWindowMs: Number.NaN }, RangeError, /options\.batchWindowMs/],
      [{ batchWindowMs: '2' }, TypeError, /options\.batchWindowMs/],
      [{ maxBatch: 0 }, RangeError, /options\.maxBatch/],
      [{ maxBatch: 2.5 }, RangeError, /options\.maxBatch/],
      [{ maxBatch: null }, TypeError, /options\.maxBatch/],
    ];
    for (const [options, type, message] of bad) {
      await assert.rejects(FeatureExtractor.load(models.default, { device: 'cpu', ...options }), (err) => {
        assert.ok(err instanceof type, `${JSON.stringify(options)}: ${err}`);
        assert.match(err.message, message);
        return true;
      });
    }
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', batchWindowMs: 0.5, maxBatch: 1 });
    fx.dispose();
  });
});

describe('cuDNN benchmark mode', () => {
  it('is one process-wide switch, on unless FILM_FEATURES_CUDNN_BENCHMARK=0', () => {
    const before = FeatureExtractor.cudnnBenchmark;
    assert.equal(before, process.env.FILM_FEATURES_CUDNN_BENCHMARK !== '0');
    FeatureExtractor.setCudnnBenchmark(!before);
    assert.equal(FeatureExtractor.cudnnBenchmark, !before);
    FeatureExtractor.setCudnnBenchmark(before);
    assert.equal(FeatureExtractor.cudnnBenchmark, before);
    assert.throws(() => FeatureExtractor.setCudnnBenchmark(1), TypeError);
  });

  it('FILM_FEATURES_CUDNN_BENCHMARK=0 turns it off when the addon loads', () => {
    const script = "process.stdout.write(String(require('.').FeatureExtractor.cudnnBenchmark))";
    for (const [value, expected] of [['0', 'false'], ['1', 'true']]) {
      const r = spawnSync(process.execPath, ['-e', script], {
        cwd: root, encoding: 'utf8', env: { ...process.env, FILM_FEATURES_CUDNN_BENCHMARK: value } });
      assert.equal(r.stdout, expected, r.stderr);
    }
  });
});
