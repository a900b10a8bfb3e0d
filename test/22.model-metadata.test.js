'use strict';
// A model file says where its weights came from (film_features.json in TorchScript's extra files,
// written by models/export.py), and fx.info.weights reports it.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { models, python, sh, randomTensor } = require('./fixtures');

describe('model metadata (info.weights)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-meta-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('the shipped model stores "random, seed 0" in the file itself, readable by torch', function () {
    const out = sh(python, ['-c', `
import json, torch
extra = {'film_features.json': ''}
torch.jit.load(${JSON.stringify(models.default)}, _extra_files=extra)
print(json.dumps(json.loads(extra['film_features.json'])))`]);
    const meta = JSON.parse(out);
    assert.equal(meta.weights, 'random, seed 0');
    assert.equal(meta.channels, 64);
    assert.equal(meta.subLevels, 4);
  });

  // The same weights re-saved with other metadata: the weights field is read as JSON reads it, and
  // anything that is not a string field falls back to 'unknown'.
  const cases = [
    ['escapes and UTF-8', JSON.stringify({ torch: 'x', weights: 'from "film net" \\ \u00e9t\u00e9 \u2603\n' }), 'from "film net" \\ \u00e9t\u00e9 \u2603\n'],
    ['\\u escapes', '{"weights": "caf\\u00e9 \\u2603"}', 'caf\u00e9 \u2603'],
    ['no weights field', '{"channels": 64}', 'unknown'],
    ['weights not a string', '{"weights": 7}', 'unknown'],
    ['unterminated string', '{"weights": "random', 'unknown'],
    ['not JSON at all', '\u0000garbage', 'unknown'],
  ];
  for (const [name, json, expected] of cases) {
    it(`${name}: info.weights is ${JSON.stringify(expected)}`, async function () {
      const file = path.join(tmp, `${name.replace(/\W+/g, '_')}.pt`);
      fs.writeFileSync(`${file}.json`, json);
      sh(python, ['-c', `
import torch
m = torch.jit.load(${JSON.stringify(models.small)})
torch.jit.save(m, ${JSON.stringify(file)}, _extra_files={'film_features.json': open(${JSON.stringify(`${file}.json`)}, 'rb').read()})`]);
      const fx = await FeatureExtractor.load(file, { device: 'cpu', threads: 1 });
      try {
        assert.equal(fx.info.weights, expected);
        assert.equal(fx.info.channels, 16);
      } finally {
        fx.dispose();
      }
    });
  }

  it('re-exporting with seed 0 gives the shipped weights: the same features to the bit', async function () {
    const file = path.join(tmp, 'seed0.pt');
    sh(python, [path.join(__dirname, '..', 'models', 'export.py'), '--seed', '0', '--out', file]);
    const image = randomTensor([1, 3, 24, 40], 22);
    const [a, b] = await Promise.all([models.default, file].map((f) => FeatureExtractor.load(f, { device: 'cpu' })));
    assert.equal(b.info.weights, 'random, seed 0');
    const [fa, fb] = [await a.extract(image, { levels: 4 }), await b.extract(image, { levels: 4 })];
    fa.forEach((level, i) => assert.deepEqual(level.data, fb[i].data, `level ${i}`));
    a.dispose();
    b.dispose();
  });
});
