'use strict';
// FILM's whole interpolator on the oneDNN engine (native/onednn/film_net.h), through the test hook
// binding._internal.filmNetForward: weights read by our reader, frames run, compared with the same
// file's TorchScript forward run by Python's torch, for every file in the PyTorch port's layout
// (models/film_net.py: models.exported, and two made here with another shape, one stored in fp16).
// Files of another structure fail, naming a tensor.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { root, models, python, randomTensor } = require('./fixtures');
const { readModelFile, toFloat32 } = require('../dist/model-file');
const { native } = require('../dist/native');

const TOLERANCE = 1e-4; // max |ours - torch| per pixel

// Runs each case's frames through the file's own forward (float32, batch_dt [n, 1]), writing outputs.
const REFERENCE = `
import json, sys
import numpy as np
import torch
cases = json.load(open(sys.argv[1]))
torch.set_num_threads(1)
for c in cases:
    model = torch.jit.load(c['model'], map_location='cpu').float().eval()
    n, h, w = c['n'], c['h'], c['w']
    x0 = torch.from_numpy(np.fromfile(c['prefix'] + '.x0', dtype=np.float32).reshape(n, 3, h, w))
    x1 = torch.from_numpy(np.fromfile(c['prefix'] + '.x1', dtype=np.float32).reshape(n, 3, h, w))
    dt = torch.tensor(c['dt'], dtype=torch.float32).reshape(n, 1)
    with torch.no_grad():
        out = model(x0, x1, dt)
    out.contiguous().numpy().astype(np.float32).tofile(c['prefix'] + '.out')
`;

// A FILM in the port's layout with another shape than export.py makes: 3 sub-levels, 5 pyramid
// levels, flow predictors of 2, 0 and 1 convolutions, fusion widths doubling once only
// (specialized_levels 1), flows scaled up so that warping moves pixels (and meets the borders).
const MAKE = `
import sys
sys.path.insert(0, sys.argv[1])
import torch
import film_net
torch.manual_seed(9)
net = film_net.FilmNet(channels=4, sub_levels=3, pyramid_levels=5, flow_convs=(2, 0, 1), flow_filters=(6, 4, 8),
                       specialized_levels=1).eval()
for name, p in net.predict_flow.named_parameters():
    if name.endswith('.weight'):
        p.data.mul_(3)
torch.jit.script(net).save(sys.argv[2])
torch.jit.script(net.half()).save(sys.argv[3])
`;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function tensorsOf(file) {
  const tensors = {};
  for (const [name, t] of (await readModelFile(file)).tensors) tensors[name] = { data: toFloat32(t), shape: t.shape };
  return tensors;
}

function maxAbsError(actual, expected) {
  assert.equal(actual.length, expected.length);
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]));
  return err;
}

