'use strict';
// Interpolator precision 'bf16' (opt in): the fused engine's convolutions with bfloat16 inputs and
// weights, within bf16's error of the fp32 engine (itself held to the file's own forward by tests 65
// and 67) where oneDNN's instruction set has bf16; ERR_FILM_PRECISION where it has not; bad values
// and combinations rejected.
const assert = require('node:assert/strict');
const { Interpolator, FeatureExtractor } = require('..');
const { models, randomTensor } = require('./fixtures');

// Measured: max |bf16 - fp32| 1.5e-3 per pixel for the port's film_net_fp32.pt at 249x187 (random
// weights, AMD EPYC avx512_core_bf16). The bound leaves room; a network run wrong is off by far more.
const MAX_ABS = 2e-2;
const BF16_ISAS = /^avx512_core_(bf16|amx|fp16|amx_fp16)$/;

describe("Interpolator precision: 'bf16'", function () {
  let fp32;
  let isa;
  before(async () => {
    fp32 = await Interpolator.load(models.exported, { device: 'cpu' });
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', engine: 'onednn' });
    isa = fx.info.isa;
    fx.dispose();
  });
  after(() => fp32?.dispose());

  it('is not the default', () => {
    assert.equal(fp32.info.precision, 'fp32');
    assert.equal(fp32.info.engine, 'onednn');
  });

  it('rejects values other than fp32 and bf16, and bf16 with the TorchScript engine', async () => {
    for (const [value, type] of [['fp16', RangeError], ['', RangeError], [16, TypeError], [{}, TypeError]]) {
      await assert.rejects(Interpolator.load(models.exported, { device: 'cpu', precision: value }), (err) => {
        assert.ok(err instanceof type, `${String(value)}: ${err}`);
        assert.match(err.message, /options\.precision/);
        return true;
      });
    }
    await assert.rejects(Interpolator.load(models.exported, { device: 'cpu', engine: 'torchscript', precision: 'bf16' }),
      (err) => err instanceof RangeError && /bf16.*torchscript/.test(err.message));
  });

  it('runs where the ISA has bf16, within bf16\'s error of fp32 and not equal to it; elsewhere ERR_FILM_PRECISION', async function () {
    if (!BF16_ISAS.test(isa)) {
      await assert.rejects(Interpolator.load(models.exported, { device: 'cpu', precision: 'bf16' }), (err) => {
        assert.equal(err.code, 'ERR_FILM_PRECISION');
        assert.match(err.message, new RegExp(`bf16.*${isa}`));
        return true;
      });
      return;
    }
    const bf16 = await Interpolator.load(models.exported, { device: 'cpu', precision: 'bf16' });
    try {
      assert.equal(bf16.info.precision, 'bf16');
      assert.equal(bf16.info.engine, 'onednn');
      const a = randomTensor([1, 3, 75, 93], 31);
      const b = randomTensor([1, 3, 75, 93], 32);
      for (const options of [{ time: 0.3 }, { recursions: 2 }]) {
        const want = [await fp32.interpolate(a, b, options)].flat();
        const got = [await bf16.interpolate(a, b, options)].flat();
        assert.equal(got.length, want.length);
        got.forEach((frame, f) => {
          let max = 0;
          for (let i = 0; i < frame.data.length; i++) max = Math.max(max, Math.abs(frame.data[i] - want[f].data[i]));
          assert.ok(max <= MAX_ABS, `${JSON.stringify(options)} frame ${f}: max abs ${max} > ${MAX_ABS}`);
          assert.ok(max > 0, `${JSON.stringify(options)} frame ${f}: equal to fp32, bit for bit: bf16 did not run`);
        });
      }
    } finally {
      bf16.dispose();
    }
  });

  it('a file the fused engine cannot run fails in bf16, saying why', async function () {
    if (!BF16_ISAS.test(isa)) this.skip(); // ERR_FILM_PRECISION comes first there (the test above)
    await assert.rejects(Interpolator.load(models.tinyFilm, { device: 'cpu', precision: 'bf16' }), (err) => {
      assert.equal(err.code, 'ERR_FILM_MODEL_FORMAT');
      assert.match(err.message, /precision 'bf16' needs the fused engine, which cannot run this file: FilmNet: no tensor/);
      return true;
    });
  });
});
