'use strict';
// What a user's first lines do: require the package (from the current folder's node_modules, or
// this checkout when run here), load the shipped model, extract. Prints the shapes and a checksum.
const path = require('node:path');
const crypto = require('node:crypto');

const fromApp = path.join(process.cwd(), 'node_modules', 'film-features');
const { FeatureExtractor } = require(require('node:fs').existsSync(fromApp) ? fromApp : path.join(__dirname, '..'));
(async () => {
  const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
  const data = new Float32Array(3 * 48 * 64).map((_, i) => ((i * 7919) % 256) / 255);
  const out = await fx.extract({ data, shape: [1, 3, 48, 64] }, { levels: 4 });
  const hash = crypto.createHash('sha256');
  for (const level of out) hash.update(Buffer.from(level.data.buffer, level.data.byteOffset, level.data.byteLength));
  console.log(`weights ${fx.info.weights}; ${out.map((l) => l.shape.join('x')).join(' ')}; sha256 ${hash.digest('hex').slice(0, 16)}`);
  console.error(`loaded ${fx.info.build.kind} ${require('node:path').basename(fx.info.build.file)} (libtorch ${fx.info.build.libtorch})`);
  fx.dispose();
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
