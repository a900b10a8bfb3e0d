'use strict';
// RSS around a burst of concurrent extracts (20 frames of 640x480 by default), then after
// FeatureExtractor.cache({ memory: 0 }), or releaseCachedMemory() for a build without cache().
// One child process per package and round (test/services/burst-rss.js); medians.
// Usage: node bench/cache.js [--before /path/to/older/film-features] [--rounds 3] [--burst 20] [--width 640] [--height 480]
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { median, table, machineLines } = require('./common');

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    burst: { type: 'string', default: '20' },
    width: { type: 'string', default: '640' },
    height: { type: 'string', default: '480' },
  },
});
const here = path.resolve(__dirname, '..');
const packages = { after: here, ...(values.before ? { before: path.resolve(values.before) } : {}) };
const model = path.join(here, 'models', 'film_extractor.pt');
const MB = 2 ** 20;

const results = Object.fromEntries(Object.keys(packages).map((name) => [name, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, root] of Object.entries(packages)) { // interleaved: noise hits both alike
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'test', 'services', 'burst-rss.js'), model,
      values.burst, values.width, values.height], { encoding: 'utf8', env: { ...process.env, FILM_FEATURES_ROOT: root } });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    results[name].push(JSON.parse(r.stdout));
  }
}

const mb = (runs, key) => (median(runs.map((m) => m[key])) / MB).toFixed(0);
console.log(machineLines().join('\n'));
console.log(`burst: ${values.burst} concurrent extracts of ${values.width}x${values.height}, ${values.rounds} rounds, medians\n`);
console.log(table(['package', 'RSS before (MB)', 'peak', 'outputs collected', 'after release', 'after - before', 'release ms', 'burst s'],
  Object.entries(results).map(([name, runs]) => [name, mb(runs, 'before'), mb(runs, 'peak'), mb(runs, 'collected'),
    mb(runs, 'released'), (median(runs.map((m) => m.released - m.before)) / MB).toFixed(0),
    median(runs.map((m) => m.releaseMs)).toFixed(0), (median(runs.map((m) => m.burstMs)) / 1000).toFixed(1)])));