describe('FilmNet: the whole interpolator on the oneDNN engine (filmNetForward)', function () {
  let binding;
  let tmp;
  let made;
  let madeFp16;
  const results = new Map(); // case name -> {actual, expected}

  // Every comparison: file, levels, batch, size, times.
  const cases = () => [
    { name: 'exported-b2-64x128', model: models.exported, levels: 7, n: 2, h: 64, w: 128, dt: [0.3, 0.8] },
    { name: 'exported-b2-128x192', model: models.exported, levels: 7, n: 2, h: 128, w: 192, dt: [0.5, 0.1] },
    { name: 'made-b2-32x48', model: made, levels: 5, n: 2, h: 32, w: 48, dt: [0.25, 0.9] },
    { name: 'made-b2-80x64', model: made, levels: 5, n: 2, h: 80, w: 64, dt: [0.6, 0] },
    { name: 'made-fp16-b2-48x64', model: madeFp16, levels: 5, n: 2, h: 48, w: 64, dt: [0.4, 1] },
  ];

  before(async function () {
    binding = native();
    if (!binding.onednnCompiledIn) this.skip();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-net-'));
    made = path.join(tmp, 'made.pt');
    madeFp16 = path.join(tmp, 'made_fp16.pt');
    run(python, ['-c', MAKE, path.join(root, 'models'), made, madeFp16]);

    const all = cases();
    all.forEach((c, i) => {
      c.prefix = path.join(tmp, `case${i}`);
      const shape = [c.n, 3, c.h, c.w];
      c.x0 = randomTensor(shape, 100 + 2 * i);
      c.x1 = randomTensor(shape, 101 + 2 * i);
      fs.writeFileSync(`${c.prefix}.x0`, c.x0.data);
      fs.writeFileSync(`${c.prefix}.x1`, c.x1.data);
    });
    const casesFile = path.join(tmp, 'cases.json');
    fs.writeFileSync(casesFile, JSON.stringify(all.map(({ x0, x1, ...c }) => c)));
    run(python, ['-c', REFERENCE, casesFile]);
    const weights = new Map();
    for (const c of all) {
      if (!weights.has(c.model)) weights.set(c.model, await tensorsOf(c.model));
      const out = binding._internal.filmNetForward(weights.get(c.model), c.x0, c.x1, c.dt, c.levels);
      const buf = fs.readFileSync(`${c.prefix}.out`);
      results.set(c.name, { out, expected: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4) });
    }
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  for (const name of ['exported-b2-64x128', 'exported-b2-128x192', 'made-b2-32x48', 'made-b2-80x64', 'made-fp16-b2-48x64']) {
    it(`${name}: the file's own forward, within ${TOLERANCE} per pixel`, () => {
      const { out, expected } = results.get(name);
      const [n, h, w] = name.match(/b(\d+)-(\d+)x(\d+)/).slice(1).map(Number);
      assert.deepEqual(out.shape, [n, 3, h, w]);
      assert.ok(out.data instanceof Float32Array);
      const err = maxAbsError(out.data, expected);
      assert.ok(err <= TOLERANCE, `${name}: max abs error ${err} > ${TOLERANCE}`);
    });
  }

  it('each pair of a batch is its own: a batch of two gives what each pair alone gives', async () => {
    const tensors = await tensorsOf(made);
    const shape = [2, 3, 32, 48];
    const x0 = randomTensor(shape, 7);
    const x1 = randomTensor(shape, 8);
    const both = binding._internal.filmNetForward(tensors, x0, x1, [0.2, 0.7], 5);
    const half = 3 * 32 * 48;
    const one = (k, t) => binding._internal.filmNetForward(tensors,
      { data: x0.data.slice(k * half, (k + 1) * half), shape: [1, 3, 32, 48] },
      { data: x1.data.slice(k * half, (k + 1) * half), shape: [1, 3, 32, 48] }, [t], 5);
    assert.ok(maxAbsError(both.data.subarray(0, half), one(0, 0.2).data) <= 1e-5);
    assert.ok(maxAbsError(both.data.subarray(half), one(1, 0.7).data) <= 1e-5);
  });

  // Memory (FilmNetMemory): convolutions run over slabs of rows, and the finest levels' features
  // made again when the flow reaches them (their first stage, or whole), must not change the frame. Slabs start on even rows, so
  // Winograd's tiles fall where they do on the whole frame: equal bit for bit on the machines seen
  // (1e-6 allows a kernel that sums in another order for another slab height).
  it('slabs of rows and features made again give the whole run\'s frame', async () => {
    const checks = [
      { file: models.exported, levels: 7, h: 128, w: 192, memories: [{ band: 2 }, { band: 6 }, { recompute: 1 }, { recompute: 2, band: 4 }, { recompute: 2, whole: true }, { recompute: 6, band: 8 }, { recompute: 6, whole: true, band: 8 }] },
      { file: made, levels: 5, h: 48, w: 80, memories: [{ band: 2 }, { band: 4, recompute: 1 }, { recompute: 3 }, { recompute: 3, whole: true, band: 2 }, { recompute: 4, band: 2 }] },
    ];
    for (const c of checks) {
      const tensors = await tensorsOf(c.file);
      const shape = [2, 3, c.h, c.w];
      const x0 = randomTensor(shape, 21);
      const x1 = randomTensor(shape, 22);
      const whole = binding._internal.filmNetForward(tensors, x0, x1, [0.35, 0.8], c.levels, 1, { recompute: 0, band: 1 << 20 });
      for (const memory of c.memories) {
        const out = binding._internal.filmNetForward(tensors, x0, x1, [0.35, 0.8], c.levels, 1, memory);
        const err = maxAbsError(out.data, whole.data);
        assert.ok(err <= 1e-6, `${path.basename(c.file)} ${JSON.stringify(memory)}: max abs ${err}`);
      }
    }
  });

  it('its memory options are checked', async () => {
    const tensors = await tensorsOf(made);
    const x = randomTensor([1, 3, 32, 32], 5);
    const call = (memory) => () => binding._internal.filmNetForward(tensors, x, x, [0.5], 5, 1, memory);
    assert.throws(call({ band: 3 }), /band 3: 0 or a positive even number/);
    assert.throws(call({ recompute: 5 }), /recompute 5: -1 to 4/);
    assert.throws(call({ recompute: 1.5 }), RangeError);
    assert.throws(call({ band: 'x' }), TypeError);
    assert.throws(call({ recompute: 2, whole: 1 }), TypeError);
  });

  describe('files that are not this network fail, naming a tensor', () => {
    const rejects = (tensors, pattern) => assert.throws(
      () => binding._internal.filmNetForward(tensors, randomTensor([1, 3, 64, 64], 1), randomTensor([1, 3, 64, 64], 2), [0.5], 7),
      (err) => {
        assert.equal(err.code, 'ERR_FILM_MODEL_FORMAT');
        assert.match(err.message, pattern);
        return true;
      });

    it('models.tinyFilm (FILM-like, another flow estimator and fusion)', async () => {
      rejects(await tensorsOf(models.tinyFilm), /^FilmNet: no tensor 'predict_flow\._predictor\._convs\.0\.0\.weight': not FILM's interpolator in the PyTorch port's layout$/);
    });

    it('models.interpolator (an extractor behind a small flow and fusion)', async () => {
      rejects(await tensorsOf(models.interpolator), /no tensor 'predict_flow\._predictor\._convs\.0\.0\.weight'/);
    });

    it('a tensor of the wrong shape, a tensor too many, a tensor missing', async () => {
      const good = await tensorsOf(models.exported);
      const wrong = { ...good, 'fuse.convs.1.1.0.weight': { data: new Float32Array(8 * 8 * 9), shape: [8, 8, 3, 3] } };
      rejects(wrong, /^FilmNet: tensor 'fuse\.convs\.1\.1\.0\.weight' has shape \[8, 8, 3, 3\], expected \[32, 154, 3, 3\] \(fusion level 2/);
      rejects({ ...good, 'fuse.extra': { data: new Float32Array(1), shape: [1] } }, /tensor 'fuse\.extra' is not part of FILM's interpolator/);
      const { 'fuse.output_conv.bias': _, ...missing } = good;
      rejects(missing, /no tensor 'fuse\.output_conv\.bias'/);
    });
  });

  describe('its inputs are guarded', () => {
    let tensors;
    before(async () => {
      tensors = await tensorsOf(models.exported);
    });
    const frame = (shape = [1, 3, 64, 64]) => randomTensor(shape, 3);
    const call = (...args) => () => binding._internal.filmNetForward(...args);

    it('wrong types are TypeErrors', () => {
      assert.throws(call(), TypeError);
      assert.throws(call(null, frame(), frame(), [0.5], 7), TypeError);
      assert.throws(call(tensors, { data: [1, 2], shape: [2] }, frame(), [0.5], 7), /x0\.data must be a Float32Array/);
      assert.throws(call({ a: 5 }, frame(), frame(), [0.5], 7), /tensors\['a'\] must be an object/);
      assert.throws(call(tensors, frame(), frame(), 0.5, 7), /dt must be an array/);
      assert.throws(call(tensors, frame(), frame(), ['x'], 7), TypeError);
    });

    it('sizes out of range are RangeErrors', () => {
      assert.throws(call(tensors, { data: new Float32Array(5), shape: [1, 3, 2, 2] }, frame(), [0.5], 7), RangeError);
      assert.throws(call(tensors, frame(), frame(), [0.5], 0), RangeError);
      assert.throws(call(tensors, frame(), frame(), [0.5], 4), /levels 4: this network takes 5 to 16/);
      assert.throws(call(tensors, frame([1, 3, 64, 96]), frame([1, 3, 64, 96]), [0.5], 7),
        /frames of 64x96: with 7 levels, height and width must be positive multiples of 64/);
      assert.throws(call(tensors, frame(), frame(), [0.5, 0.5], 7), /2 times for a batch of 1/);
      assert.throws(call(tensors, frame(), frame([1, 3, 128, 64]), [0.5], 7), /frames of shapes/);
      assert.throws(call(tensors, frame([1, 4, 64, 64]), frame([1, 4, 64, 64]), [0.5], 7), RangeError);
      assert.throws(call(tensors, frame(), frame(), [NaN], 7), /dt\[0\] must be finite/);
    });
  });
});
