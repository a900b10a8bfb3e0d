'use strict';
// Child script: RSS after dispose() of 8 models, once the release it schedules for an idle moment
// has run (off the JS thread), with no garbage collection in between.
const path = require('node:path');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));
const { native } = require(path.resolve(__dirname, '../../dist/native'));

const model = process.argv[2];
const rss = () => process.memoryUsage().rss;

(async () => {
  const image = { data: new Float32Array(3 * 64 * 64).fill(0.25), shape: [1, 3, 64, 64] };
  // Warm the libraries (first load maps code and allocator arenas).
  const warm = await FeatureExtractor.load(model, { device: 'cpu' });
  await warm.extract(image);
  warm.dispose();
  FeatureExtractor.releaseCachedMemory();
  const base = rss();
  const models = [];
  for (let i = 0; i < 8; i++) models.push(await FeatureExtractor.load(model, { device: 'cpu' }));
  for (const fx of models) await fx.extract(image);
  const loaded = rss();
  const releases = native()._internal.idleReleases();
  for (const fx of models) fx.dispose();
  // Each dispose() asks for a release once nothing runs; those asked for while one runs make
  // another. Wait until one has run and no other follows for 200 ms.
  const t = performance.now();
  let seen = releases;
  let since = performance.now();
  while (seen === releases || performance.now() - since < 200) {
    if (performance.now() - t > 10000) throw new Error('no idle release within 10 s of dispose()');
    await new Promise((r) => setTimeout(r, 2));
    const now = native()._internal.idleReleases();
    if (now !== seen) [seen, since] = [now, performance.now()];
  }
  const disposed = rss();
  process.stdout.write(JSON.stringify({ base, loaded, disposed, waitedMs: since - t }));
})();
