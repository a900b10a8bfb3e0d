'use strict';
// film-features interpolate and slowmo, run as child processes, against the API and real ffmpeg.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp', 'ffmpeg'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');
const { Interpolator } = require('..');
const { models } = require('./fixtures');
const { runCli: run } = require('./helpers');

function ffprobe(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries',
    'stream=width,height,r_frame_rate,nb_read_frames,codec_name', '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).streams[0];
}

/** Decodes every frame of a video to RGB bytes with ffmpeg. */
function decode(file, width, height) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    { maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, String(r.stderr));
  const size = width * height * 3;
  return Array.from({ length: r.stdout.length / size }, (_, i) => r.stdout.subarray(i * size, (i + 1) * size));
}

const meanAbs = (a, b) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

describe('CLI: interpolate and slowmo', function () {
  let tmp;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-interp-cli-'));
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  describe('interpolate', () => {
    let a;
    let b;
    before(async () => {
      // two photos of one scene, the second shifted right by 3 pixels
      const w = 53;
      const h = 41;
      const pixels = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w + 3; x++) {
          for (let c = 0; c < 3; c++) pixels[(y * w + Math.min(x, w - 1)) * 3 + c] = (x * 7 + y * 3 + c * 50) % 256;
        }
      }
      const shifted = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) pixels.copy(shifted, (y * w + x) * 3, (y * w + Math.max(0, x - 3)) * 3, (y * w + Math.max(0, x - 3)) * 3 + 3);
      }
      a = path.join(tmp, 'a.png');
      b = path.join(tmp, 'b.png');
      await sharp(pixels, { raw: { width: w, height: h, channels: 3 } }).png().toFile(a);
      await sharp(shifted, { raw: { width: w, height: h, channels: 3 } }).png().toFile(b);
    });

    it('writes one PNG per time, equal to the API on the same pixels', async () => {
      const out = path.join(tmp, 'frames');
      const r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--device', 'cpu', '--times', '0.25,0.5,0.75', '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(out).sort(), ['t0.25.png', 't0.5.png', 't0.75.png']);
      const film = await Interpolator.load(models.tinyFilm, { device: 'cpu' });
      try {
        const [ra, rb] = await Promise.all([a, b].map((f) => sharp(f).raw().toBuffer({ resolveWithObject: true })));
        const frames = await film.interpolate(ra, rb, { time: [0.25, 0.5, 0.75] });
        for (const [i, name] of ['t0.25.png', 't0.5.png', 't0.75.png'].entries()) {
          const png = await sharp(path.join(out, name)).raw().toBuffer({ resolveWithObject: true });
          assert.deepEqual(png.info.width, 53);
          assert.deepEqual(png.info.height, 41);
          assert.ok(png.data.equals(frames[i].data), `${name} differs from interpolate()`);
        }
      } finally {
        film.dispose();
      }
    });

    it('--recursions k writes 2^k - 1 frames at i / 2^k', async () => {
      const out = path.join(tmp, 'rec');
      const r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--device', 'cpu', '--recursions', '2', '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(out).sort(), ['t0.25.png', 't0.5.png', 't0.75.png']);
    });

    it("--recursion-padding zeros|prediction: the API's recursionPadding (53x41 is padded to 64x64)", async () => {
      const film = await Interpolator.load(models.tinyFilm, { device: 'cpu' });
      const written = {};
      try {
        const [ra, rb] = await Promise.all([a, b].map((f) => sharp(f).raw().toBuffer({ resolveWithObject: true })));
        for (const padding of ['zeros', 'prediction']) {
          const out = path.join(tmp, `rec-${padding}`);
          const r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--device', 'cpu', '--recursions', '2',
            '--recursion-padding', padding, '--out', out]);
          assert.equal(r.status, 0, r.stderr);
          const frames = await film.interpolate(ra, rb, { recursions: 2, recursionPadding: padding });
          written[padding] = [];
          for (const [i, name] of ['t0.25.png', 't0.5.png', 't0.75.png'].entries()) {
            const png = await sharp(path.join(out, name)).raw().toBuffer();
            assert.ok(png.equals(frames[i].data), `${padding} ${name} differs from interpolate()`);
            written[padding].push(png);
          }
        }
        // the default is 'zeros'; 'prediction' gives other quarter frames
        const plain = await sharp(path.join(tmp, 'rec', 't0.25.png')).raw().toBuffer();
        assert.ok(plain.equals(written.zeros[0]), "--recursions alone is --recursion-padding zeros");
        assert.ok(!written.zeros[0].equals(written.prediction[0]), 'the quarter frame is the same with either padding');
      } finally {
        film.dispose();
      }
    });

    it('replaces only PNGs it wrote: a user\'s t0.5.png, a folder or a link in the way is left alone and the run fails', async () => {
      const out = path.join(tmp, 'mixed');
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 't0.5.png'), 'my own picture');
      fs.mkdirSync(path.join(out, 't0.25.png'));
      fs.symlinkSync(a, path.join(out, 't0.75.png'));
      const args = ['interpolate', a, b, '--model', models.tinyFilm, '--device', 'cpu', '--times', '0.25,0.5,0.75,0.9', '--out', out];
      let r = await run(args);
      assert.equal(r.status, 1, r.stderr);
      for (const t of ['0.25', '0.5', '0.75']) assert.match(r.stderr, new RegExp(`t${t}\\.png .*not replaced.*ERR_FILM_OUTPUT_EXISTS`));
      assert.equal(fs.readFileSync(path.join(out, 't0.5.png'), 'utf8'), 'my own picture');
      assert.ok(fs.statSync(path.join(out, 't0.25.png')).isDirectory());
      assert.equal(fs.readlinkSync(path.join(out, 't0.75.png')), a);
      assert.ok(fs.statSync(path.join(out, 't0.9.png')).isFile(), 'the free name is written');
      // a second run replaces the PNG it wrote (marked in its "Software" text), and only that
      const ino = fs.statSync(path.join(out, 't0.9.png')).ino;
      r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--device', 'cpu', '--times', '0.9', '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.notEqual(fs.statSync(path.join(out, 't0.9.png')).ino, ino);
      assert.deepEqual(fs.readdirSync(out).sort(), ['t0.25.png', 't0.5.png', 't0.75.png', 't0.9.png']);
      const png = await sharp(path.join(out, 't0.9.png')).metadata();
      assert.deepEqual([png.format, png.width, png.height], ['png', 53, 41]);
      // a copy of our PNG put in its place (the user's backup, restored) is not ours
      fs.copyFileSync(path.join(out, 't0.9.png'), path.join(out, 'backup'));
      fs.renameSync(path.join(out, 'backup'), path.join(out, 't0.9.png'));
      const bytes = fs.readFileSync(path.join(out, 't0.9.png'));
      r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--device', 'cpu', '--times', '0.9', '--out', out]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /t0\.9\.png is a copy of a film-features output/);
      assert.ok(fs.readFileSync(path.join(out, 't0.9.png')).equals(bytes));
    });

    it('fails clearly: sizes differ, a time out of range, no --model, an extractor as the model', async () => {
      const small = path.join(tmp, 'small.png');
      await sharp({ create: { width: 20, height: 20, channels: 3, background: '#808080' } }).png().toFile(small);
      let r = await run(['interpolate', a, small, '--model', models.tinyFilm, '--out', path.join(tmp, 'x')]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /is 53x41 but .* is 20x20/);
      r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--times', '0.5,1.5']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^error: --times: '0\.5,1\.5' has 1\.5, which is not a time from 0 to 1/m);
      r = await run(['interpolate', a, b]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--model/);
      r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--recursions', '2', '--recursion-padding', 'reflect']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--recursion-padding.*'reflect'.*is not 'zeros' or 'prediction'/);
      for (const more of [[], ['--times', '0.5']]) {
        r = await run(['interpolate', a, b, '--model', models.tinyFilm, '--recursion-padding', 'prediction', ...more, '--out', path.join(tmp, 'z')]);
        assert.equal(r.status, 2);
        assert.match(r.stderr, /^error: --recursion-padding applies only with --recursions$/m);
      }
      assert.equal(fs.existsSync(path.join(tmp, 'z')), false);
      r = await run(['interpolate', a, b, '--model', models.same, '--out', path.join(tmp, 'y')]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /not a whole FILM interpolator/);
      assert.equal(fs.existsSync(path.join(tmp, 'y')), false);
    });
  });

  describe('slowmo', () => {
    let video;
    const W = 64;
    const H = 48;
    before(() => {
      // 3 frames of a moving test pattern, lossless, so decoding gives back exactly what ffmpeg drew
      video = path.join(tmp, 'in.mkv');
      const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${W}x${H}:rate=10`, '-frames:v', '3',
        '-c:v', 'ffv1', '-pix_fmt', 'bgr0', '-y', video]);
      assert.equal(r.status, 0, String(r.stderr));
    });

    for (const [factor, recursionPadding] of [[2], [4], [4, 'prediction']]) {
      const flag = recursionPadding ? ` --recursion-padding ${recursionPadding}` : '';
      it(`--factor ${factor}${flag}: (n - 1) * ${factor} + 1 frames at the input's rate; source frames kept, in-betweens from the API`, async () => {
        const out = path.join(tmp, `slow${factor}${recursionPadding ?? ''}.mp4`);
        const r = await run(['slowmo', video, '--factor', String(factor), '--model', models.tinyFilm, '--device', 'cpu',
          '--crf', '0', ...(recursionPadding ? ['--recursion-padding', recursionPadding] : []), '--out', out]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /pair 2\/2/); // progress
        const s = ffprobe(out);
        assert.deepEqual([s.codec_name, s.width, s.height, s.r_frame_rate, Number(s.nb_read_frames)], ['h264', W, H, '10/1', 2 * factor + 1]);
        assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('partial')), []);
        // The expected video: the source frames with the API's in-betweens, through the same lossless
        // (crf 0) H.264 encode, whose only loss is RGB -> YUV 4:2:0, the same for both.
        const source = decode(video, W, H);
        const film = await Interpolator.load(models.tinyFilm, { device: 'cpu' });
        const expected = [];
        try {
          const info = { width: W, height: H, channels: 3 };
          for (let i = 0; i + 1 < source.length; i++) {
            const between = await film.interpolate({ data: source[i], info }, { data: source[i + 1], info },
              { recursions: Math.log2(factor), recursionPadding });
            expected.push(source[i], ...between.map((f) => f.data));
          }
          expected.push(source[source.length - 1]);
        } finally {
          film.dispose();
        }
        const reference = path.join(tmp, `expected${factor}${recursionPadding ?? ''}.mp4`);
        const enc = spawnSync('ffmpeg', ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${W}x${H}`, '-framerate', '10',
          '-i', 'pipe:0', '-c:v', 'libx264', '-crf', '0', '-pix_fmt', 'yuv420p', '-y', reference], { input: Buffer.concat(expected) });
        assert.equal(enc.status, 0, String(enc.stderr));
        const want = decode(reference, W, H);
        const got = decode(out, W, H);
        assert.equal(got.length, want.length);
        got.forEach((frame, i) => assert.ok(frame.equals(want[i]), `frame ${i} differs from the API's (mean |diff| ${meanAbs(frame, want[i])})`));
        if (recursionPadding) { // the flag reached interpolate(): other in-betweens than the default's video (the test above)
          const plain = decode(path.join(tmp, `slow${factor}.mp4`), W, H);
          assert.ok(got.some((frame, i) => !frame.equals(plain[i])), `every frame equals --factor ${factor}'s without the flag`);
        }
      });
    }

    it('an odd size (65x47) stays 65x47, as H.264 4:4:4, and says so', async () => {
      const [w, h] = [65, 47];
      const odd = path.join(tmp, 'odd.mkv');
      const r0 = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc=size=${w}x${h}:rate=10`, '-frames:v', '2',
        '-c:v', 'ffv1', '-pix_fmt', 'bgr0', '-y', odd]);
      assert.equal(r0.status, 0, String(r0.stderr));
      const out = path.join(tmp, 'odd.mp4');
      const r = await run(['slowmo', odd, '--model', models.tinyFilm, '--device', 'cpu', '--crf', '0', '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /frames of 65x47 .*\nnote: 65x47 has an odd side, so the video is H\.264 4:4:4 \(yuv444p\)/);
      const s = ffprobe(out);
      assert.deepEqual([s.width, s.height, Number(s.nb_read_frames)], [w, h, 3]);
      const probe = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=pix_fmt', '-of', 'csv=p=0', out], { encoding: 'utf8' });
      assert.equal(probe.stdout.trim(), 'yuv444p');
      // the first frame is the source's, through a lossless 4:4:4 encode: within RGB <-> YUV rounding
      const [src] = decode(odd, w, h);
      const [got] = decode(out, w, h);
      assert.ok(meanAbs(got, src) < 2, `mean |diff| ${meanAbs(got, src)}`);
    });

    it('writes nothing on failure: a file that is not a video, an extractor as the model', async () => {
      const out = path.join(tmp, 'never.mp4');
      const notVideo = path.join(tmp, 'not-a-video.mp4');
      fs.writeFileSync(notVideo, 'hello');
      let r = await run(['slowmo', notVideo, '--model', models.tinyFilm, '--out', out]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /cannot read .*not-a-video\.mp4 as a video/);
      r = await run(['slowmo', video, '--model', models.same, '--out', out]);
      assert.equal(r.status, 1);
      assert.equal(fs.existsSync(out), false);
      assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('partial')), []);
    });

    it('replaces only a video it wrote: a user\'s file at --out is left alone, before any work', async () => {
      const out = path.join(tmp, 'theirs.mp4');
      fs.writeFileSync(out, 'my holiday video');
      let r = await run(['slowmo', video, '--model', models.tinyFilm, '--device', 'cpu', '--out', out]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /theirs\.mp4 is a file film-features did not write: not replaced.*ERR_FILM_OUTPUT_EXISTS/);
      assert.doesNotMatch(r.stdout, /model .* loaded/);
      assert.equal(fs.readFileSync(out, 'utf8'), 'my holiday video');
      // our own video (slow2.mp4, from the test above, or made here) is replaced
      const ours = path.join(tmp, 'ours.mp4');
      for (let i = 0; i < 2; i++) {
        r = await run(['slowmo', video, '--model', models.tinyFilm, '--device', 'cpu', '--out', ours]);
        assert.equal(r.status, 0, r.stderr);
      }
      assert.equal(Number(ffprobe(ours).nb_read_frames), 5);
      assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('partial')), []);
      // the user's edit of our video keeps our comment tag (ffmpeg copies it), and a plain copy
      // keeps every byte: neither is ours, so neither is replaced
      const edit = path.join(tmp, 'edit.mp4');
      const copy = path.join(tmp, 'copy.mp4');
      assert.equal(spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', ours, '-vf', 'hflip', edit]).status, 0);
      fs.copyFileSync(ours, copy);
      for (const file of [edit, copy]) {
        const bytes = fs.readFileSync(file);
        r = await run(['slowmo', video, '--model', models.tinyFilm, '--device', 'cpu', '--out', file]);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /is a copy of a film-features output .*not replaced.*ERR_FILM_OUTPUT_EXISTS/);
        assert.ok(fs.readFileSync(file).equals(bytes), `${file} is as it was`);
      }
    });

    it('bad usage exits 2: --factor 3, --recursion-padding reflect, no --out', async () => {
      let r = await run(['slowmo', video, '--model', models.tinyFilm, '--factor', '3', '--out', path.join(tmp, 'x.mp4')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /2, 4 or 8/);
      r = await run(['slowmo', video, '--model', models.tinyFilm, '--recursion-padding', 'reflect', '--out', path.join(tmp, 'x.mp4')]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /is not 'zeros' or 'prediction'/);
      r = await run(['slowmo', video, '--model', models.tinyFilm]);
      assert.equal(r.status, 2);
    });
  });
});
