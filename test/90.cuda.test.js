'use strict';
// CUDA: the same API on a GPU. Skips, saying why, where this build or machine has no CUDA.
const assert = require('node:assert/strict');
const { FeatureExtractor } = require('..');
const { models, randomTensor, relativeError } = require('./fixtures');

const cuda = FeatureExtractor.devices().filter((d) => d.startsWith('cuda'));

function maxError(a, b) {
  return Math.max(...a.map((level, i) => {
    assert.deepEqual(level.shape, b[i].shape);
    return relativeError(level.data, b[i].data);
  }));
}

describe('CUDA', function () {
  before(function () {
    if (cuda.length === 0) {
      const { native } = require('../dist/native');
      const why = native().cudaCompiledIn ? 'no CUDA device is present' : 'this build links a CPU-only libtorch';
      console.log(`    (skipped: ${why})`);
      this.skip();
    }
  });

  let cpu;
  let image;
  let expected;
  before(async () => {
    cpu = await FeatureExtractor.load(models.default, { device: 'cpu' });
    image = randomTensor([2, 3, 96, 160], 91);
    expected = await cpu.extract(image, { levels: 6 });
  });
  after(() => cpu?.dispose());

  it("'auto' picks cuda:0 and features match the CPU's (fp32; cuDNN may use TF32)", async () => {
    const fx = await FeatureExtractor.load(models.default);
    assert.equal(fx.device, 'cuda:0');
    const err = maxError(await fx.extract(image, { levels: 6 }), expected);
    assert.ok(err < 5e-3, `relative error ${err}`);
    fx.dispose();
  });

  it('builds the pyramid on the device or takes it from the host, with the same result', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cuda' });
    const onDevice = await fx.extract(image, { levels: 6, pyramidOnDevice: true });
    const onHost = await fx.extract(image, { levels: 6, pyramidOnDevice: false });
    assert.ok(maxError(onDevice, onHost) < 1e-5);
    fx.dispose();
  });

  it('half: true runs fp16 and returns float32 within fp16 precision', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cuda:0', half: true });
    const out = await fx.extract(image, { levels: 6 });
    assert.ok(out[0].data instanceof Float32Array);
    const err = maxError(out, expected);
    assert.ok(err < 3e-2, `relative error ${err}`);
    fx.dispose();
  });

  it('an fp16 interpolator file runs in half on CUDA', async function () {
    const fx = await FeatureExtractor.load(models.interpolatorFp16, { device: 'cuda', half: true });
    assert.equal(fx.info.dtype, 'float16');
    const ref = await FeatureExtractor.load(models.interpolatorFp16, { device: 'cpu' });
    const err = maxError(await fx.extract(image), await ref.extract(image));
    assert.ok(err < 3e-2, `relative error ${err}`);
    fx.dispose();
    ref.dispose();
  });

  it('concurrent runs on one GPU (separate streams) equal runs one by one', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cuda', batchWindowMs: 0 });
    const images = Array.from({ length: 8 }, (_, i) => randomTensor([1, 3, 64, 96], 200 + i));
    const one = [];
    for (const im of images) one.push(await fx.extract(im, { levels: 5 }));
    const all = await Promise.all(images.map((im) => fx.extract(im, { levels: 5 })));
    all.forEach((out, i) => assert.ok(maxError(out, one[i]) < 1e-5));
    fx.dispose();
    FeatureExtractor.releaseCachedMemory();
  });

  it('micro-batches concurrent calls by default, each result matching the CPU', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cuda' });
    const images = Array.from({ length: 3 }, (_, i) => randomTensor([1, 3, 64, 96], 210 + i));
    const all = await Promise.all(images.map((im) => fx.extract(im, { levels: 5 })));
    assert.equal(new Set(all.map((out) => out[0].data.buffer)).size, 1, 'the three calls ran as one batch');
    for (let i = 0; i < images.length; i++) {
      const err = maxError(all[i], await cpu.extract(images[i], { levels: 5 }));
      assert.ok(err < 5e-3, `image ${i}: relative error ${err}`);
    }
    fx.dispose();
  });

  it('inputs and outputs larger than the pinned staging chunks (8 MiB) cross intact, before and after releaseCachedMemory', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cuda' });
    // a 12 MiB level 0 sent from the host, a 256 MiB level-0 output
    const big = randomTensor([1, 3, 1024, 1024], 220);
    const reference = await cpu.extract(big, { levels: 4 });
    for (let round = 0; round < 2; round++) {
      const err = maxError(await fx.extract(big, { levels: 4, pyramidOnDevice: false }), reference);
      assert.ok(err < 5e-3, `round ${round}: relative error ${err}`);
      FeatureExtractor.releaseCachedMemory(); // frees the idle staging buffers; the next run makes new ones
    }
    fx.dispose();
  });

  it('out of memory rejects with a clear Error and the next call works', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cuda' });
    // level 0 alone would need 48 * 64 * 2048 * 2048 * 4 bytes = 51 GiB, plus its activations
    const huge = { data: new Float32Array(48 * 3 * 2048 * 2048), shape: [48, 3, 2048, 2048] };
    await assert.rejects(fx.extract(huge, { levels: 2 }), (err) => err instanceof Error && /memory/i.test(err.message));
    FeatureExtractor.releaseCachedMemory();
    assert.ok(maxError(await fx.extract(image, { levels: 6 }), expected) < 5e-3);
    fx.dispose();
  });

  it('a device index past the last one is an Error naming it', async () => {
    await assert.rejects(FeatureExtractor.load(models.default, { device: `cuda:${cuda.length}` }),
      (err) => err.constructor === Error && err.message.includes(`cuda:${cuda.length}`));
  });
});
