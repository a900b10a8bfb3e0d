'use strict';
// Features against an independent float64 reference (test/reference.py) on the same weights.
const assert = require('node:assert/strict');
const { FeatureExtractor, buildPyramid } = require('..');
const { cpuEngines, models, reference, relativeError } = require('./fixtures');

const TOLERANCE = 1e-5;

function assertClose(actual, expected, label) {
  assert.equal(actual.length, expected.length, `${label}: level count`);
  actual.forEach((level, i) => {
    assert.deepEqual(level.shape, expected[i].shape, `${label} level ${i} shape`);
    const err = relativeError(level.data, expected[i].data);
    assert.ok(err <= TOLERANCE, `${label} level ${i}: relative error ${err.toExponential(2)} > ${TOLERANCE}`);
  });
}

for (const engine of cpuEngines()) {
  describe(`features match the reference (engine ${engine})`, function () {
    const extractors = {};
    before(async function () {
      reference();
      extractors.default = await FeatureExtractor.load(models.default, { device: 'cpu', engine });
      extractors.small = await FeatureExtractor.load(models.small, { device: 'cpu', engine });
      Object.values(extractors).forEach((fx) => assert.equal(fx.info.engine, engine));
    });
    after(() => Object.values(extractors).forEach((fx) => fx.dispose()));

    const names = [
      ...[1, 2, 3, 4, 5, 6, 7].map((l) => `default-67x131-L${l}`),
      'default-97x61-L6', 'default-b2-64x80-L7', 'small-b2-67x131-L7', 'small-97x61-L4',
    ];
    for (const name of names) {
      it(name, async () => {
        const c = reference().find((x) => x.name === name);
        const fx = extractors[name.split('-')[0]];
        assertClose(await fx.extract(c.pyramid[0], { levels: c.levels }), c.features, `${name} extract`);
        assertClose(await fx.extractPyramid(c.pyramid), c.features, `${name} extractPyramid`);
      });
    }

    it('pyramidOnDevice: false pools on the main thread (buildPyramid), true natively: both match the reference', async () => {
      for (const name of ['default-97x61-L6', 'default-b2-64x80-L7']) {
        const c = reference().find((x) => x.name === name);
        const fx = extractors.default;
        const onMain = await fx.extract(c.pyramid[0], { levels: c.levels, pyramidOnDevice: false });
        assertClose(onMain, c.features, `${name} pyramidOnDevice: false`);
        const ours = await fx.extractPyramid(buildPyramid(c.pyramid[0], c.levels));
        onMain.forEach((level, i) => assert.deepEqual(level.data, ours[i].data, `${name} level ${i}: false runs buildPyramid's pyramid`));
        assertClose(await fx.extract(c.pyramid[0], { levels: c.levels, pyramidOnDevice: true }), c.features, `${name} pyramidOnDevice: true`);
      }
    });

    it('takes RGB bytes as the same image scaled to [0, 1]', async () => {
      const c = reference().find((x) => x.name === 'default-97x61-L6');
      const [, , h, w] = c.pyramid[0].shape;
      const rgb = new Uint8Array(h * w * 3);
      const tensor = new Float32Array(3 * h * w);
      for (let p = 0; p < h * w; p++) {
        for (let ch = 0; ch < 3; ch++) {
          rgb[p * 3 + ch] = Math.round(c.pyramid[0].data[ch * h * w + p] * 255);
          tensor[ch * h * w + p] = rgb[p * 3 + ch] / 255;
        }
      }
      const fromBytes = await extractors.default.extract({ data: rgb, width: w, height: h, channels: 3 }, { levels: 6 });
      const fromFloats = await extractors.default.extract({ data: tensor, shape: [1, 3, h, w] }, { levels: 6 });
      fromBytes.forEach((level, i) => assert.deepEqual(level.data, fromFloats[i].data));
    });
  });
}
