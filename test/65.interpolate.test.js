'use strict';
// Interpolator: whole FILM TorchScript files against the same files run by Python's torch
// (test/reference_interpolate.py), padding and crop on odd sizes, batches, time lists, recursion,
// 8-bit and sharp forms, zero-copy outputs, disposal, and bad calls.
const assert = require('node:assert/strict');

const { Interpolator, FeatureExtractor, defaultModelPath } = require('..');
const { native, RUN_BYTES, RUN_COPY_OUTPUTS } = require('../dist/native');
const { RUN_WITH_ADDRESSES } = native()._internal;
const { models, randomTensor } = require('./fixtures');
const { interpolatorSuite, loadNativeInterpolator, assertClose, assertBytesClose } = require('./helpers');


/** A reference case's inputs as [n, h, w, 3] bytes split into one RgbImage per pair. */
function images(bytes) {
  const [n, h, w] = bytes.shape;
  const size = h * w * 3;
  return Array.from({ length: n }, (_, i) => ({ data: bytes.data.subarray(i * size, (i + 1) * size), width: w, height: h, channels: 3 }));
}


describe('Interpolator', function () {
  const { cases, load } = interpolatorSuite();

  describe('load', () => {
    it('loads whole interpolators, fp32 and fp16, and says what they hold', async () => {
      const film = await load(models.tinyFilm);
      assert.equal(film.device, 'cpu');
      assert.equal(film.info.dtype, 'float32');
      assert.equal(typeof film.info.optimized, 'boolean');
      assert.equal((await load(models.tinyFilmFp16)).info.dtype, 'float16');
    });

    for (const [what, file, pattern] of [
      ['a feature extractor (forward(Tensor[]) -> Tensor[])', () => models.same, /forward is .*Tensor\[\].*expected forward\(Tensor x0, Tensor x1, Tensor batch_dt\) -> Tensor/],
      ['the shipped extractor', () => defaultModelPath, /not a whole FILM interpolator/],
      ['forward(Tensor) -> Tensor', () => models.badSignature, /forward is .*expected forward\(Tensor x0/],
      ['a forward that returns a tuple', () => models.tupleForward, /forward is .*\(Tensor, Tensor\).*expected .* -> Tensor/],
    ]) {
      it(`rejects ${what} with ERR_FILM_MODEL_FORMAT`, async () => {
        await assert.rejects(Interpolator.load(file(), { device: 'cpu' }), (err) => {
          assert.equal(err.constructor, Error);
          assert.match(err.message, pattern);
          assert.equal(err.code, 'ERR_FILM_MODEL_FORMAT');
          return true;
        });
      });
    }

    it("takes only its own options: batchWindowMs and maxBatch are the extractor's (types and run time); " +
      "precision is 'fp32' or 'bf16', recursionPadding only with recursions (types)", async () => {
      for (const option of [{ batchWindowMs: 2 }, { maxBatch: 4 }]) {
        await assert.rejects(Interpolator.load(models.tinyFilm, { device: 'cpu', ...option }),
          { code: 'ERR_INVALID_ARG_VALUE', message: new RegExp(`Unknown option options\\.${Object.keys(option)[0]}`) });
      }
      const { spawnSync } = require('node:child_process');
      const path = require('node:path');
      const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(__dirname, 'types', 'interpolator-bad.json')],
        { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      for (const line of [6, 7, 8, 11, 12]) assert.match(r.stdout, new RegExp(`interpolator-bad\\.ts\\(${line},`), `line ${line} must not compile`);
      assert.equal((r.stdout.match(/error TS/g) ?? []).length, 5, r.stdout);
    });

    it("leaves cuDNN's benchmark mode as setCudnnBenchmark() set it", async () => {
      const was = FeatureExtractor.cudnnBenchmark;
      try {
        for (const setting of [false, true, false]) {
          FeatureExtractor.setCudnnBenchmark(setting);
          (await Interpolator.load(models.tinyFilm, { device: 'cpu' })).dispose();
          assert.equal(FeatureExtractor.cudnnBenchmark, setting);
        }
      } finally {
        FeatureExtractor.setCudnnBenchmark(was);
      }
    });

    it("on CUDA too, and with FILM_FEATURES_CUDNN_BENCHMARK=0 (where it used to turn it on)", function () {
      if (!FeatureExtractor.devices().some((d) => d.startsWith('cuda'))) {
        console.log(`      (skipped: ${native().cudaCompiledIn ? 'no CUDA device is present' : 'this build links a CPU-only libtorch'}; ` +
          'test/90.cuda.test.js runs it where there is one)');
        this.skip();
      }
      const { spawnSync } = require('node:child_process');
      const script = `const { Interpolator, FeatureExtractor } = require(${JSON.stringify(require.resolve('..'))});
        Interpolator.load(${JSON.stringify(models.tinyFilm)}, { device: 'cuda' })
          .then((f) => { f.dispose(); process.stdout.write(String(FeatureExtractor.cudnnBenchmark)); });`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, FILM_FEATURES_CUDNN_BENCHMARK: '0' } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'false');
    });

    it('rejects a missing file and bad options', async () => {
      await assert.rejects(Interpolator.load('/nonexistent/film.pt'), { code: 'ERR_FILM_MODEL_FILE', message: /nonexistent\/film\.pt/ });
      await assert.rejects(Interpolator.load(models.tinyFilm, { device: 'cpu', levels: 3 }), /Unknown option options\.levels/);
      await assert.rejects(Interpolator.load(), TypeError);
      await assert.rejects(Interpolator.load(models.tinyFilm, { device: 'tpu' }), RangeError);
      await assert.rejects(Interpolator.load(models.tinyFilm, { threads: -1 }), RangeError);
      await assert.rejects(Interpolator.load(models.tinyFilm, { device: 'cpu', half: true }), RangeError);
    });
  });

  describe('matches the same file run by Python to 1e-5', () => {
    it('at several times on an odd size (padded to 64 and cropped back), t = 0 and 1 included', async () => {
      const c = cases['tiny-67x131'];
      const film = await load(c.model);
      const frames = await film.interpolate(c.in0, c.in1, { time: c.times });
      assert.equal(frames.length, c.times.length);
      frames.forEach((f, i) => assertClose(f, c.frames[i], `t=${c.times[i]}`));
      // a single time gives a single frame
      assertClose(await film.interpolate(c.in0, c.in1, { time: 0.25 }), c.frames[1], 'time 0.25 alone');
    });

    it('on a batch of two pairs', async () => {
      const c = cases['tiny-b2-40x70'];
      const film = await load(c.model);
      const frame = await film.interpolate(c.in0, c.in1, { time: c.times[0] });
      assertClose(frame, c.frames[0], 'batch');
      // each pair alone gives its half of the batch
      const half = (t, i) => ({ data: t.data.subarray(i * t.data.length / 2, (i + 1) * t.data.length / 2), shape: [1, ...t.shape.slice(1)] });
      for (const i of [0, 1]) {
        const one = await film.interpolate(half(c.in0, i), half(c.in1, i), { time: c.times[0] });
        assertClose(one, half(c.frames[0], i), `pair ${i} alone`);
      }
    });

    it('by recursion: 2^k - 1 frames at i / 2^k, each middle frame made from its neighbours at t = 0.5', async () => {
      const c = cases['tiny-rec3-61x64'];
      const film = await load(c.model);
      const frames = await film.interpolate(c.in0, c.in1, { recursions: c.recursions });
      assert.equal(frames.length, 7);
      frames.forEach((f, i) => assertClose(f, c.frames[i], `frame ${i + 1}/8`));
      // the middle frame is the plain t = 0.5 frame; the quarter frame is made from a and the middle
      assertClose(await film.interpolate(c.in0, c.in1), c.frames[3], 'middle');
      assertClose(await film.interpolate(c.in0, frames[3]), c.frames[1], 'quarter');
      assert.equal((await film.interpolate(c.in0, c.in1, { recursions: 1 })).length, 1);
    });

    it('recursion holds only the frames it still needs: peak memory grows by the outputs, not by padded float frames', function () {
      this.timeout(300000);
      const { spawnSync } = require('node:child_process');
      const path = require('node:path');
      const side = 256; // a multiple of 64: padded = the frame
      // Under ASan (npm run test:asan), its quarantine keeps freed blocks, up to 256 MB: it would
      // count as growth. The child measures with it off; ASan still checks every access there.
      const env = /libasan/.test(process.env.LD_PRELOAD ?? '')
        ? { ...process.env, ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=0` } : process.env;
      const peak = (k) => {
        const r = spawnSync(process.execPath, [path.join(__dirname, 'services', 'recursion-rss.js'), models.interpolator, String(side), String(k)],
          { encoding: 'utf8', timeout: 280000, env });
        assert.equal(r.status, 0, r.stderr);
        const m = JSON.parse(r.stdout);
        assert.equal(m.frames, 2 ** k - 1);
        return m.peak - m.base;
      };
      const [one, five] = [peak(1), peak(5)];
      const perFrame = (five - one) / 30;
      const output = side * side * 3; // an 8-bit frame, which the caller gets
      const padded = side * side * 3 * 4; // a float32 frame on the device
      const mb = (x) => (x / 2 ** 20).toFixed(2);
      console.log(`      (RSS rise during the run: ${mb(one)} MB for 1 frame, ${mb(five)} MB for 31: ${mb(perFrame)} MB per frame; ` +
        `an output is ${mb(output)} MB, a padded float frame ${mb(padded)} MB)`);
      // the 30 more outputs must show (else this measures nothing), the padded frames must not
      assert.ok(perFrame > 0.5 * output, `${mb(perFrame)} MB per frame made: the measurement does not see the outputs`);
      assert.ok(perFrame < 0.6 * (output + padded), `${mb(perFrame)} MB per frame made: the padded frames are kept to the end`);
    });

    it('with fp16 weights (run in float32 on the CPU)', async () => {
      const c = cases['tinyFp16-64x96'];
      assertClose(await (await load(c.model)).interpolate(c.in0, c.in1, { time: 0.3 }), c.frames[0], 'fp16');
    });

    it('with the simpler fixture interpolator', async () => {
      const c = cases['interpolator-45x45'];
      assertClose(await (await load(c.model)).interpolate(c.in0, c.in1), c.frames[0], 'film_interpolator.pt');
    });
  });

  describe('8-bit forms', () => {
    it('frames in a SharedArrayBuffer are read like any others', async () => {
      const c = cases['interpolator-45x45'];
      const film = await load(c.model);
      const shared = (t) => {
        const data = new Float32Array(new SharedArrayBuffer(t.data.byteLength + 8), 8, t.data.length);
        data.set(t.data);
        return { data, shape: t.shape };
      };
      assertClose(await film.interpolate(shared(c.in0), shared(c.in1)), c.frames[0], 'SharedArrayBuffer floats');
      const bytes = { data: Uint8Array.from({ length: 45 * 45 * 3 }, (_, i) => (i * 7) % 256), width: 45, height: 45, channels: 3 };
      const sab = new Uint8Array(new SharedArrayBuffer(bytes.data.length));
      sab.set(bytes.data);
      const out = await film.interpolate({ ...bytes, data: sab }, bytes);
      assert.deepEqual(out.data, (await film.interpolate(bytes, bytes)).data);
    });

    it('RgbImage in, RgbImage out; arrays of images are batches', async () => {
      const c = cases['tiny-bytes-b2-37x50'];
      const film = await load(c.model);
      const [a0, a1] = images(c.bytes0);
      const [b0, b1] = images(c.bytes1);
      const frames = await film.interpolate([a0, a1], [b0, b1], { time: c.times });
      assert.equal(frames.length, 2);
      frames.forEach((pairs, t) => {
        const expected = images(c.frameBytes[t]);
        assert.equal(pairs.length, 2);
        pairs.forEach((img, i) => {
          assert.deepEqual([img.width, img.height, img.channels], [50, 37, 3]);
          assert.ok(img.data instanceof Uint8Array);
          assertBytesClose(img.data, expected[i].data, `t=${c.times[t]} pair ${i}`);
        });
      });
      const one = await film.interpolate(a1, b1, { time: 0.5 });
      assert.ok(!Array.isArray(one));
      assertBytesClose(one.data, images(c.frameBytes[0])[1].data, 'single RgbImage');
    });

    it("sharp's {data, info} in, {data: Buffer, info} out; RGBA input loses its alpha", async () => {
      const c = cases['tiny-bytes-b2-37x50'];
      const film = await load(c.model);
      const [a] = images(c.bytes0);
      const [b] = images(c.bytes1);
      const rgba = new Uint8Array(37 * 50 * 4);
      for (let p = 0; p < 37 * 50; p++) {
        rgba.set(b.data.subarray(3 * p, 3 * p + 3), 4 * p);
        rgba[4 * p + 3] = p % 256;
      }
      const out = await film.interpolate({ data: Buffer.from(a.data), info: { width: 50, height: 37, channels: 3 } },
        { data: rgba, info: { width: 50, height: 37, channels: 4 } }, { time: 0.5 });
      assert.ok(Buffer.isBuffer(out.data));
      assert.deepEqual(out.info, { width: 50, height: 37, channels: 3 });
      assertBytesClose(out.data, images(c.frameBytes[0])[0].data, 'sharp form');
    });
  });

  describe('outputs', () => {
    it("are zero-copy: each frame's array is the output tensor's memory, float or 8-bit", async () => {
      const handle = await loadNativeInterpolator(models.tinyFilm, 'cpu', 2, false);
      try {
        const x = randomTensor([1, 3, 33, 40], 1);
        const y = randomTensor([1, 3, 33, 40], 2);
        const frames = await handle.run([x], [y], [0.2, 0.8], 0, 0, RUN_WITH_ADDRESSES).promise;
        for (const f of frames) {
          assert.ok(f.data instanceof Float32Array);
          assert.equal(native()._internal.dataAddress(f.data), f.tensorAddress);
        }
        const copied = await handle.run([x], [y], [0.2, 0.8], 0, 0, RUN_COPY_OUTPUTS | RUN_WITH_ADDRESSES).promise;
        copied.forEach((f, i) => {
          assert.notEqual(native()._internal.dataAddress(f.data), f.tensorAddress);
          assert.deepEqual(f.data, frames[i].data);
        });
        const img = { data: new Uint8Array(33 * 40 * 3).fill(100), shape: [1, 3, 33, 40] };
        const [bytes] = await handle.run([img], [img], [0.5], 0, 0, RUN_BYTES | RUN_WITH_ADDRESSES).promise;
        assert.ok(bytes.data instanceof Uint8Array);
        assert.deepEqual(bytes.shape, [1, 33, 40, 3]);
        assert.equal(native()._internal.dataAddress(bytes.data), bytes.tensorAddress);
      } finally {
        handle.dispose();
      }
    });

    it('are clamped to [0, 1]', async () => {
      const film = await load(models.tinyFilm);
      const bright = { data: new Float32Array(3 * 20 * 20).fill(1), shape: [1, 3, 20, 20] };
      const out = await film.interpolate(bright, bright, { time: 0.5 });
      assert.ok(out.data.every((v) => v >= 0 && v <= 1));
    });
  });

  describe('lifetime', () => {
    it('dispose is idempotent; a run in flight finishes; later calls reject', async () => {
      const film = await Interpolator.load(models.tinyFilm, { device: 'cpu' });
      const a = randomTensor([1, 3, 64, 64], 3);
      const b = randomTensor([1, 3, 64, 64], 4);
      const pending = film.interpolate(a, b);
      film.dispose();
      film.dispose();
      const frame = await pending.catch((err) => err);
      // queued runs find the model gone (a disposed error); started ones finish
      if (frame instanceof Error) assert.match(frame.message, /disposed/);
      else assert.deepEqual(frame.shape, [1, 3, 64, 64]);
      await assert.rejects(film.interpolate(a, b), { code: 'ERR_FILM_DISPOSED', message: 'This Interpolator has been disposed' });
    });

    it('aborts with an AbortSignal', async () => {
      const film = await load(models.tinyFilm);
      const a = randomTensor([1, 3, 32, 32], 5);
      await assert.rejects(film.interpolate(a, a, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    });
  });

  describe('bad calls', () => {
    const a = randomTensor([1, 3, 30, 40], 6);
    const b = randomTensor([1, 3, 30, 40], 7);

    it('frames of different sizes: RangeError naming both', async () => {
      const film = await load(models.tinyFilm);
      await assert.rejects(film.interpolate(a, randomTensor([1, 3, 30, 41], 8)), (err) => {
        assert.ok(err instanceof RangeError);
        assert.match(err.message, /a is 40x30 but b is 41x30/);
        return true;
      });
      await assert.rejects(film.interpolate(a, randomTensor([2, 3, 30, 40], 8)), /a has 1 frames but b has 2/);
      const img = (w) => ({ data: new Uint8Array(w * 10 * 3), width: w, height: 10, channels: 3 });
      await assert.rejects(film.interpolate(img(10), img(11)), RangeError);
      await assert.rejects(film.interpolate([img(10), img(11)], [img(10), img(10)]), /a\[1\] is 11x10 but a\[0\] is 10x10/);
    });

    it('a time outside [0, 1]: RangeError; not a number: TypeError', async () => {
      const film = await load(models.tinyFilm);
      for (const time of [1.5, -0.1, NaN, Infinity]) {
        await assert.rejects(film.interpolate(a, b, { time }), (err) => err instanceof RangeError && /options\.time/.test(err.message));
      }
      await assert.rejects(film.interpolate(a, b, { time: [0.5, 2] }), /options\.time\[1\]/);
      await assert.rejects(film.interpolate(a, b, { time: [] }), RangeError);
      await assert.rejects(film.interpolate(a, b, { time: '0.5' }), TypeError);
    });

    it('recursions out of range, or combined with time', async () => {
      const film = await load(models.tinyFilm);
      await assert.rejects(film.interpolate(a, b, { recursions: 0 }), RangeError);
      await assert.rejects(film.interpolate(a, b, { recursions: 11 }), RangeError);
      await assert.rejects(film.interpolate(a, b, { recursions: 1.5 }), RangeError);
      await assert.rejects(film.interpolate(a, b, { recursions: 2, time: 0.5 }), TypeError);
    });

    it('inputs that are not frames', async () => {
      const film = await load(models.tinyFilm);
      await assert.rejects(film.interpolate(null, b), TypeError);
      await assert.rejects(film.interpolate(a, { data: [1, 2, 3], shape: [1, 3, 1, 1] }), TypeError);
      await assert.rejects(film.interpolate(a, { data: new Float32Array(5), shape: [1, 3, 30, 40] }), RangeError);
      await assert.rejects(film.interpolate([], []), RangeError);
      await assert.rejects(film.interpolate(a, b, 'fast'), TypeError);
      await assert.rejects(film.interpolate(a, b, { times: [0.5] }), /Unknown option options\.times/);
      await assert.rejects(film.interpolate([a], [b]), TypeError); // batch Tensor4s along n, not in arrays
    });

    it('a feature extractor is not an interpolator, and the other way round', async () => {
      // an interpolator file still loads as an extractor of its features
      const fx = await FeatureExtractor.load(models.tinyFilm, { device: 'cpu' });
      assert.equal(fx.info.source, 'interpolator');
      fx.dispose();
    });
  });
});
