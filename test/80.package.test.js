'use strict';
// The package as users get it: npm pack (its prepack makes the prebuild), install the tarball into
// a blank project with install scripts blocked, then require it, extract, and type-check a TypeScript
// consumer there; without its prebuild, `npx film-features setup` builds one.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { root, randomTensor } = require('./fixtures');
const { runpath, needed } = require('../scripts/elf');
const { native } = require('../dist/native');
const { requireHere, needs } = require('./helpers');

// This machine's prebuild, named after the libtorch it links (scripts/prebuild-tag.js)
const torchTag = native().torchVersion.split('.').slice(0, 2).join('_');
const prebuildName = `film-features.torch${torchTag}.glibc.node`;

function run(cmd, args, cwd, env = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('package', function () {
  this.timeout(600000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'film-pack-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  before(() => {
    // Installing the tarball fetches its dependencies from the npm registry (or npm's cache).
    requireHere([() => spawnSync('npm', ['ping'], { timeout: 15000, stdio: 'ignore' }).status === 0,
      "the npm registry (npm ping fails)", "a network that reaches the registry in npm's config (registry=, proxy=)"]);
  });

  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const image = randomTensor([1, 3, 32, 40], 81);
  const app = path.join(dir, 'app');
  let ours;

  // Extracts in `app`'s copy of the package; returns per level { shape, head }.
  function extractInApp() {
    const script = `
      const fs = require('node:fs');
      const { FeatureExtractor } = require('film-features');
      (async () => {
        const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
        const buf = fs.readFileSync(${JSON.stringify(path.join(dir, 'image.f32'))});
        const out = await fx.extract({ data: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), shape: [1, 3, 32, 40] }, { levels: 3 });
        process.stdout.write(JSON.stringify(out.map((l) => ({ shape: l.shape, head: Array.from(l.data.subarray(0, 32)) }))));
      })();`;
    const env = { ...process.env };
    delete env.FILM_FEATURES_ADDON;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8', env });
    return r.status === 0 ? JSON.parse(r.stdout) : { error: r.stderr };
  }

  function assertSameFeatures(theirs) {
    assert.ok(!theirs.error, theirs.error);
    theirs.forEach((level, i) => {
      assert.deepEqual(level.shape, ours[i].shape);
      assert.deepEqual(level.head, Array.from(ours[i].data.subarray(0, 32)));
    });
  }

  it('npm pack builds the prebuild (prepack) and ships it with RUNPATH $ORIGIN only', async () => {
    fs.writeFileSync(path.join(dir, 'image.f32'), image.data);
    const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
    ours = await fx.extract(image, { levels: 3 });
    fx.dispose();

    // Scripts on: prepack runs prebuildify, which relinks the up-to-date build/ instead of compiling.
    // The other Debian release's prebuild (built in a root) is .ci/other-release.sh's and CI's concern.
    const t = Date.now();
    const packed = JSON.parse(/^\[\s*\{[^]*$/m.exec(run(npm, ['pack', '--json', '--pack-destination', dir], root, { FILM_PREBUILD_OTHER: 'skip' }))[0]);
    console.log(`    npm pack: ${((Date.now() - t) / 1000).toFixed(0)} s, tarball ${(packed[0].size / 2 ** 20).toFixed(1)} MiB ` +
      `(${(packed[0].unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${packed[0].entryCount} files)`);
    const files = packed[0].files.map((f) => f.path);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'models/film_extractor.pt', `prebuilds/linux-x64/${prebuildName}`,
      'bin/film-features.js', 'CMakeLists.txt', 'LICENSE', 'README.md', 'scripts/install.js', 'scripts/bundle.js', 'dist/cli/setup.js']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('bench/')), 'no tests, benches or build tree');
    const maps = files.filter((f) => f.endsWith('.js.map'));
    assert.ok(maps.length > 0);
    for (const f of maps) {
      const map = JSON.parse(fs.readFileSync(path.join(root, f), 'utf8'));
      assert.equal(map.sourcesContent?.length, map.sources.length, `${f} carries its sources (lib/ does not ship)`);
    }
    const prebuild = path.join(root, 'prebuilds', 'linux-x64', prebuildName);
    assert.deepEqual(runpath(prebuild), ['$ORIGIN']);

    // The core prebuild (scripts/prebuild-core.js) and its runtime, under 35 MB in all (issue 30)
    const sizes = packed[0].files.filter((f) => f.path.startsWith('prebuilds/'))
      .map((f) => `${f.path.replace('prebuilds/linux-x64/', '')} ${(f.size / 2 ** 20).toFixed(2)} MiB`);
    console.log(`    prebuilds: ${sizes.join(', ')}`);
    assert.ok(packed[0].size <= 35e6, `the tarball is ${(packed[0].size / 1e6).toFixed(1)} MB (at most 35)`);
    const core = 'prebuilds/linux-x64/film-features.core.glibc.node';
    for (const f of [core, 'prebuilds/linux-x64/film-features.core.libs/libdnnl.so.2', 'prebuilds/linux-x64/film-features.core.libs/libgomp.so.1']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    assert.deepEqual(runpath(path.join(root, core)), ['$ORIGIN/film-features.core.libs']);
    assert.ok(!needed(path.join(root, core)).some((s) => /^lib(torch|c10)/.test(s)), 'the core links no libtorch');
    const libs = files.filter((f) => f.startsWith('prebuilds/linux-x64/film-features.core.libs/'));
    for (const f of libs) assert.deepEqual(runpath(path.join(root, f)), ['$ORIGIN'], f);
    const { check } = require('../scripts/check-symbols');
    const bad = check([core, ...libs].map((f) => path.join(root, f))).filter((r) => r.problems.length > 0);
    assert.deepEqual(bad.map((r) => `${path.basename(r.file)}: ${r.problems.join('; ')}`), [], 'glibc 2.34 and gcc 11\'s C++ runtime at most');

    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    fs.renameSync(path.join(dir, packed[0].filename), path.join(dir, 'film-features.tgz'));
  });

  // npm 12 asks the user to approve a dependency's preinstall, install, postinstall and (from a
  // tarball, a folder or git) prepare scripts; the checkout sets itself up with preprepare and
  // postprepare, which npm runs only in the project it is run in (scripts/install.js).
  it('the packed package.json declares no script npm 12 would ask approval for; the checkout still sets up on npm install', () => {
    const packed = JSON.parse(run('tar', ['-xzOf', path.join(dir, 'film-features.tgz'), 'package/package.json'], dir));
    for (const gated of ['preinstall', 'install', 'postinstall', 'prepare']) {
      assert.equal(packed.scripts?.[gated], undefined, `the published manifest declares scripts.${gated}`);
    }
    assert.ok(!fs.existsSync(path.join(root, 'binding.gyp')), 'a binding.gyp would make npm run node-gyp rebuild');
    // and `npm install` in the checkout still builds the addon where none loads and compiles dist/
    const { scripts } = require('../package.json');
    assert.match(scripts.preprepare, /^node scripts\/install\.js$/);
    assert.match(scripts.postprepare, /^tsc -p tsconfig\.json$/);
  });

  it('installs with install scripts blocked (as npm 12 does), then loads the prebuild and extracts', () => {
    const t = Date.now();
    run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', path.join(dir, 'film-features.tgz')], app);
    console.log(`    npm install with the prebuild, scripts blocked: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    assert.ok(!fs.existsSync(path.join(app, 'node_modules', 'film-features', 'build')), 'compiled nothing');
    assertSameFeatures(extractInApp());
  });

  // Where libtorch is absent, the installed package loads the core prebuild last in line
  // (scripts/addon-candidates.js): libtorch's libraries and the system's oneDNN and libgomp are
  // masked in a mount namespace; the core's own copies load, and it extracts the full build's numbers.
  it('where libtorch and oneDNN are masked, the installed package loads the core and extracts the same (1e-5)', () => {
    requireHere(needs.root(), needs.unshare());
    const installed = path.join(app, 'node_modules', 'film-features');
    const full = path.join(installed, 'prebuilds', 'linux-x64', prebuildName);
    const { closure } = require('../scripts/elf');
    const { SYSTEM } = require('../scripts/check-symbols');
    const mountLibs = new Set(Object.values(closure('/bin/mount')).map((f) => fs.realpathSync(f)));
    const masked = [...new Set(Object.entries(closure(full)).filter(([soname]) => !SYSTEM.test(soname))
      .map(([, f]) => fs.realpathSync(f)))].filter((f) => !mountLibs.has(f));
    assert.ok(['libtorch_cpu', 'libdnnl', 'libgomp'].every((l) => masked.some((f) => path.basename(f).startsWith(l))), masked.join(' '));
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '');
    const script = `
      const fs = require('node:fs');
      const { FeatureExtractor } = require('film-features');
      (async () => {
        const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
        const buf = fs.readFileSync(${JSON.stringify(path.join(dir, 'image.f32'))});
        const out = await fx.extract({ data: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), shape: [1, 3, 32, 40] }, { levels: 3 });
        out.forEach((l, i) => fs.writeFileSync(${JSON.stringify(dir)} + '/core' + i + '.f32', l.data));
        console.log(JSON.stringify({ file: fx.info.build.file, build: require(fx.info.build.file).build }));
      })().catch((e) => { console.error(e.stack); process.exit(1); });`;
    fs.writeFileSync(path.join(app, 'core-check.js'), script);
    const sh = `${masked.map((f) => `mount --bind ${empty} ${f}`).join(' && ')} && exec env -i PATH=/usr/bin:/bin "${process.execPath}" core-check.js`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh], { cwd: app, encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), { file: path.join(installed, 'prebuilds', 'linux-x64', 'film-features.core.glibc.node'), build: 'core' });
    ours.forEach((level, i) => {
      const buf = fs.readFileSync(path.join(dir, `core${i}.f32`));
      const theirs = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      let diff = 0;
      let top = 0;
      level.data.forEach((v, j) => { diff = Math.max(diff, Math.abs(v - theirs[j])); top = Math.max(top, Math.abs(v)); });
      assert.ok(diff / top <= 1e-5, `level ${i}: max relative difference ${diff / top}`);
    });
  });

  it('without prebuilds/, require names `npx film-features setup`; running it makes require work', () => {
    const installed = path.join(app, 'node_modules', 'film-features');
    fs.rmSync(path.join(installed, 'prebuilds'), { recursive: true });
    const failed = extractInApp();
    assert.match(failed.error, /Run `npx film-features setup`/);

    const t = Date.now();
    const env = { ...process.env };
    delete env.FILM_FEATURES_ADDON;
    const r = spawnSync('npx', ['--no-install', 'film-features', 'setup'], { cwd: app, encoding: 'utf8', env });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    console.log(`    npx film-features setup (compiles): ${((Date.now() - t) / 1000).toFixed(0)} s`);
    assert.match(r.stdout, /^film-features is ready: .*build\/Release\/film_features\.node \(libtorch [\d.]+\) loads and extracts/m);
    assert.match(r.stdout, /model weights: random, seed 0/);
    assertSameFeatures(extractInApp());
  });

  it('setup --bundle --full copies the libtorch build\'s libraries next to it (RUNPATH $ORIGIN), and it still extracts the same', () => {
    requireHere(needs.patchelf());
    const release = path.join(app, 'node_modules', 'film-features', 'build', 'Release');
    const env = { ...process.env };
    delete env.FILM_FEATURES_ADDON;
    // --bundle alone bundles the core (test 84); --full the libtorch build, as before issue 30
    const r = spawnSync('npx', ['--no-install', 'film-features', 'setup', '--bundle', '--full'], { cwd: app, encoding: 'utf8', env });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const size = /bundled (\d+) libraries next to the addon: (\d+) MiB/.exec(r.stderr);
    assert.ok(size, r.stderr);
    console.log(`    bundle: ${size[1]} libraries, ${size[2]} MiB`);
    // the addon's own libtorch, c10 and (where its oneDNN engine is built) oneDNN, by the sonames it links
    const sonames = needed(path.join(release, 'film_features.node')).filter((s) => /^lib(torch_cpu|c10|dnnl)\.so/.test(s));
    assert.ok(sonames.some((s) => s.startsWith('libtorch_cpu.so')), sonames.join(' '));
    for (const lib of sonames) {
      assert.ok(fs.existsSync(path.join(release, lib)), `${lib} bundled`);
      assert.deepEqual(runpath(path.join(release, lib)), ['$ORIGIN']);
    }
    assert.deepEqual(runpath(path.join(release, 'film_features.node')), ['$ORIGIN']);
    assert.ok(!fs.existsSync(path.join(release, 'libc.so.6')) && !fs.existsSync(path.join(release, 'libstdc++.so.6')));
    assertSameFeatures(extractInApp());
  });

  it('type-checks a TypeScript consumer against the installed package', () => {
    fs.writeFileSync(path.join(app, 'consumer.ts'), `
      import { FeatureExtractor, buildPyramid, padToMultiple, type Tensor4, type RgbImage } from 'film-features';
      async function main(): Promise<number[][]> {
        const fx = await FeatureExtractor.load(undefined, { device: 'auto', threads: 0, half: false });
        const image: Tensor4 = { data: new Float32Array(3 * 64 * 64), shape: [1, 3, 64, 64] };
        const rgb: RgbImage = { data: new Uint8Array(64 * 64 * 4), width: 64, height: 64, channels: 4 };
        const { tensor, crop } = padToMultiple(image, 64);
        const a = await fx.extract(tensor, { levels: 7 });
        const b = await fx.extractPyramid(buildPyramid(tensor, 7));
        const c = await fx.extract(rgb);
        const device: string = fx.device;
        const channels: number = fx.info.channels + crop.top;
        const weights: string = fx.info.weights;
        fx.dispose();
        return [...a, ...b, ...c].map((t) => t.shape as number[]).concat([[channels, device.length, weights.length]]);
      }
      main();
    `);
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'ES2022', '--module', 'commonjs',
      '--moduleResolution', 'node10', 'consumer.ts'], app);
  });

  // The exports map: each entry point from CommonJS, from ESM, and from TypeScript with node16 and
  // bundler resolution; and nothing else of dist/ is reachable.
  const batchNames = ['expandInputs', 'resolveOutputOptions', 'resolveFrameOptions', 'checkWritable', 'runBatch', 'processInput'];
  const typed = (from) => `
      import { FeatureExtractor, type Tensor4 } from 'film-features';
      import { expandInputs, resolveOutputOptions, runBatch, type OutputOptions, type BatchSummary } from '${from}';
      export async function f(): Promise<[BatchSummary, Tensor4[]]> {
        const fx = await FeatureExtractor.load();
        const output: OutputOptions = resolveOutputOptions({ out: 'o', dtype: 'float16', saveLevels: [0, 2] });
        const { items } = await expandInputs(['a.png'], { recursive: true });
        const levels = await fx.extract({ data: new Uint8Array(12), width: 2, height: 2 });
        return [await runBatch(items, { extractor: fx, output }), levels];
      }
  `;

  it('exports film-features, film-features/batch and film-features/package.json to require() and import', () => {
    const node = (file, text) => {
      fs.writeFileSync(path.join(app, file), text);
      const r = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8' });
      assert.equal(r.status, 0, `${file}:\n${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    const want = { fx: 'function', batch: batchNames.map(() => 'function'), version: require('../package.json').version };
    assert.deepEqual(node('entry.cjs', `
      const { FeatureExtractor } = require('film-features');
      const batch = require('film-features/batch');
      const old = require('film-features/dist/batch');
      if (old.runBatch !== batch.runBatch) throw new Error('film-features/dist/batch is not film-features/batch');
      const { version } = require('film-features/package.json');
      let hidden;
      try { require('film-features/dist/native'); } catch (err) { hidden = err.code; }
      if (hidden !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw new Error('dist/native is reachable: ' + hidden);
      console.log(JSON.stringify({ fx: typeof FeatureExtractor, batch: ${JSON.stringify(batchNames)}.map((n) => typeof batch[n]), version }));
    `), want);
    assert.deepEqual(node('entry.mjs', `
      import { FeatureExtractor } from 'film-features';
      import * as batch from 'film-features/batch';
      import { runBatch } from 'film-features/batch';
      import pkg from 'film-features/package.json' with { type: 'json' };
      if (runBatch !== batch.runBatch) throw new Error('named and namespace imports differ');
      console.log(JSON.stringify({ fx: typeof FeatureExtractor, batch: ${JSON.stringify(batchNames)}.map((n) => typeof batch[n]), version: pkg.version }));
    `), want);
  });

  it('type-checks film-features/batch with moduleResolution node16 (ESM and CommonJS), bundler and node10', () => {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    fs.writeFileSync(path.join(app, 'batch.mts'), typed('film-features/batch'));
    fs.writeFileSync(path.join(app, 'batch.cts'), typed('film-features/batch'));
    fs.writeFileSync(path.join(app, 'batch.ts'), typed('film-features/batch'));
    fs.writeFileSync(path.join(app, 'legacy.ts'), typed('film-features/dist/batch'));
    // film-features/batch's types use Node's (Buffer, streams): a consumer has @types/node, here the repository's
    const common = ['--noEmit', '--strict', '--target', 'ES2022', '--typeRoots', path.join(root, 'node_modules', '@types'), '--types', 'node'];
    run(process.execPath, [tsc, ...common, '--module', 'node16', '--moduleResolution', 'node16', 'batch.mts', 'batch.cts'], app);
    run(process.execPath, [tsc, ...common, '--module', 'esnext', '--moduleResolution', 'bundler', 'batch.ts', 'legacy.ts'], app);
    run(process.execPath, [tsc, ...common, '--module', 'commonjs', '--moduleResolution', 'node10', 'batch.ts', 'legacy.ts'], app);
    // and a path the map does not export fails to type-check as it fails to load
    fs.writeFileSync(path.join(app, 'hidden.ts'), "import { native } from 'film-features/dist/native';\nexport const n = native;\n");
    const r = spawnSync(process.execPath, [tsc, ...common, '--module', 'esnext', '--moduleResolution', 'bundler', 'hidden.ts'],
      { cwd: app, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /Cannot find module 'film-features\/dist\/native'/);
  });
});
