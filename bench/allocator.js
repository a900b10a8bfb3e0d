'use strict';
// The CPU block cache vs jemalloc (preloaded, decay off) vs plain glibc malloc, at 512x512: median
// extract time and peak RSS. One child process per configuration and round, configurations in turn.
// Usage: node bench/allocator.js [--rounds 2] [--runs 5] [--size 512]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { median, table, machineLines, fmt, cliOptions } = require('./common');

const values = cliOptions({ rounds: 2, runs: 5, size: 512 });
const jemalloc = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2']
  .find((f) => fs.existsSync(f));

const CHILD = `
  const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
  const { randomTensor } = require(${JSON.stringify(path.join(__dirname, 'common.js'))});
  (async () => {
    const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
    const image = randomTensor(1, ${Number(values.size)}, ${Number(values.size)}, 1);
    await fx.extract(image);
    const ms = [];
    for (let i = 0; i < ${Number(values.runs)}; i++) {
      const t = performance.now();
      await fx.extract(image);
      ms.push(performance.now() - t);
      global.gc();
    }
    console.log(JSON.stringify({ ms, maxRss: process.resourceUsage().maxRSS * 1024 }));
  })();`;

const configs = {
  'block cache (default)': {},
  'glibc, no cache': { FILM_FEATURES_CPU_CACHE_MB: '0' },
  ...(jemalloc ? {
    'jemalloc preloaded, no cache': {
      FILM_FEATURES_CPU_CACHE_MB: '0', LD_PRELOAD: jemalloc, MALLOC_CONF: 'dirty_decay_ms:-1,muzzy_decay_ms:-1',
    },
  } : {}),
};

const results = Object.fromEntries(Object.keys(configs).map((k) => [k, { ms: [], rss: [] }]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, env] of Object.entries(configs)) {
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD], { encoding: 'utf8', env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    const { ms, maxRss } = JSON.parse(r.stdout);
    results[name].ms.push(...ms);
    results[name].rss.push(maxRss);
    console.error(`${name}: ${fmt(median(ms), 0)} ms, peak RSS ${fmt(maxRss / 2 ** 20, 0)} MB`);
  }
}
console.log(machineLines([`${values.size}x${values.size}, 7 levels, threads 0; ${values.rounds} processes per configuration x ${values.runs} runs`]).join('\n'));
console.log();
console.log(table(['allocator', 'median ms', 'peak RSS MB (median of processes)'],
  Object.entries(results).map(([name, r]) => [name, fmt(median(r.ms), 0), fmt(median(r.rss) / 2 ** 20, 0)])));
if (!jemalloc) console.log('\n(jemalloc not installed: apt-get install libjemalloc2)');
