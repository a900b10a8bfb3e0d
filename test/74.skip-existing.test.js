'use strict';
// --skip-existing (and a fleet job, which always resumes) reuses an output only when it was made
// with the options asked for now; otherwise it says what differs and makes the output again.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp');
const sharp = require('sharp');

const { FeatureExtractor } = require('..');
const batch = require('../dist/batch');
const { models } = require('./fixtures');
const { runCli } = require('./helpers');

describe('--skip-existing reuses only outputs made with the same options', function () {
  let tmp;
  let png;
  let fx;
  let small;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-skip-'));
    png = path.join(tmp, 'photo.png');
    await sharp({ create: { width: 40, height: 24, channels: 3, background: { r: 10, g: 200, b: 60 } } }).png().toFile(png);
    fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
    small = await FeatureExtractor.load(models.small, { device: 'cpu' });
  });
  after(() => {
    fx?.dispose();
    small?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const item = () => ({ source: png, kind: 'image', name: 'photo' });

  /** Runs one job over the output that `first` made; returns what happened to the frame and the note. */
  async function rerun(out, first, again, extractor = fx, againExtractor = extractor, modelFile = undefined) {
    const options = (o) => batch.resolveOutputOptions({ out, levels: 3, ...o });
    let s = await batch.processInput(item(), { extractor, output: options(first), modelFile });
    assert.equal(s.written, 1);
    const events = [];
    s = await batch.processInput(item(), { extractor: againExtractor, output: options(again), skipExisting: true,
      modelFile: againExtractor === extractor ? modelFile : models.small, onEvent: (e) => events.push(e) });
    const decoded = events.find((e) => e.type === 'decoded');
    return { written: s.written, skipped: s.skipped, redo: decoded?.redo };
  }

  const cases = [
    ['--dtype', { dtype: 'float16' }, { dtype: 'float32' }, /--dtype float16 \(asked: float32\)/],
    ['--save-levels', { saveLevels: '0,2' }, { saveLevels: '0' }, /--save-levels 0,2 \(asked: 0\)/],
    ['--levels', { levels: 3 }, { levels: 2 }, /--levels 3 \(asked: 2\)/],
    ['--crop', { crop: true }, { crop: false }, /--crop on \(asked: off\)/],
    ['--preview', { preview: true }, { preview: false }, /--preview on \(asked: off\)/],
    ['--max-side', { maxSide: 32 }, { maxSide: 0 }, /--max-side 32 \(asked: 0\)/],
    ['--format', { format: 'safetensors' }, { format: 'npy' }, /--format safetensors \(asked: npy\)/],
  ];
  for (const [flag, first, again, said] of cases) {
    it(`${flag}: made again, saying what differs; skipped when it is the same`, async () => {
      const out = path.join(tmp, flag.slice(2));
      const r = await rerun(out, first, again);
      assert.deepEqual({ written: r.written, skipped: r.skipped }, { written: 1, skipped: 0 });
      assert.match(r.redo, said);
      const meta = JSON.parse(fs.readFileSync(path.join(out, 'photo', 'meta.json'), 'utf8'));
      const same = await rerun(path.join(tmp, `${flag.slice(2)}-same`), again, again);
      assert.deepEqual(same, { written: 0, skipped: 1, redo: undefined });
      assert.ok(meta.files.length > 0);
    });
  }

  it('--model: an output made with another model file is made again', async () => {
    const r = await rerun(path.join(tmp, 'model'), {}, {}, fx, small);
    assert.deepEqual({ written: r.written, skipped: r.skipped }, { written: 1, skipped: 0 });
    assert.match(r.redo, /--model sha256 \w{12}… \(asked: sha256 \w{12}…\)/);
  });

  it('the CLI says so, names the option, and writes what was asked', async () => {
    const out = path.join(tmp, 'cli');
    const args = ['extract', png, '--levels', '2', '--device', 'cpu', '--out', out];
    let r = await runCli([...args, '--dtype', 'float16']);
    assert.equal(r.status, 0, r.stderr);
    r = await runCli([...args, '--skip-existing']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /photo\.png: its output was made with other options \(--dtype float16 \(asked: float32\)\): made again/);
    assert.match(r.stdout, /1 written/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'photo', 'meta.json'), 'utf8')).dtype, 'float32');
    r = await runCli([...args, '--skip-existing']);
    assert.match(r.stdout, /0 written .* 1 skipped/);
  });
});
