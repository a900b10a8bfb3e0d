'use strict';
// Child script: RSS after dispose() of 8 models, once the release it schedules for an idle moment
// has run (off the JS thread), with no garbage collection in between; then after a gc() where
// node runs with --expose-gc. Usage: dispose-rss.js MODEL [PACKAGE] (default: this checkout);
// bench/services.js runs it on older builds too, which have no idle release (released: false).
const path = require('node:path');

const [model, pkg = path.resolve(__dirname, '../..')] = process.argv.slice(2);
const { FeatureExtractor } = require(pkg);
const { native } = require(path.join(pkg, 'dist', 'native'));
const rss = () => process.memoryUsage().rss;
// this checkout: binding._internal (native/internal_hooks.cc); older builds: cpuCache()
const idleReleases = () => (native()._internal?.idleReleases?.() ?? native().cpuCache?.().idleReleases);

/** Each dispose() asks for a release once nothing runs; those asked for while one runs make another. */
async function waitForReleases(before) {
  const t = performance.now();
  let seen = before;
  let since = performance.now();
  // until one has run and no other follows for 200 ms
  while (seen === before || performance.now() - since < 200) {
    if (performance.now() - t > 10000) throw new Error('no idle release within 10 s of dispose()');
    await new Promise((r) => setTimeout(r, 2));
    const now = idleReleases();
    if (now !== seen) [seen, since] = [now, performance.now()];
  }
  return since - t;
}

(async () => {
  const image = { data: new Float32Array(3 * 64 * 64).fill(0.25), shape: [1, 3, 64, 64] };
  // Warm the libraries (first load maps code and allocator arenas).
  const warm = await FeatureExtractor.load(model, { device: 'cpu' });
  await warm.extract(image);
  warm.dispose();
  FeatureExtractor.releaseCachedMemory?.();
  const base = rss();
  const models = [];
  for (let i = 0; i < 8; i++) models.push(await FeatureExtractor.load(model, { device: 'cpu' }));
  for (const fx of models) await fx.extract(image);
  const loaded = rss();
  const releases = idleReleases();
  for (const fx of models) fx.dispose();
  const rightAfter = rss();
  const waitedMs = releases === undefined ? null : await waitForReleases(releases);
  const disposed = rss();
  global.gc?.();
  await new Promise((r) => setTimeout(r, 100));
  process.stdout.write(JSON.stringify({ base, loaded, rightAfter, released: waitedMs !== null, disposed, waitedMs, afterGc: rss() }));
})();
