'use strict';
// models/export.py --interpolator, as the README tells users to run it (the default, full-size FILM
// with random weights, written to a temporary folder), then the CLI's interpolate and slowmo on it,
// end to end; --from copies weights in the port's layout; --verbose prints a model's own trace.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp', 'ffmpeg'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');
const { Interpolator } = require('..');
const { root, models, python, EXPORTED_ARGS, randomTensor, sh } = require('./fixtures');
const { runCli: run } = require('./helpers');

const exporter = path.join(root, 'models', 'export.py');

describe('export.py --interpolator, and the CLI on its file', function () {
  let tmp;
  let full;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-export-'));
    full = path.join(tmp, 'film_net.pt');
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  it("writes FILM at its default size (34.4 M parameters) in the port's layout", () => {
    const said = sh(python, [exporter, '--interpolator', full]);
    assert.match(said, /whole FILM interpolator, C=64, weights random, seed 0, 34436667 parameters/);
    const keys = JSON.parse(sh(python, ['-c', `
import json, torch
m = torch.jit.load(${JSON.stringify(full)})
print(json.dumps({k: list(v.shape) for k, v in m.state_dict().items()}))`]));
    // the names the port's checkpoints use, one per part of FILM
    assert.deepEqual(keys['extract.extract_sublevels.convs.3.1.0.weight'], [512, 512, 3, 3]);
    assert.deepEqual(keys['predict_flow._predictor._convs.0.0.weight'], [256, 1920, 3, 3]);
    assert.deepEqual(keys['predict_flow._predictors.2._convs.4.0.weight'], [2, 16, 1, 1]);
    assert.deepEqual(keys['fuse.convs.0.0.0.weight'], [512, 1930, 2, 2]);
    assert.deepEqual(keys['fuse.output_conv.weight'], [3, 64, 1, 1]);
    assert.equal(Object.keys(keys).length, 82);
  });

  it('interpolate: writes the frames the API gives for the same file', async () => {
    const w = 45;
    const h = 37;
    const img = (seed) => Buffer.from(randomTensor([1, 3, h, w], seed).data.map((v) => Math.round(v * 255)));
    const a = path.join(tmp, 'a.png');
    const b = path.join(tmp, 'b.png');
    await sharp(img(1), { raw: { width: w, height: h, channels: 3 } }).png().toFile(a);
    await sharp(img(2), { raw: { width: w, height: h, channels: 3 } }).png().toFile(b);
    const out = path.join(tmp, 'frames');
    const r = await run(['interpolate', a, b, '--model', full, '--device', 'cpu', '--threads', '2', '--recursions', '2', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /batch_dt \[n, 1\]/);
    assert.deepEqual(fs.readdirSync(out).sort(), ['t0.25.png', 't0.5.png', 't0.75.png']);
    const film = await Interpolator.load(full, { device: 'cpu', threads: 2 });
    try {
      const [ra, rb] = await Promise.all([a, b].map((f) => sharp(f).raw().toBuffer({ resolveWithObject: true })));
      const frames = await film.interpolate(ra, rb, { recursions: 2 });
      for (const [i, name] of ['t0.25.png', 't0.5.png', 't0.75.png'].entries()) {
        const png = await sharp(path.join(out, name)).raw().toBuffer({ resolveWithObject: true });
        assert.deepEqual([png.info.width, png.info.height], [w, h]);
        assert.ok(png.data.equals(frames[i].data), `${name} differs from interpolate()`);
      }
    } finally {
      film.dispose();
    }
  });

  it('slowmo: a video with the in-between frames', async () => {
    const video = path.join(tmp, 'in.mkv');
    const make = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=48x32:rate=10', '-frames:v', '3',
      '-c:v', 'ffv1', '-pix_fmt', 'bgr0', '-y', video]);
    assert.equal(make.status, 0, String(make.stderr));
    const out = path.join(tmp, 'slow.mp4');
    const r = await run(['slowmo', video, '--factor', '2', '--model', full, '--device', 'cpu', '--threads', '2', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries',
      'stream=width,height,nb_read_frames', '-of', 'json', out], { encoding: 'utf8' });
    const s = JSON.parse(probe.stdout).streams[0];
    assert.deepEqual([s.width, s.height, Number(s.nb_read_frames)], [48, 32, 5]);
  });

  it('--from copies the weights of a state_dict in the port\'s layout (and of a TorchScript file)', async () => {
    const state = path.join(tmp, 'state.pt');
    sh(python, ['-c', `
import torch
torch.save(torch.jit.load(${JSON.stringify(models.exported)}).state_dict(), ${JSON.stringify(state)})`]);
    const a = randomTensor([1, 3, 40, 50], 3);
    const b = randomTensor([1, 3, 40, 50], 4);
    const original = await Interpolator.load(models.exported, { device: 'cpu' });
    const expected = await original.interpolate(a, b);
    original.dispose();
    for (const source of [state, models.exported]) {
      const copy = path.join(tmp, `copy-${path.basename(source)}`);
      assert.match(sh(python, [exporter, '--interpolator', copy, '--from', source]), /C=8, weights from/);
      const film = await Interpolator.load(copy, { device: 'cpu' });
      assert.deepEqual((await film.interpolate(a, b)).data, expected.data);
      film.dispose();
    }
    // a state_dict of something else is refused, saying what is missing
    const r = spawnSync(python, [exporter, '--interpolator', path.join(tmp, 'x.pt'), '--from', models.small], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not a FILM interpolator in the layout of the PyTorch port/);
    assert.ok(EXPORTED_ARGS.includes('--flow-filters'));
  });

  it('--verbose prints the TorchScript trace of a failure inside the model; without it, one line', async () => {
    const a = path.join(tmp, 'wide.png');
    await sharp({ create: { width: 90, height: 40, channels: 3, background: '#406080' } }).png().toFile(a);
    const args = ['interpolate', a, a, '--model', models.fixedSize, '--device', 'cpu', '--out', path.join(tmp, 'never')];
    let r = await run(args);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^film-features: '.*fixed_size\.pt' failed interpolating .* \(likely cause: .*err\.cause\)\n$/);
    r = await run([...args, '--verbose']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /\n {2}cause: .*\n[\s\S]*Traceback of TorchScript[\s\S]*self\.offset/);
    assert.equal(fs.existsSync(path.join(tmp, 'never')), false);
  });
});
