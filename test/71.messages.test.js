'use strict';
// Messages a new user meets in the first hour (issue 32): each names the file, the cause and the next
// step. A truncated image, a CUDA device on a CPU-only libtorch, levels past an image's size, a time
// out of range; "overwriting it" only once the run can start; `setup` where an addon already loads,
// and a local build that shadows a prebuild, said by info.build and the CLI's model line.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp');
const sharp = require('sharp');
const { FeatureExtractor, buildPyramid } = require('..');
const { root } = require('./fixtures');
const { native, addonBuild } = require('../dist/native');
const { runCli } = require('./helpers');

describe('messages that lead somewhere', function () {
  let tmp;
  let good;
  let truncated;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-messages-'));
    good = path.join(tmp, 'good.png');
    const w = 40;
    const h = 30;
    const pixels = Buffer.alloc(w * h * 3, 0).map((_, i) => (i * 37) % 256);
    await sharp(pixels, { raw: { width: w, height: h, channels: 3 } }).png().toFile(good);
    // cut inside the header: sharp says "Input file has corrupt header: ..." (its detail may be empty)
    truncated = path.join(tmp, 'cut.png');
    fs.writeFileSync(truncated, fs.readFileSync(good).subarray(0, 20));
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  describe('a truncated image', () => {
    for (const [order, role] of [['first', 'the first input'], ['second', 'the second input']]) {
      it(`interpolate names the ${order} input, says it is truncated or damaged and what to do`, async () => {
        const args = order === 'first' ? [truncated, good] : [good, truncated];
        const r = await runCli(['interpolate', ...args, '--model', path.join(tmp, 'never-read.pt'), '--out', path.join(tmp, 'i')]);
        assert.equal(r.status, 1, r.stderr);
        const line = r.stderr.trim();
        assert.ok(line.startsWith(`film-features: ${role}, ${truncated}: the image data is truncated or damaged (sharp: `), line);
        assert.match(line, /; copy, download or export the file again$/);
        assert.doesNotMatch(line, /: \)|:\s*$/, 'no empty detail');
        assert.equal(line.split('\n').length, 1, line);
      });
    }

    it('extract names the file, says it is truncated or damaged and what to do, and writes the others', async () => {
      const out = path.join(tmp, 'x');
      const r = await runCli(['extract', truncated, good, '--levels', '2', '--device', 'cpu', '--out', out]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^film-features: \\[1/2\\] ${truncated.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ` +
        'the image data is truncated or damaged \\(sharp: .+\\); copy, download or export the file again$', 'm'));
      assert.doesNotMatch(r.stderr, /: \)|\(sharp: \)/, 'no empty detail');
      assert.deepEqual(fs.readdirSync(out), ['good']);
    });

    it('a missing input and a file that is no image say so, by role', async () => {
      const missing = path.join(tmp, 'missing.png');
      let r = await runCli(['interpolate', good, missing, '--model', 'x.pt', '--out', path.join(tmp, 'i')]);
      assert.equal(r.stderr.trim(), `film-features: the second input, ${missing}: no such file; check the path`);
      const text = path.join(tmp, 'notes.png');
      fs.writeFileSync(text, 'not an image\n');
      r = await runCli(['interpolate', text, good, '--model', 'x.pt', '--out', path.join(tmp, 'i')]);
      assert.match(r.stderr.trim(), new RegExp(`^film-features: the first input, ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ` +
        'not an image sharp can read here \\(sharp: Input file contains unsupported image format\\); convert it to PNG or JPEG'));
    });
  });

  describe('--device cuda where the addon links a CPU-only libtorch', () => {
    before(function () {
      if (native().cudaCompiledIn) this.skip(); // CUDA builds: test/90.cuda.test.js
    });

    it('the API names the addon file and `npx film-features setup --libtorch PATH`', async () => {
      for (const device of ['cuda', 'cuda:1']) {
        await assert.rejects(FeatureExtractor.load(undefined, { device }), (err) => {
          assert.equal(err.code, 'ERR_FILM_DEVICE');
          assert.ok(err.message.startsWith(`device '${device}': the addon that loaded, ${addonBuild().file}, is built against a ` +
            `CPU-only libtorch (${native().torchVersion})`), err.message);
          assert.match(err.message, /run `npx film-features setup --libtorch PATH` with its folder/);
          assert.doesNotMatch(err.message, /set LIBTORCH or Torch_DIR/);
          return true;
        });
      }
    });

    it('so does the CLI, and it says nothing about overwriting outputs it never writes', async () => {
      const out = path.join(tmp, 'out');
      let r = await runCli(['extract', good, '--out', out, '--levels', '2']);
      assert.equal(r.status, 0, r.stderr);
      r = await runCli(['extract', good, '--out', out, '--levels', '2', '--device', 'cuda']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /npx film-features setup --libtorch PATH/);
      assert.doesNotMatch(r.stderr, /overwriting it/);
      r = await runCli(['extract', good, '--out', out, '--levels', '2', '--model', path.join(tmp, 'missing.pt')]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /model file not found/);
      assert.doesNotMatch(r.stderr, /overwriting it/);
      // and where the run does start, it is said
      r = await runCli(['extract', good, '--out', out, '--levels', '2']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /1 of 1 inputs already have output in .*; overwriting it \(--skip-existing keeps it\)/);
    });
  });

  it('levels past what the image size allows: the size sets the limit, and a larger or padded image gets more', async () => {
    const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
    try {
      const image = { data: new Uint8Array(256 * 192 * 3), width: 256, height: 192 };
      await assert.rejects(fx.extract(image, { levels: 9 }), (err) => {
        assert.ok(err instanceof RangeError);
        assert.equal(err.code, 'ERR_OUT_OF_RANGE');
        assert.equal(err.message, 'options.levels is 9, but a 256x192 image has at most 8 levels: each level halves the one ' +
          'before, and level 7 is already 2x1. For 9 levels, pass an image whose shorter side is at least 256 px: a larger ' +
          "one, or this one padded (padToMultiple(tensor, 256), as the CLI's --levels does)");
        return true;
      });
      assert.equal((await fx.extract(image, { levels: 8 })).length, 8);
      // not an integer, or under 1: the plain range message
      await assert.rejects(fx.extract(image, { levels: 0 }), /Expected an integer between 1 and 8 for options.levels/);
    } finally {
      fx.dispose();
    }
    const tensor = { data: new Float32Array(3 * 20 * 30), shape: [1, 3, 20, 30] };
    assert.throws(() => buildPyramid(tensor, 6), /^RangeError: levels is 6, but a 30x20 image has at most 5 levels/);
  });

  it('--times out of range reads as one sentence', async () => {
    const run = (times) => runCli(['interpolate', good, good, '--model', 'x.pt', '--times', times]);
    let r = await run('1.5');
    assert.equal(r.status, 2);
    assert.equal(r.stderr.split('\n')[0], "error: --times: '1.5' is not a time from 0 to 1 (0 is the first image, 1 the second; " +
      'a list is written 0.25,0.5,0.75)');
    r = await run('0.25,2');
    assert.equal(r.stderr.split('\n')[0], "error: --times: '0.25,2' has 2, which is not a time from 0 to 1 (0 is the first " +
      'image, 1 the second; a list is written 0.25,0.5,0.75)');
    r = await run('0.5,,0.7');
    assert.match(r.stderr.split('\n')[0], /^error: --times: '0.5,,0.7' has an empty item, which is not a time from 0 to 1/);
  });

  // A copy of the package whose loader finds the binary that loads here: as a prebuild only, then
  // also as a local build (build/Release), which is loaded first.
  describe('setup and a local build that shadows the prebuild', () => {
    let pkg;
    const env = { ...process.env };
    delete env.FILM_FEATURES_ADDON;
    const tag = () => native().torchVersion.split('.').slice(0, 2).join('_');
    before(() => {
      pkg = path.join(tmp, 'pkg');
      fs.mkdirSync(path.join(pkg, 'prebuilds', 'linux-x64'), { recursive: true });
      for (const d of ['dist', 'scripts', 'bin']) fs.cpSync(path.join(root, d), path.join(pkg, d), { recursive: true });
      fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
      fs.mkdirSync(path.join(pkg, 'models'));
      fs.symlinkSync(path.join(root, 'models', 'film_extractor.pt'), path.join(pkg, 'models', 'film_extractor.pt'));
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
      fs.copyFileSync(addonBuild().file, path.join(pkg, 'prebuilds', 'linux-x64', `film-features.torch${tag()}.glibc.node`));
    });
    const node = (args) => spawnSync(process.execPath, args, { cwd: tmp, encoding: 'utf8', env });
    const info = () => JSON.parse(node(['-e', `require(${JSON.stringify(pkg)}).FeatureExtractor.load(undefined, { device: 'cpu' })` +
      '.then((fx) => console.log(JSON.stringify(fx.info.build)))']).stdout);

    it('setup says the prebuild already loads and builds nothing', () => {
      const t = Date.now();
      const r = node([path.join(pkg, 'bin', 'film-features.js'), 'setup']);
      assert.equal(r.status, 0, r.stderr);
      const prebuild = path.join(pkg, 'prebuilds', 'linux-x64', `film-features.torch${tag()}.glibc.node`);
      assert.equal(r.stdout.trim(), `film-features is ready: the prebuilt addon ${prebuild} (libtorch ${native().torchVersion}) ` +
        'already loads and extracts 7 levels from 64x64; nothing to build. `npx film-features setup --force` builds it here ' +
        'anyway, and that build is then used in place of the prebuild.');
      assert.ok(!fs.existsSync(path.join(pkg, 'build')), 'nothing built');
      assert.ok(Date.now() - t < 60000);
      assert.deepEqual(info(), { file: prebuild, kind: 'prebuild', variant: 'full', libtorch: native().torchVersion, shadows: [], skipped: [] });
    });

    it('a local build next to a prebuild for the same libtorch: info.build.shadows and the model line say so', async () => {
      const release = path.join(pkg, 'build', 'Release');
      fs.mkdirSync(release, { recursive: true });
      fs.copyFileSync(addonBuild().file, path.join(release, 'film_features.node'));
      const prebuild = path.join(pkg, 'prebuilds', 'linux-x64', `film-features.torch${tag()}.glibc.node`);
      // one for another libtorch would not load here: not shadowed
      fs.copyFileSync(addonBuild().file, path.join(pkg, 'prebuilds', 'linux-x64', 'film-features.torch0_1.glibc.node'));
      assert.deepEqual(info(), { file: path.join(release, 'film_features.node'), kind: 'build', variant: 'full', libtorch: native().torchVersion,
        shadows: [prebuild], skipped: [] });
      const r = node([path.join(pkg, 'bin', 'film-features.js'), 'extract', good, '--out', path.join(tmp, 'o2'), '--levels', '2']);
      assert.equal(r.status, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.startsWith('model '));
      assert.match(line, new RegExp(`; addon: the local build ${path.join(release, 'film_features.node')} \\(libtorch [\\d.]+\\), ` +
        `used in place of the prebuild film-features\\.torch${tag()}\\.glibc\\.node \\(delete ${path.join(pkg, 'build')} to use the prebuild\\)$`));
      // setup: that build already loads, so it is checked, not rebuilt
      const s = node([path.join(pkg, 'bin', 'film-features.js'), 'setup']);
      assert.equal(s.status, 0, s.stderr);
      assert.match(s.stdout, /^film-features is ready: the addon .*build\/Release\/film_features\.node .*already loads/);
    });
  });
});
