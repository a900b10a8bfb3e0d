'use strict';
// precision: 'bf16' (opt in): against the float64 reference within bf16's documented error where
// oneDNN's instruction set has bf16, a clear error with a code where it has not; bad values rejected.
const assert = require('node:assert/strict');
const { FeatureExtractor } = require('..');
const { models, reference, relativeError } = require('./fixtures');

// README, "Precision": bf16 keeps 8 bits of mantissa; measured max |bf16 - ref| / max |ref| per
// level is 0.3-0.7% on the parity cases and the sample photo. The bound leaves room, and is still
// 1000x what fp32 is held to, so a wrong network or a broken layout cannot pass it.
const MAX_RELATIVE = 2e-2;
const BF16_ISAS = /^avx512_core_(bf16|amx|fp16|amx_fp16)$/;

describe("precision: 'bf16'", function () {
  let fp32;
  before(async () => {
    fp32 = await FeatureExtractor.load(models.default, { device: 'cpu', engine: 'onednn' });
  });
  after(() => fp32?.dispose());

  it('is not the default: loads without the option compute in fp32', () => {
    assert.equal(fp32.info.precision, 'fp32');
  });

  it('rejects values other than fp32 and bf16, naming the option', async () => {
    for (const [value, type] of [['fp16', RangeError], ['BF16', RangeError], ['', RangeError], [16, TypeError],
      [null, TypeError], [{}, TypeError]]) {
      await assert.rejects(FeatureExtractor.load(models.default, { device: 'cpu', precision: value }), (err) => {
        assert.ok(err instanceof type, `${String(value)}: ${err}`);
        assert.match(err.message, /options\.precision/);
        return true;
      });
    }
  });

  it("rejects bf16 with engine 'torchscript' or on a CUDA device", async () => {
    await assert.rejects(FeatureExtractor.load(models.default, { device: 'cpu', engine: 'torchscript', precision: 'bf16' }),
      (err) => err instanceof RangeError && /bf16.*torchscript/.test(err.message));
    await assert.rejects(FeatureExtractor.load(models.default, { device: 'cuda', precision: 'bf16' }),
      (err) => /cuda|CUDA|bf16/.test(err.message));
  });

  it('runs where the ISA has bf16, within the documented error of the float64 reference; elsewhere rejects with ERR_FILM_PRECISION', async function () {
    if (!BF16_ISAS.test(fp32.info.isa)) {
      await assert.rejects(FeatureExtractor.load(models.default, { device: 'cpu', precision: 'bf16' }), (err) => {
        assert.equal(err.code, 'ERR_FILM_PRECISION');
        assert.match(err.message, new RegExp(`bf16.*${fp32.info.isa}`));
        return true;
      });
      return;
    }
    const bf16 = await FeatureExtractor.load(models.default, { device: 'cpu', precision: 'bf16' });
    try {
      assert.equal(bf16.info.precision, 'bf16');
      assert.equal(bf16.info.engine, 'onednn');
      for (const name of ['default-67x131-L7', 'default-97x61-L6', 'default-b2-64x80-L7']) {
        const c = reference().find((x) => x.name === name);
        const got = await bf16.extractPyramid(c.pyramid);
        assert.equal(got.length, c.features.length);
        got.forEach((level, i) => {
          assert.ok(level.data instanceof Float32Array);
          assert.deepEqual(level.shape, c.features[i].shape);
          const err = relativeError(level.data, c.features[i].data);
          assert.ok(err <= MAX_RELATIVE, `${name} level ${i}: ${err.toExponential(2)} > ${MAX_RELATIVE}`);
          // bf16 really ran: fp32 is within 1e-5 of the reference, bf16 is not.
          assert.ok(err > 1e-5, `${name} level ${i}: ${err.toExponential(2)}, as close as fp32`);
        });
        // layout 'nhwc': the same floats, channels last.
        const nhwc = await bf16.extractPyramid(c.pyramid, { layout: 'nhwc' });
        nhwc.forEach((level, i) => {
          const [n, ch, h, w] = got[i].shape;
          assert.deepEqual(level.shape, [n, h, w, ch]);
          for (let k = 0; k < got[i].data.length; k += 7) {
            const x = k % w, y = Math.floor(k / w) % h, q = Math.floor(k / (w * h * ch)), cc = Math.floor(k / (w * h)) % ch;
            assert.equal(level.data[((q * h + y) * w + x) * ch + cc], got[i].data[k], `${name} level ${i} [${q}, ${cc}, ${y}, ${x}]`);
          }
        });
      }
    } finally {
      bf16.dispose();
    }
  });
});
