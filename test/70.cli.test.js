'use strict';
// The command line, run as a child process: film-features extract <files or folders...>.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');
const { FeatureExtractor, imageToTensor, padToMultiple } = require('..');
const { root, python, randomTensor, relativeError } = require('./fixtures');
const { runCli: run, readNpy } = require('./helpers');

const sample = path.join(root, 'models', 'sample.png');
const LEVELS = 4;
const CHANNELS = [64, 192, 448, 960]; // the shipped model (C=64, S=4), levels 0..3

/** What the API gives for the same file: decoded, padded to 2^(levels-1), extracted. */
async function expected(fx, file) {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const image = imageToTensor({ data, width: info.width, height: info.height, channels: info.channels });
  const { tensor, crop } = padToMultiple(image, 2 ** (LEVELS - 1));
  return { features: await fx.extract(tensor, { levels: LEVELS }), crop, width: info.width, height: info.height };
}

describe('film-features CLI', function () {
  let tmp;
  let out;
  let small;
  let result; // the run on sample.png plus a folder holding small.png, broken.png and notes.txt
  let fx;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-cli-'));
    const folder = path.join(tmp, 'frames');
    fs.mkdirSync(folder);
    small = path.join(folder, 'small.png');
    const noise = randomTensor([45 * 37 * 3], 7).data; // 45x37: padding differs on each side
    await sharp(Buffer.from(noise.map((v) => Math.floor(v * 256))), { raw: { width: 45, height: 37, channels: 3 } })
      .png().toFile(small);
    fs.writeFileSync(path.join(folder, 'broken.png'), 'this is not a PNG');
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not an image; skipped by extension');
    out = path.join(tmp, 'out');
    result = await run(['extract', sample, folder, '--levels', String(LEVELS), '--device', 'cpu', '--out', out, '--preview']);
    fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  });

  after(() => {
    fx?.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('reports a bad file on stderr, writes the others, and exits 1 because one failed', () => {
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /^film-features: \[2\/3\] .*broken\.png: not an image sharp can read here \(sharp: Input file contains unsupported image format\); convert it to PNG or JPEG, or check that the path names the image and not a folder or another file$/m);
    assert.match(result.stderr, /^film-features: skipped .*notes\.txt: \.txt is not an image format sharp reads here nor a video format$/m);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(fs.readdirSync(out).sort(), ['sample', 'small']);
    assert.match(result.stdout, /^\[1\/3\] .*sample\.png: 512x384/m); // stderr is no TTY: a line per image
    // lines in input order, numbered, whatever order the frames finished in
    const order = [...result.stdout.matchAll(/^\[(\d)\/3\]/gm)].map((m) => Number(m[1]));
    assert.deepEqual(order, [1, 3]);
    // images/s counts the 2 written, not the failure
    const m = result.stdout.match(/^2 written in ([\d.]+) s \(([\d.]+) images\/s\), 1 failed; [\d.]+ MB in /m);
    assert.ok(m, result.stdout);
    assert.ok(Math.abs(Number(m[2]) - 2 / Number(m[1])) <= 0.02 + 0.05 * Number(m[2]), result.stdout);
  });

  for (const name of ['sample', 'small']) {
    it(`writes ${name}'s padded levels as .npy, equal to FeatureExtractor.extract`, async () => {
      const file = name === 'sample' ? sample : small;
      const want = await expected(fx, file);
      const [, , h, w] = want.features[0].shape;
      assert.equal(h % 8, 0);
      assert.equal(w % 8, 0);
      const names = fs.readdirSync(path.join(out, name)).sort();
      assert.deepEqual(names, ['level0.npy', 'level1.npy', 'level2.npy', 'level3.npy', 'meta.json', 'preview.png']);
      for (let i = 0; i < LEVELS; i++) {
        const got = readNpy(path.join(out, name, `level${i}.npy`));
        assert.deepEqual(got.shape, [1, CHANNELS[i], h >> i, w >> i]);
        const err = relativeError(got.data, want.features[i].data);
        assert.ok(err <= 1e-6, `level ${i}: relative error ${err}`);
      }
      const meta = JSON.parse(fs.readFileSync(path.join(out, name, 'meta.json'), 'utf8'));
      assert.equal(path.resolve(root, meta.source), file);
      assert.deepEqual([meta.width, meta.height, meta.levels], [want.width, want.height, LEVELS]);
      assert.deepEqual(meta.crop, want.crop);
      assert.deepEqual(Object.values(meta.shapes), want.features.map((f) => f.shape));
      assert.deepEqual([...meta.files].sort(), names);
    });
  }

  it('pads the small image evenly: 45x37 in 48x40, crop at (1, 1)', () => {
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'small', 'meta.json'), 'utf8'));
    assert.deepEqual(meta.crop, { top: 1, left: 1, height: 37, width: 45 });
    assert.deepEqual(meta.shapes.level0, [1, 64, 40, 48]);
  });

  it('writes .npy files numpy reads', () => {
    const file = path.join(out, 'small', 'level2.npy');
    const r = spawnSync(python, ['-c', 'import sys, numpy as n; a = n.load(sys.argv[1]); print(a.dtype, a.shape)', file],
      { encoding: 'utf8' });
    assert.equal(r.stdout.trim(), 'float32 (1, 448, 10, 12)', r.stderr);
  });

  it('writes a preview PNG that decodes and is not flat', async () => {
    const png = path.join(out, 'sample', 'preview.png');
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    // the input and 4 levels: 3 columns, 2 rows of 512x384 tiles with 4-pixel gaps
    assert.deepEqual([meta.width, meta.height], [3 * 512 + 4 * 4, 2 * 384 + 3 * 4]);
    const { channels } = await sharp(png).stats();
    for (const c of channels) assert.ok(c.stdev > 10, `channel stdev ${c.stdev}`);
  });

  it('runs one image: prints each level\'s shape and the time, exits 0; no preview unless asked', async () => {
    const dir = path.join(tmp, 'one');
    const r = await run(['extract', small, '--levels', String(LEVELS), '--device', 'cpu', '--out', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    for (let i = 0; i < LEVELS; i++) {
      assert.match(r.stdout, new RegExp(`level ${i}: \\[1, ${CHANNELS[i]}, ${40 >> i}, ${48 >> i}\\]`));
    }
    assert.match(r.stdout, /extract \d+ ms/);
    assert.match(r.stdout, /^model film_extractor\.pt \(shipped\) \(C=64, S=4, weights: random, seed 0\) on cpu/m);
    assert.ok(!fs.existsSync(path.join(dir, 'small', 'preview.png')));
    assert.ok(fs.existsSync(path.join(dir, 'small', 'level3.npy')));
  });

  for (const args of [['--levels', '0'], ['--levels', 'abc'], ['--device', 'tpu'], ['--threads', '-1'], ['--bogus']]) {
    it(`rejects ${args.join(' ')} with exit code 2 and no stack trace`, async () => {
      const r = await run(['extract', small, '--out', path.join(tmp, 'unused'), ...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: .*'${args[args.length - 1]}'`));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(!fs.existsSync(path.join(tmp, 'unused')));
    });
  }

  // Each bad value is named with its flag and as typed, whether commander's parser or lib/batch's
  // checks of the options the flags make refuse it; never the JS option's name or a type.
  for (const [args, message] of [
    [['--save-levels', '0,9'], /^error: --save-levels: 9 is not a level \(0\.\.6; --levels 7 makes levels 0\.\.6\)$/],
    [['--levels', '3', '--save-levels', '2,1,3'], /^error: --save-levels: 3 is not a level \(0\.\.2; --levels 3 makes levels 0\.\.2\)$/],
    [['--save-levels', '0,x'], /^error: --save-levels: '0,x' has "x", which is not a level number \(a list is written 0,2,4,6\)$/],
    [['--levels', '11'], /^error: --levels: '11' is not an integer from 1 to 10$/],
    [['--levels', '5', '--max-side', '8'], /^error: --max-side: 8 is smaller than a padded frame's side: at least 2\^\(levels-1\) = 16, or 0$/],
    [['--dtype', 'float64'], /^error: --dtype: 'float64' is not one of float32, float16$/],
    [['--format', 'zip'], /^error: --format: 'zip' is not one of npy, safetensors$/],
    [['--frames', '5:2'], /^error: --frames: '5:2' is empty: B must be larger than A$/],
    [['--every', '0'], /^error: --every: '0' is not an integer from 1 to 1000000000$/],
    [['--device', 'tpu'], /^error: --device: 'tpu' is not a device: 'auto', 'cpu', 'cuda' or 'cuda:N'$/],
    [['--jobs', '100'], /^error: --jobs: '100' is not an integer from 1 to 64$/],
  ]) {
    it(`says ${args.join(' ')} is wrong by its flag and value (exit 2)`, async () => {
      const r = await run(['extract', small, '--out', path.join(tmp, 'unused'), ...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr.split('\n')[0], message);
      assert.doesNotMatch(r.stderr, /Expected|received|of type|saveLevels|maxSide/);
      assert.ok(!fs.existsSync(path.join(tmp, 'unused')));
    });
  }

  it('exits 1 with a clear message when the model file is missing', async () => {
    const r = await run(['extract', small, '--model', path.join(tmp, 'missing.pt'), '--out', path.join(tmp, 'unused')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^film-features: model file not found: .*missing\.pt$/m);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
