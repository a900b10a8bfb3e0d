'use strict';
// Child script: RSS before a burst of concurrent extracts of 640x480 frames, at its peak, after the
// outputs are collected, and after FeatureExtractor.cache({ memory: 0 }). Prints JSON (bytes).
// argv: model [burst = 20] [width = 640] [height = 480]; FILM_FEATURES_ROOT: another checkout to
// measure (bench/cache.js: one without cache(), where releaseCachedMemory() is all there is).
const path = require('node:path');
const { FeatureExtractor } = require(process.env.FILM_FEATURES_ROOT || path.resolve(__dirname, '../..'));
const release = () => (FeatureExtractor.cache ? FeatureExtractor.cache({ memory: 0 }) : FeatureExtractor.releaseCachedMemory());

const [model, burst = '20', width = '640', height = '480'] = process.argv.slice(2);
const rss = () => process.memoryUsage().rss;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    global.gc();
    await new Promise((r) => setImmediate(r));
  }
};

(async () => {
  const fx = await FeatureExtractor.load(model, { device: 'cpu' });
  const [w, h] = [Number(width), Number(height)];
  const frame = (seed) => ({ data: new Uint8Array(w * h * 3).map((_, i) => (i * 31 + seed * 17) & 255), width: w, height: h, channels: 3 });
  // A service that has served one request (code mapped, arenas made), its cache then emptied: the
  // lowest RSS it has between requests.
  await fx.extract(frame(0));
  await settle();
  release();
  if (FeatureExtractor.cache) FeatureExtractor.cache(true);
  const before = rss();
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rss()); }, 10);
  const t0 = performance.now();
  const outs = await Promise.all(Array.from({ length: Number(burst) }, (_, i) => fx.extract(frame(i + 1))));
  const burstMs = performance.now() - t0;
  clearInterval(sampler);
  const levels = outs[0].length;
  outs.length = 0;
  await settle();
  const collected = rss();
  const cached = FeatureExtractor.cache?.();
  const t1 = performance.now();
  release();
  const releaseMs = performance.now() - t1;
  const released = rss();
  fx.dispose();
  process.stdout.write(JSON.stringify({ before, peak, collected, released, burstMs, releaseMs, levels, cached }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
