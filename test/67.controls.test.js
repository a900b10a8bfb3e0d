'use strict';
// Process-wide controls in sharp's style: FeatureExtractor.cache() and FeatureExtractor.concurrency(),
// checked against what the addon does (its cache's bytes, the executor's counters, the process's RSS).
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { models, randomTensor } = require('./fixtures');

const cpuCache = () => native().cache();
const MB = 2 ** 20;
// AddressSanitizer keeps freed memory in quarantine, so RSS cannot fall there. (npm run test:asan runs
// with the cache on: a cached block is poisoned, test/68.cpu-cache.)
const underAsan = /libasan/.test(process.env.LD_PRELOAD ?? '');
const collect = async () => {
  for (let i = 0; i < 3; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
  }
};

describe('FeatureExtractor.cache()', function () {
  this.timeout(600000);
  let fx;
  const initial = FeatureExtractor.cache();
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
  });
  after(() => {
    FeatureExtractor.cache(true);
    fx.dispose();
  });

  it('reports { memory: { current, high, max } } in MB, as the cache holds it in bytes', async function () {
    const { compiledIn, limit } = cpuCache();
    if (!compiledIn || limit === 0) assert.fail(`no CPU block cache to report (compiledIn ${compiledIn}, limit ${limit})`);
    await fx.extract(randomTensor([1, 3, 256, 256], 1), { levels: 4 });
    await collect(); // the outputs' blocks go back to the cache
    const stats = FeatureExtractor.cache();
    const state = cpuCache();
    assert.deepEqual(Object.keys(stats), ['memory']);
    assert.deepEqual(stats.memory, {
      current: Math.round(state.cached / MB), high: stats.memory.high, max: Math.round(state.limit / MB),
    });
    assert.ok(state.cached >= 16 * MB, `a 256x256 run leaves its 16 MiB level-0 block cached (${state.cached})`);
    assert.ok(stats.memory.high >= stats.memory.current);
  });

  it('{ memory: MB } lowers the limit and frees what is past it now', async function () {
    await fx.extract(randomTensor([1, 3, 256, 256], 2), { levels: 4 });
    await collect();
    assert.ok(cpuCache().cached > 8 * MB);
    const stats = FeatureExtractor.cache({ memory: 8 });
    assert.equal(stats.memory.max, 8);
    assert.ok(cpuCache().cached <= 8 * MB, `${cpuCache().cached} bytes left`);
    await fx.extract(randomTensor([1, 3, 256, 256], 3), { levels: 4 });
    await collect();
    assert.ok(cpuCache().cached <= 8 * MB, 'and keeps to it');
  });

  it('{ memory: 0 } empties the cache now and turns caching off; true restores the default', async function () {
    const off = FeatureExtractor.cache({ memory: 0 });
    assert.deepEqual({ current: off.memory.current, max: off.memory.max }, { current: 0, max: 0 });
    assert.equal(cpuCache().cached, 0);
    await fx.extract(randomTensor([1, 3, 256, 256], 4), { levels: 4 });
    await collect();
    assert.equal(cpuCache().cached, 0, 'freed blocks go back to the system');
    assert.equal(FeatureExtractor.cache(true).memory.max, initial.memory.max);
    await fx.extract(randomTensor([1, 3, 256, 256], 5), { levels: 4 });
    await collect();
    assert.ok(cpuCache().cached > 0, 'caching again');
    assert.equal(FeatureExtractor.cache(false).memory.max, 0, 'false is { memory: 0 }');
    assert.equal(cpuCache().cached, 0);
    FeatureExtractor.cache(true);
  });

  it('features are the same with the cache on, limited and off', async () => {
    const image = randomTensor([1, 3, 128, 96], 6);
    const on = await fx.extract(image, { levels: 3 });
    FeatureExtractor.cache({ memory: 0 });
    const off = await fx.extract(image, { levels: 3 });
    FeatureExtractor.cache(true);
    off.forEach((level, i) => assert.deepEqual(level.data, on[i].data));
  });

  it('checks its argument', () => {
    assert.throws(() => FeatureExtractor.cache({ memory: -1 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => FeatureExtractor.cache({ memory: 1.5 }), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => FeatureExtractor.cache({ memory: '8' }), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => FeatureExtractor.cache({ items: 8 }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => FeatureExtractor.cache('all'), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('after a burst of 20 concurrent 640x480 extracts, { memory: 0 } brings RSS back within 100 MB', function () {
    if (underAsan) this.skip(); // ASan's quarantine holds freed memory by design
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'services', 'burst-rss.js'), models.default],
      { encoding: 'utf8', timeout: 580000 });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout);
    const said = `before ${(m.before / MB).toFixed(0)} MB, peak ${(m.peak / MB).toFixed(0)}, collected ${(m.collected / MB).toFixed(0)}, ` +
      `after cache({ memory: 0 }) ${(m.released / MB).toFixed(0)}`;
    assert.ok(m.peak - m.before > 100 * MB, `the burst must grow RSS by more than the margin to test anything: ${said}`);
    assert.ok(m.released - m.before <= 100 * MB, said);
  });
});

describe('FeatureExtractor.concurrency()', function () {
  this.timeout(600000);
  const initial = FeatureExtractor.concurrency();
  after(() => FeatureExtractor.concurrency(0));

  it('reports the cores the executor shares out, as counters() does', () => {
    assert.equal(initial, FeatureExtractor.counters().cores);
    assert.ok(Number.isInteger(initial) && initial >= 1);
  });

  it('n sets them: with 1, runs asking for every core go one at a time on one thread', async () => {
    assert.equal(FeatureExtractor.concurrency(1), 1);
    assert.equal(FeatureExtractor.counters().cores, 1);
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 0 });
    let most = { running: 0, threads: 0 };
    const runs = [1, 2, 3, 4].map((seed) => fx.extract(randomTensor([1, 3, 128, 128], seed), { levels: 3 }));
    let done = false;
    const all = Promise.all(runs).finally(() => { done = true; });
    while (!done) {
      const c = FeatureExtractor.counters();
      most = { running: Math.max(most.running, c.running), threads: Math.max(most.threads, c.threads) };
      await new Promise((r) => setImmediate(r));
    }
    await all;
    fx.dispose();
    assert.deepEqual(most, { running: 1, threads: 1 });
  });

  it('0 restores the default; more than the machine has is allowed, as in sharp', async () => {
    assert.equal(FeatureExtractor.concurrency(0), initial);
    assert.equal(FeatureExtractor.concurrency(initial + 2), initial + 2);
    assert.equal(FeatureExtractor.counters().cores, initial + 2);
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 1 });
    await Promise.all([1, 2, 3, 4].map((seed) => fx.extract(randomTensor([1, 3, 64, 64], seed), { levels: 3 })));
    fx.dispose();
    assert.equal(FeatureExtractor.concurrency(0), initial);
  });

  it('FILM_FEATURES_CORES sets the default, read once when the addon loads', () => {
    const script = `
      const { FeatureExtractor } = require('.');
      const first = FeatureExtractor.concurrency();
      process.env.FILM_FEATURES_CORES = '7';
      FeatureExtractor.concurrency(5);
      process.stdout.write(JSON.stringify([first, FeatureExtractor.concurrency(0)]));`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..'), encoding: 'utf8', env: { ...process.env, FILM_FEATURES_CORES: '3' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [3, 3]);
  });

  it('checks its argument', () => {
    assert.throws(() => FeatureExtractor.concurrency(-1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => FeatureExtractor.concurrency(1.5), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => FeatureExtractor.concurrency('2'), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.equal(FeatureExtractor.concurrency(), initial);
  });
});
