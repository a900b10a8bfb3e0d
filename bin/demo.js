#!/usr/bin/env node
'use strict';
// Runs the shipped model once on a synthetic 256x256 frame and prints each level's shape and the time.
const { FeatureExtractor } = require('..');

function syntheticFrame(size) {
  const data = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      data[p] = x / size;
      data[size * size + p] = y / size;
      data[2 * size * size + p] = ((x >> 4) + (y >> 4)) % 2;
    }
  }
  return { data, shape: [1, 3, size, size] };
}

(async () => {
  let t = performance.now();
  const fx = await FeatureExtractor.load();
  console.log(`loaded the default model on ${fx.device} in ${(performance.now() - t).toFixed(0)} ms`);
  const frame = syntheticFrame(256);
  t = performance.now();
  const features = await fx.extract(frame, { levels: 7 });
  const ms = performance.now() - t;
  features.forEach((f, i) => console.log(`level ${i}: [${f.shape.join(', ')}]`));
  console.log(`extract 256x256, 7 levels: ${ms.toFixed(1)} ms`);
  fx.dispose();
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
