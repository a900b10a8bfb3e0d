'use strict';
// Child script: process.exit() with runs in flight, inside a worker (argv 'worker') or on the main
// thread (argv 'main'). In the worker case the main thread extracts afterwards and prints 'ok'.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));
const { randomTensor } = require('../fixtures');

const [model, where] = process.argv.slice(2);
const image = randomTensor([1, 3, 96, 96], 8);

async function startRunsThenExit() {
  const fx = await FeatureExtractor.load(model, { device: 'cpu' });
  for (let i = 0; i < 4; i++) fx.extract(image, { levels: 5 }).catch(() => {});
  FeatureExtractor.load(model, { device: 'cpu' }).catch(() => {});
  while (FeatureExtractor.counters().running === 0) await new Promise((r) => setImmediate(r));
  process.exit(0);
}

if (where === 'main') {
  startRunsThenExit();
} else {
  const script = `
    const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '../..'))});
    const { workerData } = require('node:worker_threads');
    (async () => {
      const fx = await FeatureExtractor.load(workerData.model, { device: 'cpu' });
      for (let i = 0; i < 4; i++) fx.extract(workerData.image, { levels: 5 }).catch(() => {});
      FeatureExtractor.load(workerData.model, { device: 'cpu' }).catch(() => {});
      while (FeatureExtractor.counters().running === 0) await new Promise((r) => setImmediate(r));
      process.exit(0);
    })();`;
  const w = new Worker(script, { eval: true, workerData: { model, image } });
  w.on('exit', async (code) => {
    const fx = await FeatureExtractor.load(model, { device: 'cpu' });
    const out = await fx.extract(image, { levels: 5 });
    console.log(code === 0 && out.length === 5 ? 'ok' : `bad: worker exit ${code}`);
  });
}
