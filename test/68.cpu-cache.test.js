'use strict';
// The CPU block cache (native/cpu_allocator.h) is libtorch's CPU allocator from the addon's load on,
// whatever its limit: turning it on or off at run time only changes the limit. Before, a process
// started with FILM_FEATURES_CPU_CACHE_MB=0 installed it on the first cache({ memory }), and blocks
// libtorch had made before (oneDNN's among them) were then freed through it: "double free or
// corruption". Also: FILM_FEATURES_CPU_CACHE_MB is read strictly, and under AddressSanitizer
// (npm run test:asan, which runs with the cache on) a cached block is poisoned.
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { models } = require('./fixtures');

const MB = 2 ** 20;
const root = path.join(__dirname, '..');
const underAsan = /libasan/.test(process.env.LD_PRELOAD ?? '');

function child(args, env, timeout = 280000) {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, ...env } });
  assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr.slice(-3000)}`);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  return r;
}

describe('CPU block cache turned on and off at run time', function () {
  this.timeout(600000);

  it('a process started with the cache off extracts on both engines as the cache is turned on, between runs and during them, and off again', () => {
    const r = child(['--expose-gc', path.join(__dirname, 'services', 'cache-at-run-time.js'), models.default],
      { FILM_FEATURES_CPU_CACHE_MB: '0' }, 590000);
    const { limits, engines } = JSON.parse(r.stdout);
    assert.deepEqual(limits, [0, 256, 256, 0, 512, 0]);
    assert.equal(engines[0], native().build === 'core' ? 'onednn' : 'torchscript');
    if (native().onednnCompiledIn) assert.equal(engines[1], 'onednn');
  });

  it('frees through the previous allocator a block it did not make, and keeps (poisoned under ASan) a block it did', () => {
    const before = FeatureExtractor.cache();
    FeatureExtractor.cache({ memory: 64 });
    try {
      const probe = native()._internal.probeCpuCache();
      assert.equal(probe.asan, underAsan, 'the ASan build says so');
      assert.deepEqual({ installed: probe.installed, cached: probe.cached, reused: probe.reused },
        { installed: true, cached: true, reused: true });
      if (underAsan) assert.deepEqual({ poisoned: probe.poisoned, unpoisoned: probe.unpoisoned }, { poisoned: true, unpoisoned: true });
    } finally {
      FeatureExtractor.cache({ memory: before.memory.max });
    }
  });

  it('with a limit of 0 the allocator stays, and passes every block through', () => {
    const before = FeatureExtractor.cache();
    FeatureExtractor.cache({ memory: 0 });
    try {
      const probe = native()._internal.probeCpuCache();
      assert.deepEqual({ installed: probe.installed, cached: probe.cached }, { installed: true, cached: false });
      assert.equal(native().cache().cached, 0);
    } finally {
      FeatureExtractor.cache({ memory: before.memory.max });
    }
  });
});

describe('FILM_FEATURES_CPU_CACHE_MB', function () {
  this.timeout(120000);
  const defaultMb = Math.round(native()._internal.defaultCacheLimit('/sys/fs/cgroup') / MB);
  // Loads the addon in the main thread and in a worker_thread: the warning comes once.
  const script = `
    const { Worker } = require('node:worker_threads');
    const { FeatureExtractor } = require('.');
    const first = FeatureExtractor.cache();
    new Worker("require('./dist/native').native(); require('node:worker_threads').parentPort.postMessage(0)", { eval: true })
      .once('message', () => process.stdout.write(JSON.stringify(first)));`;
  const run = (value) => {
    const r = child(['-e', script], { FILM_FEATURES_CPU_CACHE_MB: value });
    const warnings = r.stderr.split('\n').filter((line) => line.includes('FILM_FEATURES_CPU_CACHE_MB'));
    return { max: JSON.parse(r.stdout).memory.max, warnings, stderr: r.stderr };
  };

  for (const value of ['-1', 'abc', '1.5', ' 64', '64MB', '0x10', '+8']) {
    it(`${JSON.stringify(value)} is ignored, with a warning that names it and says the default is used`, () => {
      const { max, warnings, stderr } = run(value);
      assert.equal(max, defaultMb);
      assert.equal(warnings.length, 1, stderr);
      assert.ok(warnings[0].includes('[FILM_FEATURES_ENV]'), warnings[0]);
      assert.ok(warnings[0].includes(`FILM_FEATURES_CPU_CACHE_MB="${value}"`), warnings[0]);
      assert.match(warnings[0], new RegExp(`default limit of the CPU block cache \\(${defaultMb} MiB\\) is used`));
    });
  }

  for (const [value, mb] of [['64', 64], ['0', 0], ['007', 7]]) {
    it(`${JSON.stringify(value)} is ${mb} MiB, without a warning`, () => {
      const { max, warnings } = run(value);
      assert.equal(max, mb);
      assert.deepEqual(warnings, []);
    });
  }

  it('empty is unset: the default, without a warning', () => {
    const { max, warnings } = run('');
    assert.equal(max, defaultMb);
    assert.deepEqual(warnings, []);
  });

  it("more than the machine's memory is capped to it, with a warning", () => {
    const { max, warnings } = run('184467440737095516150');
    const memoryMb = Math.floor(os.totalmem() / MB);
    assert.ok(Math.abs(max - memoryMb) <= memoryMb / 100, `${max} MiB, the machine has ${memoryMb}`);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /is more than this machine's memory/);
  });
});
