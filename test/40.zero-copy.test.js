'use strict';
const assert = require('node:assert/strict');
const { FeatureExtractor } = require('..');
const { native, RUN_COPY_OUTPUTS, RUN_WITH_ADDRESSES } = require('../dist/native');
const { models, randomTensor } = require('./fixtures');

function pyramidOf(size, levels) {
  return Array.from({ length: levels }, (_, i) => randomTensor([1, 3, size >> i, size >> i], i + 1));
}

describe('zero copy', () => {
  let handle;
  before(async () => {
    handle = await native().load(models.default, 'cpu', 2, false);
  });
  after(() => handle.dispose());

  const run = (pyramid, flags = 0) => handle.run(pyramid, pyramid.length, 0, flags).promise;

  it("hands out arrays whose memory is the output tensor's storage", async () => {
    const out = await run(pyramidOf(64, 4), RUN_WITH_ADDRESSES);
    for (const level of out) {
      assert.equal(native().dataAddress(level.data), level.tensorAddress);
      assert.equal(level.data.byteOffset, 0);
      assert.equal(level.data.buffer.byteLength, level.data.byteLength);
    }
  });

  it('copies when asked (the path Electron takes), with identical numbers', async () => {
    const pyramid = pyramidOf(64, 4);
    const shared = await run(pyramid);
    const copied = await run(pyramid, RUN_COPY_OUTPUTS | RUN_WITH_ADDRESSES);
    copied.forEach((level, i) => {
      assert.notEqual(native().dataAddress(level.data), level.tensorAddress);
      assert.deepEqual(level.data, shared[i].data);
    });
  });

  it('FILM_FEATURES_COPY_OUTPUTS=1 forces the copying path through the public API', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    const image = randomTensor([1, 3, 40, 56], 3);
    const shared = await fx.extract(image, { levels: 3 });
    process.env.FILM_FEATURES_COPY_OUTPUTS = '1';
    try {
      const copied = await fx.extract(image, { levels: 3 });
      copied.forEach((level, i) => assert.deepEqual(level, shared[i]));
    } finally {
      delete process.env.FILM_FEATURES_COPY_OUTPUTS;
      fx.dispose();
    }
  });

  it('outputs carry no tensorAddress unless the test hook asks', async () => {
    const out = await run(pyramidOf(16, 2));
    for (const level of out) assert.deepEqual(Object.keys(level), ['data', 'shape']);
  });

  it('takes a view into a larger buffer at its offset', async () => {
    const big = new Float32Array(10 + 3 * 32 * 32);
    const image = randomTensor([1, 3, 32, 32], 9);
    big.set(image.data, 10);
    const view = { data: big.subarray(10), shape: [1, 3, 32, 32] };
    const a = await run([view]);
    const b = await run([image]);
    assert.deepEqual(a[0].data, b[0].data);
  });

  it('outputs stay valid after dispose and after the extractor is collected', async () => {
    let fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    const image = randomTensor([1, 3, 32, 32], 4);
    const out = await fx.extract(image, { levels: 2 });
    const copies = out.map((l) => Float32Array.from(l.data));
    fx.dispose();
    fx = null;
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((r) => setImmediate(r));
    }
    new Float32Array(1e6).fill(7); // let the allocator reuse what it freed, if it did
    out.forEach((l, i) => assert.deepEqual(l.data, copies[i]));
  });
});
