'use strict';
// The package as users get it: npm pack, install the tarball into a blank project, then require it,
// extract, and type-check a TypeScript consumer there.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { root, randomTensor } = require('./fixtures');

function run(cmd, args, cwd, env = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('package', function () {
  this.timeout(300000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'film-pack-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  before(function () {
    // Installing the tarball fetches its dependencies from the npm registry (or npm's cache).
    if (spawnSync('npm', ['ping'], { timeout: 15000, stdio: 'ignore' }).status !== 0) {
      console.log('    (skipped: the npm registry is not reachable)');
      this.skip();
    }
  });

  it('packs, installs into a blank project, loads, extracts and type-checks', async () => {
    // Ship this build as the prebuild, as `npm run prebuild` would (a fresh file, never rewritten
    // in place: a process may have the old one mapped).
    const prebuilds = path.join(root, 'prebuilds', 'linux-x64');
    const prebuild = path.join(prebuilds, 'film-features.glibc.node');
    const binary = require('node-gyp-build').resolve(root);
    if (binary !== prebuild) {
      fs.mkdirSync(prebuilds, { recursive: true });
      const staged = path.join(prebuilds, `.staging-${process.pid}`);
      fs.copyFileSync(binary, staged);
      fs.renameSync(staged, prebuild);
    }

    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const packed = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', dir], root, { npm_config_ignore_scripts: 'true' }));
    const files = packed[0].files.map((f) => f.path);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'models/film_extractor.pt', 'prebuilds/linux-x64/film-features.glibc.node', 'bin/film-features.js', 'CMakeLists.txt']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('build/')), 'no tests or build tree in the tarball');

    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, packed[0].filename)], app);
    assert.ok(!fs.existsSync(path.join(app, 'node_modules', 'film-features', 'build')), 'used the prebuild, compiled nothing');

    const image = randomTensor([1, 3, 32, 40], 81);
    fs.writeFileSync(path.join(dir, 'image.f32'), image.data);
    const script = `
      const fs = require('node:fs');
      const { FeatureExtractor } = require('film-features');
      (async () => {
        const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
        const buf = fs.readFileSync(${JSON.stringify(path.join(dir, 'image.f32'))});
        const out = await fx.extract({ data: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), shape: [1, 3, 32, 40] }, { levels: 3 });
        process.stdout.write(JSON.stringify(out.map((l) => ({ shape: l.shape, head: Array.from(l.data.subarray(0, 32)) }))));
      })();`;
    const theirs = JSON.parse(run(process.execPath, ['-e', script], app));
    const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
    const ours = await fx.extract(image, { levels: 3 });
    fx.dispose();
    theirs.forEach((level, i) => {
      assert.deepEqual(level.shape, ours[i].shape);
      assert.deepEqual(level.head, Array.from(ours[i].data.subarray(0, 32)));
    });

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
        fx.dispose();
        return [...a, ...b, ...c].map((t) => t.shape as number[]).concat([[channels, device.length]]);
      }
      main();
    `);
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'ES2022', '--module', 'commonjs',
      '--moduleResolution', 'node10', 'consumer.ts'], app);
  });
});
