'use strict';
// Child script: RSS right after dispose() of 8 models, with no garbage collection in between.
const path = require('node:path');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));

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
  for (const fx of models) fx.dispose();
  const disposed = rss();
  process.stdout.write(JSON.stringify({ base, loaded, disposed }));
})();
