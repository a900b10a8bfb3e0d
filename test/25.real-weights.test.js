'use strict';
// FILM's own files: whole-interpolator TorchScripts (fp32 and fp16) and padding='same' extractors.
const assert = require('node:assert/strict');
const { FeatureExtractor } = require('..');
const path = require('node:path');
const { cpuEngines, dir, models, python, reference, relativeError, randomTensor, sh } = require('./fixtures');

function maxRelativeError(actual, expected) {
  assert.equal(actual.length, expected.length);
  return Math.max(...actual.map((level, i) => {
    assert.deepEqual(level.shape, expected[i].shape);
    return relativeError(level.data, expected[i].data);
  }));
}

describe('real FILM files', function () {
  before(function () {
  });

  const kinds = {
    same: { source: 'extractor', dtype: 'float32' },
    interpolator: { source: 'interpolator', dtype: 'float32' },
    interpolatorFp16: { source: 'interpolator', dtype: 'float16' },
  };
  for (const engine of cpuEngines()) {
    for (const [kind, expected] of Object.entries(kinds)) {
      it(`${kind}: loads, says what it is, is optimized, and matches the reference (engine ${engine})`, async () => {
        const fx = await FeatureExtractor.load(models[kind], { device: 'cpu', engine });
        try {
          const { isa, onednn: onednnVersion, build, ...info } = fx.info;
          // the file's code runs where libtorch loads it: engine torchscript, or the full build's check of the engine
          const codeRun = engine === 'torchscript' || require('../dist/native').native().build === 'full';
          assert.deepEqual(info, { ...expected, format: 'torchscript', codeRun, channels: 16, subLevels: 3, optimized: true, engine, precision: 'fp32', weights: 'unknown' });
          if (engine === 'onednn') assert.match(isa, /^(sse41|avx|avx2|avx512)/);
          if (engine === 'onednn') assert.match(onednnVersion, /^[23]\.\d+\.\d+$/);
          const c = reference().find((x) => x.name.startsWith(`${kind}-`));
          // fp16 weights run in float32 on CPU, so even the fp16 file matches its float64 reference closely
          const err = maxRelativeError(await fx.extract(c.pyramid[0], { levels: c.levels }), c.features);
          assert.ok(err <= 1e-5, `relative error ${err}`);
        } finally {
          fx.dispose();
        }
      });
    }

    it(`an interpolator gives the same features as its extractor exported standalone (export.py --from; engine ${engine})`, async () => {
      const whole = await FeatureExtractor.load(models.interpolator, { device: 'cpu', engine });
      const standalone = await FeatureExtractor.load(models.fromInterpolator, { device: 'cpu', engine });
      assert.equal(standalone.info.weights, 'from film_interpolator.pt'); // export.py's metadata
      const image = randomTensor([1, 3, 70, 90], 21);
      const a = await whole.extract(image, { levels: 7 });
      const b = await standalone.extract(image, { levels: 7 });
      assert.ok(maxRelativeError(a, b) <= 1e-5);
      whole.dispose();
      standalone.dispose();
    });
  }

  it('export.py --from takes state_dicts with extract.-prefixed and with bare names', async () => {
    const prefixed = path.join(dir, 'state_prefixed.pth');
    const bare = path.join(dir, 'state_bare.pth');
    sh(python, ['-c', `
import torch
state = torch.jit.load(${JSON.stringify(models.interpolator)}).state_dict()
torch.save(state, ${JSON.stringify(prefixed)})
torch.save({k[len('extract.'):]: v for k, v in state.items() if k.startswith('extract.')}, ${JSON.stringify(bare)})`]);
    const image = randomTensor([1, 3, 40, 48], 23);
    const expected = await (await FeatureExtractor.load(models.fromInterpolator, { device: 'cpu' })).extract(image);
    for (const file of [prefixed, bare]) {
      const out = path.join(dir, `${path.basename(file, '.pth')}.pt`);
      sh(python, [path.join(__dirname, '..', 'models', 'export.py'), '--from', file, '--out', out]);
      const fx = await FeatureExtractor.load(out, { device: 'cpu' });
      const got = await fx.extract(image);
      got.forEach((level, i) => assert.deepEqual(level.data, expected[i].data, `${file} level ${i}`));
      fx.dispose();
    }
  });

  it('the fp16 twin agrees with the fp32 interpolator within fp16 precision', async () => {
    const fp32 = await FeatureExtractor.load(models.interpolator, { device: 'cpu' });
    const fp16 = await FeatureExtractor.load(models.interpolatorFp16, { device: 'cpu' });
    const image = randomTensor([1, 3, 64, 64], 22);
    const err = maxRelativeError(await fp16.extract(image), await fp32.extract(image));
    assert.ok(err > 0 && err <= 1e-2, `relative error ${err}`);
    fp32.dispose();
    fp16.dispose();
  });

  describe('files that are not FILM extractors fail at load, saying what was found', () => {
    const cases = {
      badSignature: /forward is forward\(.*Tensor image\) -> Tensor, expected forward\(Tensor\[\] image_pyramid\) -> Tensor\[\]/,
      // our reader finds no FILM weights in either, before libtorch sees them (an optimized module's
      // weights are constants, not FILM's parameters)
      noExtract: /is not a FILM feature extractor: it has no extract_sublevels\.convs\.\{j\}\.\{k\}\.0\.weight tensors/,
      savedAfterOptimize: /is not a FILM feature extractor: it has no extract_sublevels\.convs/,
    };
    for (const [kind, pattern] of Object.entries(cases)) {
      it(kind, async () => {
        await assert.rejects(FeatureExtractor.load(models[kind], { device: 'cpu' }), (err) => {
          assert.equal(err.constructor, Error);
          assert.match(err.message, pattern);
          assert.ok(err.message.includes(models[kind]));
          return true;
        });
      });
    }
  });
});
