'use strict';
// The batch pipeline through the CLI, on real files: an EXIF-rotated JPEG, a folder of webp, tiff
// and an animated GIF, a video made with ffmpeg, lists, a killed run resumed with --skip-existing,
// an unwritable --out, and numpy reading the float16 .npy and safetensors outputs.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp', 'ffmpeg'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');

const { FeatureExtractor, imageToTensor, padToMultiple, cropLevel } = require('..');
const { root, python, relativeError } = require('./fixtures');
const { runCli: run, readNpy } = require('./helpers');

const LEVELS = 4;
const CHANNELS = [64, 192, 448, 960];

function ffmpeg(args) {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ffmpeg ${args.join(' ')}: ${r.error ?? r.stderr}`);
}

const meta = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));

/** Runs Python with numpy on a script; returns its stdout. */
function py(script, ...args) {
  const r = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('batch pipeline (extract command)', function () {
  let tmp;
  let fx;
  let photo; // 60x40 pixels stored, EXIF orientation 6: shown 40 wide, 60 high
  let folder; // a.webp, b.tif, anim.gif (3 frames), notes.txt, sub/c.png
  let clip; // 96x64, 6 frames

  /** The API's features for RGB pixels, padded like the CLI, as a reference. */
  async function reference(rgb, width, height) {
    const image = imageToTensor({ data: rgb, width, height, channels: 3 });
    const { tensor, crop } = padToMultiple(image, 2 ** (LEVELS - 1));
    return { features: await fx.extract(tensor, { levels: LEVELS }), crop };
  }

  const noise = (w, h, seed) => {
    const out = Buffer.alloc(w * h * 3);
    let a = seed >>> 0;
    for (let i = 0; i < out.length; i++) {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      out[i] = ((i % (w * 3)) * 2 + (a >>> 26)) & 255; // a gradient with noise: survives JPEG
    }
    return out;
  };

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-batch-'));
    photo = path.join(tmp, 'photo.jpg');
    await sharp(noise(60, 40, 1), { raw: { width: 60, height: 40, channels: 3 } }).jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 }).toFile(photo);
    folder = path.join(tmp, 'folder');
    fs.mkdirSync(path.join(folder, 'sub'), { recursive: true });
    const raw = { raw: { width: 40, height: 24, channels: 3 } };
    await sharp(noise(40, 24, 2), raw).webp({ lossless: true }).toFile(path.join(folder, 'a.webp'));
    await sharp(noise(40, 24, 3), raw).tiff().toFile(path.join(folder, 'b.tif'));
    const pages = await Promise.all([4, 5, 6].map((s) => sharp(noise(40, 24, s), raw).png().toBuffer()));
    await sharp(pages, { join: { animated: true } }).gif({ delay: 100 }).toFile(path.join(folder, 'anim.gif'));
    await sharp(noise(40, 24, 7), raw).png().toFile(path.join(folder, 'sub', 'c.png'));
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not an image');
    clip = path.join(tmp, 'clip.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=10', '-frames:v', '6', '-pix_fmt', 'yuv420p', clip]);
    fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  });

  after(() => {
    fx?.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('applies EXIF orientation: a JPEG stored 60x40 with orientation 6 is extracted upright, 40x60', async () => {
    const out = path.join(tmp, 'exif');
    const r = await run(['extract', photo, '--levels', String(LEVELS), '--device', 'cpu', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const dir = path.join(out, 'photo');
    const m = meta(dir);
    assert.deepEqual([m.width, m.height], [40, 60]);
    assert.equal(m.source, photo);
    // reference: the stored pixels, turned 90 degrees clockwise here
    const { data, info } = await sharp(photo).raw().toBuffer({ resolveWithObject: true }); // no rotate(): as stored
    assert.deepEqual([info.width, info.height], [60, 40]);
    const upright = Buffer.alloc(data.length);
    for (let y = 0; y < 60; y++) {
      for (let x = 0; x < 40; x++) data.copy(upright, (y * 40 + x) * 3, ((39 - x) * 60 + y) * 3, ((39 - x) * 60 + y) * 3 + 3);
    }
    const want = await reference(upright, 40, 60);
    for (let i = 0; i < LEVELS; i++) {
      const got = readNpy(path.join(dir, `level${i}.npy`));
      assert.deepEqual(got.shape, want.features[i].shape);
      assert.ok(relativeError(got.data, want.features[i].data) <= 1e-6, `level ${i}`);
    }
  });

  let scanned; // the run on the folder without -r
  it('scans a folder for every format sharp reads (webp, tiff, animated GIF), saying what it skipped and why', async () => {
    const out = path.join(tmp, 'scan');
    scanned = { out, r: await run(['extract', folder, '--levels', String(LEVELS), '--device', 'cpu', '--out', out]) };
    const { r } = scanned;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^film-features: skipped .*notes\.txt: \.txt is not an image format sharp reads here nor a video format$/m);
    assert.match(r.stderr, /^film-features: skipped .*folder: 1 sub-folder\(s\) not scanned \(use -r to recurse\)$/m);
    assert.deepEqual(fs.readdirSync(out).sort(), ['a', 'anim', 'b']);
    // the animated GIF gives every frame, each in its own folder
    assert.deepEqual(fs.readdirSync(path.join(out, 'anim')).sort(), ['000000', '000001', '000002']);
    assert.match(r.stdout, /^5 written in [\d.]+ s \([\d.]+ images\/s\), 0 failed;/m);
  });

  it('writes each GIF frame\'s features, equal to the API on that frame', async () => {
    const gif = path.join(folder, 'anim.gif');
    for (const frame of [0, 2]) {
      const dir = path.join(scanned.out, 'anim', `00000${frame}`);
      const m = meta(dir);
      assert.equal(m.frame, frame);
      const { data, info } = await sharp(gif, { page: frame }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const want = await reference(data, info.width, info.height);
      const got = readNpy(path.join(dir, 'level2.npy'));
      assert.ok(relativeError(got.data, want.features[2].data) <= 1e-6, `frame ${frame}`);
    }
  });

  it('-r recurses, --dtype float16 --save-levels --crop write less, --jobs 2 runs extracts at once; numpy reads the .npy', async function () {
    const out = path.join(tmp, 'f16');
    const r = await run(['extract', '-r', folder, '--levels', String(LEVELS), '--device', 'cpu', '--out', out,
      '--dtype', 'float16', '--save-levels', '2,0', '--crop', '--jobs', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(out).sort(), ['a', 'anim', 'b', 'sub']);
    const dir = path.join(out, 'sub', 'c');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['level0.npy', 'level2.npy', 'meta.json']);
    const m = meta(dir);
    assert.deepEqual([m.dtype, m.savedLevels, m.cropped, m.levels], ['float16', [0, 2], true, LEVELS]);
    assert.deepEqual(m.crop, { top: 0, left: 0, height: 24, width: 40 });
    const { data, info } = await sharp(path.join(folder, 'sub', 'c.png')).raw().toBuffer({ resolveWithObject: true });
    const want = await reference(data, info.width, info.height);
    // numpy loads the half-precision files; its float32 copy is compared with the API's, cropped
    const lines = py(`
import sys, numpy as np
for f, o in zip(sys.argv[1::2], sys.argv[2::2]):
    a = np.load(f)
    print(a.dtype, a.shape)
    a.astype(np.float32).tofile(o)`, ...[0, 2].flatMap((l) => [path.join(dir, `level${l}.npy`), path.join(tmp, `np${l}.f32`)]));
    assert.deepEqual(lines.trim().split('\n'), ['float16 (1, 64, 24, 40)', 'float16 (1, 448, 6, 10)']);
    for (const l of [0, 2]) {
      const got = new Float32Array(fs.readFileSync(path.join(tmp, `np${l}.f32`)).buffer.slice(0));
      const cropped = cropLevel(want.features[l], want.crop, l);
      assert.ok(relativeError(got, cropped.data) <= 1e-3, `level ${l}: ${relativeError(got, cropped.data)}`);
      assert.deepEqual(Array.from(readNpy(path.join(dir, `level${l}.npy`)).data), Array.from(got), 'our half decoding = numpy\'s');
    }
    // bytes: float16, levels 0 and 2 only, cropped
    const bytes = fs.statSync(path.join(dir, 'level0.npy')).size + fs.statSync(path.join(dir, 'level2.npy')).size;
    assert.equal(bytes, 2 * 128 + 2 * (64 * 24 * 40 + 448 * 6 * 10)); // each .npy header is 128 bytes
  });

  it('decodes a video with ffmpeg: --every and --frames pick frames, --format safetensors writes one file numpy reads', async function () {
    const out = path.join(tmp, 'video');
    const r = await run(['extract', clip, '--levels', String(LEVELS), '--device', 'cpu', '--out', out,
      '--format', 'safetensors', '--every', '2', '--frames', '1:5', '--save-levels', '1,3']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(path.join(out, 'clip')).sort(), ['000001', '000003']);
    const dir = path.join(out, 'clip', '000003');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['features.safetensors', 'meta.json']);
    // numpy parses the file: 8-byte little-endian header length, JSON, raw data
    const header = JSON.parse(py(`
import sys, json, numpy as np
buf = open(sys.argv[1], 'rb').read()
n = int(np.frombuffer(buf[:8], dtype='<u8')[0])
head = json.loads(buf[8:8 + n])
for name, t in head.items():
    if name == '__metadata__': continue
    a, b = t['data_offsets']
    x = np.frombuffer(buf[8 + n + a:8 + n + b], dtype={'F32': '<f4', 'F16': '<f2'}[t['dtype']]).reshape(t['shape'])
    x.astype(np.float32).tofile(sys.argv[2] + name)
print(json.dumps(head))`, path.join(dir, 'features.safetensors'), path.join(tmp, 'st-')));
    assert.deepEqual(Object.keys(header).sort(), ['__metadata__', 'level1', 'level3']);
    assert.deepEqual(header.level3, { dtype: 'F32', shape: [1, 960, 8, 12], data_offsets: header.level3.data_offsets });
    const m = header.__metadata__;
    assert.equal(m.source, clip);
    assert.equal(m.frame, '3');
    assert.equal(JSON.parse(m.model).sha256.length, 64);
    assert.deepEqual(JSON.parse(m.savedLevels), [1, 3]);
    assert.equal(meta(dir).frame, 3);
    // reference: frame 3 decoded by ffmpeg on its own, to PNG
    const png = path.join(tmp, 'frame3.png');
    ffmpeg(['-i', clip, '-vf', 'select=eq(n\\,3)', '-frames:v', '1', png]);
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const want = await reference(data, info.width, info.height);
    for (const l of [1, 3]) {
      const got = new Float32Array(fs.readFileSync(path.join(tmp, `st-level${l}`)).buffer.slice(0));
      assert.ok(relativeError(got, want.features[l].data) <= 1e-6, `level ${l}`);
    }
  });

  it('reads inputs from --from-list - (stdin), reports a missing one, and --max-side scales down, saying so', async () => {
    const out = path.join(tmp, 'list');
    const list = `# inputs\n${photo}\n\n${path.join(tmp, 'missing.png')}\n${clip}\n`;
    const r = await run(['extract', '--from-list', '-', '--levels', String(LEVELS), '--device', 'cpu', '--out', out,
      '--max-side', '32', '--frames', ':1', '--save-levels', '0'], { stdin: list });
    assert.equal(r.status, 1, r.stderr); // the missing file
    assert.match(r.stderr, /^film-features: .*missing\.png: no such file or folder$/m);
    assert.match(r.stderr, /^film-features: .*photo\.jpg: 40x60 scaled to 21x32 \(--max-side 32\)$/m);
    assert.match(r.stderr, /^film-features: .*clip\.mp4: frames scaled to 32x21 \(--max-side 32\)$/m);
    const m = meta(path.join(out, 'photo'));
    assert.deepEqual([m.width, m.height, m.original, m.maxSide], [21, 32, { width: 40, height: 60 }, 32]);
    assert.deepEqual(fs.readdirSync(path.join(out, 'clip')), ['000000']);
    assert.deepEqual([meta(path.join(out, 'clip', '000000')).width, meta(path.join(out, 'clip', '000000')).height], [32, 21]);
  });

  it('a re-run says it overwrites; a killed run leaves only complete outputs, and --skip-existing resumes it', async () => {
    const frames = path.join(tmp, 'many');
    fs.mkdirSync(frames);
    for (let i = 0; i < 8; i++) {
      await sharp(noise(64, 48, 10 + i), { raw: { width: 64, height: 48, channels: 3 } }).png().toFile(path.join(frames, `f${i}.png`));
    }
    const out = path.join(tmp, 'resume');
    const args = ['extract', frames, '--levels', String(LEVELS), '--device', 'cpu', '--out', out];
    // killed as soon as the first output is complete, typically while the next is being written
    const killed = await run(args, {
      onSpawn: (child) => {
        const timer = setInterval(() => {
          if (fs.existsSync(path.join(out, 'f0', 'meta.json'))) {
            clearInterval(timer);
            child.kill('SIGKILL');
          }
        }, 5);
        child.on('close', () => clearInterval(timer));
      },
    });
    assert.equal(killed.signal, 'SIGKILL');
    const complete = fs.readdirSync(out).filter((n) => !n.startsWith('.'));
    assert.ok(complete.length >= 1 && complete.length < 8, `${complete}`);
    for (const name of complete) { // everything that looks complete is
      const m = meta(path.join(out, name));
      assert.deepEqual(fs.readdirSync(path.join(out, name)).sort(), [...m.files].sort());
      for (let i = 0; i < LEVELS; i++) assert.deepEqual(readNpy(path.join(out, name, `level${i}.npy`)).shape.slice(0, 2), [1, CHANNELS[i]]);
    }
    const resumed = await run([...args, '--skip-existing']);
    assert.equal(resumed.status, 0, resumed.stderr);
    for (const name of complete) assert.match(resumed.stdout, new RegExp(`${name}\\.png: complete output exists, skipped`));
    assert.match(resumed.stdout, new RegExp(`^${8 - complete.length} written .* 0 failed, ${complete.length} skipped \\(output exists\\)`, 'm'));
    assert.deepEqual(fs.readdirSync(out).sort(), ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7'], 'temporary folders of the killed run removed');
    // without --skip-existing, a run that overwrites says so
    const again = await run([...args, '--frames', '0:1', '--save-levels', '0']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /^film-features: 8 of 8 inputs already have output in .*resume; overwriting it \(--skip-existing keeps it\)$/m);
    assert.deepEqual(fs.readdirSync(path.join(out, 'f3')).sort(), ['level0.npy', 'meta.json']);
  });

  it('checks --out before loading the model: an unwritable folder fails at once', async () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, '');
    const r = await run(['extract', photo, '--device', 'cpu', '--out', path.join(file, 'out')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^film-features: cannot write to the output folder .*a-file\/out: .*a-file is a file, where a folder is needed/m);
    assert.doesNotMatch(r.stdout, /model .* loaded/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    if (process.getuid() !== 0) { // root writes anywhere: the permission case needs a user
      const locked = path.join(tmp, 'locked');
      fs.mkdirSync(locked, { mode: 0o555 });
      const r2 = await run(['extract', photo, '--device', 'cpu', '--out', locked]);
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /cannot write to the output folder .*locked: EACCES/);
    } else {
      console.log('    (running as root: the read-only-folder case is not tried; ENOTDIR was)');
    }
  });

  it('says to install ffmpeg when a video comes and there is none', async () => {
    const empty = fs.mkdtempSync(path.join(tmp, 'path-'));
    const r = await run(['extract', clip, '--device', 'cpu', '--levels', String(LEVELS), '--out', path.join(tmp, 'noff')],
      { env: { ...process.env, PATH: empty } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^film-features: \[1\/1\] .*clip\.mp4: video input needs ffmpeg, and 'ffmpeg' was not found: install it with apt-get install ffmpeg$/m);
  });

  for (const [args, what] of [
    [['--dtype', 'float64'], "'float64'"], [['--format', 'zip'], "'zip'"], [['--save-levels', 'a,b'], "'a,b'"],
    [['--frames', '5:2'], "'5:2'"], [['--every', '0'], "'0'"], [['--jobs', '0'], "'0'"], [['--max-side', '-3'], "'-3'"],
    [['--save-levels', '5', '--levels', '4'], '--save-levels: 5 '], [['--max-side', '4', '--levels', '4'], '--max-side: 4 '],
  ]) {
    it(`rejects ${args.join(' ')} with exit code 2 before doing anything`, async () => {
      const out = path.join(tmp, 'unused');
      const r = await run(['extract', photo, '--out', out, ...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: ${args[0]}: .*${what.replace(/^--[\w-]+: /, '')}`)); // the flag, then the value
      assert.ok(!fs.existsSync(out));
    });
  }
});
