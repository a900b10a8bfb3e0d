'use strict';
const assert = require('node:assert/strict');
const { FeatureExtractor } = require('..');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { native, RUN_COPY_OUTPUTS } = require('../dist/native');
const { models, randomTensor } = require('./fixtures');
const { loadNative } = require('./helpers');

const { dataAddress, RUN_WITH_ADDRESSES } = native()._internal;

function pyramidOf(size, levels) {
  return Array.from({ length: levels }, (_, i) => randomTensor([1, 3, size >> i, size >> i], i + 1));
}

describe('zero copy', () => {
  let handle;
  before(async () => {
    handle = await loadNative(models.default, 'cpu', 2, false);
  });
  after(() => handle.dispose());

  const run = (pyramid, flags = 0) => handle.run(pyramid, pyramid.length, 0, flags).promise;

  it("hands out arrays whose memory is the output tensor's storage", async () => {
    const out = await run(pyramidOf(64, 4), RUN_WITH_ADDRESSES);
    for (const level of out) {
      assert.equal(dataAddress(level.data), level.tensorAddress);
      assert.equal(level.data.byteOffset, 0);
      assert.equal(level.data.buffer.byteLength, level.data.byteLength);
    }
  });

  it('copies when asked (the path Electron takes), with identical numbers', async () => {
    const pyramid = pyramidOf(64, 4);
    const shared = await run(pyramid);
    const copied = await run(pyramid, RUN_COPY_OUTPUTS | RUN_WITH_ADDRESSES);
    copied.forEach((level, i) => {
      assert.notEqual(dataAddress(level.data), level.tensorAddress);
      assert.deepEqual(level.data, shared[i].data);
    });
  });

  it('FILM_FEATURES_COPY_OUTPUTS=1 forces the copying path through the public API, read once', () => {
    // A process of its own: the variable is a default read at the first run, not on every run.
    const script = `
      const assert = require('node:assert/strict');
      const { FeatureExtractor } = require('.');
      const { runFlags } = require('./dist/run-control');
      const { RUN_COPY_OUTPUTS } = require('./dist/native');
      (async () => {
        const fx = await FeatureExtractor.load(${JSON.stringify(models.default)}, { device: 'cpu' });
        const image = { data: new Float32Array(3 * 40 * 56).map((_, i) => (i % 97) / 97), shape: [1, 3, 40, 56] };
        const copied = await fx.extract(image, { levels: 3 });
        assert.equal(runFlags(), RUN_COPY_OUTPUTS);
        process.env.FILM_FEATURES_COPY_OUTPUTS = '';
        assert.equal(runFlags(), RUN_COPY_OUTPUTS, 'read once');
        process.stdout.write(JSON.stringify(copied.map((l) => Array.from(l.data.subarray(0, 64)))));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..'), encoding: 'utf8', env: { ...process.env, FILM_FEATURES_COPY_OUTPUTS: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    return (async () => {
      const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
      const image = { data: new Float32Array(3 * 40 * 56).map((_, i) => (i % 97) / 97), shape: [1, 3, 40, 56] };
      const shared = await fx.extract(image, { levels: 3 });
      fx.dispose();
      assert.deepEqual(JSON.parse(r.stdout), shared.map((l) => Array.from(l.data.subarray(0, 64))));
    })();
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
    // 128x128: every output of 1 MiB or more goes through libtorch's allocator into the CPU block
    // cache (FILM_FEATURES_CPU_CACHE_MB=0, as under ASan: to free(), where ASan sees any read).
    const shape = [1, 3, 128, 128];
    let fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    const out = await fx.extract(randomTensor(shape, 4), { levels: 3 });
    const copies = out.map((l) => Float32Array.from(l.data));
    fx.dispose();
    fx = null;
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((r) => setImmediate(r));
    }
    // Refill through libtorch's allocator: runs of the same sizes take blocks of the same size
    // classes, so memory freed under `out` would now hold their (different) features.
    const other = await FeatureExtractor.load(models.default, { device: 'cpu' });
    try {
      for (let seed = 5; seed < 8; seed++) {
        const refill = await other.extract(randomTensor(shape, seed), { levels: 3 });
        assert.notDeepEqual(refill[0].data, copies[0], 'the refill writes other numbers');
        out.forEach((l, i) => assert.deepEqual(l.data, copies[i]));
      }
    } finally {
      other.dispose();
    }
  });
});
