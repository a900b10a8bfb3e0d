'use strict';
// `setup --bundle`'s bundling (scripts/bundle.js), tested where libtorch is really absent: in a mount
// namespace whose system copies of libtorch, c10, oneDNN and every other library the addon links
// (but glibc and the C/C++ runtime) are masked by empty files. The normal build must fail to load
// there, and the bundled one must load, resolve every library from its own folder, and give the
// normal build's numbers to the bit. The core bundle (setup --bundle's default): at most 60 MiB, and
// it loads with oneDNN, libgomp and libtorch all masked and no environment variable.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { root, randomTensor } = require('./fixtures');
const { bundle, SYSTEM } = require('../scripts/bundle');
const { closure, needed } = require('../scripts/elf');
const { addonBuild } = require('../dist/native');
const { requireHere, needs } = require('./helpers');

describe('self-contained bundle (setup --bundle)', function () {
  this.timeout(300000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-bundle-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  before(() => requireHere(needs.root(), needs.unshare(), needs.patchelf()));

  // Electron's case: `setup --bundle` (the core by default) in a copy of the package makes
  // build/Release self-contained from the core prebuild (prebuilds/linux-x64/film-features.core.glibc.node,
  // made by scripts/prebuild-core.js); it must be small and load, with no environment variable, where
  // libtorch, oneDNN, libgomp and libOpenCL are all masked.
  it('setup --bundle makes a core bundle of at most 60 MiB that loads with no libtorch, oneDNN or libgomp and no environment', async () => {
    const prebuilds = path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`);
    const core = path.join(prebuilds, 'film-features.core.glibc.node');
    if (!fs.existsSync(core)) {
      const made = spawnSync(process.execPath, [path.join(root, 'scripts', 'prebuild-core.js')], { encoding: 'utf8' });
      assert.equal(made.status, 0, `scripts/prebuild-core.js (the core prebuild) failed:\n${made.stderr}`);
    }
    const pkg = path.join(tmp, 'core-pkg');
    for (const f of ['dist', 'bin', 'scripts', 'package.json', 'models']) fs.cpSync(path.join(root, f), path.join(pkg, f), { recursive: true });
    fs.mkdirSync(path.join(pkg, 'prebuilds'));
    fs.cpSync(prebuilds, path.join(pkg, 'prebuilds', path.basename(prebuilds)), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
    const env = { ...process.env };
    delete env.FILM_FEATURES_ADDON;
    const r = spawnSync(process.execPath, [path.join(pkg, 'bin', 'film-features.js'), 'setup', '--bundle'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, `setup --bundle:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /build\/Release\/film_features\.node \(the core addon \(no libtorch\)\) loads and extracts/);
    const release = path.join(pkg, 'build', 'Release');
    const sizes = [];
    const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else sizes.push([path.relative(release, path.join(d, e.name)), fs.lstatSync(path.join(d, e.name)).size]);
    });
    walk(release);
    const bytes = sizes.reduce((n, [, b]) => n + b, 0);
    console.log(`    core bundle: ${(bytes / 2 ** 20).toFixed(1)} MiB: ${sizes.map(([f, b]) => `${f} ${(b / 2 ** 20).toFixed(1)}`).join(', ')}`);
    assert.ok(bytes <= 60 * 2 ** 20, `the core bundle is ${(bytes / 2 ** 20).toFixed(1)} MiB (at most 60)`);
    const addon = path.join(release, 'film_features.node');
    assert.ok(!needed(addon).some((s) => /^lib(torch|c10)/.test(s)), 'the core links no libtorch');

    // Mask every library the bundle carries, and libtorch's, at their system paths.
    // a full build whose libraries (libtorch's closure) are masked: the one loaded here, or (where
    // test 80's npm pack has moved build/Release into prebuilds/ since) a full prebuild
    const full = [addonBuild().file, ...fs.readdirSync(prebuilds).filter((f) => /\.torch\d+_\d+\./.test(f)).map((f) => path.join(prebuilds, f))]
      .find((f) => fs.existsSync(f) && !path.basename(f).includes('.core.'));
    assert.ok(full, 'a full build to take libtorch\'s libraries from');
    const mountLibs = new Set(Object.values(closure('/bin/mount')).map((f) => fs.realpathSync(f)));
    const systemCopies = ['libdnnl.so.2', 'libgomp.so.1', 'libOpenCL.so.1']
      .map((l) => spawnSync('sh', ['-c', `ldconfig -p | sed -n 's/^\\s*${l} (libc6,x86-64) => //p' | head -n1`], { encoding: 'utf8' }).stdout.trim())
      .filter(Boolean);
    const masked = [...new Set([...systemCopies, ...Object.entries(closure(full)).filter(([soname]) => !SYSTEM.test(soname)).map(([, f]) => f)]
      .map((f) => fs.realpathSync(f)))].filter((f) => !mountLibs.has(f));
    assert.ok(masked.some((f) => /libdnnl\.so/.test(f)) && masked.some((f) => /libgomp\.so/.test(f)), masked.join(' '));
    const empty = path.join(tmp, 'empty-core');
    fs.writeFileSync(empty, '');
    const image = randomTensor([1, 3, 40, 56], 84);
    fs.writeFileSync(path.join(tmp, 'core-image.f32'), image.data);
    fs.writeFileSync(path.join(tmp, 'core-child.js'), `
      const fs = require('node:fs');
      const { FeatureExtractor } = require(${JSON.stringify(pkg)});
      (async () => {
        const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
        const buf = fs.readFileSync(${JSON.stringify(path.join(tmp, 'core-image.f32'))});
        const out = await fx.extract({ data: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), shape: [1, 3, 40, 56] }, { levels: 4 });
        out.forEach((l, i) => fs.writeFileSync(${JSON.stringify(tmp)} + '/core-level' + i + '.f32', l.data));
        console.log(JSON.stringify({ file: fx.info.build.file, kind: fx.info.build.kind, build: require(fx.info.build.file).build,
          env: Object.keys(process.env).filter((k) => /^(LD_|FILM_)/.test(k)) }));
      })().catch((e) => { console.error(e.stack); process.exit(1); });`);
    const script = `${masked.map((f) => `mount --bind ${empty} ${f}`).join(' && ')} && exec env -i PATH=/usr/bin:/bin "${process.execPath}" ${tmp}/core-child.js`;
    const c = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
    assert.equal(c.status, 0, `${c.stdout}\n${c.stderr}`);
    const result = JSON.parse(c.stdout);
    assert.deepEqual(result, { file: addon, kind: 'build', build: 'core', env: [] });
    // the same numbers as the full build's oneDNN engine (to 1e-5 of each level's largest value)
    const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1, engine: 'onednn' });
    const ours = await fx.extract(image, { levels: 4 });
    fx.dispose();
    ours.forEach((level, i) => {
      const buf = fs.readFileSync(path.join(tmp, `core-level${i}.f32`));
      const theirs = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      let diff = 0;
      let top = 0;
      level.data.forEach((v, j) => { diff = Math.max(diff, Math.abs(v - theirs[j])); top = Math.max(top, Math.abs(v)); });
      assert.ok(diff / top <= 1e-5, `level ${i}: max relative difference ${diff / top}`);
    });
  });

  it('loads with libtorch and its libraries masked, and its features equal the normal build\'s', async () => {
    // The binary this process runs; `npm pack` (80.package) moves build/Release's into prebuilds/,
    // stripped, under the name of the libtorch it links.
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
