'use strict';
// Child script (test/68.cpu-cache.test.js): started with FILM_FEATURES_CPU_CACHE_MB=0, it extracts on the
// TorchScript engine and on the default one, turns the CPU block cache on between runs and while runs
// are in flight, extracts again, turns it off again and disposes everything. Exits 0 and prints
// { limits, engines } when nothing broke; a heap corruption ends it with a signal.
const path = require('node:path');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));

const [model] = process.argv.slice(2);

function image(seed, h = 96, w = 128) {
  const data = new Float32Array(3 * h * w);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s / 2147483648;
  }
  return { data, shape: [1, 3, h, w] };
}

async function main() {
  const limits = [FeatureExtractor.cache().memory.max];
  const engines = [];
  const fxs = [];
  // the core build has no TorchScript engine (test/core): its one engine, loaded twice
  const core = require('../../dist/native').native().build === 'core';
  for (const engine of [core ? 'onednn' : 'torchscript', undefined]) {
    // loaded and run once with the cache off: the model's blocks (oneDNN's prepacked weights among them)
    // are made while nothing is cached
    const fx = await FeatureExtractor.load(model, { device: 'cpu', threads: 2, ...(engine ? { engine } : {}) });
    engines.push(fx.info.engine);
    await fx.extract(image(1), { levels: 4 });
    fxs.push(fx);
  }
  limits.push(FeatureExtractor.cache({ memory: 256 }).memory.max); // between runs
  for (const fx of fxs) {
    for (let i = 0; i < 3; i++) await fx.extract(image(2 + i, 128, 160), { levels: 4 });
  }
  FeatureExtractor.cache({ memory: 0 });
  // while runs are in flight: off, then on, then off
  for (const memory of [256, 0, 512]) {
    const runs = fxs.map((fx, i) => fx.extract(image(10 + i, 160, 192), { levels: 4 }));
    await new Promise((r) => setImmediate(r));
    limits.push(FeatureExtractor.cache({ memory }).memory.max);
    await Promise.all(runs);
    global.gc?.();
  }
  for (const fx of fxs) await fx.extract(image(20), { levels: 4 });
  limits.push(FeatureExtractor.cache(false).memory.max);
  for (const fx of fxs) await fx.extract(image(21), { levels: 4 });
  for (const fx of fxs) fx.dispose();
  FeatureExtractor.releaseCachedMemory();
  process.stdout.write(JSON.stringify({ limits, engines }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
