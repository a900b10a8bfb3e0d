'use strict';
// lib/batch as a library: options, input expansion, float16 against numpy, banded extraction
// against whole-frame extraction, processInput's events, back-pressure and AbortSignal.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');
require('./fixtures').need('sharp', 'ffmpeg'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');

const { FeatureExtractor, padToMultiple, cropLevel } = require('..');
const batch = require('../dist/batch');
const { python, randomTensor, relativeError } = require('./fixtures');

/** Largest difference between two float16 arrays in units in the last place (same-sign values). */
function maxUlp(a, b) {
  const x = new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2);
  const y = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  assert.equal(x.length, y.length);
  let most = 0;
  for (let i = 0; i < x.length; i++) {
    const d = (x[i] & 0x8000) === (y[i] & 0x8000) ? Math.abs(x[i] - y[i]) : (x[i] & 0x7fff) + (y[i] & 0x7fff);
    most = Math.max(most, d);
  }
  return most;
}

const f32 = (bytes) => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

describe('lib/batch API', function () {
  let tmp;
  let fx;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-batch-api-'));
    fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  });

  after(() => {
    fx?.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('resolveOutputOptions / resolveFrameOptions', () => {
    it('fills in the defaults: float32, every level, padded, npy, no scaling, no preview', () => {
      const o = batch.resolveOutputOptions({ out: 'x' });
      assert.deepEqual(o, {
        out: path.resolve('x'), levels: 7, saveLevels: [0, 1, 2, 3, 4, 5, 6], dtype: 'float32', crop: false, format: 'npy', maxSide: 0, preview: false,
      });
      assert.deepEqual(batch.resolveOutputOptions({ out: 'x', levels: 5, saveLevels: '3,0,3' }).saveLevels, [0, 3]);
      assert.deepEqual(batch.resolveFrameOptions({ every: 3, frames: '2:' }), { every: 3, start: 2 });
      assert.deepEqual(batch.resolveFrameOptions({ start: 1, end: 4 }), { every: 1, start: 1, end: 4 });
    });

    for (const [input, cls, pattern] of [
      [{}, TypeError, /for out/],
      [{ out: 'x', dtype: 'float64' }, RangeError, /'float32' or 'float16' for dtype/],
      [{ out: 'x', dtype: 16 }, TypeError, /for dtype/],
      [{ out: 'x', format: 'zip' }, RangeError, /for format/],
      [{ out: 'x', levels: 11 }, RangeError, /for levels/],
      [{ out: 'x', levels: 4, saveLevels: [4] }, RangeError, /levels below 4 .* for saveLevels/],
      [{ out: 'x', saveLevels: [] }, TypeError, /for saveLevels/],
      [{ out: 'x', saveLevels: [1.5] }, RangeError, /for saveLevels\[0\]/],
      [{ out: 'x', crop: 'yes' }, TypeError, /for crop/],
      [{ out: 'x', maxSide: 32 }, RangeError, /maxSide of at least 2\^\(levels-1\) = 64/],
    ]) {
      it(`rejects ${JSON.stringify(input)} with a ${cls.name} naming the option`, () => {
        assert.throws(() => batch.resolveOutputOptions(input), (err) => err instanceof cls && pattern.test(err.message));
      });
    }

    it('rejects bad frame ranges with a RangeError', () => {
      assert.throws(() => batch.parseFrameRange('3'), RangeError);
      assert.throws(() => batch.parseFrameRange('4:4'), RangeError);
      assert.throws(() => batch.resolveFrameOptions({ every: 0 }), RangeError);
    });
  });

  describe('expandInputs', () => {
    it('takes the suffixes sharp reads here from sharp.format, and the video suffixes', () => {
      const suffixes = batch.imageSuffixes();
      for (const [name, format] of Object.entries(sharp.format)) {
        if (!format.input.file) continue;
        for (const suffix of format.input.fileSuffix ?? []) assert.equal(suffixes.get(suffix), name);
      }
      for (const s of ['.jpg', '.png', '.webp', '.tif', '.gif', '.avif']) assert.ok(suffixes.has(s), s);
      assert.ok(batch.VIDEO_SUFFIXES.has('.mp4'));
    });

    it('reads lists from a file and from a stream, names outputs after sub-paths with -r, numbers repeats', async () => {
      const dir = path.join(tmp, 'tree');
      fs.mkdirSync(path.join(dir, 'b', 'c'), { recursive: true });
      for (const f of ['x.png', 'b/x.jpg', 'b/c/y.MP4', 'b/c/z.bin', '.hidden.png']) fs.writeFileSync(path.join(dir, f), '');
      const list = path.join(tmp, 'list.txt');
      fs.writeFileSync(list, `# a comment\n${path.join(dir, 'x.png')}\n\n  ${path.join(dir, 'missing.png')}  \n`);
      const { items, skipped } = await batch.expandInputs([dir], {
        recursive: true, fromList: list,
      });
      assert.deepEqual(items.map((i) => [path.relative(dir, i.source), i.kind, i.name]), [
        ['b/c/y.MP4', 'video', 'b/c/y'], ['b/x.jpg', 'image', 'b/x'], ['x.png', 'image', 'x'], ['x.png', 'image', 'x-2'],
      ]);
      assert.deepEqual(skipped.map((s) => [path.basename(s.path), s.missing]), [['z.bin', false], ['missing.png', true]]);
      assert.match(skipped[0].reason, /\.bin is not an image format sharp reads here nor a video format/);
      const fromStream = await batch.expandInputs([], { fromList: '-', stdin: Readable.from([`${path.join(dir, 'b', 'x.jpg')}\n`]) });
      assert.deepEqual(fromStream.items.map((i) => i.name), ['x']);
      const flat = await batch.expandInputs([dir]);
      assert.deepEqual(flat.items.map((i) => i.name), ['x']);
      assert.match(flat.skipped[0].reason, /1 sub-folder\(s\) not scanned \(use -r to recurse\)/);
    });
  });

  it('converts float32 to float16 exactly as numpy does (round to nearest even, subnormals, overflow, NaN)', function () {
    const n = 200000;
    const data = new Float32Array(n);
    const r = randomTensor([2 * n], 3).data;
    for (let i = 0; i < n; i++) data[i] = (r[2 * i] - 0.5) * Math.exp((r[2 * i + 1] - 0.5) * 44);
    data.set([0, -0, 65504, 65519.99, 65520, -1e9, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    const enc = batch.encodeLevel({ data, shape: [1, 1, 1, n] }, null, 0, 'float16');
    const inFile = path.join(tmp, 'in.f32');
    fs.writeFileSync(inFile, Buffer.from(data.buffer));
    const out = spawnSync(python, ['-W', 'ignore', '-c', 'import sys, numpy as np; sys.stdout.buffer.write(np.fromfile(sys.argv[1], np.float32).astype(np.float16).tobytes())', inFile]);
    assert.equal(out.status, 0, String(out.stderr));
    const want = new Uint16Array(out.stdout.buffer.slice(out.stdout.byteOffset, out.stdout.byteOffset + out.stdout.length));
    const got = new Uint16Array(enc.bytes.buffer, enc.bytes.byteOffset, n);
    let bad = 0;
    for (let i = 0; i < n; i++) if (got[i] !== want[i] && !((got[i] & 0x7c00) === 0x7c00 && (got[i] & 0x3ff) && (want[i] & 0x3ff))) bad++;
    assert.equal(bad, 0);
  });

  describe('frame runs (the pipeline\'s pixel path)', () => {
    const { runFrame, framePlan } = require('../dist/frame-plan');
    const { imageToTensor } = require('..');
    // an odd-sized 8-bit frame, RGBA: padded to 64x128 by native code, alpha dropped
    const [width, height] = [77, 45];
    const rgba = Uint8Array.from({ length: width * height * 4 }, (_, i) => (i * 37 + (i >> 7) * 11) & 255);
    const rgb = { data: rgba, width, height, channels: 4 };

    for (const [half, crop] of [[true, true], [false, true], [true, false], [false, false]]) {
      it(`gives what padding in JS, extract() and encodeLevel give, bit for bit (${half ? 'float16' : 'float32'}${crop ? ', cropped' : ''})`, async () => {
        const { tensor, crop: box } = padToMultiple(imageToTensor(rgb), 64);
        const [, , ph, pw] = tensor.shape;
        const save = [0, 2, 3];
        const plan = framePlan({ height: ph, width: pw, top: box.top, left: box.left }, save, crop ? box : null, half);
        const got = await fx[runFrame]({ data: rgba, shape: [1, 4, height, width] }, plan);
        const full = await fx.extract(tensor, { levels: 4 });
        save.forEach((level, i) => {
          const want = batch.encodeLevel(full[level], crop ? box : null, level, half ? 'float16' : 'float32');
          assert.deepEqual(got[i].shape, want.shape);
          assert.ok(got[i].data instanceof (half ? Uint16Array : Float32Array));
          assert.ok(Buffer.from(got[i].data.buffer, got[i].data.byteOffset, got[i].data.byteLength).equals(want.bytes), `level ${level}`);
        });
      });
    }
  });

  describe('extractInBands', () => {
    let tensor;
    let crop;
    let full;
    before(async () => {
      const image = randomTensor([1, 3, 150, 125], 21);
      ({ tensor, crop } = padToMultiple(image, 64)); // 192 x 128
      full = await fx.extract(tensor, { levels: 7 });
    });

    it('plans one run per lowest pyramid level needed; reach grows 2x a level', () => {
      assert.deepEqual(batch.planRuns([0, 2, 4, 6], 4), [{ base: 0, top: 2, levels: [0, 2] }, { base: 1, top: 4, levels: [4] }, { base: 3, top: 6, levels: [6] }]);
      assert.deepEqual([0, 1, 2, 3, 4].map((r) => batch.reach(r, 4)), [2, 7, 17, 37, 74]);
    });

    for (const [save, cropped] of [[[0, 1, 2, 3, 4, 5, 6], false], [[0, 2, 4, 6], true], [[1, 5], false]]) {
      it(`gives the whole frame's levels ${save} exactly, band by band${cropped ? ', cropped' : ''}`, async () => {
        let bands = 0;
        const got = await batch.extractInBands(fx, tensor, save, cropped ? crop : null, 'float32', (p) => (bands = p.of), undefined, 128 * 32);
        assert.ok(bands >= 4, `${bands} bands`);
        for (const l of save) {
          const want = cropped ? cropLevel(full[l], crop, l) : full[l];
          const level = got.get(l).encoded();
          assert.deepEqual(level.shape, want.shape);
          assert.ok(relativeError(f32(level.bytes), want.data) <= 1e-6, `level ${l}`);
        }
      });
    }

    it('float16 bands equal the whole frame converted, to a unit in the last place', async () => {
      const got = await batch.extractInBands(fx, tensor, [0, 3], crop, 'float16', undefined, undefined, 128 * 32);
      for (const l of [0, 3]) {
        const want = batch.encodeLevel(full[l], crop, l, 'float16');
        assert.ok(maxUlp(got.get(l).encoded().bytes, want.bytes) <= 1, `level ${l}`);
      }
    });
  });

  describe('processInput', () => {
    let clip;
    before(() => {
      clip = path.join(tmp, 'clip.mp4');
      const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-frames:v', '6', '-pix_fmt', 'yuv420p', clip]);
      assert.equal(r.status, 0, String(r.error ?? r.stderr));
    });
    const item = () => ({ source: clip, kind: 'video', name: 'clip' });

    it('reports decoded, extracting, writing and written per frame, in order, with decode at most 2 frames ahead', async () => {
      const output = batch.resolveOutputOptions({ out: path.join(tmp, 'events'), levels: 3, saveLevels: [0, 2] });
      const events = [];
      let ahead = 0;
      let most = 0;
      const s = await batch.processInput(item(), {
        extractor: fx, output, jobs: 1, onEvent: (e) => {
          events.push(e);
          if (e.type === 'decoded') most = Math.max(most, ++ahead);
          if (e.type === 'written') ahead--;
        },
      });
      assert.equal(s.written, 6);
      assert.equal(s.failed.length, 0);
      assert.ok(most <= 3, `${most} frames decoded and not yet written`); // jobs + 1 held, + 1 decoding
      const first = events.filter((e) => e.seq === 0).map((e) => e.type);
      assert.deepEqual(first, ['decoded', 'extracting', 'writing', 'writing', 'written']);
      const written = events.filter((e) => e.type === 'written');
      assert.deepEqual(written.map((e) => e.frame), [0, 1, 2, 3, 4, 5]);
      assert.equal(written[0].dir, path.join(output.out, 'clip', '000000'));
      assert.equal(written[0].meta.frame, 0);
      assert.ok(s.framesPerSecond > 0 && s.bytes === written.reduce((a, e) => a + e.bytes, 0));
    });

    it('--preview on a large (banded) frame: a preview anyway, drawn from samples at the tile size', async () => {
      // Frames over largeFramePixels go in bands and never hold their levels in float32; the preview
      // must not be dropped. At most 512 px the tile is the level itself: the same picture as the
      // whole-frame path (band values agree to ~1e-7). Larger: the same size, PCA colours may differ.
      const shots = [];
      for (const [w, h] of [[200, 136], [704, 256]]) {
        const file = path.join(tmp, `large-${w}.png`);
        const noise = randomTensor([w * h * 3], w).data.map((v, i) => Math.floor((v * 128) + ((i / 3) % w) / w * 127));
        await sharp(Buffer.from(noise), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
        const previews = [];
        for (const large of [w * h * 10, 64 * 64]) {
          const output = batch.resolveOutputOptions({ out: path.join(tmp, `preview-${w}-${large}`), levels: 4, saveLevels: [0, 3], preview: true });
          let bands = 0;
          const s = await batch.processInput({ source: file, kind: 'image', name: 'p' }, {
            extractor: fx, output, largeFramePixels: large, onEvent: (e) => { if (e.type === 'extracting' && e.band) bands++; },
          });
          assert.equal(s.written, 1, String(s.failed[0]?.error));
          assert.equal(bands > 0, large < w * h, 'banded only under the low threshold');
          const png = path.join(output.out, 'p', 'preview.png');
          const meta = JSON.parse(fs.readFileSync(path.join(output.out, 'p', 'meta.json'), 'utf8'));
          assert.ok(meta.files.includes('preview.png'));
          previews.push(await sharp(png).raw().toBuffer({ resolveWithObject: true }));
        }
        const [whole, banded] = previews;
        assert.deepEqual(banded.info, whole.info, `${w}x${h}: the same preview size`);
        shots.push([w, whole, banded]);
      }
      const [[, whole, banded]] = shots;
      let off = 0;
      for (let i = 0; i < whole.data.length; i++) if (Math.abs(whole.data[i] - banded.data[i]) > 1) off++;
      assert.ok(off <= whole.data.length * 1e-3, `${off} of ${whole.data.length} bytes differ by more than 1`);
    });

    it('an AbortSignal stops the run: it rejects, ffmpeg is stopped, and only complete outputs are left', async () => {
      const output = batch.resolveOutputOptions({ out: path.join(tmp, 'abort'), levels: 3 });
      const controller = new AbortController();
      let written = 0; // with 2 jobs, frames may finish out of order: stop after the second one written
      await assert.rejects(batch.processInput(item(), {
        extractor: fx, output, signal: controller.signal,
        onEvent: (e) => { if (e.type === 'written' && ++written === 2) controller.abort(new Error('stop here')); },
      }), /stop here/);
      const names = fs.readdirSync(path.join(output.out, 'clip'));
      assert.ok(names.length >= 2 && names.length < 6, `${names}`);
      for (const name of names) {
        assert.match(name, /^\d{6}$/, 'no temporary folder left');
        assert.ok(await batch.unitComplete(path.join(output.out, 'clip', name)));
      }
    });

    it('writes a banded (large) frame as the whole-frame path does: same header, values to a unit in the last place', async () => {
      const png = path.join(tmp, 'big.png');
      const noise = randomTensor([130 * 70 * 3], 5).data;
      await sharp(Buffer.from(noise.map((v) => Math.floor(v * 256))), { raw: { width: 130, height: 70, channels: 3 } }).png().toFile(png);
      const it = { source: png, kind: 'image', name: 'big' };
      const opts = { levels: 6, saveLevels: [0, 1, 4, 5], dtype: 'float16', crop: true, format: 'safetensors' };
      const whole = batch.resolveOutputOptions({ out: path.join(tmp, 'whole'), ...opts });
      const banded = batch.resolveOutputOptions({ out: path.join(tmp, 'banded'), ...opts });
      const events = [];
      await batch.processInput(it, { extractor: fx, output: whole });
      const s = await batch.processInput(it, { extractor: fx, output: banded, largeFramePixels: 1000, onEvent: (e) => events.push(e) });
      assert.equal(s.written, 1);
      assert.ok(events.some((e) => e.type === 'extracting' && e.band && e.band.of > 1), 'went in bands');
      const a = fs.readFileSync(path.join(whole.out, 'big', 'features.safetensors'));
      const b = fs.readFileSync(path.join(banded.out, 'big', 'features.safetensors'));
      const length = 8 + Number(a.readBigUInt64LE(0));
      const header = JSON.parse(a.subarray(8, length).toString());
      assert.equal(header.__metadata__.source, png);
      assert.deepEqual(header.level5.shape, [1, 960, 2, 4]);
      assert.ok(a.subarray(0, length).equals(b.subarray(0, length)), 'the same header');
      // float32 results agree to ~1e-7 whatever the frame's height; float16 rounding may then differ by one
      assert.ok(maxUlp(a.subarray(length), b.subarray(length)) <= 1);
    });
  });
});
