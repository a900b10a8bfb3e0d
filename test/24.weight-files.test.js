'use strict';
// Files that hold weights and no code: torch.save state_dicts and safetensors (fp32, fp16, bf16),
// made by test/dump_weights.py from the shipped model with Debian's torch. They run on the oneDNN
// engine in either build, read by our reader, with none of their code run; they give the shipped
// TorchScript file's features (fp32: bit for bit, the same weights on the same engine).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { models, python, sh, relativeError, randomTensor } = require('./fixtures');

describe('weight files: torch.save state_dicts and safetensors', function () {
  const made = fs.mkdtempSync(path.join(os.tmpdir(), 'film-weights-'));
  const image = randomTensor([1, 3, 67, 131], 5);
  let expected;
  before(async function () {
    sh(python, [path.join(__dirname, 'dump_weights.py'), 'make', made]);
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', engine: 'onednn', threads: 1 });
    expected = await fx.extract(image, { levels: 7 });
    fx.dispose();
  });
  after(() => fs.rmSync(made, { recursive: true, force: true }));

  const files = [
    ['state_dict.pt', 'torch.save', 'float32', 'extractor', 0],
    ['wrapped.pt', 'torch.save', 'float32', 'extractor', 0],
    ['extractor.safetensors', 'safetensors', 'float32', 'extractor', 0],
    // weights rounded to 11 (fp16) or 8 (bf16) bits of mantissa: close to the fp32 file, not equal
    ['state_dict_fp16.pt', 'torch.save', 'float16', 'extractor', 5e-3],
    ['extractor_fp16.safetensors', 'safetensors', 'float16', 'extractor', 5e-3],
    ['state_dict_bf16.pt', 'torch.save', 'bfloat16', 'extractor', 4e-2],
  ];
  for (const [name, format, dtype, source, tolerance] of files) {
    it(`${name}: ${format}, ${dtype}, on the oneDNN engine without running code, ${tolerance ? `within ${tolerance}` : 'bit for bit'}`, async () => {
      const fx = await FeatureExtractor.load(path.join(made, name), { device: 'cpu', threads: 1 });
      try {
        assert.equal(fx.info.format, format);
        assert.equal(fx.info.dtype, dtype);
        assert.equal(fx.info.source, source);
        assert.equal(fx.info.engine, 'onednn');
        assert.equal(fx.info.codeRun, false);
        const got = await fx.extract(image, { levels: 7 });
        for (let i = 0; i < got.length; i++) {
          assert.deepEqual(got[i].shape, expected[i].shape);
          const err = relativeError(got[i].data, expected[i].data);
          assert.ok(err <= tolerance, `level ${i}: relative error ${err} > ${tolerance}`);
        }
      } finally {
        fx.dispose();
      }
    });
  }

  it('fp16 weights give the same features from either format, bit for bit', async () => {
    const a = await FeatureExtractor.load(path.join(made, 'state_dict_fp16.pt'), { device: 'cpu', threads: 1 });
    const b = await FeatureExtractor.load(path.join(made, 'extractor_fp16.safetensors'), { device: 'cpu', threads: 1 });
    const [x, y] = [await a.extract(image), await b.extract(image)];
    x.forEach((level, i) => assert.ok(Buffer.from(level.data.buffer, level.data.byteOffset, level.data.byteLength)
      .equals(Buffer.from(y[i].data.buffer, y[i].data.byteOffset, y[i].data.byteLength)), `level ${i}`));
    a.dispose();
    b.dispose();
  });

  it("a whole interpolator's state_dict: its extract.* weights", async () => {
    const fx = await FeatureExtractor.load(path.join(made, 'interpolator_state_dict.pt'), { device: 'cpu' });
    assert.equal(fx.info.source, 'interpolator');
    assert.equal(fx.info.format, 'torch.save');
    fx.dispose();
  });

  it("engine 'torchscript' on a file with no code says why (full build), or that it needs libtorch (core)", async () => {
    const core = require('../dist/native').native().build === 'core';
    await assert.rejects(FeatureExtractor.load(path.join(made, 'state_dict.pt'), { device: 'cpu', engine: 'torchscript' }), (err) => {
      assert.equal(err.code, core ? 'ERR_FILM_NEEDS_LIBTORCH' : 'ERR_FILM_MODEL_FORMAT');
      assert.match(err.message, core ? /needs libtorch/ : /is a torch\.save file: it holds weights but no code, so only the oneDNN engine runs it/);
      return true;
    });
  });
});
