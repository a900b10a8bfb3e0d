'use strict';
// layout: 'nhwc': each level [N, H, W, C], the float64 reference's NCHW numbers in channels-last
// order, on both CPU engines, for every kind of input; micro-batches keep layouts apart; the
// copying path (Electron's) gives the same; bad values are rejected naming the option.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { FeatureExtractor } = require('..');
const { native, RUN_HOLD_OUTPUTS, RUN_NHWC_OUTPUTS } = require('../dist/native');
const { cpuEngines, models, randomTensor, reference, relativeError } = require('./fixtures');
const { loadNative } = require('./helpers');

/** An NHWC level read back into NCHW order, by index arithmetic alone. */
function toNchw({ data, shape: [n, h, w, c] }) {
  const out = new Float32Array(data.length);
  for (let q = 0; q < n; q++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const from = ((q * h + y) * w + x) * c;
        for (let ch = 0; ch < c; ch++) out[((q * c + ch) * h + y) * w + x] = data[from + ch];
      }
    }
  }
  return { data: out, shape: [n, c, h, w] };
}

/** NHWC levels against NCHW ones: the transposed shape, and the same floats (exactly, or within a tolerance). */
function assertSameLevels(nhwc, nchw, tolerance = 0) {
  assert.equal(nhwc.length, nchw.length);
  nhwc.forEach((level, i) => {
    const [n, c, h, w] = nchw[i].shape;
    assert.deepEqual(level.shape, [n, h, w, c], `level ${i}`);
    assert.ok(level.data instanceof Float32Array);
    const back = toNchw(level);
    if (tolerance === 0) assert.deepEqual(back.data, nchw[i].data, `level ${i}`);
    else assert.ok(relativeError(back.data, nchw[i].data) <= tolerance, `level ${i}: ${relativeError(back.data, nchw[i].data)}`);
  });
}

for (const engine of cpuEngines()) {
  describe(`layout 'nhwc' (engine '${engine}')`, function () {
    let fx;
    before(async () => {
      fx = await FeatureExtractor.load(models.default, { device: 'cpu', engine });
    });
    after(() => fx?.dispose());

    it('matches the float64 reference within 1e-5, channels last (odd sizes, batch 2, 6 and 7 levels)', async () => {
      for (const name of ['default-67x131-L7', 'default-97x61-L6', 'default-b2-64x80-L7']) {
        const c = reference().find((x) => x.name === name);
        const got = await fx.extractPyramid(c.pyramid, { layout: 'nhwc' });
        assertSameLevels(got, c.features, 1e-5);
      }
    });

    it("is the 'nchw' result transposed, float for float: extract (float and 8-bit, pooled here or not) and extractPyramid", async () => {
      const image = randomTensor([2, 3, 45, 70], 7);
      for (const options of [{}, { levels: 4 }, { pyramidOnDevice: false }]) {
        assertSameLevels(await fx.extract(image, { ...options, layout: 'nhwc' }), await fx.extract(image, options));
      }
      const pixels = { data: Uint8Array.from({ length: 33 * 50 * 4 }, (_, i) => (i * 37) % 256), width: 50, height: 33 };
      assertSameLevels(await fx.extract(pixels, { layout: 'nhwc' }), await fx.extract(pixels, { layout: 'nchw' }));
      const pyramid = Array.from({ length: 5 }, (_, i) => randomTensor([1, 3, 96 >> i, 64 >> i], i + 1));
      assertSameLevels(await fx.extractPyramid(pyramid, { layout: 'nhwc' }), await fx.extractPyramid(pyramid));
    });
  });
}

describe("layout: micro-batches, the copying path, bad values", function () {
  let fx;
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu', batchWindowMs: 50, maxBatch: 4 });
  });
  after(() => fx?.dispose());

  it('micro-batches calls of one layout together and each gets its own slice; layouts are not mixed', async () => {
    const images = [1, 2, 3].map((seed) => randomTensor([1, 3, 40, 56], seed));
    const alone = await Promise.all(images.map((image) => fx.extract(image)));
    const mixed = await Promise.all(images.map((image, i) => fx.extract(image, { layout: i === 1 ? 'nchw' : 'nhwc' })));
    // A frame's features do not depend on the batch it ran in: float for float.
    mixed.forEach((levels, i) => {
      if (i !== 1) return assertSameLevels(levels, alone[i]);
      levels.forEach((level, l) => assert.deepEqual(level, alone[i][l]));
    });
    // The two 'nhwc' calls ran as one batch: their levels are views of one buffer.
    assert.ok(mixed.some((levels, i) => i !== 1 && levels[0].data.buffer.byteLength > levels[0].data.byteLength),
      'the two nhwc calls share one batch');
  });

  it('copies into V8 memory when FILM_FEATURES_COPY_OUTPUTS=1 (Electron), with the same numbers', () => {
    const script = `
      const assert = require('node:assert/strict');
      const { FeatureExtractor } = require('.');
      (async () => {
        const fx = await FeatureExtractor.load(${JSON.stringify(models.default)}, { device: 'cpu' });
        const image = { data: new Float32Array(3 * 32 * 48).map((_, i) => (i % 97) / 97), shape: [1, 3, 32, 48] };
        const out = await fx.extract(image, { layout: 'nhwc' });
        assert.deepEqual(out.map((l) => l.shape), (await fx.extract(image)).map(({ shape: [n, c, h, w] }) => [n, h, w, c]));
        out.forEach((l) => assert.equal(l.data.buffer.byteLength, l.data.byteLength));
        process.stdout.write(JSON.stringify(out.map((l) => Array.from(l.data.subarray(0, 8)))));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const run = (copy) => spawnSync(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..'), encoding: 'utf8', env: { ...process.env, FILM_FEATURES_COPY_OUTPUTS: copy },
    });
    const copied = run('1');
    const shared = run('');
    assert.equal(copied.status, 0, copied.stderr);
    assert.equal(shared.status, 0, shared.stderr);
    assert.equal(copied.stdout, shared.stdout);
  });

  it('rejects layouts other than nchw and nhwc, naming the option', async () => {
    const image = randomTensor([1, 3, 16, 16]);
    for (const [value, type] of [['NHWC', RangeError], ['chw', RangeError], ['', RangeError], [1, TypeError], [null, TypeError], [{}, TypeError]]) {
      await assert.rejects(fx.extract(image, { layout: value }), (err) => {
        assert.ok(err instanceof type, `${String(value)}: ${err}`);
        assert.match(err.message, /options\.layout/);
        assert.match(err.message, /'nchw' or 'nhwc'/);
        return true;
      });
      await assert.rejects(fx.extractPyramid([image], { layout: value }), type);
    }
    // The binding: levels held for the batch writer (NCHW files) or cut by a frame plan are never NHWC.
    const handle = await loadNative(models.default, 'cpu', 1, false);
    try {
      assert.throws(() => handle.run([image], 3, 1, RUN_HOLD_OUTPUTS | RUN_NHWC_OUTPUTS), /held levels are written as NCHW/);
    } finally {
      handle.dispose();
    }
  });
});
