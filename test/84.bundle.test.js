'use strict';
// `setup --bundle`'s bundling (scripts/bundle.js), tested where libtorch is really absent: in a mount
// namespace whose system copies of libtorch, c10, oneDNN and every other library the addon links
// (but glibc and the C/C++ runtime) are masked by empty files. The normal build must fail to load
// there, and the bundled one must load, resolve every library from its own folder, and give the
// normal build's numbers to the bit.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { root, randomTensor } = require('./fixtures');
const { bundle, SYSTEM } = require('../scripts/bundle');
const { closure } = require('../scripts/elf');
const { requireHere, needs } = require('./helpers');

describe('self-contained bundle (setup --bundle)', function () {
  this.timeout(300000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-bundle-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  before(() => requireHere(needs.root(), needs.unshare(), needs.patchelf()));

  it('loads with libtorch and its libraries masked, and its features equal the normal build\'s', async () => {
    // The binary this process runs; `npm pack` (80.package) moves build/Release's into prebuilds/,
    // stripped, under the name of the libtorch it links.
    const { addonBuild } = require('../dist/native');
    const running = addonBuild();
    const tag = running.libtorch.split('.').slice(0, 2).join('_');
    const normal = fs.existsSync(running.file) ? running.file
      : path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`, `film-features.torch${tag}.glibc.node`);
    const dir = path.join(tmp, 'bundle');
    fs.mkdirSync(dir);
    const addon = path.join(dir, 'film_features.node');
    fs.copyFileSync(normal, addon);
    const { libraries, bytes } = bundle(addon);
    console.log(`    bundle: ${libraries.length} libraries, ${(bytes / 2 ** 20).toFixed(0)} MiB`);
    for (const lib of ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', 'libdnnl.so']) {
      assert.ok(libraries.some((l) => l.startsWith(lib)), `${lib} is bundled`);
    }
    assert.ok(!libraries.some((l) => SYSTEM.test(l)), 'no glibc or C++ runtime in the bundle');

    // Mask what the bundle replaces: each system library's real file (symlinks resolve to it), but
    // those that mount(8) itself runs on (libmount, libselinux, pcre2: not libtorch's).
    const mountLibs = new Set(Object.values(closure('/bin/mount')).map((f) => fs.realpathSync(f)));
    const masked = [...new Set(Object.entries(closure(normal))
      .filter(([soname]) => !SYSTEM.test(soname)).map(([, file]) => fs.realpathSync(file)))]
      .filter((f) => !mountLibs.has(f));
    assert.ok(masked.some((f) => /libtorch_cpu\.so/.test(f)), 'the system libtorch is masked');
    const empty = path.join(tmp, 'empty');
    fs.writeFileSync(empty, '');

    const image = randomTensor([1, 3, 40, 56], 85);
    fs.writeFileSync(path.join(tmp, 'image.f32'), image.data);
    fs.writeFileSync(path.join(tmp, 'child.js'), `
      const fs = require('node:fs');
      const { spawnSync } = require('node:child_process');
      const result = {};
      try { require(${JSON.stringify(normal)}); result.normal = 'loaded'; } catch (e) { result.normal = e.message; }
      result.ldd = spawnSync('ldd', [${JSON.stringify(addon)}], { encoding: 'utf8' }).stdout;
      const { FeatureExtractor } = require(${JSON.stringify(root)});
      (async () => {
        const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
        const buf = fs.readFileSync(${JSON.stringify(path.join(tmp, 'image.f32'))});
        const out = await fx.extract({ data: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), shape: [1, 3, 40, 56] }, { levels: 4 });
        out.forEach((l, i) => fs.writeFileSync(${JSON.stringify(tmp)} + '/level' + i + '.f32', l.data));
        result.weights = fx.info.weights;
        console.log(JSON.stringify(result));
      })();`);
    const script = `${masked.map((f) => `mount --bind ${empty} ${f}`).join(' && ')} && exec "${process.execPath}" ${tmp}/child.js`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
      encoding: 'utf8', env: { ...process.env, FILM_FEATURES_ADDON: addon },
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const result = JSON.parse(r.stdout);
    assert.match(result.normal, /lib(torch|c10|dnnl)\S*\.so|file too short/, 'the normal build cannot load with libtorch masked');
    assert.equal(result.weights, 'random, seed 0');
    for (const line of result.ldd.split('\n').filter((l) => l.includes('=>'))) {
      const soname = line.trim().split(' ')[0];
      if (!SYSTEM.test(soname)) assert.ok(line.includes(`=> ${dir}/`), `resolved from the bundle: ${line.trim()}`);
    }

    const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
    const ours = await fx.extract(image, { levels: 4 });
    fx.dispose();
    ours.forEach((level, i) => {
      const theirs = fs.readFileSync(path.join(tmp, `level${i}.f32`));
      assert.ok(Buffer.from(level.data.buffer, level.data.byteOffset, level.data.byteLength).equals(theirs), `level ${i} equal to the bit`);
    });
  });
});
